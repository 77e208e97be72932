"""View > zoom, pixels and original | edited compare for the main canvas.

The "original" is the aligned photo when the picture is a projection of it, otherwise the same
latent without any edit (rendered in the background, once per latent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel, QMenu, QToolBar

from app.shortcuts import apply_shortcuts
from app.theme import icon
from app.workers import Job
from editors.rendering import render_states
from editors.state import reset_edits

if TYPE_CHECKING:
    from app.main_window import MainWindow
    from editors.rendering import RenderResult
    from editors.state import EditState

ZOOMS = (("zoomFit", "Zoom to &fit", None), ("zoom100", "&100 %", 1.0), ("zoom200", "&200 %", 2.0))


class CanvasControls(QObject):
    """The View menu's canvas entries, their tool-bar buttons and the compare logic."""

    def __init__(self, window: MainWindow, menu: QMenu, toolbar: QToolBar) -> None:
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.actions: dict[str, QAction] = {}
        self._original_key: tuple | None = None
        self._original_job: Job | None = None

        zoom_group = QActionGroup(self)
        for key, text, zoom in ZOOMS:
            action = self._action(key, text, checkable=True)
            action.triggered.connect(lambda checked=False, z=zoom: self.canvas.set_zoom(z))
            zoom_group.addAction(action)
            menu.addAction(action)
        self.actions["zoomFit"].setChecked(True)
        pixels = self._action("showPixels", "Show &pixels", checkable=True)
        pixels.setToolTip("Enlarge with square pixels instead of smooth scaling")
        pixels.toggled.connect(lambda on: self.canvas.set_smooth(not on))
        compare = self._action("compare", "&Compare original | edited", checkable=True)
        compare.setToolTip("Show the photo (or the unedited picture) beside the edited one")
        compare.toggled.connect(self._on_compare_toggled)
        menu.addSeparator()
        menu.addAction(pixels)
        menu.addAction(compare)
        menu.addSeparator()

        icons = {
            "zoomFit": "mdi6.fit-to-screen",
            "zoom100": "mdi6.numeric-1-box-outline",
            "showPixels": "mdi6.checkerboard",
            "compare": "mdi6.compare",
        }
        toolbar.addSeparator()
        for key, name in icons.items():
            self.actions[key].setIcon(icon(name))
            toolbar.addAction(self.actions[key])

        self.zoom_label = QLabel("")
        self.zoom_label.setObjectName("statusZoom")
        self.canvas.scale_changed.connect(
            lambda scale: self.zoom_label.setText(f"{scale:.0%}" if scale else "")
        )
        window.session.state_changed.connect(self._on_session_state_changed)
        window.session.generator_changed.connect(lambda _g: self._forget_original())

    def _action(self, key: str, text: str, checkable: bool = False) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(f"action:{key}")
        action.setCheckable(checkable)
        apply_shortcuts(action, key)
        self.actions[key] = action
        return action

    def set_enabled(self, enabled: bool) -> None:
        for action in self.actions.values():
            action.setEnabled(enabled)

    # -- compare ------------------------------------------------------------------------------
    def _on_compare_toggled(self, on: bool) -> None:
        if on:
            self._show_original(self.window.session.state)
        else:
            self.canvas.set_compare(None)
            self._original_key = None

    def _on_session_state_changed(self, state: EditState) -> None:
        if self.actions["compare"].isChecked():
            self._show_original(state)

    def _forget_original(self) -> None:
        self._original_key = None
        self.canvas.set_compare(None)
        if self.actions["compare"].isChecked():
            self._show_original(self.window.session.state)

    def _photo_of(self, state: EditState) -> np.ndarray | None:
        """The aligned photo when ``state`` shows its projection."""
        panel = self.window.projection_panel
        result, photo = panel.result, panel.photo
        if result is None or photo is None or photo.aligned is None:
            return None
        return np.asarray(photo.aligned.image) if state.base_ws is result.ws else None

    def _show_original(self, state: EditState) -> None:
        photo = self._photo_of(state)
        if photo is not None:
            self._original_key = ("photo", id(photo))
            self.canvas.set_compare(photo, ("Photo", "Edited"))
            return
        generator = self.window.session.generator
        key = ("latent", state.seed, id(state.base_ws), state.truncation_psi, id(generator))
        if generator is None or key == self._original_key:
            return
        self._original_key = key
        if self._original_job is not None and self._original_job.is_running:
            self._original_job.request_stop()
        unedited = reset_edits(state)
        job = Job("Could not render the unedited picture", render_states, generator, [unedited])
        job.succeeded.connect(lambda results, k=key: self._on_original_rendered(k, results))
        self._original_job = job
        self.window.jobs.submit(job)

    def _on_original_rendered(self, key: tuple, results: list[RenderResult]) -> None:
        if key == self._original_key and self.actions["compare"].isChecked() and results:
            self.canvas.set_compare(results[0].rgb, ("Unedited", "Edited"))
