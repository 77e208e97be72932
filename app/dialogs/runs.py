"""Train > Runs: running and past training runs, and ``RunView``, the live view of one run.

``RunView`` (also the wizard's last page) shows a run's progress, ETA, images/s, loss curves
(pyqtgraph), the newest sample grid and Pause / Resume / Stop; Kill is a second, confirmed action.
Everything it shows comes from the run folder through ``TrainingRun``.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import ErrorReport, show_error
from app.training_runs import RunInfo, TrainingRun, format_duration, list_runs
from app.widgets.image_view import ImageView, qimage_to_rgb
from app.workers import Job, JobRegistry

CURVE_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
STATE_TEXT = {
    "preparing": "Preparing data…",
    "running": "Training",
    "paused": "Paused",
    "finished": "Finished",
    "stopped": "Stopped",
    "failed": "Failed",
    "interrupted": "Interrupted (can be resumed)",
}


def _curve_keys(record: dict[str, Any]) -> list[str]:
    return [
        key for key in record if key.startswith("loss") and isinstance(record[key], int | float)
    ]


class RunView(QWidget):
    """Live view of one ``TrainingRun``."""

    open_requested = Signal(object)  # dict: the run's final status plus "task" and "config"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.training: TrainingRun | None = None
        self.task = ""
        self.config: dict[str, Any] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._final: dict[str, Any] | None = None

        self.title = QLabel("No run")
        self.title.setObjectName("runTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_label = QLabel("")
        self.state_label.setObjectName("runState")
        self.state_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setObjectName("runProgress")
        self.rate_label = QLabel("– images/s")
        self.rate_label.setObjectName("runRate")
        self.eta_label = QLabel("time left: –")
        self.eta_label.setObjectName("runEta")

        self.plot = pg.PlotWidget(background="w")
        self.plot.setObjectName("lossPlot")
        self.plot.setLabel("bottom", "thousands of images")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setMinimumSize(320, 220)
        self.sample = ImageView()
        self.sample.setObjectName("sampleView")
        self.sample.set_placeholder("samples appear here")
        self.sample.setMinimumSize(260, 260)

        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pauseButton")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("resumeButton")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop after this step, save a checkpoint and the model so far")
        self.kill_button = QPushButton("Kill…")
        self.kill_button.setObjectName("killButton")
        self.kill_button.setToolTip(
            "End the process at once (it can resume from its last checkpoint)"
        )
        self.open_button = QPushButton("Open in editor")
        self.open_button.setObjectName("openInEditorButton")
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.stop_button.clicked.connect(self._on_stop_button_clicked)
        self.kill_button.clicked.connect(self._on_kill_button_clicked)
        self.open_button.clicked.connect(self._on_open_button_clicked)

        numbers = QHBoxLayout()
        numbers.addWidget(self.rate_label)
        numbers.addStretch(1)
        numbers.addWidget(self.eta_label)
        buttons = QHBoxLayout()
        for button in (self.pause_button, self.resume_button, self.stop_button, self.kill_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        views = QGridLayout()
        views.addWidget(self.plot, 0, 0)
        views.addWidget(self.sample, 0, 1)
        views.setColumnStretch(0, 3)
        views.setColumnStretch(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.state_label)
        layout.addWidget(self.progress)
        layout.addLayout(numbers)
        layout.addLayout(views, 1)
        layout.addLayout(buttons)
        self._update_buttons("")

    # -- binding ----------------------------------------------------------------------------
    def set_run(
        self, training: TrainingRun | None, task: str = "", config: dict[str, Any] | None = None
    ) -> None:
        """Show ``training`` (its signals drive the view); None clears it."""
        if self.training is not None:
            for signal, slot in self._connections():
                signal.disconnect(slot)
        self.training = training
        self.task = task
        self.config = dict(config or {})
        self._final = None
        self.plot.clear()
        self._curves.clear()
        self.sample.set_rgb(None)
        self.sample.set_placeholder("samples appear here")
        if training is None:
            self.title.setText("No run")
            self._update_buttons("")
            return
        self.title.setText(f"<b>{task}</b> — {training.path}")
        for signal, slot in self._connections():
            signal.connect(slot)
        if training.metrics:
            self._on_training_metrics_added(list(training.metrics))
        if training.status:
            self._on_training_status_changed(dict(training.status))
        training.watch()

    def _connections(self) -> list[tuple[Any, Any]]:
        assert self.training is not None
        t = self.training
        return [
            (t.metrics_added, self._on_training_metrics_added),
            (t.status_changed, self._on_training_status_changed),
            (t.sample_changed, self._on_training_sample_changed),
            (t.ended, self._on_training_ended),
        ]

    # -- updates ----------------------------------------------------------------------------
    def _on_training_metrics_added(self, records: list[dict[str, Any]]) -> None:
        assert self.training is not None
        history = self.training.metrics
        for key in _curve_keys(records[-1]):
            if key not in self._curves:
                color = CURVE_COLORS[len(self._curves) % len(CURVE_COLORS)]
                self._curves[key] = self.plot.plot([], [], pen=pg.mkPen(color, width=2), name=key)
        for key, curve in self._curves.items():
            points = [(r.get("kimg", r["step"]), r[key]) for r in history if key in r]
            if points:
                xs, ys = zip(*points, strict=True)
                curve.setData(list(xs), list(ys))
        last = records[-1]
        if "images_per_s" in last:
            self.rate_label.setText(f"{last['images_per_s']:.1f} images/s")
        self.eta_label.setText(f"time left: {format_duration(self.training.eta_seconds())}")

    def _on_training_status_changed(self, status: dict[str, Any]) -> None:
        state = str(status.get("state", ""))
        step, total = int(status.get("step") or 0), int(status.get("total_steps") or 0)
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.progress.setFormat(f"step {step} / {total}  (%p%)")
        else:
            self.progress.setRange(0, 0)
        text = STATE_TEXT.get(state, state)
        message = str(status.get("message") or "")
        self.state_label.setText(
            f"{text}: {message}" if message and state in ("failed", "preparing") else text
        )
        self._update_buttons(state)

    def _on_training_sample_changed(self, path: Path) -> None:
        image = QImage(str(path))
        if not image.isNull():
            self.sample.set_rgb(qimage_to_rgb(image))

    def _on_training_ended(self, status: dict[str, Any]) -> None:
        self._final = status
        self._on_training_status_changed(status)
        state = status.get("state")
        if state in ("failed", "interrupted"):
            message = str(status.get("message") or "")
            self.state_label.setText(f"{STATE_TEXT.get(str(state), state)}: {message}")
        elif state in ("finished", "stopped") and status.get("artifact"):
            self.state_label.setText(f"{STATE_TEXT[str(state)]} — wrote {status['artifact']}")
            self.progress.setFormat("done" if state == "finished" else self.progress.format())

    def _update_buttons(self, state: str) -> None:
        live = state in ("preparing", "running", "paused")
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused")
        self.stop_button.setEnabled(live)
        self.kill_button.setEnabled(live)
        final = self._final or {}
        self.open_button.setEnabled(
            bool(final.get("artifact")) and state in ("finished", "stopped")
        )

    # -- buttons ----------------------------------------------------------------------------
    def _on_pause_button_clicked(self) -> None:
        if self.training is not None:
            self.training.request("pause")
            self.state_label.setText("Pausing after this step…")

    def _on_resume_button_clicked(self) -> None:
        if self.training is not None:
            self.training.request("run")

    def _on_stop_button_clicked(self) -> None:
        if self.training is not None:
            self.training.request("stop")
            self.state_label.setText(
                "Stopping after this step (saving a checkpoint and the model)…"
            )

    def _on_kill_button_clicked(self) -> None:
        if self.training is None:
            return
        answer = QMessageBox.question(
            self,
            "Kill training",
            "End the training process now? Work since the last checkpoint is lost; the run can "
            "be resumed from that checkpoint in Train > Runs.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.training.kill()

    def _on_open_button_clicked(self) -> None:
        if self._final is not None:
            self.open_requested.emit({**self._final, "task": self.task, "config": self.config})


class RunsDialog(QDialog):
    """Lists the run folders under the runs root; shows and controls the selected one."""

    open_requested = Signal(object)  # dict, as RunView.open_requested

    COLUMNS = ("Started", "Task", "Run", "State", "Progress")

    def __init__(
        self, jobs: JobRegistry, root: Path | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("runsDialog")
        self.setWindowTitle("Training runs")
        self.jobs = jobs
        self.root = root
        self.runs: list[RunInfo] = []
        self._scan: Job | None = None
        self._trainings: dict[Path, TrainingRun] = {}

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.view = RunView()
        self.view.open_requested.connect(self.open_requested)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("refreshRunsButton")
        self.refresh_button.clicked.connect(self.refresh)
        self.resume_run_button = QPushButton("Resume run")
        self.resume_run_button.setObjectName("resumeRunButton")
        self.resume_run_button.setToolTip(
            "Continue a stopped or interrupted run from its last checkpoint"
        )
        self.resume_run_button.clicked.connect(self._on_resume_run_button_clicked)
        self.resume_run_button.setEnabled(False)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addWidget(self.resume_run_button)
        row.addStretch(1)
        left_layout.addLayout(row)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.view)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self.resize(1100, 620)
        self.refresh()

    def refresh(self) -> Job:
        """List the runs in the background (a runs root can hold many folders)."""
        job = Job("Could not list training runs", list_runs, self.root)
        job.succeeded.connect(self._on_scan_succeeded)
        job.failed.connect(self._on_scan_failed)
        self._scan = job
        return self.jobs.submit(job)

    def _on_scan_succeeded(self, runs: list[RunInfo]) -> None:
        if self.sender() is not self._scan:
            return
        selected = self.selected_run()
        self.runs = runs
        self.table.setRowCount(len(runs))
        for row, info in enumerate(runs):
            started = (
                _dt.datetime.fromtimestamp(info.created).strftime("%Y-%m-%d %H:%M")
                if info.created
                else ""
            )
            progress = f"{info.step}/{info.total_steps}" if info.total_steps else str(info.step)
            for column, text in enumerate(
                (started, info.task, info.name, STATE_TEXT.get(info.state, info.state), progress)
            ):
                item = QTableWidgetItem(text)
                item.setToolTip(str(info.path) if column == 2 else info.message)
                self.table.setItem(row, column, item)
        if selected is not None:
            for row, info in enumerate(runs):
                if info.path == selected.path:
                    self.table.selectRow(row)

    def _on_scan_failed(self, report: ErrorReport) -> None:
        show_error(self, report)

    def selected_run(self) -> RunInfo | None:
        """The run in the selected row."""
        rows = self.table.selectionModel().selectedRows()
        return self.runs[rows[0].row()] if rows and rows[0].row() < len(self.runs) else None

    def training_for(self, info: RunInfo) -> TrainingRun:
        """The (cached) follower of a run folder."""
        if info.path not in self._trainings:
            self._trainings[info.path] = TrainingRun(info.path, self)
        return self._trainings[info.path]

    def _on_table_selection_changed(self) -> None:
        info = self.selected_run()
        if self.view.training is not None:
            self.view.training.stop_watching()
        if info is None:
            self.view.set_run(None)
            self.resume_run_button.setEnabled(False)
            return
        self.view.set_run(self.training_for(info), info.task, info.config)
        self.resume_run_button.setEnabled(info.can_resume)

    def _on_resume_run_button_clicked(self) -> None:
        info = self.selected_run()
        if info is None or not info.can_resume:
            return
        training = self.training_for(info)
        try:
            training.resume(info.task)
        except OSError as exc:
            show_error(self, ErrorReport.from_exception("Could not resume the run", exc))
            return
        self.resume_run_button.setEnabled(False)
        self.view.set_run(training, info.task, info.config)

    def done(self, result: int) -> None:
        for training in self._trainings.values():
            training.stop_watching()
        super().done(result)
