"""Background jobs: outcome signals, cancellation, and stopping jobs still queued for a thread."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThreadPool

from app.workers import Job
from models.jobs import Cancelled, Progress


def _record(job: Job) -> list[tuple[str, object]]:
    events: list[tuple[str, object]] = []
    job.succeeded.connect(lambda value: events.append(("succeeded", value)))
    job.cancelled.connect(lambda partial: events.append(("cancelled", partial)))
    job.failed.connect(lambda report: events.append(("failed", report)))
    job.done.connect(lambda: events.append(("done", None)))
    return events


@pytest.fixture
def one_thread_pool():
    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    yield pool
    pool.waitForDone(5000)


def test_a_job_reports_its_result_then_done(qtbot, one_thread_pool) -> None:
    job = Job("adding", lambda a, b: a + b, 2, 3)
    events = _record(job)
    with qtbot.waitSignal(job.done, timeout=5000):
        job.start(one_thread_pool)
    assert events == [("succeeded", 5), ("done", None)]
    assert not job.is_running


def test_a_failure_becomes_a_report_naming_the_job(qtbot, one_thread_pool) -> None:
    def broken() -> None:
        raise ValueError("bad latent file")

    job = Job("Could not open the latent", broken)
    events = _record(job)
    with qtbot.waitSignal(job.done, timeout=5000):
        job.start(one_thread_pool)
    assert [name for name, _ in events] == ["failed", "done"]
    report = events[0][1]
    assert report.title == "Could not open the latent"
    assert "bad latent file" in report.message


def test_stop_reaches_the_function_and_keeps_its_partial_result(qtbot, one_thread_pool) -> None:
    started = threading.Event()

    def count(*, on_step, should_stop) -> int:
        done = 0
        started.set()
        while True:
            if should_stop():
                raise Cancelled(done)
            done += 1
            on_step(Progress(done, None, "counting"))

    job = Job("counting", count)
    events = _record(job)
    with qtbot.waitSignal(job.done, timeout=5000):
        job.start(one_thread_pool)
        assert started.wait(5)
        job.request_stop()
    assert [name for name, _ in events] == ["cancelled", "done"]
    assert events[0][1] > 0


def test_a_queued_job_is_taken_off_the_queue_when_stopped(qtbot, one_thread_pool) -> None:
    release = threading.Event()
    blocker = Job("blocking", lambda: release.wait(10))
    blocker.start(one_thread_pool)
    queued_calls: list[int] = []
    queued = Job("queued", lambda: queued_calls.append(1))
    events = _record(queued)
    queued.start(one_thread_pool)  # the only thread is busy: this one waits in the queue

    queued.request_stop()

    # It ended at once, in this thread, without ever calling its function.
    assert [name for name, _ in events] == ["cancelled", "done"]
    assert not queued.is_running and queued.wait(0)
    assert queued_calls == []
    release.set()
    assert blocker.wait(5)
    assert queued_calls == []


def test_a_closed_registry_ends_new_jobs_without_running_them(qtbot) -> None:
    from app.workers import JobRegistry

    registry = JobRegistry()
    assert registry.close()
    calls: list[int] = []
    job = Job("late", lambda: calls.append(1))
    events = _record(job)
    registry.submit(job)
    assert [name for name, _ in events] == ["cancelled", "done"]
    assert calls == [] and registry.running() == []
