"""The main window's panel areas: the tool rail on the right, side docks, the status bar.

A mixin of ``MainWindow``, kept apart so the window module stays about behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QLabel, QProgressBar, QWidget

from app.shortcuts import TOOL_KEYS
from app.theme import icon
from app.widgets.tool_stack import ToolStack

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMainWindow, QMenu

    _Base = QMainWindow
else:
    _Base = object

DOCK_FEATURES = (
    QDockWidget.DockWidgetFeature.DockWidgetMovable
    | QDockWidget.DockWidgetFeature.DockWidgetClosable  # so View's toggles can hide them
)


class PanelHostMixin(_Base):
    """``add_panel`` / ``show_tool`` / ``add_side_panel`` and the status bar widgets."""

    menus: dict[str, QMenu]

    def _build_docks(self) -> None:
        # Panels add themselves as tools (right) or dock widgets (left) through add_panel /
        # add_side_panel. Tools sit in a rail, not tabs, so all stay visible as more are added.
        self.panel_tabs = ToolStack()
        self.panel_tabs.setObjectName("panelTabs")
        self.panel_dock = QDockWidget("Tools", self)
        self.panel_dock.setObjectName("panelDock")
        self.panel_dock.setWidget(self.panel_tabs)
        self.panel_dock.setFeatures(DOCK_FEATURES)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel_dock)
        self.panel_dock.hide()

    def add_panel(self, widget: QWidget, title: str, icon_name: str | None = None) -> None:
        """Add a tool on the right (Attributes, Style mixing, ...) and its Tools menu entry."""
        index = self.panel_tabs.addTab(widget, title, icon(icon_name) if icon_name else None)
        action = QAction(title, self)
        action.setObjectName(f"action:tool:{widget.objectName() or index}")
        if index < len(TOOL_KEYS):
            action.setShortcut(TOOL_KEYS[index])
        action.triggered.connect(lambda checked=False, w=widget: self.show_tool(w))
        self.menus["&Tools"].addAction(action)
        self.panel_tabs.button(index).setToolTip(f"{title.replace('&&', '&')} ({TOOL_KEYS[index]})")
        self.panel_dock.show()

    def show_tool(self, widget: QWidget) -> None:
        """Bring tool ``widget`` forward (and its dock, when it was closed)."""
        self.panel_tabs.setCurrentWidget(widget)
        self.panel_dock.show()

    def add_side_panel(self, widget: QWidget, title: str, object_name: str) -> QDockWidget:
        """Add a dock on the left (e.g. the history of edits)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name)
        dock.setWidget(widget)
        dock.setFeatures(DOCK_FEATURES)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        return dock

    def _build_status_bar(self) -> None:
        """Busy bar, then model, resolution, device and render time on the right."""
        self.busy_bar = QProgressBar()
        self.busy_bar.setObjectName("busyBar")
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.hide()
        self.statusBar().addPermanentWidget(self.busy_bar)
        labels = {"model": "No model", "resolution": "", "device": "", "render": ""}
        for key, text in labels.items():
            label = QLabel(text)
            label.setObjectName("statusRenderTime" if key == "render" else f"status{key.title()}")
            self.statusBar().addPermanentWidget(label)
            setattr(self, f"status_{key}", label)
