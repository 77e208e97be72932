"""The Qt-free edit history: merging, sealing, undo/redo, the clean mark, the limit, replay."""

from __future__ import annotations

import numpy as np
import pytest

from editors.history import START_TEXT, EditHistory, Proposal, replay
from editors.state import EditState


def seed(n: int) -> EditState:
    return EditState(seed=n)


def smile(amount: float, base: EditState | None = None) -> EditState:
    return (base or EditState()).replace(attribute_amounts={"smile": amount})


def seeds(history: EditHistory) -> list[int | None]:
    return [state.seed for _, state in history.entries()]


def test_a_drag_is_one_step_until_sealed() -> None:
    start = seed(0)
    history = EditHistory(start)
    drag = [smile(a / 10) for a in range(1, 6)]
    for state in drag:
        history.propose(state, f"Smile {state.attribute_amounts['smile']:.1f}", "attr:smile")
    assert len(history) == 1 and history.index == 1
    assert history.current is drag[-1] and history.text(1) == "Smile 0.5"
    history.seal()
    history.propose(smile(0.9), "Smile 0.9", "attr:smile")
    assert len(history) == 2
    assert [text for text, _ in history.entries()] == [START_TEXT, "Smile 0.5", "Smile 0.9"]
    assert history.undo() is drag[-1] and history.undo() is start and history.undo() is None
    assert history.redo() is drag[-1]


def test_other_keys_and_keyless_steps_never_merge() -> None:
    history = EditHistory()
    assert not history.propose(smile(1.0), "smile", "attr:smile")
    assert not history.propose(smile(2.0), "age", "attr:age")
    assert not history.propose(seed(3), "seed")
    assert not history.propose(seed(4), "seed")
    assert history.propose(seed(5), "seed") is False
    assert len(history) == 5


def test_proposing_after_undo_drops_the_undone_steps_and_does_not_merge_into_them() -> None:
    history = EditHistory(seed(0))
    for n in (1, 2, 3):
        history.propose(seed(n), f"seed {n}", "seed")
        history.seal()
    history.undo()
    history.undo()
    assert history.can_redo()
    history.propose(seed(9), "seed 9", "seed")
    assert seeds(history) == [0, 1, 9] and not history.can_redo()


def test_the_clean_entry_is_never_merged_into() -> None:
    history = EditHistory()
    history.propose(smile(1.0), "smile", "attr:smile")
    history.set_clean()
    assert history.is_clean() and not history.has_unsaved_edits()
    merged = history.propose(smile(2.0), "smile", "attr:smile")
    assert not merged and len(history) == 2  # the saved state stays one undo away
    assert history.has_unsaved_edits()
    assert history.undo().attribute_amounts == {"smile": 1.0} and history.is_clean()


def test_the_clean_mark_is_lost_with_its_entry() -> None:
    history = EditHistory(seed(0))
    history.propose(seed(1), "a")
    history.propose(seed(2), "b")
    history.set_clean()
    history.undo()
    history.propose(seed(3), "c")  # drops the saved entry
    assert not history.is_clean()
    history.undo()
    history.undo()
    assert not history.is_clean()  # no entry is the saved one any more


def test_unsaved_edits_need_edits_worth_keeping() -> None:
    history = EditHistory(seed(0))
    history.propose(seed(1), "seed")
    assert not history.has_unsaved_edits()  # another seed alone is not worth a question
    history.propose(seed(1).replace(base_ws=np.zeros((4, 8), np.float32)), "Projected")
    assert history.has_unsaved_edits()
    history.clear(smile(1.0))
    assert not history.has_unsaved_edits()  # no steps: nothing done since the start


def test_the_limit_drops_the_oldest_steps_and_moves_the_start() -> None:
    history = EditHistory(seed(0), limit=3)
    history.propose(seed(1), "1")
    history.propose(seed(2), "2")
    history.set_clean()
    for n in (3, 4):
        history.propose(seed(n), str(n))
    assert seeds(history) == [1, 2, 3, 4] and history.index == 3
    assert history.go_to(1).seed == 2 and history.is_clean()  # the clean entry moved down too
    history.go_to(3)
    history.propose(seed(5), "5")
    assert seeds(history) == [2, 3, 4, 5]
    assert history.go_to(0).seed == 2 and history.is_clean()
    history.go_to(3)
    history.propose(seed(6), "6")  # drops the saved entry
    assert [history.go_to(i) and history.is_clean() for i in range(4)] == [False] * 4
    with pytest.raises(ValueError, match="at least 1"):
        EditHistory(limit=0)


def test_starting_state_replaces_the_start_only_while_there_are_no_steps() -> None:
    history = EditHistory(seed(0))
    assert history.set_starting_state(seed(1))
    assert seeds(history) == [1] and history.current.seed == 1
    history.propose(seed(2), "seed 2", "seed")
    assert not history.set_starting_state(seed(3))
    assert [text for text, _ in history.entries()] == [START_TEXT, "seed 2", "Update"]
    history.propose(seed(4), "seed 4", "seed")  # "Update" is sealed: a step of its own
    assert seeds(history) == [1, 2, 3, 4]


def test_reset_edits_is_one_step_when_there_is_something_to_reset() -> None:
    history = EditHistory(smile(2.0, seed(5)))
    assert history.reset_edits()
    assert history.current.attribute_amounts == {} and history.current.seed == 5
    assert not history.reset_edits() and len(history) == 1
    assert history.undo().attribute_amounts == {"smile": 2.0}


def test_entries_and_jumps() -> None:
    history = EditHistory(seed(0))
    for n in (1, 2, 3):
        history.propose(seed(n), f"seed {n}")
    assert history.go_to(1).seed == 1 and history.can_undo() and history.can_redo()
    assert history.go_to(99).seed == 3 and history.go_to(-5).seed == 0
    assert history.entry_state(2) is history.entries()[2][1]
    with pytest.raises(IndexError):
        history.entry_state(4)


def test_listener_hears_each_proposal_with_its_outcome() -> None:
    heard: list[tuple[bool, bool]] = []
    history = EditHistory()
    history.on_step = lambda merged, mergeable: heard.append((merged, mergeable))
    history.propose(smile(1.0), "s", "attr:smile")
    history.propose(smile(2.0), "s", "attr:smile")
    history.commit(seed(4), "seed")
    assert heard == [(False, True), (True, True), (False, False)]


def test_replay_rebuilds_a_recorded_session() -> None:
    start = seed(0)
    steps = [
        Proposal(smile(0.5, start), "Smile 0.5", "attr:smile"),
        Proposal(smile(1.0, start), "Smile 1.0", "attr:smile"),
        "seal",
        Proposal(seed(7), "Seed 7", "seed"),
        "clean",
        "undo",
        Proposal(smile(3.0, start), "Smile 3.0", "attr:smile"),
        "undo",
        "redo",
    ]
    history = replay(steps, start)
    assert [text for text, _ in history.entries()] == [START_TEXT, "Smile 1.0", "Smile 3.0"]
    assert history.current.attribute_amounts == {"smile": 3.0} and not history.is_clean()
    with pytest.raises(ValueError, match="unknown history action 'jump'"):
        replay(["jump"])
