"""Undo in the GUI: a ``QUndoStack`` that mirrors the session's ``editors.history.EditHistory``.

The history decides everything (merging, sealing, the clean mark, the limit); the stack keeps one
command per history step so Qt's undo/redo actions, its signals and row jumps work, and a command
only moves the history and shows the state it arrives at. In the GUI, move the history through
this stack (undo, redo, setIndex, ``mark_clean``, ``restart``) so both stay in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

if TYPE_CHECKING:
    from editors.history import EditHistory
    from editors.state import EditState

MERGEABLE_ID = 1  # every command that may merge; the history tells whether it did


class StepCommand(QUndoCommand):
    """The Qt stand-in for one history step."""

    def __init__(self, stack: UndoStack, text: str, mergeable: bool, merged: bool) -> None:
        super().__init__(text)
        self._stack = stack
        self._id = MERGEABLE_ID if mergeable else -1
        self._merged = merged  # the history merged this proposal into its last step
        self._pushed = False

    def redo(self) -> None:
        history = self._stack.history
        if self._pushed:
            state = history.redo()
        else:  # QUndoStack.push redoes first: the history has already taken the step
            self._pushed = True
            state = history.current
        if state is not None:
            self._stack.apply(state)

    def undo(self) -> None:
        state = self._stack.history.undo()
        if state is not None:
            self._stack.apply(state)

    def id(self) -> int:
        return self._id

    def mergeWith(self, other: QUndoCommand) -> bool:
        # Qt only asks when both may merge and the entry is not the clean one, which the history
        # also requires; the history adds "same key" and "not sealed".
        if not isinstance(other, StepCommand) or not other._merged:
            return False
        self.setText(other.text())
        return True


class UndoStack(QUndoStack):
    """The Qt face of an ``EditHistory``: one command per step, added as the history proposes."""

    def __init__(
        self,
        history: EditHistory,
        apply: Callable[[EditState], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if len(history):
            raise ValueError("the undo stack must start with an empty history")
        self.history = history
        self.apply = apply  # makes a state current (the session's apply)
        self.setUndoLimit(history.limit)
        history.on_step = self._on_history_step

    def mark_clean(self) -> None:
        """The current entry matches the saved file."""
        self.history.set_clean()
        self.setClean()

    def restart(self, start: EditState) -> None:
        """Forget every step; ``start`` is the new start state."""
        self.history.clear(start)
        self.clear()

    def _on_history_step(self, merged: bool, mergeable: bool) -> None:
        history = self.history
        self.push(StepCommand(self, history.text(history.index), mergeable, merged))
