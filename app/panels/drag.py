"""The Drag tool: DragGAN-style point dragging on the canvas, run in the background.

While this panel is shown the canvas takes clicks as handle -> target pairs (or mask strokes).
Start drags the picture on screen (edits included) with the session's generator, which after
pivotal tuning is the tuned one; every step shows the image and the tracked points. The result,
or the last step when stopped, becomes one undo entry whose latent has the edits baked in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import ErrorReport, show_error
from app.widgets.drag_overlay import BRUSH, ERASE, POINTS, DragTool
from app.workers import Job
from editors.drag import DragProgress, DragResult, DragSettings, drag

if TYPE_CHECKING:
    from app.session import Session
    from app.widgets.image_view import ImageView
    from app.workers import JobRegistry
    from editors.state import EditState
    from models.generator import Generator

HELP = (
    "Click a point to move, then where it should go (right click: undo a point). "
    "Optionally brush the region that may change; the rest is held (unbrushed, what lies far "
    "from the points stays)."
)


class DragPanel(QWidget):
    """Handle/target points, an optional mask, Start/Stop and the drag's progress."""

    def __init__(
        self, session: Session, jobs: JobRegistry, canvas: ImageView, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("dragPanel")
        self.session = session
        self.jobs = jobs
        self.canvas = canvas
        self.tool = DragTool(self)
        self.job: Job | None = None
        self._start_state: EditState | None = None
        self._outcome_shown = False  # the last drag's outcome stays until the points change

        help_label = QLabel(HELP)
        help_label.setWordWrap(True)
        self.mode_buttons = QButtonGroup(self)
        mode_row = QHBoxLayout()
        for mode, text in ((POINTS, "Points"), (BRUSH, "Mask brush"), (ERASE, "Erase mask")):
            button = QPushButton(text)
            button.setObjectName(f"dragMode:{mode}")
            button.setCheckable(True)
            button.setChecked(mode == POINTS)
            button.clicked.connect(lambda _checked=False, m=mode: self.set_mode(m))
            self.mode_buttons.addButton(button)
            mode_row.addWidget(button)
        self.brush_spin = QSpinBox()
        self.brush_spin.setObjectName("dragBrushSpin")
        self.brush_spin.setRange(1, 256)
        self.brush_spin.setValue(4)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.valueChanged.connect(self._on_brush_changed)
        self.steps_spin = QSpinBox()
        self.steps_spin.setObjectName("dragStepsSpin")
        self.steps_spin.setRange(1, 2000)
        self.steps_spin.setValue(DragSettings().max_steps)
        self.steps_spin.setToolTip("The drag stops earlier when every point has arrived")
        form = QFormLayout()
        form.addRow("Brush", self.brush_spin)
        form.addRow("Most steps", self.steps_spin)

        self.clear_points_button = QPushButton("Clear points")
        self.clear_points_button.setObjectName("dragClearPoints")
        self.clear_points_button.clicked.connect(self.tool.clear_points)
        self.clear_mask_button = QPushButton("Clear mask")
        self.clear_mask_button.setObjectName("dragClearMask")
        self.clear_mask_button.clicked.connect(self.tool.clear_mask)
        clear_row = QHBoxLayout()
        clear_row.addWidget(self.clear_points_button)
        clear_row.addWidget(self.clear_mask_button)
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("dragStart")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("dragStop")
        self.stop_button.clicked.connect(self.stop)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.stop_button)
        self.status = QLabel("")
        self.status.setObjectName("dragStatus")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(help_label)
        layout.addLayout(mode_row)
        layout.addLayout(form)
        layout.addLayout(clear_row)
        layout.addLayout(run_row)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.tool.changed.connect(self._on_tool_changed)
        session.generator_changed.connect(self._on_session_generator_changed)
        if session.generator is not None:
            self._on_session_generator_changed(session.generator)
        self.refresh()

    # -- canvas tool --------------------------------------------------------------------------
    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        self.canvas.set_tool(self.tool)

    def hideEvent(self, event: object) -> None:
        super().hideEvent(event)  # type: ignore[arg-type]
        if self.canvas.tool() is self.tool:
            self.canvas.set_tool(None)

    def set_mode(self, mode: str) -> None:
        """Place points (``POINTS``), paint the mask (``BRUSH``) or rub it out (``ERASE``)."""
        self.tool.mode = mode
        for button in self.mode_buttons.buttons():
            button.setChecked(button.objectName() == f"dragMode:{mode}")

    def _on_brush_changed(self, value: int) -> None:
        self.tool.brush_radius = float(value)

    def _on_tool_changed(self) -> None:
        if not self.busy():
            self._outcome_shown = False
        self.canvas.update()
        self.refresh()

    def _on_session_generator_changed(self, generator: Generator) -> None:
        self.tool.set_resolution(generator.resolution)
        self.brush_spin.setValue(max(1, generator.resolution // 16))
        self.refresh()

    # -- running ------------------------------------------------------------------------------
    def busy(self) -> bool:
        """True while a drag runs."""
        return self.job is not None and self.job.is_running

    def refresh(self) -> None:
        handles, _targets = self.tool.pairs()
        running = self.busy()
        self.start_button.setEnabled(
            not running and bool(handles) and self.session.generator is not None
        )
        self.stop_button.setEnabled(running)
        self.tool.enabled = not running
        for widget in (self.clear_points_button, self.clear_mask_button, self.steps_spin):
            widget.setEnabled(not running)
        if not running and not self._outcome_shown:
            waiting = len(self.tool.handles) > len(self.tool.targets)
            count = len(handles)
            self.status.setText(
                "Click where this point should go."
                if waiting
                else f"{count} point{'s' if count != 1 else ''} to drag."
                if count
                else ""
            )

    def start(self) -> Job | None:
        """Drag the current picture's handles to their targets in the background."""
        generator = self.session.generator
        frame = self.session.last_frame
        handles, targets = self.tool.pairs()
        if self.busy() or generator is None or not handles:
            return None
        if frame is None:
            show_error(self, ErrorReport("Cannot drag", "Wait for the picture to be drawn."))
            return None
        state = self.session.state
        self._start_state = frame.result.state or state
        noise_mode = state.noise_mode if state.noise_mode != "random" else "const"
        job = Job(
            "Could not drag the points",
            drag,
            generator,
            frame.result.ws,
            handles,
            targets,
            mask=self.tool.mask,
            steps=self.steps_spin.value(),
            noise_mode=noise_mode,
            noise_strength=state.noise_strength,
        )
        job.progressed.connect(self._on_job_progressed)
        job.succeeded.connect(self._finish)
        job.cancelled.connect(self._on_job_cancelled)
        job.failed.connect(self._on_job_failed)
        job.done.connect(self.refresh)
        self.job = job
        self.status.setText("Starting…")
        self.jobs.submit(job)
        self.refresh()
        return job

    def stop(self) -> None:
        """Stop after the current step, keeping what it reached."""
        if self.job is not None:
            self.job.request_stop()

    def _on_job_progressed(self, progress: object) -> None:
        if not isinstance(progress, DragProgress):
            return
        if progress.preview is not None:
            self.canvas.set_rgb(progress.preview)
        self.tool.set_tracked(progress.points)
        distance = progress.metrics.get("distance", 0.0)
        self.status.setText(f"Step {progress.step}: {distance:.1f} px to go.")

    def _on_job_cancelled(self, partial: object) -> None:
        if isinstance(partial, DragResult) and partial.steps > 0:
            self._finish(partial, stopped=True)
        else:
            self.tool.set_tracked(())
            self.status.setText("Stopped before the first step.")
            self._outcome_shown = True
            self.session.request_render()

    def _on_job_failed(self, report: ErrorReport) -> None:
        self.tool.set_tracked(())
        self.status.setText(report.message)
        self._outcome_shown = True
        show_error(self, report)

    def _finish(self, result: DragResult, stopped: bool = False) -> None:
        before = self._start_state or self.session.state
        # The drag optimised the latent on screen, edits included: they are now part of it.
        after = before.replace(
            base_ws=result.ws, attribute_amounts={}, component_amounts={}, mix=None
        )
        count = len(result.points)
        self.session.propose(after, f"Drag {count} point{'s' if count != 1 else ''}")
        self.session.seal()
        self.tool.move_handles_to(result.points)
        verb = "Stopped" if stopped else "Dragged"
        how = "" if stopped or result.arrived else " (not all points arrived)"
        self.status.setText(f"{verb} after {result.steps} steps{how}.")
        self._outcome_shown = True
        self.refresh()
