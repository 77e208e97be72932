"""Training runs seen from the GUI: start the CLI as a detached process, follow its run folder.

The training process is ``sys.executable main.py train TASK --config RUN_DIR/request.json
--out RUN_DIR`` started in its own session, so it keeps running when the wizard or the whole app
closes. Its output goes to ``RUN_DIR/console.log``; everything else (progress, losses, samples,
the result) is read from the run folder (see ``models/training/runs.py``). Pause and Stop are
requests written to ``control.json``; killing is a separate, confirmed action.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from editors.training_tasks import TRAINING_TASKS
from models.training.runs import FINAL_STATES, RunFolder, default_runs_root, process_alive

MAIN_SCRIPT = Path(__file__).resolve().parent.parent / "main.py"
POLL_MS = 500
CONSOLE_LOG = "console.log"
REQUEST_FILE = "request.json"


# Processes this app started; kept (and reaped once they exit) so a view closing never drops a
# live Popen, and a finished child never lingers as a zombie that looks alive.
_CHILDREN: list[subprocess.Popen] = []


def reap_children() -> None:
    """Forget started processes that have exited (collecting their exit status)."""
    _CHILDREN[:] = [child for child in _CHILDREN if child.poll() is None]


def train_command(task: str, run_dir: Path, *, resume: bool = False) -> list[str]:
    """The argv that trains ``task`` into ``run_dir`` (reading ``request.json`` unless resuming)."""
    base = [sys.executable, str(MAIN_SCRIPT), "train", task]
    if resume:
        return [*base, "--resume", str(run_dir)]
    return [*base, "--config", str(run_dir / REQUEST_FILE), "--out", str(run_dir)]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run folder as the Runs window lists it."""

    path: Path
    task: str
    state: str  # preparing, running, paused, finished, stopped, failed, interrupted
    step: int
    total_steps: int
    message: str
    artifact: str | None  # trained model / classifier / encoder / directions file
    created: float  # seconds since the epoch
    config: dict[str, Any]

    @property
    def name(self) -> str:
        """The folder name."""
        return self.path.name

    @property
    def can_resume(self) -> bool:
        """True for stopped or interrupted runs of resumable tasks."""
        task = TRAINING_TASKS.get(self.task)
        return (
            self.state in ("stopped", "interrupted", "failed") and task is not None and task.resumes
        )


def describe_run(path: Path) -> RunInfo | None:
    """Read a run folder (None when it is not one)."""
    run = RunFolder(path)
    try:
        task, config = run.read_config()
    except (OSError, ValueError):
        return None
    status = run.read_status()
    state = str(status.get("state", "preparing"))
    if state not in FINAL_STATES and not process_alive(int(status.get("pid", 0) or 0)):
        state = "interrupted"
    created = run.created()
    return RunInfo(
        path=path,
        task=task,
        state=state,
        step=int(status.get("step", 0) or 0),
        total_steps=int(status.get("total_steps", 0) or 0),
        message=str(status.get("message", "")),
        artifact=status.get("artifact"),
        created=float(created),
        config=config,
    )


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run under ``root`` (default: the runs root), newest first."""
    root = root or default_runs_root()
    if not root.is_dir():
        return []
    runs = [info for child in root.iterdir() if child.is_dir() and (info := describe_run(child))]
    return sorted(runs, key=lambda info: info.created, reverse=True)


class TrainingRun(QObject):
    """One run folder, followed by polling; optionally the process this app started for it."""

    metrics_added = Signal(object)  # list[dict]: new metrics.jsonl records
    status_changed = Signal(object)  # dict: the new status.json content
    sample_changed = Signal(object)  # Path: the newest sample grid
    ended = Signal(object)  # dict: the final status (finished, stopped, failed, or interrupted)

    def __init__(self, run_dir: str | Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run = RunFolder(run_dir)
        self.pid = 0
        self.metrics: list[dict[str, Any]] = []
        self.status: dict[str, Any] = {}
        self._offset = 0
        self._status_mtime = 0.0
        self._sample: Path | None = None
        self._ended = False
        self._started_at = 0.0
        self._process: subprocess.Popen | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.run.path

    # -- starting ---------------------------------------------------------------------------
    def start(self, task: str, config: Any) -> None:
        """Write ``config`` as the run's request and start the training process, detached.

        Raises:
            OSError: the folder cannot be written or the process cannot start.
        """
        self.run.path.mkdir(parents=True, exist_ok=True)
        (self.run.path / REQUEST_FILE).write_text(config.to_json(), encoding="utf-8")
        self._launch(train_command(task, self.run.path))

    def resume(self, task: str) -> None:
        """Start a process that continues this run from its newest checkpoint.

        Raises:
            OSError: the process cannot start.
        """
        self._launch(train_command(task, self.run.path, resume=True))

    def _launch(self, argv: list[str]) -> None:
        # A new session, so the run outlives this window and ignores the terminal's Ctrl-C;
        # the Popen is kept so the finished process is reaped (no zombie looks "alive").
        with open(self.run.path / CONSOLE_LOG, "ab") as log:
            self._process = subprocess.Popen(
                argv,
                cwd=MAIN_SCRIPT.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _CHILDREN.append(self._process)
        self.pid = self._process.pid
        self._ended = False
        self._started_at = time.monotonic()
        self.watch()

    def _process_alive(self) -> bool:
        if self._process is not None and self._process.pid == self.pid:
            return self._process.poll() is None
        return process_alive(self.pid)

    # -- following --------------------------------------------------------------------------
    def watch(self) -> None:
        """Start polling the run folder (reads what is there now first)."""
        self.poll()
        self._timer.start()

    def stop_watching(self) -> None:
        """Stop polling (the process, if any, keeps running)."""
        self._timer.stop()

    def poll(self) -> None:
        """Read new metrics, a changed status and a new sample; emit what changed."""
        reap_children()
        records, self._offset = self.run.read_metrics(self._offset)
        if records:
            self.metrics.extend(records)
            self.metrics_added.emit(records)
        try:
            mtime = self.run.status_path.stat().st_mtime
        except OSError:
            mtime = 0.0
        if mtime != self._status_mtime:
            self._status_mtime = mtime
            self.status = self.run.read_status()
            if self.status.get("pid"):
                self.pid = int(self.status["pid"])
            self.status_changed.emit(dict(self.status))
        sample = self.run.latest_sample()
        if sample is not None and sample != self._sample:
            self._sample = sample
            self.sample_changed.emit(sample)
        self._check_ended()

    def _check_ended(self) -> None:
        if self._ended:
            return
        state = self.status.get("state")
        if state in FINAL_STATES:
            self._finish(dict(self.status))
            return
        # A process that died without writing a final state (crash, kill, import error).
        grace = time.monotonic() - self._started_at > 5.0
        if self.pid and grace and not self._process_alive():
            status = {
                **self.status,
                "state": "interrupted",
                "message": self.status.get("message") or self.console_tail(),
            }
            self._finish(status)

    def _finish(self, status: dict[str, Any]) -> None:
        self._ended = True
        self._timer.stop()
        self.poll_metrics_once()
        self.ended.emit(status)

    def poll_metrics_once(self) -> None:
        """Pick up metric lines written just before the process ended."""
        records, self._offset = self.run.read_metrics(self._offset)
        if records:
            self.metrics.extend(records)
            self.metrics_added.emit(records)

    @property
    def is_active(self) -> bool:
        """True while the run has not reached a final state."""
        return not self._ended

    def console_tail(self, lines: int = 5) -> str:
        """The last lines the process printed (errors before the run folder was usable)."""
        try:
            text = (self.run.path / CONSOLE_LOG).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
        return "\n".join(kept[-lines:])

    # -- control ----------------------------------------------------------------------------
    def request(self, command: str) -> None:
        """Ask the process to "pause", "run" (resume) or "stop" at its next step."""
        self.run.request(command)  # type: ignore[arg-type]

    def kill(self) -> bool:
        """Kill the process outright (the run resumes from its last checkpoint); True if sent."""
        if not self.pid or not self._process_alive():
            return False
        os.kill(self.pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        return True

    # -- derived numbers --------------------------------------------------------------------
    def eta_seconds(self) -> float | None:
        """Seconds left at the recent speed, or None when unknown."""
        total = int(self.status.get("total_steps") or 0)
        step = int(self.status.get("step") or 0)
        timed = [r for r in self.metrics if "time_s" in r]
        if total <= 0 or len(timed) < 2:
            return None
        first, last = timed[max(0, len(timed) - 10)], timed[-1]
        steps = last["step"] - first["step"]
        seconds = last["time_s"] - first["time_s"]
        if steps <= 0 or seconds <= 0:
            return None
        return (total - step) * seconds / steps


def format_duration(seconds: float | None) -> str:
    """'3 h 20 min', '12 min', '40 s' or '–'."""
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds)} s"
