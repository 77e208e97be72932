"""One way to show a job's ``Progress`` on a progress bar."""

from __future__ import annotations

from PySide6.QtWidgets import QProgressBar

from models.jobs import Progress

PERMILLE = 1000  # bars count thousandths (byte counts would overflow a Qt int)


def show_progress(bar: QProgressBar, progress: Progress, with_message: bool = False) -> None:
    """Set ``bar`` to the job's share done; a job of unknown length leaves the bar as it is.

    ``with_message`` also writes the job's message into the bar ("42%  aligning face").
    """
    fraction = progress.fraction
    if fraction is not None:
        bar.setRange(0, PERMILLE)
        bar.setValue(round(PERMILLE * fraction))
    if with_message:
        bar.setFormat(f"%p%  {progress.message}" if fraction is not None else progress.message)
