"""File > Get models…: the catalog of public checkpoints, with a download, cancel and open per row.

Each download is a ``Job`` running ``models.downloads.download_entry`` in the pool; its progress
drives the row's bar. Downloads keep running when the dialog is hidden (the window keeps one
dialog); a cancelled download keeps its partial file and resumes next time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import ErrorReport, show_error
from app.progress import PERMILLE, show_progress
from app.workers import Job
from models.catalog import CatalogEntry, load_catalog
from models.downloads import download_entry

if TYPE_CHECKING:
    from app.workers import JobRegistry
    from models.jobs import Progress

COLUMNS = ("Model", "Kind", "Resolution", "Size", "Licence", "Progress", "")
_PROGRESS_COLUMN = 5
_ACTION_COLUMN = 6


class _Row:
    """The widgets and the running job of one catalog entry."""

    def __init__(self, entry: CatalogEntry) -> None:
        self.entry = entry
        self.job: Job | None = None
        self.final_text: str | None = None  # what the bar says after the job ends
        self.progress = QProgressBar()
        self.progress.setObjectName(f"progress:{entry.name}")
        self.progress.setRange(0, PERMILLE)
        self.progress.setTextVisible(True)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName(f"download:{entry.name}")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName(f"cancel:{entry.name}")
        self.open_button = QPushButton("Open")
        self.open_button.setObjectName(f"open:{entry.name}")
        self.open_button.setToolTip("Open this model in the window")
        self.actions = QWidget()
        layout = QHBoxLayout(self.actions)
        layout.setContentsMargins(2, 0, 2, 0)
        for button in (self.download_button, self.cancel_button, self.open_button):
            layout.addWidget(button)


class ModelManagerDialog(QDialog):
    """Lists ``resources/catalog.json`` and downloads entries into the models cache."""

    open_requested = Signal(object)  # Path of a downloaded generator checkpoint
    download_finished = Signal(object)  # CatalogEntry whose file is now in the cache

    def __init__(
        self,
        jobs: JobRegistry,
        entries: list[CatalogEntry] | None = None,
        cache: str | Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("modelManagerDialog")
        self.setWindowTitle("Get models")
        self.jobs = jobs
        self.cache = cache
        self.entries = load_catalog() if entries is None else list(entries)
        self.rows: dict[str, _Row] = {}
        self._row_by_job: dict[Job, _Row] = {}

        intro = QLabel(
            "Public checkpoints you can download. Each keeps its own licence (most are for "
            "non-commercial use only). Sizes and checksums are shown where their publishers "
            "give them."
        )
        intro.setWordWrap(True)
        self.table = QTableWidget(len(self.entries), len(COLUMNS))
        self.table.setObjectName("catalogTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(4, 220)
        for index, entry in enumerate(self.entries):
            self._add_row(index, entry)
        self.table.resizeColumnsToContents()
        header.resizeSection(4, min(header.sectionSize(4), 260))
        header.resizeSection(_PROGRESS_COLUMN, 240)  # room for "42%  120.5 MB of 381.5 MB"
        self.status = QLabel("")
        self.status.setObjectName("modelManagerStatus")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.hide)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(1100, 520)

    # -- rows ---------------------------------------------------------------------------------
    def _add_row(self, index: int, entry: CatalogEntry) -> None:
        row = _Row(entry)
        self.rows[entry.name] = row
        title = QTableWidgetItem(entry.title)
        title.setToolTip(
            f"{entry.name}\n{entry.url}\nsource: {entry.source_page}\nformat: {entry.format}\n"
            f"checksum: {entry.checksum_text()}" + (f"\n{entry.notes}" if entry.notes else "")
        )
        cells = [
            title,
            QTableWidgetItem(entry.kind),
            QTableWidgetItem(f"{entry.resolution}×{entry.resolution}" if entry.resolution else "—"),
            QTableWidgetItem(entry.size_text()),
            QTableWidgetItem(entry.licence),
        ]
        cells[4].setToolTip(entry.licence)
        for column, item in enumerate(cells):
            self.table.setItem(index, column, item)
        self.table.setCellWidget(index, _PROGRESS_COLUMN, row.progress)
        self.table.setCellWidget(index, _ACTION_COLUMN, row.actions)
        row.download_button.clicked.connect(
            lambda checked=False, name=entry.name: self.start_download(name)
        )
        row.cancel_button.clicked.connect(
            lambda checked=False, name=entry.name: self.cancel_download(name)
        )
        row.open_button.clicked.connect(
            lambda checked=False, name=entry.name: self.open_entry(name)
        )
        self._show_state(row)

    def _show_state(self, row: _Row, text: str | None = None) -> None:
        running = row.job is not None and row.job.is_running
        present = row.entry.is_downloaded(self.cache)
        row.download_button.setVisible(not running and not present)
        row.cancel_button.setVisible(running)
        row.open_button.setVisible(present and row.entry.is_generator)
        if present and not running:
            row.progress.setRange(0, PERMILLE)
            row.progress.setValue(PERMILLE)
            row.progress.setFormat(
                text or ("Downloaded" if row.entry.is_generator else "Installed")
            )
        elif not running:
            row.progress.setRange(0, PERMILLE)  # ends the busy animation of "Connecting…"
            row.progress.setValue(0)
            row.progress.setFormat(text or "")

    # -- actions ------------------------------------------------------------------------------
    def start_download(self, name: str) -> Job:
        """Download entry ``name`` in the background (resuming a partial file)."""
        row = self.rows[name]
        if row.job is not None and row.job.is_running:
            return row.job
        job = Job(f"Could not download {row.entry.title}", download_entry, row.entry, self.cache)
        # Bound methods of this QObject: Qt delivers the worker's signals in the GUI thread.
        job.progressed.connect(self._on_job_progressed)
        job.succeeded.connect(self._on_job_succeeded)
        job.cancelled.connect(self._on_job_cancelled)
        job.failed.connect(self._on_job_failed)
        job.done.connect(self._on_job_done)
        row.job, row.final_text = job, None
        self._row_by_job[job] = row
        row.progress.setRange(0, 0)  # busy until the server says how big the file is
        row.progress.setFormat("Connecting…")
        self.jobs.submit(job)
        self._show_state(row)
        return job

    def cancel_download(self, name: str) -> None:
        """Stop entry ``name``'s download at its next chunk (the partial file is kept)."""
        row = self.rows[name]
        if row.job is not None:
            row.job.request_stop()

    def open_entry(self, name: str) -> None:
        """Ask the window to open the downloaded checkpoint, and close the dialog."""
        row = self.rows[name]
        if row.entry.is_generator and row.entry.is_downloaded(self.cache):
            self.open_requested.emit(row.entry.destination(self.cache))
            self.hide()

    # -- job signals (slots run in the GUI thread; the row is found from the sending job) ------
    def _sender_row(self) -> _Row | None:
        return self._row_by_job.get(self.sender())  # type: ignore[arg-type]

    def _on_job_progressed(self, progress: Progress) -> None:
        row = self._sender_row()
        if row is None:
            return
        show_progress(row.progress, progress, with_message=True)

    def _on_job_succeeded(self, path: Path) -> None:
        row = self._sender_row()
        if row is not None:
            self.status.setText(f"Downloaded {row.entry.title} to {path}")
            self.download_finished.emit(row.entry)

    def _on_job_cancelled(self, _partial: object) -> None:
        row = self._sender_row()
        if row is not None:
            row.final_text = "Cancelled"
            self.status.setText(
                f"Cancelled {row.entry.title}; the part already downloaded is kept for next time."
            )

    def _on_job_failed(self, report: ErrorReport) -> None:
        row = self._sender_row()
        if row is not None:
            row.final_text = "Failed"
            self.status.setText(report.message)
            show_error(self, report)

    def _on_job_done(self) -> None:
        row = self._row_by_job.pop(self.sender(), None)  # type: ignore[arg-type]
        if row is not None:
            self._show_state(row, row.final_text)

    def running_downloads(self) -> list[str]:
        """Names of the entries being downloaded now."""
        return [
            name for name, row in self.rows.items() if row.job is not None and row.job.is_running
        ]


def open_model_manager(
    window: QWidget, jobs: JobRegistry, existing: ModelManagerDialog | None
) -> ModelManagerDialog:
    """Show the window's model manager, creating it on first use (downloads survive hiding it)."""
    dialog = existing or ModelManagerDialog(jobs, parent=window)
    dialog.setWindowModality(Qt.WindowModality.NonModal)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
