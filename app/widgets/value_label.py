"""A slider's value label that can be typed into: double-click (or Enter when focused), type."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QLabel, QLineEdit, QWidget


class ValueLabel(QLabel):
    """Shows a value like "+1.50σ"; double-clicking opens an editor whose number is emitted.

    The label keeps its text until the session confirms the value, so what it shows is always
    the state's value, never a half-typed one.
    """

    value_entered = Signal(float)

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setCursor(Qt.CursorShape.IBeamCursor)
        self.setToolTip("Double-click to type a value")
        self.editor: QLineEdit | None = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.start_editing()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_F2):
            self.start_editing()
        else:
            super().keyPressEvent(event)

    def start_editing(self) -> QLineEdit:
        """Open the inline editor over the label, holding the current number."""
        if self.editor is None:
            self.editor = QLineEdit(self)
            self.editor.setObjectName(f"{self.objectName()}:editor")
            self.editor.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.editor.returnPressed.connect(self._commit)
            self.editor.editingFinished.connect(self._close_editor)
        number = re.search(r"[-+]?\d+(?:\.\d+)?", self.text())
        self.editor.setText(number.group(0) if number else "")
        self.editor.setGeometry(self.rect())
        self.editor.show()
        self.editor.setFocus()
        self.editor.selectAll()
        return self.editor

    def _commit(self) -> None:
        if self.editor is None:
            return
        text = self.editor.text().strip().replace(",", ".").rstrip("σ×")
        self._close_editor()
        try:
            value = float(text)
        except ValueError:
            return  # not a number: the label keeps the current value
        self.value_entered.emit(value)

    def _close_editor(self) -> None:
        if self.editor is not None:
            self.editor.hide()
