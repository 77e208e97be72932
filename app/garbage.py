"""Python's cyclic garbage collection on the GUI thread only.

The collector runs in whichever thread happens to allocate past a threshold. A closed dialog or
panel caught in a reference cycle (a lambda slot holding ``self``) is then freed there, and a Qt
object freed off the GUI thread can crash the process (seen as a segfault in a model-loading
job). So automatic collection is switched off and a GUI-thread timer collects each generation
whose count has passed its threshold, as the automatic collector would have.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


def collect_due_generation() -> int | None:
    """Collect the oldest generation whose count exceeds its threshold; return it (None: none)."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if counts[generation] > thresholds[generation]:
            gc.collect(generation)
            return generation
    return None


def collect_on_gui_thread(parent: QObject) -> QTimer:
    """Disable automatic collection; collect from a timer owned by ``parent`` (the application)."""
    gc.disable()
    timer = QTimer(parent)
    timer.setObjectName("guiThreadGarbageCollector")
    timer.setInterval(INTERVAL_MS)
    timer.timeout.connect(collect_due_generation)
    timer.start()
    return timer
