"""The edit history: undoable steps between edit states, without Qt.

One implementation of the rules the studio's undo follows, usable headless (tests, replaying a
list of recorded steps) and wrapped by the GUI's undo stack (``app.undo``):

- ``propose`` makes a state current as a new step, or merges it into the last step when both
  carry the same ``merge_key`` and that step is not sealed, so a whole slider drag is one entry;
  ``seal`` (on slider release) makes the next change start a new step. Proposing after an undo
  drops the undone steps.
- The clean mark (``set_clean``, on save) is the entry that matches the saved file; a step is never
  merged into the clean entry, so the saved state stays reachable.
- At most ``limit`` steps are kept; the oldest are dropped and the start moves up.

These are ``QUndoStack``'s rules (same merge, clean and limit behaviour), so the Qt stack can mirror
this history one command per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from editors.state import EditState, reset_edits

UNDO_LIMIT = 500  # steps kept; each holds only references to immutable states
START_TEXT = "Start"


@dataclass(slots=True)
class Step:
    """One history entry: the state it leads to, its label and how it merges."""

    text: str
    state: EditState
    merge_key: str | None = None  # steps with the same key merge while unsealed; None never
    sealed: bool = False

    def absorbs(self, merge_key: str | None) -> bool:
        """True when a proposal with ``merge_key`` merges into this step."""
        return not self.sealed and merge_key is not None and merge_key == self.merge_key


@dataclass(frozen=True, slots=True)
class Proposal:
    """A recorded ``propose`` call (see ``replay``)."""

    state: EditState
    text: str
    merge_key: str | None = None


Action = Proposal | Literal["seal", "undo", "redo", "clean"]
StepListener = Callable[[bool, bool], None]  # (merged, mergeable) after each proposal


class EditHistory:
    """Edit states reached one step at a time, with undo, redo, merging and a clean mark.

    Entry 0 is the start state; entry ``i`` is the state after step ``i``. ``index`` is the
    current entry.
    """

    def __init__(self, start: EditState | None = None, limit: int = UNDO_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"the history limit must be at least 1, got {limit}")
        self.limit = limit
        self._start = start if start is not None else EditState()
        self._steps: list[Step] = []
        self._index = 0
        self._clean = 0  # entry matching the saved file; -1 once that entry is gone
        # Told about each proposal, so a mirror (the GUI's undo stack) adds or merges its command.
        self.on_step: StepListener | None = None

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of steps (entries minus the start)."""
        return len(self._steps)

    @property
    def index(self) -> int:
        """The current entry (0 = the start)."""
        return self._index

    @property
    def current(self) -> EditState:
        """The state of the current entry."""
        return self.entry_state(self._index)

    def entry_state(self, index: int) -> EditState:
        """The state of entry ``index`` (0 = the start state)."""
        if not 0 <= index <= len(self._steps):
            raise IndexError(f"history entry {index} of {len(self._steps) + 1}")
        return self._start if index == 0 else self._steps[index - 1].state

    def text(self, index: int) -> str:
        """The label of entry ``index``."""
        if index == 0:
            return START_TEXT
        self.entry_state(index)  # range check
        return self._steps[index - 1].text

    def entries(self) -> list[tuple[str, EditState]]:
        """Every entry as (text, state), entry 0 being the start state."""
        return [(START_TEXT, self._start)] + [(step.text, step.state) for step in self._steps]

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._steps)

    def is_clean(self) -> bool:
        """True while the current entry is the one marked clean (saved or opened)."""
        return self._index == self._clean

    def has_unsaved_edits(self) -> bool:
        """True when the current state holds edits worth keeping (sliders, mixing, a projected
        photo) and was reached by steps since the last save or open."""
        state = self.current
        worth_keeping = state.has_edits or state.base_ws is not None
        return worth_keeping and bool(self._steps) and not self.is_clean()

    # -- changes ------------------------------------------------------------------------------
    def propose(self, state: EditState, text: str, merge_key: str | None = None) -> bool:
        """Make ``state`` current as a step; True when it merged into the last step."""
        del self._steps[self._index :]  # the undone steps cannot be redone any more
        if self._clean > self._index:
            self._clean = -1
        last = self._steps[-1] if self._steps else None
        merged = last is not None and self._index != self._clean and last.absorbs(merge_key)
        if merged:
            last.state, last.text = state, text
        else:
            self._steps.append(Step(text, state, merge_key))
            self._drop_oldest()
            self._index = len(self._steps)
        if self.on_step is not None:
            self.on_step(merged, merge_key is not None)
        return merged

    def seal(self) -> None:
        """End the current gesture: the next proposal starts a new step."""
        if self._index > 0:
            self._steps[self._index - 1].sealed = True

    def commit(self, state: EditState, text: str) -> None:
        """Make ``state`` current as one step of its own."""
        self.propose(state, text)
        self.seal()

    def set_starting_state(self, state: EditState) -> bool:
        """Make ``state`` current without a step (done for the user, e.g. on model load) while
        there are no steps: it becomes the start. Otherwise it is an "Update" step.

        Returns True when it became the start (the caller shows it; no step to announce).
        """
        if self._steps:
            self.commit(state, "Update")
            return False
        self._start = state
        return True

    def reset_edits(self) -> bool:
        """Put every slider, mix and noise setting back as one step; False when there was
        nothing to reset."""
        if not self.current.has_edits:
            return False
        self.commit(reset_edits(self.current), "Reset edits")
        return True

    def undo(self) -> EditState | None:
        """Go one entry back; the state to show, or None at the start."""
        if not self.can_undo():
            return None
        self._index -= 1
        return self.current

    def redo(self) -> EditState | None:
        """Go one entry forward; the state to show, or None at the newest entry."""
        if not self.can_redo():
            return None
        self._index += 1
        return self.current

    def go_to(self, index: int) -> EditState:
        """Jump to entry ``index`` (clamped to the entries); the state to show."""
        self._index = min(max(index, 0), len(self._steps))
        return self.current

    def set_clean(self) -> None:
        """Mark the current entry as matching the saved file."""
        self._clean = self._index

    def clear(self, start: EditState) -> None:
        """Forget every step; ``start`` is the new (clean) start state."""
        self._start = start
        self._steps.clear()
        self._index = self._clean = 0

    def _drop_oldest(self) -> None:
        excess = len(self._steps) - self.limit
        if excess <= 0:
            return
        self._start = self._steps[excess - 1].state
        del self._steps[:excess]
        self._clean = self._clean - excess if self._clean >= excess else -1


def replay(
    actions: Iterable[Action], start: EditState | None = None, limit: int = UNDO_LIMIT
) -> EditHistory:
    """A history built by running recorded ``actions`` headless: ``Proposal`` s, and "seal",
    "undo", "redo" or "clean" (mark saved), in order."""
    history = EditHistory(start, limit)
    for action in actions:
        if isinstance(action, Proposal):
            history.propose(action.state, action.text, action.merge_key)
        elif action == "seal":
            history.seal()
        elif action == "undo":
            history.undo()
        elif action == "redo":
            history.redo()
        elif action == "clean":
            history.set_clean()
        else:
            raise ValueError(f"unknown history action {action!r}")
    return history
