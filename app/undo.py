"""Undo: every user change is a ``SetStateCommand`` holding the state before and after it."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand, QUndoStack

if TYPE_CHECKING:
    from app.session import Session
    from editors.state import EditState


def merge_id(merge_key: str | None) -> int:
    """A stable positive command id per merge key; -1 means "never merge"."""
    if merge_key is None:
        return -1
    return zlib.crc32(merge_key.encode()) & 0x7FFFFFFF


class SetStateCommand(QUndoCommand):
    """Switches the session between two edit states.

    Commands with the same ``merge_key`` merge while unsealed, so a whole slider drag is one undo
    entry; ``seal()`` (on slider release) makes the next drag start a new entry.
    """

    def __init__(
        self,
        session: Session,
        before: EditState,
        after: EditState,
        text: str,
        merge_key: str | None = None,
    ) -> None:
        super().__init__(text)
        self._session = session
        self.before = before
        self.after = after
        self._id = merge_id(merge_key)
        self.sealed = False

    def redo(self) -> None:
        self._session.apply(self.after)

    def undo(self) -> None:
        self._session.apply(self.before)

    def id(self) -> int:
        return self._id

    def mergeWith(self, other: QUndoCommand) -> bool:
        if self.sealed or not isinstance(other, SetStateCommand) or other.id() != self.id():
            return False
        self.after = other.after
        self.setText(other.text())
        return True

    def seal(self) -> None:
        """Stop merging later commands into this one."""
        self.sealed = True


def entry_state(stack: QUndoStack, index: int, current: EditState) -> EditState:
    """The state the stack shows at ``index`` (0 = before the first command, as QUndoView counts).

    ``current`` is returned for an empty stack (the state with no history yet).
    """
    if stack.count() == 0:
        return current
    if index == 0:
        first = stack.command(0)
        return first.before if isinstance(first, SetStateCommand) else current
    command = stack.command(index - 1)
    return command.after if isinstance(command, SetStateCommand) else current


def entries(
    stack: QUndoStack, current: EditState, start_text: str = "Start"
) -> list[tuple[str, EditState]]:
    """Every history entry as (text, state), entry 0 being the state before the first command."""
    result = [(start_text, entry_state(stack, 0, current))]
    for index in range(stack.count()):
        result.append((stack.text(index), entry_state(stack, index + 1, current)))
    return result
