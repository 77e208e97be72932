"""Error reporting in the GUI: a message box naming the problem, the traceback under Details."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """A failure to show to the user: what was being done, what went wrong, and the details."""

    title: str  # what was being attempted, e.g. "Could not open model"
    message: str  # one line for the user, naming the file and the problem
    details: str = ""  # traceback or extra facts for the Details section

    @classmethod
    def from_exception(cls, title: str, exc: BaseException) -> ErrorReport:
        """Build a report from an exception, keeping its traceback as details."""
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = str(exc) or type(exc).__name__
        return cls(title, message, details)


def show_error(parent: QWidget | None, report: ErrorReport) -> QMessageBox:
    """Show ``report`` in a window-modal message box that does not block the caller."""
    log.warning("%s: %s", report.title, report.message)
    box = QMessageBox(parent)
    box.setObjectName("errorBox")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(report.title)
    box.setText(report.title)
    box.setInformativeText(report.message)
    if report.details:
        box.setDetailedText(report.details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box
