"""The dark theme: neutral greys that do not tint how pictures are judged, one accent colour."""

from __future__ import annotations

import qtawesome
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#4c8ee8"
ICON_COLOR = "#c8cad2"
ICON_DISABLED = "#60636b"

_COLORS = {
    QPalette.ColorRole.Window: "#2b2d31",
    QPalette.ColorRole.WindowText: "#dcdee4",
    QPalette.ColorRole.Base: "#1f2023",
    QPalette.ColorRole.AlternateBase: "#26282c",
    QPalette.ColorRole.ToolTipBase: "#1f2023",
    QPalette.ColorRole.ToolTipText: "#dcdee4",
    QPalette.ColorRole.PlaceholderText: "#7c7f88",
    QPalette.ColorRole.Text: "#dcdee4",
    QPalette.ColorRole.Button: "#35373c",
    QPalette.ColorRole.ButtonText: "#dcdee4",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Light: "#45474d",
    QPalette.ColorRole.Midlight: "#3a3c41",
    QPalette.ColorRole.Mid: "#2f3135",
    QPalette.ColorRole.Dark: "#1b1c1f",
    QPalette.ColorRole.Shadow: "#111214",
    QPalette.ColorRole.Highlight: ACCENT,
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#7fb0ff",
}
_DISABLED = {
    QPalette.ColorRole.WindowText: "#6e717a",
    QPalette.ColorRole.Text: "#6e717a",
    QPalette.ColorRole.ButtonText: "#6e717a",
    QPalette.ColorRole.Highlight: "#3b4250",
}

STYLE_SHEET = """
QWidget#toolRail { background: #232427; border-right: 1px solid #1a1b1d; }
QWidget#toolRail QToolButton {
    color: #b9bcc4; border: none; border-radius: 6px; padding: 6px 2px; font-size: 11px;
}
QWidget#toolRail QToolButton:hover { background: #303237; }
QWidget#toolRail QToolButton:checked { background: #3a4150; color: #ffffff; }
QLabel#toolTitle { font-size: 14px; font-weight: 600; padding: 2px 0 4px 0; }
QDockWidget::title { padding: 4px 6px; background: #26282c; }
QToolBar { spacing: 6px; padding: 3px; border: none; }
QStatusBar QLabel { padding: 0 6px; color: #aeb1b9; }
QListWidget#historyList::item { padding: 3px; }
QListWidget#historyList::item:selected { background: #3a4150; }
"""


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style, the dark palette and a few style-sheet touches, once per application."""
    if app.property("latentStudioTheme"):
        return
    app.setStyle("Fusion")
    palette = QPalette()
    for role, color in _COLORS.items():
        palette.setColor(QPalette.ColorGroup.All, role, QColor(color))
    for role, color in _DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(color))
    app.setPalette(palette)
    app.setStyleSheet(STYLE_SHEET)
    app.setProperty("latentStudioTheme", True)


def icon(name: str) -> QIcon:
    """A Material Design icon (``mdi6.*``) in the theme's colours."""
    return qtawesome.icon(name, color=ICON_COLOR, color_disabled=ICON_DISABLED)
