"""Cyclic garbage is collected by a GUI-thread timer, not wherever a threshold happens to pass."""

from __future__ import annotations

import gc

from app.garbage import collect_due_generation, collect_on_gui_thread


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_timer_collects_cycles_that_automatic_collection_no_longer_frees(qapp, qtbot) -> None:
    was_enabled = gc.isenabled()
    timer = collect_on_gui_thread(qapp)
    record = None
    try:
        assert not gc.isenabled() and timer.isActive()
        gc.collect()
        assert collect_due_generation() is None  # nothing due right after a full collection
        freed = []

        def record(phase, info):
            if phase == "stop":
                freed.append(info)

        gc.callbacks.append(record)
        threshold = gc.get_threshold()[0]
        garbage = [_Cycle() for _ in range(5 * threshold)]  # well past it (frees count down)
        del garbage
        qtbot.waitUntil(lambda: any(info["collected"] > 0 for info in freed), timeout=5000)
    finally:
        if record in gc.callbacks:
            gc.callbacks.remove(record)
        timer.stop()
        timer.deleteLater()
        if was_enabled:
            gc.enable()
