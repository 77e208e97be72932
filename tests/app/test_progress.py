"""app.progress.show_progress: the one way a job's Progress reaches a bar."""

from __future__ import annotations

from PySide6.QtWidgets import QProgressBar

from app.progress import PERMILLE, show_progress
from models.jobs import Progress


def test_bar_shows_the_share_done_and_keeps_its_state_for_unknown_lengths(qtbot) -> None:
    bar = QProgressBar()
    qtbot.addWidget(bar)
    show_progress(bar, Progress(1, 4, "aligning"), with_message=True)
    assert (bar.minimum(), bar.maximum(), bar.value()) == (0, PERMILLE, 250)
    assert bar.text() == "25%  aligning"
    show_progress(bar, Progress(5, None, "waiting"))
    assert bar.value() == 250  # unknown length: the last known share stays
    show_progress(bar, Progress(12, 8))  # over-reporting jobs stop at full
    assert bar.value() == bar.maximum()
