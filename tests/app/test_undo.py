"""The GUI's undo stack mirrors the edit history and behaves as the plain QUndoStack did."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.session import Session
from app.undo import UndoStack
from editors.history import EditHistory
from editors.state import EditState


class ReferenceCommand(QUndoCommand):
    """The undo command the studio used before the history left Qt: merging by id, sealed on
    release (the oracle for the rules the history now implements)."""

    def __init__(self, shown: list, before, after, text: str, key: str | None) -> None:
        super().__init__(text)
        self.shown, self.before, self.after = shown, before, after
        self._id = {None: -1, "attr:smile": 1, "attr:age": 2}[key]
        self.sealed = False

    def redo(self) -> None:
        self.shown[0] = self.after

    def undo(self) -> None:
        self.shown[0] = self.before

    def id(self) -> int:
        return self._id

    def mergeWith(self, other: QUndoCommand) -> bool:
        if self.sealed or other.id() != self.id():
            return False
        self.after = other.after
        self.setText(other.text())
        return True


def reference_entries(stack: QUndoStack, current) -> list:
    if stack.count() == 0:
        return [current]
    return [stack.command(0).before] + [stack.command(i).after for i in range(stack.count())]


def test_random_edits_match_the_plain_qt_stack(qapp) -> None:
    rng = random.Random(4)
    start = EditState(seed=0)
    shown = [start]
    reference = QUndoStack()
    reference.setUndoLimit(6)
    history = EditHistory(start, limit=6)
    mirror = UndoStack(history, lambda state: shown.__setitem__(1, state))
    shown.append(start)  # shown[0]: the reference's state, shown[1]: the mirror's
    for step in range(600):
        op = rng.choice(["propose"] * 5 + ["seal", "undo", "redo", "jump", "clean"])
        if op == "propose":
            key = rng.choice([None, "attr:smile", "attr:age"])
            state = EditState(seed=step)
            reference.push(ReferenceCommand(shown, shown[0], state, f"{op} {step}", key))
            history.propose(state, f"{op} {step}", key)
        elif op == "seal":
            if reference.index() > 0:
                reference.command(reference.index() - 1).sealed = True
            history.seal()
        elif op == "undo":
            reference.undo()
            mirror.undo()
        elif op == "redo":
            reference.redo()
            mirror.redo()
        elif op == "jump":
            row = rng.randrange(reference.count() + 1)
            reference.setIndex(row)
            mirror.setIndex(row)
        else:
            reference.setClean()
            mirror.mark_clean()
        assert shown[1] is shown[0] is history.current, (step, op)
        expected = [reference.text(i) for i in range(reference.count())]
        assert [text for text, _ in history.entries()[1:]] == expected, (step, op)
        assert [state for _, state in history.entries()] == reference_entries(reference, shown[0])
        for stack in (mirror, reference):
            assert stack.count() == len(history) and stack.index() == history.index
            assert stack.isClean() == history.is_clean(), (step, op)
        assert [mirror.text(i) for i in range(mirror.count())] == expected


def test_restart_forgets_the_steps_and_sets_the_start(qapp) -> None:
    shown = []
    history = EditHistory(EditState(seed=0))
    stack = UndoStack(history, shown.append)
    history.propose(EditState(seed=1), "seed 1")
    assert stack.count() == 1 and shown == [history.current]  # pushing shows the new state
    stack.restart(EditState(seed=9))
    assert stack.count() == 0 and stack.isClean() and history.entries()[0][1].seed == 9
    assert not stack.canUndo() and stack.undoText() == ""


class RecordingRenderService(QObject):
    """Stands in for the render thread: records what the session asks for."""

    rendered = Signal(object)
    generator_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.requests = []

    def submit(self, args) -> int:
        self.requests.append(args)
        return len(self.requests)


@pytest.mark.parametrize(
    ("device", "resolution", "drafts"), [("cpu", 256, True), ("cpu", 128, False)]
)
def test_a_slider_drag_is_one_step_and_drafts_on_large_cpu_models(
    qapp, device, resolution, drafts
) -> None:
    service = RecordingRenderService()
    session = Session(service)
    model = SimpleNamespace(device=torch.device(device), resolution=resolution)
    service.generator_changed.emit(model)
    start = session.state
    session.begin_drag()
    for amount in (0.5, 1.0, 1.5):
        session.propose(start.replace(attribute_amounts={"smile": amount}), "Smile", "attr:smile")
    assert [args.draft for args in service.requests[-3:]] == [drafts] * 3
    session.end_drag()
    assert service.requests[-1].draft is False  # the released slider gets a full frame
    assert session.undo_stack.count() == len(session.history) == 1
    session.undo_stack.undo()
    assert session.state is start and session.history.current is start
