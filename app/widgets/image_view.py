"""The image canvas: fit or fixed zoom, smooth or pixel scaling, side-by-side compare, tools.

Interaction that edits the picture (dragging points, painting masks, ...) plugs in as a
``CanvasTool``: the view hands it mouse events with image coordinates and lets it paint an
overlay, so new tools need no change here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

BACKGROUND = QColor(24, 25, 28)
LABEL_COLOR = QColor(200, 202, 210)
COMPARE_GAP = 8  # pixels between the two pictures of a comparison


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """Copy a ``uint8`` [H, W, 3] array into a QImage that owns its pixels."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
    data = np.ascontiguousarray(rgb)
    height, width, _ = data.shape
    return QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """Copy a QImage into a ``uint8`` [H, W, 3] array."""
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = converted.width(), converted.height()
    buffer = np.frombuffer(converted.constBits(), np.uint8, count=converted.sizeInBytes())
    return (
        buffer.reshape(height, converted.bytesPerLine())[:, : width * 3]
        .reshape(height, width, 3)
        .copy()
    )


class CanvasTool(Protocol):
    """A way of working on the picture with the mouse (set with ``ImageView.set_tool``).

    Mouse handlers get the event and its position in image pixels (None outside the picture) and
    return True when they used the event (otherwise the view pans). ``paint_overlay`` draws on
    top of the picture; ``image_rect`` is where the picture is, in widget coordinates.
    """

    def mouse_press(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool: ...

    def mouse_move(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool: ...

    def mouse_release(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool: ...

    def paint_overlay(self, view: ImageView, painter: QPainter, image_rect: QRectF) -> None: ...


class ImageView(QWidget):
    """Shows one image (or an original | edited pair) on a dark background.

    ``zoom`` None fits the picture to the view; a number shows it at that scale (1.0 = 100 %),
    panned by dragging or the wheel when larger than the view. Scaling is smooth unless
    ``smooth`` is off, which shows square pixels (and fits with whole factors, so they stay even).
    Local files dropped on it are reported through ``files_dropped``.
    """

    files_dropped = Signal(list)  # list[Path]
    scale_changed = Signal(float)  # the scale the picture is drawn at (1.0 = 100 %)

    def __init__(self, parent: QWidget | None = None, preferred_size: int = 512) -> None:
        super().__init__(parent)
        self._preferred_size = preferred_size
        self._image: QImage | None = None
        self._compare: QImage | None = None
        self._compare_labels = ("Original", "Edited")
        self._placeholder = ""
        self._smooth = True
        self._zoom: float | None = None
        self._pan = QPointF(0.0, 0.0)
        self._pan_from: QPointF | None = None
        self._tool: CanvasTool | None = None
        self._last_scale = 0.0
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.setMinimumSize(128, 128)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAutoFillBackground(False)

    # -- content ------------------------------------------------------------------------------
    def set_rgb(self, rgb: np.ndarray | None) -> None:
        """Show ``rgb`` (uint8 [H, W, 3]); None clears the view."""
        self._image = None if rgb is None else rgb_to_qimage(rgb)
        self._changed()

    def set_compare(
        self, rgb: np.ndarray | None, labels: tuple[str, str] = ("Original", "Edited")
    ) -> None:
        """Show ``rgb`` left of the picture (labelled ``labels``); None ends the comparison."""
        self._compare = None if rgb is None else rgb_to_qimage(rgb)
        self._compare_labels = labels
        self._changed()

    def comparing(self) -> bool:
        """True while an original | edited pair is shown."""
        return self._compare is not None

    def set_placeholder(self, text: str) -> None:
        """Text shown while there is no image."""
        self._placeholder = text
        self.update()

    def image(self) -> QImage | None:
        """The image currently shown (the edited one while comparing)."""
        return self._image

    def compare_image(self) -> QImage | None:
        """The original shown beside the image while comparing."""
        return self._compare

    # -- view settings ------------------------------------------------------------------------
    @property
    def smooth(self) -> bool:
        """Smooth (bilinear) scaling; False shows the model's pixels as squares."""
        return self._smooth

    def set_smooth(self, smooth: bool) -> None:
        self._smooth = smooth
        self._changed()

    @property
    def zoom(self) -> float | None:
        """Fixed scale (1.0 = 100 %), or None to fit the view."""
        return self._zoom

    def set_zoom(self, zoom: float | None) -> None:
        self._zoom = zoom
        self._pan = QPointF(0.0, 0.0)
        self._changed()

    def set_tool(self, tool: CanvasTool | None) -> None:
        """Give mouse input and an overlay to ``tool`` (None: the mouse pans)."""
        self._tool = tool
        self.update()

    def tool(self) -> CanvasTool | None:
        return self._tool

    # -- geometry -----------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(self._preferred_size, self._preferred_size)

    def _areas(self) -> tuple[QRectF | None, QRectF]:
        """(area of the original, area of the picture) in widget coordinates."""
        full = QRectF(self.rect())
        if self._compare is None:
            return None, full
        label_room = self.fontMetrics().height() + 8
        half = (full.width() - COMPARE_GAP) / 2
        left = QRectF(0, label_room, half, full.height() - label_room)
        right = QRectF(half + COMPARE_GAP, label_room, half, full.height() - label_room)
        return left, right

    def _scale_in(self, image: QImage, area: QRectF) -> float:
        if self._zoom is not None:
            return self._zoom
        scale = min(area.width() / image.width(), area.height() / image.height())
        if not self._smooth and scale >= 1.0:
            scale = float(int(scale))  # whole factors keep pixels square
        return max(scale, 1e-3)

    def _placed(self, image: QImage, area: QRectF) -> QRectF:
        scale = self._scale_in(image, area)
        width, height = image.width() * scale, image.height() * scale
        pan_x = _clamp(self._pan.x(), max(0.0, (width - area.width()) / 2))
        pan_y = _clamp(self._pan.y(), max(0.0, (height - area.height()) / 2))
        # Whole-pixel corners: at 100 % and 200 % every image pixel lands on screen pixels.
        return QRectF(
            round(area.center().x() - width / 2 + pan_x),
            round(area.center().y() - height / 2 + pan_y),
            width,
            height,
        )

    def image_rect(self) -> QRectF:
        """Where the picture is drawn, in widget coordinates (empty without a picture)."""
        if self._image is None:
            return QRectF()
        return self._placed(self._image, self._areas()[1])

    def target_rect(self) -> QRect:
        """``image_rect`` rounded to whole pixels."""
        return self.image_rect().toAlignedRect() if self._image is not None else QRect()

    def scale(self) -> float:
        """The scale the picture is drawn at (1.0 = 100 %; 0 without a picture)."""
        if self._image is None:
            return 0.0
        return self.image_rect().width() / self._image.width()

    def widget_to_image(self, position: QPointF) -> QPointF | None:
        """Image pixel coordinates of a widget position, or None outside the picture."""
        rect = self.image_rect()
        if self._image is None or not rect.contains(position):
            return None
        scale = rect.width() / self._image.width()
        return QPointF((position.x() - rect.x()) / scale, (position.y() - rect.y()) / scale)

    def image_to_widget(self, point: QPointF) -> QPointF:
        """Widget coordinates of an image pixel position."""
        rect = self.image_rect()
        if self._image is None:
            return QPointF()
        scale = rect.width() / self._image.width()
        return QPointF(rect.x() + point.x() * scale, rect.y() + point.y() * scale)

    def _changed(self) -> None:
        self.update()
        scale = self.scale()
        if scale != self._last_scale:
            self._last_scale = scale
            self.scale_changed.emit(scale)

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)
        self._changed()

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self._image is None:
            if self._placeholder:
                painter.setPen(LABEL_COLOR)
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        left, right = self._areas()
        pairs = [(self._image, right)]
        if self._compare is not None and left is not None:
            pairs.insert(0, (self._compare, left))
        for image, area in pairs:
            painter.save()
            painter.setClipRect(area)
            painter.drawImage(self._placed(image, area), image)
            painter.restore()
        if left is not None and self._compare is not None:
            painter.setPen(LABEL_COLOR)
            images = (self._compare, self._image)
            for text, image, area in zip(self._compare_labels, images, (left, right), strict=True):
                top = max(area.y(), self._placed(image, area).y())
                label = QRectF(area.x(), top - area.y(), area.width(), area.y())
                painter.drawText(label, Qt.AlignmentFlag.AlignCenter, text)
        if self._tool is not None:
            painter.save()
            self._tool.paint_overlay(self, painter, self.image_rect())
            painter.restore()

    # -- mouse --------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        at = self.widget_to_image(event.position())
        if self._tool is not None and self._tool.mouse_press(self, event, at):
            return
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._pan_from = event.position() - self._pan
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        at = self.widget_to_image(event.position())
        if self._tool is not None and self._tool.mouse_move(self, event, at):
            return
        if self._pan_from is not None:
            self._pan = event.position() - self._pan_from
            self._pan = self._clamped_pan()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        at = self.widget_to_image(event.position())
        if self._tool is not None and self._tool.mouse_release(self, event, at):
            return
        if self._pan_from is not None:
            self._pan_from = None
            self.unsetCursor()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self._zoom is None or self._image is None:
            event.ignore()
            return
        self._pan += QPointF(event.angleDelta()) / 2
        self._pan = self._clamped_pan()
        self.update()

    def _clamped_pan(self) -> QPointF:
        if self._image is None:
            return QPointF()
        area = self._areas()[1]
        scale = self._scale_in(self._image, area)
        width, height = self._image.width() * scale, self._image.height() * scale
        return QPointF(
            _clamp(self._pan.x(), max(0.0, (width - area.width()) / 2)),
            _clamp(self._pan.y(), max(0.0, (height - area.height()) / 2)),
        )

    # -- drops --------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))
