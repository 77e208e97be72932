"""The Masks tool: paint a mask on the canvas and limit an attribute slider to it.

Each masked edit (mask, attribute, amount, feather, blend block) is one entry of the edit state's
stack: entries stack on each other without changing the ones below, and every change is one
undo step saved with the session. A mask that is empty or lies off the face is refused with a
hint instead of doing nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.panels.rows import drag_slider
from app.widgets.mask_brush import MaskBrush
from editors.masks import MaskedEdit, MaskError, check_mask
from editors.regions import face_landmarks, hull_mask
from editors.state import EditState, with_masked

if TYPE_CHECKING:
    from app.render_service import RenderedFrame
    from app.session import Session
    from app.widgets.image_view import ImageView
    from models.generator import Generator

STEPS_PER_SIGMA = 10
MAX_SIGMA = 4


class MasksPanel(QWidget):
    """Brush settings, the attribute for the next masked edit, and the stack of masked edits."""

    def __init__(self, session: Session, canvas: ImageView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("masksPanel")
        self.session = session
        self.canvas = canvas
        self.brush = MaskBrush(parent=self)
        canvas.installEventFilter(self.brush)

        self.paint_button = QPushButton("Paint mask")
        self.paint_button.setObjectName("paintMaskButton")
        self.paint_button.setCheckable(True)
        self.paint_button.setToolTip(
            "Left button paints, right button erases, the wheel sizes the brush"
        )
        self.paint_button.toggled.connect(self._on_paint_toggled)
        self.erase_check = QCheckBox("Erase")
        self.erase_check.setObjectName("eraseCheck")
        self.erase_check.toggled.connect(lambda on: setattr(self.brush, "erase", on))
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clearMaskButton")
        self.clear_button.clicked.connect(self.brush.clear)
        self.size_spin = QDoubleSpinBox()
        self.size_spin.setObjectName("brushSizeSpin")
        self.size_spin.setRange(0.5, 256.0)
        self.size_spin.setValue(self.brush.radius)
        self.size_spin.valueChanged.connect(self.brush.set_radius)
        self.brush.radius_changed.connect(self._on_brush_radius_changed)
        self.feather_spin = QDoubleSpinBox()
        self.feather_spin.setObjectName("featherSpin")
        self.feather_spin.setRange(0.0, 64.0)
        self.feather_spin.setValue(2.0)
        self.block_combo = QComboBox()
        self.block_combo.setObjectName("blendBlockCombo")
        self.block_combo.setToolTip(
            "Where the edit is blended inside the generator: coarser blocks give softer seams"
        )

        self.attribute_combo = QComboBox()
        self.attribute_combo.setObjectName("maskAttributeCombo")
        self.amount_slider = drag_slider(
            session,
            "maskAmountSlider",
            -MAX_SIGMA * STEPS_PER_SIGMA,
            MAX_SIGMA * STEPS_PER_SIGMA,
            self._on_amount_moved,
            value=2 * STEPS_PER_SIGMA,
        )
        self.amount_label = QLabel("+2.0σ")
        self.add_button = QPushButton("Add masked edit")
        self.add_button.setObjectName("addMaskedEditButton")
        self.add_button.clicked.connect(self.add_masked_edit)
        self.hint = QLabel("")
        self.hint.setObjectName("maskHint")
        self.hint.setWordWrap(True)
        self.stack_list = QListWidget()
        self.stack_list.setObjectName("maskedEditList")
        self.stack_list.currentRowChanged.connect(self._on_row_selected)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("removeMaskedEditButton")
        self.remove_button.clicked.connect(self._on_remove_clicked)

        form = QFormLayout()
        brush_row = QHBoxLayout()
        for widget in (self.paint_button, self.erase_check, self.clear_button):
            brush_row.addWidget(widget)
        form.addRow(brush_row)
        form.addRow("Brush radius (px)", self.size_spin)
        form.addRow("Feather (px)", self.feather_spin)
        form.addRow("Blend at", self.block_combo)
        form.addRow("Attribute", self.attribute_combo)
        amount_row = QHBoxLayout()
        amount_row.addWidget(self.amount_slider, 1)
        amount_row.addWidget(self.amount_label)
        form.addRow("Amount", amount_row)
        form.addRow(self.add_button)
        form.addRow(self.hint)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Masked edits (bottom first)"))
        layout.addWidget(self.stack_list, 1)
        layout.addWidget(self.remove_button)

        session.generator_changed.connect(self._on_generator_changed)
        session.state_changed.connect(self._on_state_changed)
        session.frame_ready.connect(self._on_frame_ready)
        if session.generator is not None:
            self._on_generator_changed(session.generator)

    # -- brush --------------------------------------------------------------------------------
    def _on_paint_toggled(self, on: bool) -> None:
        if on:
            self.canvas.set_tool(self.brush)
        elif self.canvas.tool() is self.brush:
            self.canvas.set_tool(None)

    def _on_brush_radius_changed(self, radius: float) -> None:
        with QSignalBlocker(self.size_spin):
            self.size_spin.setValue(radius)

    def _on_frame_ready(self, frame: RenderedFrame) -> None:
        if not frame.result.draft:
            self.brush.set_size(frame.result.rgb.shape[0])

    # -- model and state ----------------------------------------------------------------------
    def _on_generator_changed(self, generator: Generator) -> None:
        self.brush.set_size(generator.resolution)
        with QSignalBlocker(self.block_combo):
            self.block_combo.clear()
            resolutions = list(getattr(generator, "block_resolutions", lambda: [])())
            for resolution in resolutions:
                self.block_combo.addItem(f"{resolution} px block", resolution)
            middle = [r for r in resolutions if r >= 16]
            if middle:
                self.block_combo.setCurrentIndex(resolutions.index(middle[0]))
        self.setEnabled(hasattr(generator, "style_layers"))

    def _on_state_changed(self, state: EditState) -> None:
        names = state.directions.names if state.directions is not None else ()
        if (
            tuple(self.attribute_combo.itemText(i) for i in range(self.attribute_combo.count()))
            != names
        ):
            with QSignalBlocker(self.attribute_combo):
                self.attribute_combo.clear()
                self.attribute_combo.addItems(names)
        row = self.stack_list.currentRow()
        with QSignalBlocker(self.stack_list):
            self.stack_list.clear()
            for edit in state.masked:
                self.stack_list.addItem(describe(edit, state))
            if 0 <= row < self.stack_list.count():
                self.stack_list.setCurrentRow(row)

    def _amount(self) -> float:
        return self.amount_slider.value() / STEPS_PER_SIGMA

    def _edit_for(self, name: str, mask: np.ndarray) -> MaskedEdit:
        state = self.session.state
        assert state.directions is not None
        return MaskedEdit(
            mask,
            feather=self.feather_spin.value(),
            block_resolution=int(self.block_combo.currentData() or 16),
            attribute_amounts={name: self._amount() * state.directions[name].scale},
            label=name,
        )

    def add_masked_edit(self) -> bool:
        """Add the painted mask with the chosen attribute as a new masked edit (one undo step).

        Returns False (and shows why) when the mask is empty or off the face, or nothing is chosen.
        """
        state = self.session.state
        name = self.attribute_combo.currentText()
        if state.directions is None or not name:
            self.hint.setText("Load attribute directions first: the masked edit moves one of them.")
            return False
        try:
            check_mask(self.brush.mask, self._face_map())
        except MaskError as exc:
            self.hint.setText(str(exc).capitalize() + ".")
            return False
        self.hint.setText("")
        edit = self._edit_for(name, self.brush.mask)
        self.session.propose(with_masked(state, (*state.masked, edit)), f"Masked {name}")
        self.session.seal()
        self.stack_list.setCurrentRow(self.stack_list.count() - 1)
        return True

    def _face_map(self) -> np.ndarray | None:
        frame = self.session.last_frame
        if frame is None or frame.result.rgb.shape[0] != self.brush.mask.shape[0]:
            return None
        landmarks = face_landmarks(frame.result.rgb)
        if landmarks is None:
            return None  # no face to check against: accept any painted mask
        return hull_mask(landmarks, self.brush.mask.shape) | _above_face(landmarks, self.brush.mask)

    def _on_amount_moved(self, value: int) -> None:
        self.amount_label.setText(f"{value / STEPS_PER_SIGMA:+.1f}σ")
        row = self.stack_list.currentRow()
        state = self.session.state
        if not 0 <= row < len(state.masked) or state.directions is None:
            return
        old = state.masked[row]
        name = old.label if old.label in state.directions else self.attribute_combo.currentText()
        if not name:
            return
        amounts = {name: self._amount() * state.directions[name].scale}
        new = MaskedEdit(
            old.mask, old.feather, old.block_resolution, amounts, old.style_amounts, old.label
        )
        masked = (*state.masked[:row], new, *state.masked[row + 1 :])
        self.session.propose(with_masked(state, masked), f"Masked {name}", f"masked:{row}")

    def _on_row_selected(self, row: int) -> None:
        state = self.session.state
        if 0 <= row < len(state.masked) and state.directions is not None:
            edit = state.masked[row]
            self.brush.set_mask(edit.mask)
            for name, amount in edit.attribute_amounts.items():
                if name in state.directions:
                    sigma = amount / state.directions[name].scale
                    with QSignalBlocker(self.amount_slider):
                        self.amount_slider.setValue(round(sigma * STEPS_PER_SIGMA))
                    self.amount_label.setText(f"{sigma:+.1f}σ")

    def _on_remove_clicked(self) -> None:
        row = self.stack_list.currentRow()
        state = self.session.state
        if 0 <= row < len(state.masked):
            masked = (*state.masked[:row], *state.masked[row + 1 :])
            self.session.propose(with_masked(state, masked), "Remove masked edit")
            self.session.seal()


def _above_face(landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # Hair and forehead count as "the face" for a mask (the landmark hull stops at the brows).
    from editors.regions import region_masks

    return region_masks(landmarks, mask.shape)["hair/top"]


def describe(edit: MaskedEdit, state: EditState) -> str:
    """One line for the list of masked edits."""
    parts = []
    for name, amount in edit.attribute_amounts.items():
        scale = state.directions[name].scale if state.directions and name in state.directions else 1
        parts.append(f"{name} {amount / scale:+.1f}σ")
    if edit.style_amounts:
        parts.append(f"{len(edit.style_amounts)} channels")
    area = int((edit.mask > 0.5).sum())
    return f"{', '.join(parts) or 'no change'} — {area} px at {edit.block_resolution} px"
