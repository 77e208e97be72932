"""Pieces shared by CLI commands: model loading arguments and a tqdm progress adapter."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from models.jobs import OnStep, Progress, ShouldStop


def add_model_arguments(
    parser: argparse.ArgumentParser, required: bool = True, demo_default: bool = False
) -> None:
    """Add ``--model`` and ``--device`` to a sub-command.

    With ``demo_default`` the model may be omitted: ``model_or_demo`` then picks the built-in one.
    """
    parser.add_argument(
        "--model",
        metavar="PATH",
        required=required and not demo_default,
        help="checkpoint file (.safetensors, rosinality .pt, NVIDIA .pkl, PGAN .pth)"
        + ("; default: the built-in demo model" if demo_default else ""),
    )
    parser.add_argument(
        "--device", metavar="DEV", help="cpu, cuda or cuda:N (default: CUDA if present)"
    )


def model_or_demo(model: str | None) -> str:
    """``model``, or the built-in demo model's path when no ``--model`` was given.

    Raises:
        ValueError: no ``--model`` and the demo model is not installed.
    """
    from models import default_model_path

    if model:
        return model
    demo = default_model_path()
    if demo is None:
        raise ValueError("no --model given and the built-in demo model is not installed")
    return str(demo)


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[tuple[OnStep, ShouldStop]]:
    """Yield ``(on_step, should_stop)`` driving a tqdm bar; Ctrl-C asks the job to stop.

    The first Ctrl-C sets the stop flag so the job can finish its step and save what it has;
    a second one interrupts immediately.
    """
    from tqdm import tqdm

    stop = threading.Event()
    bar = tqdm(total=total, desc=description, unit="step", dynamic_ncols=True)

    def on_step(progress: Progress) -> None:
        if progress.total is not None and bar.total != progress.total:
            bar.total = progress.total
        bar.n = progress.step
        if progress.metrics:
            bar.set_postfix({k: f"{v:.4g}" for k, v in progress.metrics.items()}, refresh=False)
        bar.refresh()

    previous = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:

        def on_interrupt(signum: int, frame: object) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()
            bar.write("stopping after this step (Ctrl-C again to abort)")

        previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield on_step, stop.is_set
    finally:
        bar.close()
        if in_main:
            signal.signal(signal.SIGINT, previous)
