"""The mask brush: paint or erase a mask on the canvas (a ``CanvasTool`` of ``ImageView``).

Left button paints, right button (or erase mode) erases, the wheel changes the brush size. The
mask lives at the picture's resolution; it is shown as a translucent overlay with the brush
outline under the cursor.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QWheelEvent

from app.widgets.image_view import ImageView
from editors.masks import paint_disc, paint_stroke

OVERLAY = (255, 64, 96)  # RGB of painted pixels
OVERLAY_ALPHA = 110
MIN_RADIUS, MAX_RADIUS = 0.5, 256.0


class MaskBrush(QObject):
    """Paints into ``mask`` (float32 [size, size], 0..1)."""

    mask_changed = Signal()  # a stroke ended (or the mask was cleared / replaced)
    radius_changed = Signal(float)

    def __init__(self, size: int = 64, radius: float = 4.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mask = np.zeros((size, size), np.float32)
        self.radius = float(radius)
        self.erase = False  # left button erases instead of painting
        self._last: tuple[float, float] | None = None
        self._value = 1.0
        self._hover: QPointF | None = None

    # -- state --------------------------------------------------------------------------------
    def set_size(self, size: int) -> None:
        """Start a new empty mask of ``size`` x ``size`` when the picture size changes."""
        if self.mask.shape != (size, size):
            self.mask = np.zeros((size, size), np.float32)
            self.mask_changed.emit()

    def set_mask(self, mask: np.ndarray) -> None:
        self.mask = np.array(mask, np.float32, copy=True)
        self.mask_changed.emit()

    def clear(self) -> None:
        self.mask[:] = 0.0
        self.mask_changed.emit()

    def set_radius(self, radius: float) -> None:
        radius = float(min(MAX_RADIUS, max(MIN_RADIUS, radius)))
        if radius != self.radius:
            self.radius = radius
            self.radius_changed.emit(radius)

    def is_empty(self) -> bool:
        return not bool(self.mask.any())

    # -- CanvasTool ---------------------------------------------------------------------------
    def mouse_press(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool:
        if at is None or event.button() not in (
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.RightButton,
        ):
            return False
        erase = self.erase or event.button() == Qt.MouseButton.RightButton
        self._value = 0.0 if erase else 1.0
        self._last = self._mask_point(view, at)
        paint_disc(self.mask, *self._last, self.radius, self._value)
        view.update()
        return True

    def mouse_move(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool:
        self._hover = at
        if self._last is None:
            view.update()
            return False
        if at is not None:
            point = self._mask_point(view, at)
            paint_stroke(self.mask, self._last, point, self.radius, self._value)
            self._last = point
        view.update()
        return True

    def mouse_release(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool:
        if self._last is None:
            return False
        self._last = None
        self.mask_changed.emit()
        return True

    def wheel(self, view: ImageView, event: QWheelEvent) -> bool:
        """The wheel resizes the brush (a notch = 15 %)."""
        notches = event.angleDelta().y() / 120.0
        if notches:
            self.set_radius(self.radius * 1.15**notches)
            view.update()
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Installed on the view: the view has no wheel hook for tools, so take the wheel here
        # while this brush is its tool.
        if (
            event.type() == QEvent.Type.Wheel
            and isinstance(watched, ImageView)
            and watched.tool() is self
        ):
            return self.wheel(watched, event)  # type: ignore[arg-type]
        return False

    def paint_overlay(self, view: ImageView, painter: QPainter, image_rect: QRectF) -> None:
        if image_rect.isEmpty():
            return
        size = self.mask.shape[0]
        alpha = (np.clip(self.mask, 0, 1) * OVERLAY_ALPHA).astype(np.uint8)
        rgba = np.empty((size, size, 4), np.uint8)
        rgba[..., :3] = OVERLAY
        rgba[..., 3] = alpha
        image = QImage(rgba.data, size, size, 4 * size, QImage.Format.Format_RGBA8888).copy()
        painter.drawImage(image_rect, image)
        if self._hover is not None:
            scale = image_rect.width() / size
            centre = view.image_to_widget(self._hover)
            painter.setPen(QPen(QColor(255, 255, 255, 200), 1.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(centre, self.radius * scale, self.radius * scale)

    def _mask_point(self, view: ImageView, at: QPointF) -> tuple[float, float]:
        image = view.image()
        width = image.width() if image is not None else self.mask.shape[1]
        factor = self.mask.shape[1] / max(1, width)
        return (at.x() * factor, at.y() * factor)
