"""Quitting with unsaved edits asks whether to save them as a session first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from editors.session_io import SESSION_FILTER, SESSION_SUFFIX

if TYPE_CHECKING:
    from app.main_window import MainWindow

Button = QMessageBox.StandardButton


class UnsavedEditsGuard(QObject):
    """Asks Save / Discard / Cancel (without blocking) when the window closes with unsaved edits."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.box: QMessageBox | None = None
        self._may_close = False  # set once the user answered Save (and saved) or Discard

    def discard(self) -> None:
        """Close from now on without asking (the edits are thrown away)."""
        self._may_close = True

    def may_close(self) -> bool:
        """True when the window may close now; otherwise the question is shown."""
        if self._may_close or not self.window.session.has_unsaved_edits():
            return True
        if self.box is None:
            box = QMessageBox(
                QMessageBox.Icon.Question,
                "Save your edits?",
                "The edits you made are not saved. Save them as a session before quitting?",
                Button.Save | Button.Discard | Button.Cancel,
                self.window,
            )
            box.setObjectName("unsavedEditsBox")
            box.setInformativeText("A session keeps the latent, every slider and the model used.")
            box.setDefaultButton(Button.Save)
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.finished.connect(self._on_box_finished)
            self.box = box
        self.box.open()
        return False

    def _on_box_finished(self, _result: int) -> None:
        assert self.box is not None
        answer = self.box.standardButton(self.box.clickedButton())
        if answer == Button.Discard:
            self.discard()
            self.window.close()
        elif answer == Button.Save:
            path, _ = QFileDialog.getSaveFileName(
                self.window, "Save session", f"edit{SESSION_SUFFIX}", SESSION_FILTER
            )
            if path and self.window.save_session(Path(path)):
                self.window.close()
