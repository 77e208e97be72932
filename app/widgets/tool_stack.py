"""The tool panel: a vertical rail of tool buttons beside the selected tool's page.

Tabs stop fitting after four or five tools; a rail of icon buttons keeps every tool visible at
any window size and leaves room for the tools to come (drag, masks, StyleSpace, ...). The API
mirrors ``QTabWidget`` (``addTab``, ``count``, ``currentWidget``, ``tabText`` ...) so code written
for tabs keeps working.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

RAIL_WIDTH = 92
ICON_SIZE = 22


class ToolStack(QWidget):
    """Tool buttons on the left, the current tool's page (with its title) on the right."""

    currentChanged = Signal(int)  # index of the tool now shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._titles: list[str] = []
        self._buttons: list[QToolButton] = []
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._group.idClicked.connect(self.setCurrentIndex)

        self.rail = QWidget()
        self.rail.setObjectName("toolRail")
        # Scrolls when the window is too short for every tool, instead of growing the window.
        rail_scroll = QScrollArea()
        rail_scroll.setWidget(self.rail)
        rail_scroll.setWidgetResizable(True)
        rail_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        rail_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        rail_scroll.setFixedWidth(RAIL_WIDTH)
        self._rail_layout = QVBoxLayout(self.rail)
        self._rail_layout.setContentsMargins(4, 6, 4, 6)
        self._rail_layout.setSpacing(4)
        self._rail_layout.addStretch(1)

        self.title = QLabel()
        self.title.setObjectName("toolTitle")
        self.pages = QStackedWidget()
        self.pages.setObjectName("toolPages")
        self.pages.currentChanged.connect(self._on_pages_current_changed)
        page_column = QVBoxLayout()
        page_column.setContentsMargins(8, 6, 4, 4)
        page_column.setSpacing(6)
        page_column.addWidget(self.title)
        page_column.addWidget(self.pages, 1)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(rail_scroll)
        layout.addLayout(page_column, 1)

    # -- QTabWidget-like API ------------------------------------------------------------------
    def addTab(self, widget: QWidget, title: str, icon: QIcon | None = None, tip: str = "") -> int:
        """Add a tool page with its rail button; returns its index."""
        index = self.pages.addWidget(widget)
        button = QToolButton()
        button.setObjectName(f"toolButton:{widget.objectName() or index}")
        button.setText(title.replace(" ", "\n", 1) if " " in title else title)
        button.setToolTip(tip or title.replace("&&", "&"))
        button.setCheckable(True)
        button.setAutoRaise(True)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        button.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        if icon is not None:
            button.setIcon(icon)
        self._group.addButton(button, index)
        self._rail_layout.insertWidget(self._rail_layout.count() - 1, button)
        self._buttons.append(button)
        self._titles.append(title)
        if index == 0:
            self._on_pages_current_changed(0)
        return index

    def count(self) -> int:
        return self.pages.count()

    def widget(self, index: int) -> QWidget | None:
        return self.pages.widget(index)

    def indexOf(self, widget: QWidget) -> int:
        return self.pages.indexOf(widget)

    def currentIndex(self) -> int:
        return self.pages.currentIndex()

    def currentWidget(self) -> QWidget | None:
        return self.pages.currentWidget()

    def setCurrentIndex(self, index: int) -> None:
        self.pages.setCurrentIndex(index)

    def setCurrentWidget(self, widget: QWidget) -> None:
        self.pages.setCurrentWidget(widget)

    def tabText(self, index: int) -> str:
        return self._titles[index]

    def button(self, index: int) -> QToolButton:
        """The rail button of tool ``index``."""
        return self._buttons[index]

    def _on_pages_current_changed(self, index: int) -> None:
        if 0 <= index < len(self._buttons):
            self._buttons[index].setChecked(True)
            self.title.setText(self._titles[index].replace("&&", "&"))
        self.currentChanged.emit(index)
