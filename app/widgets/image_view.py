"""An image view that fits its picture to the widget, upscales small images crisply and takes drops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget


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


class ImageView(QWidget):
    """Shows one image, scaled to fit with its aspect ratio kept.

    Images smaller than the view are enlarged by a whole factor with nearest-neighbour sampling,
    so a 64-px model shows crisp pixels instead of a blur. Local files dropped on it are reported
    through ``files_dropped``.
    """

    files_dropped = Signal(list)  # list[Path]

    def __init__(self, parent: QWidget | None = None, preferred_size: int = 512) -> None:
        super().__init__(parent)
        self._preferred_size = preferred_size
        self._image: QImage | None = None
        self._placeholder = ""
        self.setAcceptDrops(True)
        self.setMinimumSize(128, 128)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAutoFillBackground(False)

    def set_rgb(self, rgb: np.ndarray | None) -> None:
        """Show ``rgb`` (uint8 [H, W, 3]); None clears the view."""
        self._image = None if rgb is None else rgb_to_qimage(rgb)
        self.update()

    def set_placeholder(self, text: str) -> None:
        """Text shown while there is no image."""
        self._placeholder = text
        self.update()

    def image(self) -> QImage | None:
        """The image currently shown."""
        return self._image

    def sizeHint(self) -> QSize:
        return QSize(self._preferred_size, self._preferred_size)

    def target_rect(self) -> QRect:
        """Where the image is drawn inside the widget."""
        if self._image is None:
            return QRect()
        width, height = self._image.width(), self._image.height()
        scale = min(self.width() / width, self.height() / height)
        if scale >= 1.0:
            scale = float(int(scale))  # whole factors keep pixels square and sharp
        draw_w, draw_h = max(1, int(width * scale)), max(1, int(height * scale))
        return QRect((self.width() - draw_w) // 2, (self.height() - draw_h) // 2, draw_w, draw_h)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 32, 36))
        if self._image is None:
            if self._placeholder:
                painter.setPen(QColor(170, 170, 180))
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
            return
        rect = self.target_rect()
        upscaling = rect.width() >= self._image.width()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not upscaling)
        painter.drawImage(rect, self._image)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
