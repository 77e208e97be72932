"""Background jobs for the GUI: a ``QRunnable`` wrapper around the Qt-free job protocol.

``Job`` runs a plain function from ``models``/``editors`` on the global thread pool, injecting
``on_step``/``should_stop`` and turning its outcome into exactly one of ``succeeded``,
``cancelled`` or ``failed``, always followed by ``done``. Progress is throttled here, on the
receiving side, to at most 20 updates a second; the last one is always delivered.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.errors import ErrorReport
from models.jobs import Cancelled, Progress

log = logging.getLogger(__name__)

_MIN_PROGRESS_INTERVAL_S = 0.05


class _Runnable(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        self._job.run_from_pool()


class Job(QObject):
    """One background call of a Qt-free function, observable through signals."""

    progressed = Signal(object)  # Progress
    succeeded = Signal(object)  # the function's return value
    cancelled = Signal(object)  # Cancelled.partial (may be None)
    failed = Signal(object)  # ErrorReport
    done = Signal()  # exactly once, after one of the three above

    def __init__(self, title: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.title = title
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._stop = threading.Event()
        self._running = False
        self._finished = threading.Event()
        # Guards the hand-over between the pool starting the job and shutdown dequeuing it.
        self._start_lock = threading.Lock()
        self._started = False
        self._pool: QThreadPool | None = None
        self._runnable: _Runnable | None = None
        self._last_emit = 0.0
        self._pending: Progress | None = None
        try:
            parameters = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            parameters = {}
        self._accepts_callbacks = "on_step" in parameters and "should_stop" in parameters

    @property
    def is_running(self) -> bool:
        """True between ``start`` and ``done``."""
        return self._running

    def start(self, pool: QThreadPool | None = None) -> None:
        """Run the function on ``pool`` (the global pool by default)."""
        self._running = True
        self._pool = pool or QThreadPool.globalInstance()
        self._runnable = _Runnable(self)
        self._pool.start(self._runnable)

    def request_stop(self) -> None:
        """Ask the function to stop at its next check (it raises ``Cancelled``).

        A job still queued behind busy pool threads is taken off the queue and ends here, at once,
        so shutting down never waits for unrelated work to free a thread.
        """
        self._stop.set()
        with self._start_lock:
            taken = (
                not self._started
                and self._runnable is not None
                and self._pool is not None
                and self._pool.tryTake(self._runnable)
            )
            if taken:
                self._started = True
        if taken:
            self._execute()

    def wait(self, timeout_s: float) -> bool:
        """Block until the function has returned (for shutdown only); True if it did."""
        return self._finished.wait(timeout_s)

    def _on_step(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last_emit >= _MIN_PROGRESS_INTERVAL_S or progress.preview is not None:
            self._last_emit = now
            self._pending = None
            self.progressed.emit(progress)
        else:
            self._pending = progress

    def run_from_pool(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._started = True
        self._execute()

    def _execute(self) -> None:
        kwargs = dict(self._kwargs)
        if self._accepts_callbacks:
            kwargs.setdefault("on_step", self._on_step)
            kwargs.setdefault("should_stop", self._stop.is_set)
        try:
            if self._stop.is_set():
                raise Cancelled(None)
            result = self._fn(*self._args, **kwargs)
        except Cancelled as exc:
            self._flush_progress()
            self.cancelled.emit(exc.partial)
        except Exception as exc:  # the job boundary: every failure becomes a report
            log.exception("job %r failed", self.title)
            self.failed.emit(ErrorReport.from_exception(self.title, exc))
        else:
            self._flush_progress()
            self.succeeded.emit(result)
        finally:
            self._running = False
            self._finished.set()
            self.done.emit()

    def _flush_progress(self) -> None:
        if self._pending is not None:
            self.progressed.emit(self._pending)
            self._pending = None


class JobRegistry(QObject):
    """Keeps running jobs alive and stops them all on shutdown."""

    job_added = Signal(object)  # Job

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: set[Job] = set()
        self._closed = False

    def submit(self, job: Job) -> Job:
        """Start ``job`` and hold a reference until it is done.

        After ``close`` a job is not started: it ends at once as cancelled (late signals during
        shutdown must not start work that outlives the window).
        """
        if self._closed:
            job.request_stop()
            job.run_from_pool()
            return job
        self._jobs.add(job)
        job.done.connect(self._on_job_done)  # a bound slot is delivered in the GUI thread
        job.start()
        self.job_added.emit(job)
        return job

    def _on_job_done(self) -> None:
        self._jobs = {job for job in self._jobs if job.is_running}

    def running(self) -> list[Job]:
        """Jobs started and not yet done."""
        return [job for job in self._jobs if job.is_running]

    def close(self, timeout_ms: int = 3000) -> bool:
        """Refuse new jobs, then stop the running ones (``stop_all``); True if all finished."""
        self._closed = True
        return self.stop_all(timeout_ms)

    def stop_all(self, timeout_ms: int = 3000) -> bool:
        """Ask every job to stop and wait up to ``timeout_ms``; True if all finished."""
        jobs = list(self._jobs)
        for job in jobs:
            job.request_stop()
        deadline = time.monotonic() + timeout_ms / 1000.0
        return all(job.wait(max(0.0, deadline - time.monotonic())) for job in jobs)
