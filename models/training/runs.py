"""The run folder: the only interface between a training process and whoever watches it.

Layout (all JSON is UTF-8; every file but ``metrics.jsonl`` is replaced atomically)::

    RUN_DIR/config.json     {"schema_version", "task", "app_version", "created", "config": {...}}
                            written before step 0
    RUN_DIR/status.json     {"state", "step", "total_steps", "images_seen", "message", "pid",
                            "updated", "artifact", ...} rewritten at every tick and state change
    RUN_DIR/metrics.jsonl   one JSON object per tick: step, images_seen, images_per_s, losses...
    RUN_DIR/data.json       what the data pipeline read and skipped
    RUN_DIR/control.json    {"command": "run" | "pause" | "stop"}, written by the GUI
    RUN_DIR/samples/step-00001234.png
    RUN_DIR/checkpoints/ckpt-00001234.pt

Files are replaced with ``models.formats.native.atomic_write``; this module holds no training
code, so a viewer (the GUI's Runs window) can use it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from models.formats.native import atomic_write

SCHEMA_VERSION = 1
APP_VERSION = "0.1.0"
RunState = Literal["preparing", "running", "paused", "finished", "stopped", "failed"]
ControlCommand = Literal["run", "pause", "stop"]
CONTROL_COMMANDS: tuple[ControlCommand, ...] = ("run", "pause", "stop")
FINAL_STATES = frozenset({"finished", "stopped", "failed"})


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to a temp file beside ``path``, then rename it over ``path``."""
    text = json.dumps(data, indent=2)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, partial or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


ENV_RUNS_DIR = "LATENTSTUDIO_RUNS_DIR"


def default_runs_root() -> Path:
    """Where new runs go: ``$LATENTSTUDIO_RUNS_DIR``, else ``<user data dir>/runs``."""
    if os.environ.get(ENV_RUNS_DIR):
        return Path(os.environ[ENV_RUNS_DIR])
    import platformdirs

    return Path(platformdirs.user_data_dir("LatentStudio", "LatentStudio")) / "runs"


def make_run_name(task: str, description: str = "", now: _dt.datetime | None = None) -> str:
    """``<YYYYMMDD-HHMMSS>-<task>[-<description>]`` with a file-name-safe description."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in description).strip("-")[:40]
    return f"{stamp}-{task}" + (f"-{safe}" if safe else "")


class RunFolder:
    """Paths and small readers/writers of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- paths ------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def control_path(self) -> Path:
        return self.path / "control.json"

    @property
    def data_path(self) -> Path:
        return self.path / "data.json"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def exists(self) -> bool:
        """True when the folder holds a run (its config.json)."""
        return self.config_path.is_file()

    # -- config -----------------------------------------------------------------------------
    def write_config(self, task: str, config: Mapping[str, Any]) -> None:
        """Record the resolved config before step 0 (a resumed run keeps its creation time)."""
        previous = read_json(self.config_path) or {}
        write_json_atomic(
            self.config_path,
            {
                "schema_version": SCHEMA_VERSION,
                "task": task,
                "app_version": APP_VERSION,
                "created": previous.get("created") or time.time(),
                "config": dict(config),
            },
        )

    def created(self) -> float:
        """When the run was first started (seconds since the epoch; 0 when unknown)."""
        return float((read_json(self.config_path) or {}).get("created") or 0.0)

    def read_config(self) -> tuple[str, dict[str, Any]]:
        """(task, config fields) of the run.

        Raises:
            FileNotFoundError: not a run folder.
            ValueError: config.json is damaged or from a newer version.
        """
        if not self.config_path.is_file():
            raise FileNotFoundError(f"{self.path}: not a training run folder (no config.json)")
        data = read_json(self.config_path)
        if data is None or "task" not in data or not isinstance(data.get("config"), dict):
            raise ValueError(f"{self.config_path}: damaged run configuration")
        if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise ValueError(f"{self.config_path}: written by a newer version of the app")
        return str(data["task"]), dict(data["config"])

    # -- status -----------------------------------------------------------------------------
    def write_status(self, state: RunState, **fields: Any) -> None:
        """Replace status.json with ``state``, the pid, the time and ``fields``."""
        record = {"state": state, "pid": os.getpid(), "updated": time.time(), **fields}
        write_json_atomic(self.status_path, record)

    def read_status(self) -> dict[str, Any]:
        """The last status (empty when none was written yet)."""
        return read_json(self.status_path) or {}

    # -- control ----------------------------------------------------------------------------
    def request(self, command: ControlCommand) -> None:
        """Ask the training process to run, pause or stop (it checks once per step)."""
        if command not in CONTROL_COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        write_json_atomic(self.control_path, {"command": command, "time": time.time()})

    def read_control(self) -> ControlCommand:
        """The last command written, "run" when there is none."""
        data = read_json(self.control_path) or {}
        command = data.get("command", "run")
        return command if command in CONTROL_COMMANDS else "run"

    # -- metrics ----------------------------------------------------------------------------
    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Append one tick as a JSON line (flushed, so a reader sees whole lines)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
            stream.flush()

    def read_metrics(self, start_byte: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Complete metric lines from ``start_byte`` on, and the byte offset to continue from.

        A partially written last line is left for the next call.
        """
        try:
            with open(self.metrics_path, "rb") as stream:
                stream.seek(start_byte)
                data = stream.read()
        except OSError:
            return [], start_byte
        end = data.rfind(b"\n") + 1
        records = []
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records, start_byte + end

    def truncate_metrics_after(self, step: int) -> None:
        """Drop metric lines past ``step`` (after resuming from an older checkpoint)."""
        if not self.metrics_path.is_file():
            return
        records, _ = self.read_metrics()
        kept = [record for record in records if int(record.get("step", 0)) <= step]
        text = "".join(json.dumps(record) + "\n" for record in kept)
        atomic_write(self.metrics_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    # -- samples ----------------------------------------------------------------------------
    def sample_path(self, step: int) -> Path:
        """Where the sample grid of ``step`` goes."""
        return self.samples_dir / f"step-{step:08d}.png"

    def latest_sample(self) -> Path | None:
        """The newest sample grid, if any."""
        if not self.samples_dir.is_dir():
            return None
        samples = sorted(self.samples_dir.glob("step-*.png"))
        return samples[-1] if samples else None


def control_command(
    run: RunFolder, should_stop: Callable[[], bool] | None = None
) -> ControlCommand:
    """What the job should do now: "stop" when ``should_stop()`` says so (the caller's cancel),
    else the command in control.json (the Runs window's Pause/Stop)."""
    if should_stop is not None and should_stop():
        return "stop"
    return run.read_control()


def process_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate it on Windows; callers also check "updated"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # an exited child not yet reaped by its parent still answers kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]
