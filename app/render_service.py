"""The interactive render thread: one long-lived thread owns the generator, newest request wins.

``submit`` never blocks: it overwrites a one-slot mailbox and wakes the thread, so while a render
runs, every request but the last goes stale and is dropped. Results carry the request id; the
window ignores any result older than the one on screen. While a slider is held (draft requests)
and the thread is busy, ``submit`` answers at once with a frame interpolated along the slider
(``editors.preview``); the rendered frame replaces it when it comes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal

from app.errors import ErrorReport
from editors.preview import SliderPreview
from editors.rendering import RenderArgs, Renderer, RenderResult

if TYPE_CHECKING:
    from models.generator import Generator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RenderedFrame:
    """A render result tagged with the request it answers."""

    request_id: int
    generator_id: int  # which loaded generator produced it
    result: RenderResult


class _RenderThread(QThread):
    def __init__(self, service: RenderService) -> None:
        super().__init__()
        self._service = service

    def run(self) -> None:
        self._service._loop()


class RenderService(QObject):
    """Renders ``RenderArgs`` on a background thread and emits the frames."""

    rendered = Signal(object)  # RenderedFrame
    failed = Signal(object)  # ErrorReport
    generator_changed = Signal(object)  # Generator now used by the thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Condition()
        self._pending: tuple[int, RenderArgs] | None = None
        self._pending_generator: Generator | None = None
        self._generator_id = 0
        self._next_id = 0
        self._running = True
        self._busy = False
        self._preview = SliderPreview()
        self.previews = 0  # interpolated frames sent (statistics for tests and benchmarks)
        self._thread = _RenderThread(self)
        self._thread.start()

    def set_generator(self, generator: Generator) -> None:
        """Switch to ``generator``; later requests render with it."""
        with self._lock:
            self._pending_generator = generator
            self._lock.notify()

    def submit(self, args: RenderArgs) -> int:
        """Queue ``args``, replacing any request not yet started; return its request id."""
        preview = None
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            self._pending = (request_id, args)
            self._lock.notify()
            if self._busy and self._pending_generator is None:
                preview = self._preview.predict(args)
            if preview is not None:
                self.previews += 1
            generator_id = self._generator_id
        if preview is not None:
            self.rendered.emit(RenderedFrame(request_id, generator_id, preview))
        return request_id

    @property
    def is_idle(self) -> bool:
        """True when nothing is rendering or waiting to render."""
        with self._lock:
            return not self._busy and self._pending is None and self._pending_generator is None

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the thread after the render in progress."""
        with self._lock:
            self._running = False
            self._lock.notify()
        self._thread.wait(timeout_ms)

    def _loop(self) -> None:
        renderer: Renderer | None = None
        last_args: RenderArgs | None = None
        while True:
            with self._lock:
                while self._running and self._pending is None and self._pending_generator is None:
                    self._lock.wait()
                if not self._running:
                    return
                if self._pending_generator is not None:
                    generator = self._pending_generator
                    self._pending_generator = None
                    renderer = Renderer(generator)
                    self._preview.clear()
                    self._generator_id += 1
                    last_args = None
                    self.generator_changed.emit(generator)
                    continue
                assert self._pending is not None
                request_id, args = self._pending
                self._pending = None
                generator_id = self._generator_id
                self._busy = True
            try:
                if renderer is None or args.same_as(last_args):
                    continue
                result = renderer.render(args)
                last_args = args
                with self._lock:
                    self._preview.remember(args, result)
                self.rendered.emit(RenderedFrame(request_id, generator_id, result))
            except Exception as exc:  # the thread must survive a bad request
                log.exception("render failed")
                self.failed.emit(ErrorReport.from_exception("Could not render the image", exc))
            finally:
                with self._lock:
                    self._busy = False
