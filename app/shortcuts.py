"""Every keyboard shortcut of the window, in one table.

Written out key by key instead of ``QKeySequence.StandardKey``: the standard keys differ per
platform (Redo is Ctrl+Shift+Z on X11, which collided with our own Ctrl+Shift+Z and made redo
silently do nothing), so only an explicit table can be checked for collisions on every platform.
"Ctrl" is Cmd on macOS.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

SHORTCUTS: dict[str, tuple[str, ...]] = {
    "openModel": ("Ctrl+O",),
    "openPhoto": ("Ctrl+Shift+P",),
    "saveImage": ("Ctrl+S",),
    "openSession": ("Ctrl+Shift+O",),
    "saveSession": ("Ctrl+Shift+S",),
    "exportImage": ("Ctrl+E",),
    "exportVideo": ("Ctrl+Shift+E",),
    "quit": ("Ctrl+Q",),
    "undo": ("Ctrl+Z",),
    "redo": ("Ctrl+Shift+Z", "Ctrl+Y"),
    "randomSeed": ("Ctrl+R",),
    "resetEdits": ("Ctrl+Backspace",),
    "zoomFit": ("Ctrl+0",),
    "zoom100": ("Ctrl+1",),
    "zoom200": ("Ctrl+2",),
    "showPixels": ("Ctrl+P",),
    "compare": ("Ctrl+B",),
    "help": ("F1",),
}
TOOL_KEYS = tuple(f"Alt+{n}" for n in range(1, 10))  # the n-th tool of the tool rail


def apply_shortcuts(action: QAction, key: str) -> None:
    """Give ``action`` the shortcuts of ``key`` in the table (none when it has no entry)."""
    action.setShortcuts([QKeySequence(text) for text in SHORTCUTS.get(key, ())])


def shortcut_text(action: QAction) -> str:
    """The action's shortcuts as the user reads them ("Ctrl+Shift+Z or Ctrl+Y")."""
    return " or ".join(
        sequence.toString(QKeySequence.SequenceFormat.NativeText) for sequence in action.shortcuts()
    )
