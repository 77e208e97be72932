"""The session: the only writer of the edit state, owner of the undo stack and render requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from app.render_service import RenderedFrame, RenderService
from app.undo import SetStateCommand
from editors.state import EditState

if TYPE_CHECKING:
    from models.generator import Generator


class Session(QObject):
    """Holds the current ``EditState`` and the loaded generator; every change goes through here.

    Panels call ``propose``; the undo stack's commands call ``apply``, which stores the state,
    emits ``state_changed`` and asks the render service for a new frame.
    """

    state_changed = Signal(object)  # EditState
    generator_changed = Signal(object)  # Generator (now rendering)
    frame_ready = Signal(object)  # RenderedFrame, newest only

    def __init__(self, render_service: RenderService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.render_service = render_service
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(500)
        self._state = EditState()
        self._generator: Generator | None = None
        self._draft = False
        self._latest_request = 0
        self._shown_request = 0
        self._generator_serial = 0
        self.last_frame: RenderedFrame | None = None
        render_service.rendered.connect(self._on_render_service_rendered)
        render_service.generator_changed.connect(self._on_render_service_generator_changed)

    @property
    def state(self) -> EditState:
        """The current edit state."""
        return self._state

    @property
    def generator(self) -> Generator | None:
        """The generator frames are rendered with (None before the first model loads)."""
        return self._generator

    def set_generator(self, generator: Generator) -> None:
        """Render with ``generator`` from now on; edits made for another model are forgotten."""
        self.render_service.set_generator(generator)

    def propose(self, state: EditState, text: str, merge_key: str | None = None) -> None:
        """Make ``state`` current as an undoable step (merged with the last one by ``merge_key``)."""
        self.undo_stack.push(SetStateCommand(self, self._state, state, text, merge_key))

    def seal(self) -> None:
        """End the current gesture: the next change starts a new undo entry."""
        command = self.undo_stack.command(self.undo_stack.index() - 1)
        if isinstance(command, SetStateCommand):
            command.seal()

    def apply(self, state: EditState) -> None:
        """Store ``state``, announce it and render it (called by undo commands only)."""
        self._state = state
        self.state_changed.emit(state)
        self.request_render()

    def set_draft(self, draft: bool) -> None:
        """Render reduced-resolution previews while ``draft`` (a slider is held)."""
        if draft != self._draft:
            self._draft = draft
            if not draft:
                self.request_render()

    def request_render(self) -> None:
        """Ask for a frame of the current state (newest request wins)."""
        if self._generator is None:
            return
        self._latest_request = self.render_service.submit(self._state.render_args(draft=self._draft))

    def _on_render_service_generator_changed(self, generator: Generator) -> None:
        self._generator = generator
        self._generator_serial += 1
        self.undo_stack.clear()
        if self._state.base_ws is not None:
            self._state = self._state.replace(base_ws=None)
        self._shown_request = 0
        self.generator_changed.emit(generator)
        self.state_changed.emit(self._state)
        self.request_render()

    def _on_render_service_rendered(self, frame: RenderedFrame) -> None:
        if frame.request_id < self._shown_request or frame.generator_id != self._generator_serial:
            return
        self._shown_request = frame.request_id
        self.last_frame = frame
        self.frame_ready.emit(frame)
