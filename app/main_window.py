"""The main window: canvas, sampling controls, menus and status bar."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from app.canvas_controls import CanvasControls
from app.dialogs.export_video import IMAGE_FILTER, ExportVideoDialog, export_image_job
from app.dialogs.model_manager import ModelManagerDialog, open_model_manager
from app.errors import ErrorReport, show_error
from app.panels.attributes import AttributesPanel
from app.panels.components import ComponentsPanel
from app.panels.drag import DragPanel
from app.panels.history import HistoryPanel
from app.panels.layers import LayersPanel
from app.panels.mixing import MixingPanel
from app.panels.projection import PHOTO_FILTER, PHOTO_SUFFIXES, ProjectionPanel
from app.panels.stylespace import install as install_local_editing
from app.panels.welcome import WelcomePanel
from app.render_service import RenderedFrame, RenderService
from app.sample_bar import SampleBar
from app.session import Session
from app.settings import AppSettings
from app.shortcuts import apply_shortcuts
from app.theme import apply_dark_theme
from app.unsaved import UnsavedEditsGuard
from app.widgets.image_view import ImageView
from app.window_panels import PanelHostMixin
from app.workers import Job, JobRegistry
from editors.images import save_rgb
from editors.session_io import SESSION_FILTER, SESSION_SUFFIX
from editors.state import EditState
from models.formats import load_generator_job
from models.runtime import device_label

if TYPE_CHECKING:
    from models.generator import Generator

log = logging.getLogger(__name__)

CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.pt *.pth *.pkl *.ckpt);;All files (*)"


class MainWindow(PanelHostMixin, QMainWindow):
    """The application window."""

    model_loaded = Signal(object)  # Generator, once it renders in this window
    model_failed = Signal(object)  # ErrorReport

    def __init__(self, device: str | None = None, settings: AppSettings | None = None) -> None:
        super().__init__()
        apply_dark_theme(QApplication.instance())
        self.setObjectName("mainWindow")
        self.setWindowTitle("Latent Studio")
        self.setAcceptDrops(True)
        self.device = device
        self.settings = settings or AppSettings()
        self.jobs = JobRegistry(self)
        self.render_service = RenderService(self)
        self.session = Session(self.render_service, self)
        self._load_job: Job | None = None
        self._pending_model_path: Path | None = None
        self.model_manager: ModelManagerDialog | None = None  # created on first use

        self.canvas = ImageView()
        self.canvas.setObjectName("canvas")
        self.canvas.set_placeholder("Loading…")
        self.welcome = WelcomePanel()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.canvas)
        self.setCentralWidget(self.stack)

        self._build_sample_toolbar()
        self._build_docks()
        self._build_status_bar()
        self.actions_by_name = self._build_menus()
        self.canvas_controls = CanvasControls(self, self.menus["&View"], self.sample_bar)
        self.actions_by_name.update(self.canvas_controls.actions)
        self.statusBar().addPermanentWidget(self.canvas_controls.zoom_label)
        self._build_editing()
        self._build_projection()
        self._set_model_controls_enabled(False)
        self.unsaved_guard = UnsavedEditsGuard(self)

        self.welcome.open_model_requested.connect(self.choose_model)
        self.welcome.get_models_requested.connect(self.show_model_manager)
        self.welcome.open_demo_requested.connect(self.open_demo)
        self.canvas.files_dropped.connect(self._on_canvas_files_dropped)
        self.session.generator_changed.connect(self._on_session_generator_changed)
        self.session.frame_ready.connect(self._on_session_frame_ready)
        self.render_service.failed.connect(self._on_render_service_failed)

        initial = EditState(truncation_psi=self.settings.truncation_psi)
        self.session.set_starting_state(initial)
        geometry = self.settings.window_geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 820)
            # The canvas gets the room; the panels start at a comfortable reading width.
            self.resizeDocks(
                [self.history_dock, self.panel_dock], [230, 470], Qt.Orientation.Horizontal
            )

    # -- construction -----------------------------------------------------------------------
    def _build_sample_toolbar(self) -> None:
        self.sample_bar = SampleBar(self.session, self.settings, self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.sample_bar)
        bar = self.sample_bar
        self.seed_spin, self.random_button = bar.seed_spin, bar.random_button
        self.truncation_slider, self.truncation_label = bar.truncation_slider, bar.truncation_label

    def _build_menus(self) -> dict[str, QAction]:
        actions: dict[str, QAction] = {}

        def add(menu_name: str, key: str, text: str, slot: object) -> QAction:
            action = QAction(text, self)
            action.setObjectName(f"action:{key}")
            apply_shortcuts(action, key)
            action.triggered.connect(slot)
            menus[menu_name].addAction(action)
            actions[key] = action
            return action

        menu_bar = self.menuBar()
        menus = {
            name: menu_bar.addMenu(name)
            for name in ("&File", "&Edit", "&View", "&Tools", "&Train", "&Help")
        }
        add("&File", "openModel", "&Open model…", self.choose_model)
        add("&File", "getModels", "&Get models…", self.show_model_manager)
        self.recent_menu = menus["&File"].addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        add("&File", "saveImage", "&Save image…", self.choose_image_destination)
        menus["&File"].addSeparator()
        add("&File", "quit", "&Quit", self.close)

        undo = self.session.undo_stack.createUndoAction(self, "&Undo")
        apply_shortcuts(undo, "undo")
        undo.setObjectName("action:undo")
        redo = self.session.undo_stack.createRedoAction(self, "&Redo")
        apply_shortcuts(redo, "redo")
        redo.setObjectName("action:redo")
        menus["&Edit"].addAction(undo)
        menus["&Edit"].addAction(redo)
        actions["undo"], actions["redo"] = undo, redo
        menus["&Edit"].addSeparator()
        add("&Edit", "randomSeed", "Random &seed", self.random_seed)

        self.panel_dock.toggleViewAction().setText("&Tools panel")
        menus["&View"].addAction(self.panel_dock.toggleViewAction())
        add("&Train", "trainNew", "&New…", self.show_train_wizard)
        add("&Train", "trainRuns", "&Runs…", self.show_training_runs)
        add("&Help", "help", "&Getting started and shortcuts…", self.show_help)
        add("&Help", "about", "&About Latent Studio", self.show_about)
        self.menus = menus
        return actions

    # -- training -----------------------------------------------------------------------------
    def show_train_wizard(self) -> QWidget:
        """Train > New…: the training wizard (the run itself is a separate process)."""
        from app.wizards.train_wizard import open_train_wizard

        return open_train_wizard(self)

    def show_training_runs(self) -> QWidget:
        """Train > Runs…: running and past training runs."""
        from app.wizards.train_wizard import open_runs_dialog

        return open_runs_dialog(self)

    # -- model loading ----------------------------------------------------------------------
    def show_model_manager(self) -> ModelManagerDialog:
        """Show File > Get models… (one dialog per window, so downloads survive closing it)."""
        if self.model_manager is None:
            self.model_manager = open_model_manager(self, self.jobs, None)
            self.model_manager.open_requested.connect(self.open_model)
        else:
            open_model_manager(self, self.jobs, self.model_manager)
        return self.model_manager

    def open_demo(self) -> Job | None:
        """Open the built-in demo model (None when it is not installed)."""
        from models import default_model_path

        path = default_model_path()
        return self.open_model(path) if path is not None else None

    def choose_model(self) -> None:
        """Ask for a checkpoint file and open it."""
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", CHECKPOINT_FILTER)
        if path:
            self.open_model(Path(path))

    def open_model(self, path: str | Path) -> Job:
        """Load ``path`` in the background; the current model stays usable until it succeeds."""
        path = Path(path)
        if self._load_job is not None and self._load_job.is_running:
            self._load_job.request_stop()
        job = Job(f"Could not open model {path.name}", load_generator_job, path, self.device)
        job.succeeded.connect(self._on_load_job_succeeded)
        job.failed.connect(self._on_load_job_failed)
        job.cancelled.connect(self._on_load_job_cancelled)
        job.done.connect(self._on_load_job_done)
        self._load_job = job
        self._pending_model_path = path
        self.busy_bar.show()
        self.statusBar().showMessage(f"Loading {path.name}…")
        if self.session.generator is None:
            self.canvas.set_placeholder(f"Loading {path.name}…")
        return self.jobs.submit(job)

    def _on_load_job_succeeded(self, generator: Generator) -> None:
        if self.sender() is not self._load_job:
            return  # superseded by a later request
        if self._pending_model_path is not None:
            self.settings.add_recent_model(str(self._pending_model_path))
        self.session.set_generator(generator)

    def _on_load_job_failed(self, report: ErrorReport) -> None:
        if self.sender() is not self._load_job:
            return
        self.statusBar().showMessage(report.message, 10000)
        if self.session.generator is None:
            self.stack.setCurrentWidget(self.welcome)
            self.welcome.show_problem(report.message)
        self.model_failed.emit(report)
        show_error(self, report)

    def _on_load_job_cancelled(self, _partial: object) -> None:
        if self.sender() is not self._load_job:
            return
        self.statusBar().showMessage("Loading cancelled", 5000)
        if self.session.generator is None:
            self.stack.setCurrentWidget(self.welcome)

    def _on_load_job_done(self) -> None:
        if self.sender() is self._load_job:
            self.busy_bar.hide()

    def _on_session_generator_changed(self, generator: Generator) -> None:
        self.stack.setCurrentWidget(self.canvas)
        self.welcome.show_problem("")
        self.status_model.setText(generator.name or "model")
        self.status_model.setToolTip(
            str(generator.source.path) if generator.source and generator.source.path else ""
        )
        self.status_resolution.setText(f"{generator.resolution}×{generator.resolution}")
        self.status_device.setText(device_label(generator.device))
        self.statusBar().showMessage(f"Opened {generator.name}", 5000)
        self.setWindowTitle(f"{generator.name} — Latent Studio")
        self._set_model_controls_enabled(True)
        self.model_loaded.emit(generator)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_models
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_model(Path(p)))

    # -- sampling controls ------------------------------------------------------------------
    def random_seed(self) -> None:
        """Jump to a random seed."""
        self.sample_bar.random_seed()

    def _set_model_controls_enabled(self, enabled: bool) -> None:
        self.sample_bar.set_model_controls_enabled(enabled)
        self.canvas_controls.set_enabled(enabled)
        for key in ("saveImage", "randomSeed"):
            self.actions_by_name[key].setEnabled(enabled)

    # -- frames -----------------------------------------------------------------------------
    def _on_session_frame_ready(self, frame: RenderedFrame) -> None:
        self.canvas.set_rgb(frame.result.rgb)
        suffix = " (preview)" if frame.result.draft else ""
        if frame.result.interpolated:
            suffix = " (interpolated preview)"
        self.status_render.setText(f"{frame.result.render_ms:.0f} ms{suffix}")

    def _on_render_service_failed(self, report: ErrorReport) -> None:
        self.statusBar().showMessage(f"{report.title}: {report.message}", 10000)
        show_error(self, report)

    # -- files ------------------------------------------------------------------------------
    def choose_image_destination(self) -> None:
        """Ask where to save the current image and save it."""
        if self.session.last_frame is None:
            return
        seed = self.session.state.seed
        suggestion = f"seed{seed:04d}.png" if seed is not None else "image.png"
        path, _ = QFileDialog.getSaveFileName(
            self, "Save image", suggestion, "PNG (*.png);;JPEG (*.jpg *.jpeg)"
        )
        if path:
            self.save_image(Path(path))

    def save_image(self, path: Path) -> bool:
        """Write the image on screen to ``path`` (atomically); report failures in a message box."""
        frame = self.session.last_frame
        if frame is None:
            return False
        try:
            save_rgb(frame.result.rgb, path)
        except (OSError, ValueError) as exc:
            show_error(self, ErrorReport.from_exception("Could not save the image", exc))
            return False
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _on_canvas_files_dropped(self, paths: list[Path]) -> None:
        self.open_dropped_file(paths[0])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_dropped_file(paths[0])

    def open_dropped_file(self, path: Path) -> None:
        """Open a file dropped on the window: photos are projected, anything else opens as a model.

        Decided by content: a recognised checkpoint container wins, then anything Pillow reads;
        a damaged file with a photo extension goes to projection too, whose error names it.
        """
        from editors.images import is_image_file
        from models.errors import CheckpointError
        from models.formats import Container, sniff_container

        if not self._is_openable(path, f"Could not open {path.name}"):
            return
        try:
            is_checkpoint = sniff_container(path) is not Container.UNKNOWN
        except CheckpointError:
            is_checkpoint = False  # missing or unreadable: open_model reports it
        photo_suffix = path.suffix.lower() in PHOTO_SUFFIXES
        try:
            is_photo = not is_checkpoint and (photo_suffix or is_image_file(path))
        except Exception:  # an unreadable file is no photo; open_model names the problem
            is_photo = False
        if is_photo:
            self.open_photo(path)
        else:
            self.open_model(path)

    def _is_openable(self, path: Path, title: str) -> bool:
        """False (after saying why) for a FIFO, device or socket: opening one would block."""
        from models.formats.limits import LimitError, require_regular_file

        try:
            if path.exists() and not path.is_dir():
                require_regular_file(path)
        except (LimitError, OSError) as exc:
            show_error(self, ErrorReport(title, f"{path}: {exc}"))
            return False
        return True

    # -- photos and latents -----------------------------------------------------------------
    def _build_projection(self) -> None:
        """The Projection tab and File > Open photo… / Open latent…."""
        self.projection_panel = ProjectionPanel(self.session, self.jobs)
        self.add_panel(self.projection_panel, "Projection", "mdi6.face-recognition")
        self.projection_panel.compare_changed.connect(self._on_projection_compare_changed)
        self.model_loaded.connect(lambda _generator: self.projection_panel.refresh())
        file_menu = self.menus["&File"]
        before = self.actions_by_name["saveImage"]
        for key, text, slot in (
            ("openPhoto", "Open &photo…", self.choose_photo),
            ("openLatent", "Open &latent…", self.choose_latent),
        ):
            action = QAction(text, self)
            action.setObjectName(f"action:{key}")
            apply_shortcuts(action, key)
            action.triggered.connect(slot)
            file_menu.insertAction(before, action)
            self.actions_by_name[key] = action

    def choose_photo(self) -> None:
        """Ask for a photo and project it."""
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", "", PHOTO_FILTER)
        if path:
            self.open_photo(Path(path))

    def open_photo(self, path: Path) -> Job | None:
        """Show the Projection tab and align then project ``path`` in the background."""
        if not self._is_openable(Path(path), "Could not open the photo"):
            return None
        self.panel_tabs.setCurrentWidget(self.projection_panel)
        self.panel_dock.show()
        return self.projection_panel.open_photo(path)

    def _on_projection_compare_changed(self, target: object) -> None:
        # The panel's buttons flip the canvas to the photo (blink compare); View > Compare
        # shows the two side by side.
        if target is not None:
            self.canvas.set_rgb(target)
        elif self.session.last_frame is not None:
            self.canvas.set_rgb(self.session.last_frame.result.rgb)

    def choose_latent(self) -> None:
        """Ask for a latent file (.npz, rosinality .pt) and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open latent", "", "Latents (*.npz *.pt);;All files (*)"
        )
        if path:
            self.open_latent(Path(path))

    def open_latent(self, path: Path) -> bool:
        """Make a saved latent the current image, as one undoable step; False on failure."""
        from editors.latent_io import load_latent

        generator = self.session.generator
        if generator is None:
            show_error(self, ErrorReport("Could not open the latent", "Open a model first."))
            return False
        try:
            ws = load_latent(path).fitted(generator.num_ws, generator.w_dim)
        except Exception as exc:  # a file-opening edge: every failure is a message
            show_error(self, ErrorReport.from_exception("Could not open the latent", exc))
            return False
        self.session.propose(
            self.session.state.replace(base_ws=ws, seed=None), f"Latent {path.name}"
        )
        self.session.seal()
        return True

    # -- editing studio ---------------------------------------------------------------------
    def _build_editing(self) -> None:
        """Editing panels (right tabs, history on the left) and their menu entries."""
        self.attributes_panel = AttributesPanel(self.session, self.jobs)
        self.mixing_panel = MixingPanel(self.session, self.jobs)
        self.components_panel = ComponentsPanel(self.session, self.jobs)
        self.layers_panel = LayersPanel(self.session)
        self.add_panel(self.attributes_panel, "Attributes", "mdi6.tune-variant")
        self.add_panel(self.mixing_panel, "Style mixing", "mdi6.palette-swatch-variant")
        self.add_panel(self.components_panel, "Components", "mdi6.chart-scatter-plot")
        self.add_panel(self.layers_panel, "Layers && noise", "mdi6.layers-outline")
        self.drag_panel = DragPanel(self.session, self.jobs, self.canvas)
        self.add_panel(self.drag_panel, "Drag", "mdi6.cursor-move")
        install_local_editing(self)  # Style space, Masks and Inspect tools
        self.history_panel = HistoryPanel(self.session, self.jobs)
        self.history_dock = self.add_side_panel(self.history_panel, "History", "historyDock")
        self.history_dock.toggleViewAction().setText("&History panel")
        self.menus["&View"].addAction(self.history_dock.toggleViewAction())
        self.export_video_dialog: ExportVideoDialog | None = None
        file_menu, edit_menu = self.menus["&File"], self.menus["&Edit"]
        quit_action = self.actions_by_name["quit"]
        entries = (
            (file_menu, "openSession", "Open &session…", self.choose_session_to_open),
            (file_menu, "saveSession", "Save s&ession…", self.choose_session_destination),
            (file_menu, "exportImage", "&Export image…", self.choose_export_image_destination),
            (file_menu, "exportVideo", "Export &video…", self.open_export_video_dialog),
            (edit_menu, "resetEdits", "Reset &edits", self.session.reset_edits),
        )
        for menu, key, text, slot in entries:
            action = QAction(text, self)
            action.setObjectName(f"action:{key}")
            apply_shortcuts(action, key)
            action.triggered.connect(slot)
            if menu is file_menu:
                menu.insertAction(quit_action, action)
            else:
                menu.addAction(action)
            self.actions_by_name[key] = action
        file_menu.insertSeparator(quit_action)
        self.model_loaded.connect(lambda _generator: self._set_editing_actions_enabled(True))
        self._set_editing_actions_enabled(False)

    def _set_editing_actions_enabled(self, enabled: bool) -> None:
        for key in ("openSession", "saveSession", "exportImage", "exportVideo", "resetEdits"):
            self.actions_by_name[key].setEnabled(enabled)

    def choose_session_destination(self) -> None:
        """Ask where to save the session and save it."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save session", f"edit{SESSION_SUFFIX}", SESSION_FILTER
        )
        if path:
            self.save_session(Path(path))

    def save_session(self, path: Path) -> bool:
        """Save latents, edits, directions and the model reference to ``path``."""
        try:
            self.session.save_to(path)
        except (OSError, ValueError) as exc:
            show_error(self, ErrorReport.from_exception("Could not save the session", exc))
            return False
        self.statusBar().showMessage(f"Saved session {path}", 5000)
        return True

    def choose_session_to_open(self) -> None:
        """Ask for a session file and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open session", "", f"{SESSION_FILTER};;All files (*)"
        )
        if path:
            self.open_session(Path(path))

    def open_session(self, path: Path) -> bool:
        """Open a session file; on any problem the current work stays as it is."""
        try:
            self.session.open_from(path)
        except Exception as exc:  # a file-opening edge: every failure is a message
            show_error(self, ErrorReport.from_exception("Could not open the session", exc))
            return False
        self.statusBar().showMessage(f"Opened session {path.name}", 5000)
        return True

    def choose_export_image_destination(self) -> None:
        """Ask where to export the full-resolution picture and export it."""
        path, _ = QFileDialog.getSaveFileName(self, "Export image", "edit.png", IMAGE_FILTER)
        if path:
            self.export_image(Path(path))

    def export_image(self, path: Path) -> Job | None:
        """Render the current state at full resolution in the background and save it."""
        job = export_image_job(self.session, path)
        if job is None:
            return None
        job.succeeded.connect(lambda saved: self.statusBar().showMessage(f"Exported {saved}", 5000))
        job.failed.connect(lambda report: show_error(self, report))
        return self.jobs.submit(job)

    def open_export_video_dialog(self) -> ExportVideoDialog:
        """Show the video export dialog."""
        if self.export_video_dialog is None:
            self.export_video_dialog = ExportVideoDialog(self.session, self.jobs, self)
        self.export_video_dialog.refresh()
        self.export_video_dialog.show()
        return self.export_video_dialog

    # -- misc -------------------------------------------------------------------------------
    def show_help(self) -> QWidget:
        """Help > Getting started and shortcuts (the table is read from the live actions)."""
        from app.dialogs.help import HelpDialog

        actions = [a for menu in self.menus.values() for a in menu.actions() if not a.isSeparator()]
        dialog = HelpDialog(actions, self)
        dialog.show()
        return dialog

    def show_about(self) -> QWidget:
        """Show the About box (with the demo model's licence)."""
        from app.dialogs.help import show_about_box

        return show_about_box(self)

    def shutdown(self) -> None:
        """Stop background work (jobs, render thread) before the window goes away."""
        self.jobs.close()
        self.render_service.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.unsaved_guard.may_close():
            event.ignore()  # the guard asks whether to save and closes again when answered
            return
        self.settings.window_geometry = self.saveGeometry()
        self.settings.sync()
        self.shutdown()
        super().closeEvent(event)
