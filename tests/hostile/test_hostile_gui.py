"""Issue 11, GUI edges: hostile files opened from the window end in one error dialog each, the
session keeps its model, state and history; a model load honours Cancel and closing mid-load
is prompt."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest


@pytest.fixture
def hostile(hostile_cases) -> dict[str, Path]:
    """The hostile files by case name (the model cases' ``info`` argument is the file)."""
    return {c.name: Path(c.argv[1]) for c in hostile_cases[1] if c.argv[0] == "info"}


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> list:
    """Error dialogs shown, intercepted (title, message) instead of opening message boxes."""
    shown: list = []

    def record(parent, report):
        shown.append((report.title, report.message))

    monkeypatch.setattr("app.main_window.show_error", record)
    monkeypatch.setattr("app.panels.attributes.show_error", record)
    return shown


def _snapshot(window) -> tuple:
    state = window.session.state
    return window.session.generator, state, window.session.undo_stack.count()


MODELS = (
    "native-1024px-in-16-bytes", "rosinality-zero-stride-1e10", "pt-zip-member-inflating-to-1GB",
    "pickle-os-system", "pickle-build-on-a-loader-class", "pickle-memo-index-2^26",
    "nvidia-4096-channels-of-zero-size-tensors", "native-nan-weights",
)  # fmt: skip
LATENTS = ("npz-1MB-inflating-to-1GB", "npy-header-shape-1e10", "latent-nan", "latent-text",
           "latent-metadata-nested", "latent-pt-zero-stride", "latent-pt-os-system")  # fmt: skip
SESSIONS = ("session-1MB-inflating-to-1GB", "session-inf-truncation", "session-unknown-noise-mode",
            "session-document-nested", "session-schema-text", "session-latent-int")  # fmt: skip


def test_open_edges_show_one_dialog_and_keep_the_session(
    make_main_window, tiny_checkpoint, hostile, dialogs, qtbot, tmp_path: Path
) -> None:
    window = make_main_window(tiny_checkpoint(name="model.pt"))
    before = _snapshot(window)
    for name in LATENTS:
        assert not window.open_latent(hostile[name])
    for name in SESSIONS:
        assert not window.open_session(hostile[name])
    for name in MODELS:
        shown = len(dialogs)
        window.open_model(hostile[name])
        qtbot.waitUntil(lambda shown=shown: len(dialogs) > shown, timeout=20000)
    for name in ("model-is-a-fifo",):
        window.open_dropped_file(hostile[name])
    nested = tmp_path / "nested.directions.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    assert not window.attributes_panel.load_directions_file(nested)
    qtbot.wait(50)

    expected = [*LATENTS, *SESSIONS, *MODELS, "model-is-a-fifo"]
    assert len(dialogs) == len(expected) + 1, " ".join(
        m.split(":")[0].rsplit("/", 1)[-1] for _, m in dialogs
    )
    for (_title, message), name in zip(dialogs, expected, strict=False):
        assert str(hostile[name]) in message, (name, message)
        assert "Traceback" not in message and "\n" not in message.strip(), (name, message)
    assert dialogs[-1][1].startswith(str(nested))
    assert _snapshot(window) == before  # same model object, same state, same history


def test_model_load_honours_cancel(
    make_main_window, tiny_checkpoint, hostile, dialogs, qtbot, monkeypatch
):
    from models.formats import safe_pickle

    window = make_main_window(tiny_checkpoint(name="model.pt"))
    before = _snapshot(window)
    # Cancel once unpickling has begun: the file takes ~0.5-3 s of opcodes before it is refused,
    # so a fixed wait would race on a fast machine.
    unpickling = threading.Event()
    real_load_path = safe_pickle.load_path

    def load_path(path, should_stop=None):
        unpickling.set()
        return real_load_path(path, should_stop)

    monkeypatch.setattr(safe_pickle, "load_path", load_path)
    outcomes: list[str] = []
    job = window.open_model(hostile["pickle-3M-opcodes"])
    job.cancelled.connect(lambda _partial: outcomes.append("cancelled"))
    job.failed.connect(lambda _report: outcomes.append("failed"))
    job.succeeded.connect(lambda _result: outcomes.append("succeeded"))
    assert unpickling.wait(20)
    start = time.monotonic()
    job.request_stop()
    qtbot.waitUntil(lambda: not job.is_running, timeout=10000)
    assert time.monotonic() - start < 2.0
    qtbot.waitUntil(lambda: bool(outcomes), timeout=2000)
    assert outcomes == ["cancelled"]
    assert dialogs == [] and _snapshot(window) == before


def test_closing_during_a_model_load_is_prompt(make_main_window, hostile, qtbot) -> None:
    window = make_main_window()
    job = window.open_model(hostile["pickle-3M-opcodes"])
    qtbot.wait(100)
    start = time.monotonic()
    window.close()
    assert time.monotonic() - start < 2.5
    assert not job.is_running


def test_fifo_photo_is_refused_before_opening(make_main_window, tmp_path, dialogs) -> None:
    window = make_main_window()
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    assert window.open_photo(fifo) is None
    assert len(dialogs) == 1 and str(fifo) in dialogs[0][1] and "FIFO" in dialogs[0][1]


def test_a_model_rendering_nan_says_so(make_main_window, hostile, dialogs, qtbot) -> None:
    overflow = hostile["model-is-a-folder"] / "overflow.pt"  # finite weights, inf activations
    window = make_main_window()
    window.open_model(overflow)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=20000)
    _title, message = dialogs[0]
    assert str(overflow) in message and "renders NaN" in message
