"""The history of edits as thumbnails (a QUndoView-like list of the session's edit history).

Clicking an entry jumps to it; any entry with a rendered picture can become the style-mixing
donor. Thumbnails come from the frames the render thread delivers: a frame tagged with the state
of an entry becomes that entry's picture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPoint, QSignalBlocker, QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.widgets.image_view import rgb_to_qimage
from app.workers import Job
from editors.mixing import LatentSource, StyleMix
from editors.rendering import render_states

if TYPE_CHECKING:
    from app.render_service import RenderedFrame
    from app.session import Session
    from app.workers import JobRegistry
    from editors.rendering import RenderResult
    from editors.state import EditState

ICON = 56


class _Picture:
    """The rendered picture of one history state."""

    def __init__(self, state: EditState, icon: QIcon, ws: np.ndarray) -> None:
        self.state = state
        self.icon = icon
        self.ws = ws


class HistoryPanel(QWidget):
    """List of undo entries with thumbnails, undo/redo buttons and "use as donor"."""

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyPanel")
        self.session = session
        self.jobs = jobs
        self._backfill_job: Job | None = None
        self._tried: dict[int, EditState] = {}  # states already sent to a backfill job
        stack = session.undo_stack
        self._pictures: dict[int, _Picture] = {}  # id(state) -> picture (state kept alive here)

        self.undo_button = QPushButton("Undo")
        self.undo_button.setObjectName("undoButton")
        self.undo_button.setToolTip("Undo the last edit (Ctrl+Z)")
        self.undo_button.clicked.connect(stack.undo)
        self.redo_button = QPushButton("Redo")
        self.redo_button.setObjectName("redoButton")
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(stack.redo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.redo_button)

        self.list = QListWidget()
        self.list.setObjectName("historyList")
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setUniformItemSizes(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # full text in the tooltip
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.currentRowChanged.connect(self._on_list_current_row_changed)

        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._on_list_context_menu_requested)
        self.list.setToolTip(
            "Click an entry to go back to it; right-click to use it as the mixing donor"
        )
        self.context_menu: QMenu | None = None

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)
        self.setMinimumWidth(200)

        stack.indexChanged.connect(self._sync)
        stack.cleanChanged.connect(self._sync)
        # The stack is deleted with the session; stop listening before its destructor signals.
        session.destroyed.connect(self._on_session_destroyed)
        session.state_changed.connect(self._sync)  # also catches merged drags (same index)
        session.frame_ready.connect(self._on_session_frame_ready)
        self._sync()

    def _on_session_destroyed(self) -> None:
        stack = self.session.undo_stack
        stack.indexChanged.disconnect(self._sync)
        stack.cleanChanged.disconnect(self._sync)

    # -- list ---------------------------------------------------------------------------------
    def _sync(self, *_args: object) -> None:
        history = self.session.history
        items = history.entries()
        with QSignalBlocker(self.list):
            while self.list.count() > len(items):
                self.list.takeItem(self.list.count() - 1)
            while self.list.count() < len(items):
                self.list.addItem(QListWidgetItem())
            for row, (text, state) in enumerate(items):
                item = self.list.item(row)
                item.setText(text)
                item.setToolTip(text)
                picture = self._pictures.get(id(state))
                item.setIcon(
                    picture.icon if picture is not None and picture.state is state else QIcon()
                )
            self.list.setCurrentRow(history.index)
        self._forget_unreachable({id(state) for _, state in items})
        self.undo_button.setEnabled(history.can_undo())
        self.redo_button.setEnabled(history.can_redo())
        self._backfill([state for _, state in items])

    def _backfill(self, states: list[EditState]) -> None:
        # Frames of quickly replaced states are skipped by the render thread; render those
        # entries' pictures in the background (the current state's frame is on its way).
        generator = self.session.generator
        if generator is None or self._backfill_job is not None:
            return
        missing = [
            state
            for state in states
            if state is not self.session.state
            and self._pictures.get(id(state)) is None
            and self._tried.get(id(state)) is not state
        ]
        if not missing:
            return
        self._tried.update((id(state), state) for state in missing)
        job = Job("Could not render history pictures", render_states, generator, missing)
        job.succeeded.connect(self._on_backfill_job_succeeded)
        job.done.connect(self._on_backfill_job_done)
        self._backfill_job = job
        self.jobs.submit(job)

    def _on_backfill_job_succeeded(self, results: list[RenderResult]) -> None:
        # Pictures are keyed by state identity, so any finished job's results are still right.
        for result in results:
            if result.state is not None:
                self._remember(result)
        self._sync()

    def _forget_unreachable(self, alive: set[int]) -> None:
        for key in [key for key in self._pictures if key not in alive]:
            del self._pictures[key]
        for key in [key for key in self._tried if key not in alive]:
            del self._tried[key]

    def _can_mix(self) -> bool:
        generator = self.session.generator
        return generator is not None and generator.num_ws > 1

    def _on_list_current_row_changed(self, row: int) -> None:
        if row >= 0 and row != self.session.history.index:
            self.session.undo_stack.setIndex(row)

    def _on_list_context_menu_requested(self, position: QPoint) -> None:
        row = self.list.indexAt(position).row()
        if row < 0:
            return
        menu = QMenu(self)
        menu.setObjectName("historyMenu")
        action = menu.addAction("Use as style-mixing donor")
        action.setObjectName("historyDonorAction")
        action.setEnabled(self.picture(row) is not None and self._can_mix())
        action.triggered.connect(lambda: self.use_entry_as_donor(row))
        self.context_menu = menu
        menu.popup(self.list.viewport().mapToGlobal(position))

    def _on_session_frame_ready(self, frame: RenderedFrame) -> None:
        result = frame.result
        if result.draft or result.state is None:
            return
        self._remember(result)
        self._sync()

    def _on_backfill_job_done(self) -> None:
        # Cleared here, not from Job.is_running, which drops before the results are delivered.
        self._backfill_job = None
        self._sync()

    def _remember(self, result: RenderResult) -> None:
        assert result.state is not None
        icon = QIcon(
            QPixmap.fromImage(rgb_to_qimage(result.rgb)).scaled(
                ICON,
                ICON,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        self._pictures[id(result.state)] = _Picture(result.state, icon, result.ws)

    # -- entries ------------------------------------------------------------------------------
    def entry_count(self) -> int:
        """Rows in the list (commands + the start entry)."""
        return self.list.count()

    def has_thumbnail(self, row: int) -> bool:
        """True when entry ``row`` shows a rendered picture."""
        item = self.list.item(row)
        return item is not None and not item.icon().isNull()

    def picture(self, row: int) -> _Picture | None:
        """The rendered picture of entry ``row``, if it has one."""
        if not 0 <= row < self.list.count():
            return None
        state = self.session.history.entry_state(row)
        picture = self._pictures.get(id(state))
        return picture if picture is not None and picture.state is state else None

    def use_entry_as_donor(self, row: int) -> bool:
        """Make entry ``row``'s rendered latent the style-mixing donor (weights kept)."""
        picture = self.picture(row)
        if picture is None or not self._can_mix():
            return False
        donor = LatentSource(ws=picture.ws, label=f"history: {self.list.item(row).text()}")
        state = self.session.state
        weights = state.mix.row_weights if state.mix is not None else (0.0,) * len(picture.ws)
        self.session.propose(
            state.replace(mix=StyleMix(donor, weights)), f"Mixing donor: {donor.label}"
        )
        self.session.seal()
        return True
