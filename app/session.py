"""The session: the only writer of the edit state, owner of the undo stack and render requests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.render_service import RenderedFrame, RenderService
from app.undo import UndoStack
from editors.history import EditHistory
from editors.rendering import wants_drafts
from editors.session_io import (
    ModelReference,
    SessionFile,
    check_session_fits,
    load_session,
    save_session,
)
from editors.state import EditState, reset_edits

if TYPE_CHECKING:
    from editors.pivotal import TuningDelta
    from models.generator import Generator


class Session(QObject):
    """Holds the current ``EditState`` and the loaded generator; every change goes through here.

    Panels call ``propose``, which adds a step to ``history`` (``editors.history``); the undo
    stack mirroring it calls ``apply``, which stores the state, emits ``state_changed`` and asks
    the render service for a new frame.
    """

    state_changed = Signal(object)  # EditState
    generator_changed = Signal(object)  # Generator (now rendering)
    frame_ready = Signal(object)  # RenderedFrame, newest only

    def __init__(self, render_service: RenderService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.render_service = render_service
        self._state = EditState()
        self.history = EditHistory(self._state)  # read it freely; move it through undo_stack
        self.undo_stack = UndoStack(self.history, self.apply, self)  # Qt actions and signals
        self._generator: Generator | None = None
        self._base_generator: Generator | None = None  # the loaded model when rendering a tuning
        self._fingerprint: str | None = None
        self.tuning: TuningDelta | None = None  # pivotal tuning for the projected photo
        self._swaps: list[Generator] = []  # set_tuning's generators, until each is in use
        self._draft = False
        self._measure_identity = False
        self._shown_request = 0
        self._generator_serial = 0
        self.last_frame: RenderedFrame | None = None
        self.is_dragging = False  # a slider is held (between begin_drag and end_drag)
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

    @property
    def base_generator(self) -> Generator | None:
        """The model as loaded while a photo's tuning is shown (None otherwise)."""
        return self._base_generator

    @property
    def model_path(self) -> Path | None:
        """The checkpoint file of the loaded model, when it came from a file."""
        model = self._base_generator or self._generator
        source = model.source if model is not None else None
        return source.path if source is not None else None

    def fingerprint(self) -> str | None:
        """``Generator.fingerprint()`` of the loaded model (a strided hash, cached); while a
        tuning is shown, still the model's, so its directions and sessions keep fitting."""
        model = self._base_generator or self._generator
        if model is not None and self._fingerprint is None:
            self._fingerprint = model.fingerprint()
        return self._fingerprint

    def set_tuning(self, tuned: Generator | None, tuning: TuningDelta | None) -> None:
        """Render with ``tuned`` (the loaded model tuned for a photo), or the model itself again
        when None; the edit state, directions and history stay."""
        base = self._base_generator or self._generator
        if base is None:
            return
        self.tuning = tuning if tuned is not None else None
        self._base_generator = base if tuned is not None else None
        self._generator = tuned or base
        self._swaps.append(self._generator)
        self.render_service.set_generator(self._generator)

    @property
    def is_slow_model(self) -> bool:
        """True when full frames are slow enough to preview in draft while dragging."""
        return self._generator is not None and wants_drafts(self._generator)

    def set_generator(self, generator: Generator) -> None:
        """Render with ``generator`` from now on; edits made for another model are forgotten."""
        self.render_service.set_generator(generator)

    # -- changes ------------------------------------------------------------------------------
    def propose(self, state: EditState, text: str, merge_key: str | None = None) -> None:
        """Make ``state`` current as one undoable step (merged by ``merge_key``)."""
        self.history.propose(state, text, merge_key)  # the undo stack shows it

    def seal(self) -> None:
        """End the current gesture: the next change starts a new undo entry."""
        self.history.seal()

    def begin_drag(self) -> None:
        """A slider was pressed: preview in draft on slow models."""
        self.is_dragging = True
        if self.is_slow_model:
            self.set_draft(True)

    def end_drag(self) -> None:
        """A slider was released: one undo entry for the whole drag, then a full frame."""
        self.is_dragging = False
        self.seal()
        self.set_draft(False)

    def set_starting_state(self, state: EditState) -> None:
        """Make ``state`` current without an undo entry (done for the user, e.g. on model load).

        Only while the history is empty: it becomes the state the history starts from.
        """
        if self.history.set_starting_state(state):
            self.apply(state)

    def has_unsaved_edits(self) -> bool:
        """True when edits worth keeping (sliders, mixing, a projected photo) were made since
        the last save or open."""
        return self.history.has_unsaved_edits()

    def reset_edits(self) -> None:
        """Put every slider, mix and noise setting back (one undo entry)."""
        self.history.reset_edits()

    def apply(self, state: EditState) -> None:
        """Store ``state``, announce it and render it (called by undo commands only)."""
        self._state = state
        self.state_changed.emit(state)
        self.request_render()

    # -- rendering ----------------------------------------------------------------------------
    def set_draft(self, draft: bool) -> None:
        """Render reduced-resolution previews while ``draft`` (a slider is held)."""
        if draft != self._draft:
            self._draft = draft
            if not draft:
                self.request_render()

    def set_measure_identity(self, enabled: bool) -> None:
        """Also measure identity drift (on full frames, in the render thread)."""
        if enabled != self._measure_identity:
            self._measure_identity = enabled
            self.request_render()

    @property
    def measures_identity(self) -> bool:
        """True while identity drift is measured."""
        return self._measure_identity

    def request_render(self) -> None:
        """Ask for a frame of the current state (newest request wins)."""
        if self._generator is None:
            return
        args = self._state.render_args(draft=self._draft, measure_identity=self._measure_identity)
        self.render_service.submit(args)

    # -- files --------------------------------------------------------------------------------
    def model_reference(self) -> ModelReference:
        """The current model as a session file records it."""
        path = self.model_path
        model = self._base_generator or self._generator
        name = model.name if model is not None else ""
        return ModelReference(str(path) if path is not None else None, self.fingerprint(), name)

    def save_to(self, path: str | Path) -> Path:
        """Write the current state to a session file (atomically).

        Raises:
            OSError, ValueError: the file cannot be written.
        """
        saved = save_session(path, self._state, self.model_reference(), self.tuning)
        self.undo_stack.mark_clean()  # what is on screen is saved: nothing to ask about on quit
        return saved

    def open_from(self, path: str | Path) -> SessionFile:
        """Read a session file and make its state current (one undo entry).

        Nothing changes when the file is broken or belongs to another model.

        Raises:
            SessionFileError: broken or foreign file.
            ValueError: made with another model, or shapes that do not fit this one.
        """
        if self._generator is None:
            raise ValueError("open a model before opening a session")
        session = load_session(path)
        mismatch = session.mismatch(self.fingerprint())
        if mismatch:
            raise ValueError(f"{path}: {mismatch}; open that model first")
        generator = self._base_generator or self._generator
        num_layers = getattr(generator, "num_layers", None)
        check_session_fits(session, generator.num_ws, generator.w_dim, num_layers)
        if session.tuning is not None:
            from editors.pivotal import apply_delta

            self.set_tuning(apply_delta(generator, session.tuning, path), session.tuning)
        elif self.tuning is not None:
            self.set_tuning(None, None)
        self.history.commit(session.state, f"Open session {Path(path).name}")
        self.undo_stack.mark_clean()
        return session

    # -- render service -----------------------------------------------------------------------
    def _on_render_service_generator_changed(self, generator: Generator) -> None:
        swap = next((i for i, g in enumerate(self._swaps) if g is generator), None)
        if swap is not None:  # set_tuning: the same model, so edits and history stay
            del self._swaps[: swap + 1]  # earlier swaps were superseded before they arrived
            self._generator_serial += 1
            self._shown_request = 0
            self.request_render()
            return
        self._base_generator = None
        self._swaps.clear()
        self.tuning = None
        self._generator = generator
        self._fingerprint = None
        self._generator_serial += 1
        # Latents, directions and mixes of another model do not carry over.
        self._state = reset_edits(self._state).replace(
            base_ws=None,
            directions=None,
            components=None,
            locked=frozenset(),
            component_layers=None,
        )
        self.undo_stack.restart(self._state)
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
