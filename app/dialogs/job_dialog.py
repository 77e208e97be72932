"""Base of the dialogs that run one ``Job`` at a time, with progress, a status line and Cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QLabel, QProgressBar, QPushButton, QWidget

from app.errors import ErrorReport, show_error

if TYPE_CHECKING:
    from app.workers import Job, JobRegistry
    from models.jobs import Progress


class JobDialog(QDialog):
    """Runs one ``Job`` at a time behind a start button and a "Cancel"/"Close" button.

    Subclasses build ``progress``, ``status``, their start button and ``cancel_button``
    (clicked -> ``_on_cancel_clicked``), start work with ``_submit`` and implement
    ``_on_job_progressed``, ``_on_job_succeeded`` and ``_on_job_done``; each handler ignores
    signals from jobs other than the current one (``self.sender() is self.job``).
    """

    progress: QProgressBar
    status: QLabel
    cancel_button: QPushButton

    def __init__(self, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.job: Job | None = None
        self._delivered: Job | None = None  # the last job whose outcome has arrived

    def _submit(self, job: Job, start_button: QPushButton, status: str) -> Job:
        """Start ``job`` as the current one: busy bar, ``status`` text, Cancel instead of Close."""
        for outcome in (job.succeeded, job.failed, job.cancelled):  # first, before the handlers
            outcome.connect(self._on_job_outcome)
        job.progressed.connect(self._on_job_progressed)
        job.succeeded.connect(self._on_job_succeeded)
        job.failed.connect(self._on_job_failed)
        job.cancelled.connect(self._on_job_cancelled)
        job.done.connect(self._on_job_done)
        self.job = job
        self.progress.setRange(0, 0)
        self.status.setText(status)
        start_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        return self.jobs.submit(job)

    def job_busy(self) -> bool:
        """True until the current job's result, error or cancellation has arrived here.

        (``Job.is_running`` stays True a moment longer, in the worker thread.)
        """
        return self.job is not None and self.job is not self._delivered and self.job.is_running

    def _on_job_outcome(self, *_args: object) -> None:
        if self.sender() is self.job:
            self._delivered = self.job

    def _on_job_progressed(self, progress: Progress) -> None:
        raise NotImplementedError

    def _on_job_succeeded(self, result: object) -> None:
        raise NotImplementedError

    def _on_job_done(self) -> None:
        raise NotImplementedError

    def _on_job_failed(self, report: ErrorReport) -> None:
        if self.sender() is self.job:
            self.status.setText(report.message)
            show_error(self, report)

    def _on_job_cancelled(self, _partial: object) -> None:
        if self.sender() is self.job:
            self.status.setText("cancelled")

    def _on_cancel_clicked(self) -> None:
        if self.job is not None and self.job.is_running:
            self.job.request_stop()
        else:
            self.close()
