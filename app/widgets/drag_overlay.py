"""The Drag tool on the canvas: click handle/target pairs (drawn as arrows) and brush a mask.

Positions are kept in the editor's convention, (x, y) image pixels with pixel centres at
integers; the canvas measures from the picture's corner, so half a pixel separates the two.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QPolygonF

from app.widgets.image_view import ImageView

HANDLE_COLOR = QColor(235, 64, 52)
TARGET_COLOR = QColor(52, 120, 235)
TRACK_COLOR = QColor(255, 214, 10)
MASK_COLOR = QColor(255, 255, 255, 70)
MARK_RADIUS = 5.0  # widget pixels

Point = tuple[float, float]

POINTS, BRUSH, ERASE = "points", "brush", "erase"


class DragTool(QObject):
    """A ``CanvasTool``: places handle -> target pairs and paints the region allowed to move.

    In ``POINTS`` mode a left click sets a handle, the next click its target; a right click
    removes the last point. ``BRUSH`` paints the mask and ``ERASE`` (or the right button while
    brushing) rubs it out. ``tracked`` points (where the handles are now, during a drag) are
    drawn as dots.
    """

    changed = Signal()  # points or mask changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mode = POINTS
        self.brush_radius = 4.0  # image pixels
        self.handles: list[Point] = []
        self.targets: list[Point] = []
        self.tracked: tuple[Point, ...] = ()
        self.mask: np.ndarray | None = None  # [R, R] bool; None = everything may move
        self.enabled = True
        self._resolution = 0
        self._painting = False
        self._paint_value = True

    # -- state --------------------------------------------------------------------------------
    def set_resolution(self, resolution: int) -> None:
        """Use a picture of ``resolution`` px; points and mask of another size are dropped."""
        if resolution != self._resolution:
            self._resolution = resolution
            self.clear_points()
            self.clear_mask()

    @property
    def resolution(self) -> int:
        return self._resolution

    def pairs(self) -> tuple[list[Point], list[Point]]:
        """(handles, targets) of complete pairs (a handle still without its target is left out)."""
        count = len(self.targets)
        return self.handles[:count], self.targets[:count]

    def clear_points(self) -> None:
        self.handles, self.targets, self.tracked = [], [], ()
        self.changed.emit()

    def clear_mask(self) -> None:
        self.mask = None
        self.changed.emit()

    def set_tracked(self, points: tuple[Point, ...]) -> None:
        self.tracked = tuple(points)
        self.changed.emit()

    def move_handles_to(self, points: tuple[Point, ...]) -> None:
        """After a drag the handles continue from where they were tracked to."""
        self.handles = [*points, *self.handles[len(points) :]]
        self.tracked = ()
        self.changed.emit()

    def _image_point(self, at: QPointF) -> Point:
        top = self._resolution - 1
        return (min(max(at.x() - 0.5, 0.0), top), min(max(at.y() - 0.5, 0.0), top))

    def _paint(self, at: QPointF) -> None:
        res = self._resolution
        if self.mask is None:
            self.mask = np.zeros((res, res), bool)
        x, y = self._image_point(at)
        yy, xx = np.ogrid[:res, :res]
        self.mask[(xx - x) ** 2 + (yy - y) ** 2 <= self.brush_radius**2] = self._paint_value
        if not self.mask.any():
            self.mask = None
        self.changed.emit()

    # -- CanvasTool ---------------------------------------------------------------------------
    def mouse_press(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool:
        if not self.enabled or at is None or self._resolution == 0:
            return False
        button = event.button()
        if self.mode == POINTS:
            if button == Qt.MouseButton.LeftButton:
                if len(self.handles) > len(self.targets):
                    self.targets.append(self._image_point(at))
                else:
                    self.handles.append(self._image_point(at))
                self.tracked = ()
            elif button == Qt.MouseButton.RightButton:
                if len(self.handles) > len(self.targets):
                    self.handles.pop()
                elif self.targets:
                    self.targets.pop()
            else:
                return False
            self.changed.emit()
            view.update()
            return True
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        self._painting = True
        self._paint_value = self.mode == BRUSH and button == Qt.MouseButton.LeftButton
        self._paint(at)
        view.update()
        return True

    def mouse_move(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool:
        if not self._painting:
            return False
        if at is not None:
            self._paint(at)
            view.update()
        return True

    def mouse_release(self, view: ImageView, event: QMouseEvent, at: QPointF | None) -> bool:
        if not self._painting:
            return False
        self._painting = False
        return True

    def paint_overlay(self, view: ImageView, painter: QPainter, image_rect: QRectF) -> None:
        if self._resolution == 0 or image_rect.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.mask is not None:
            overlay = _mask_image(self.mask)
            painter.drawImage(image_rect, overlay)

        def widget(point: Point) -> QPointF:
            return view.image_to_widget(QPointF(point[0] + 0.5, point[1] + 0.5))

        for index, handle in enumerate(self.handles):
            start = widget(handle)
            if index < len(self.targets):
                _arrow(painter, start, widget(self.targets[index]))
            _dot(painter, start, HANDLE_COLOR)
        for target in self.targets:
            _dot(painter, widget(target), TARGET_COLOR)
        for point in self.tracked:
            _dot(painter, widget(point), TRACK_COLOR, MARK_RADIUS * 0.7)


def _mask_image(mask: np.ndarray) -> QImage:
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (MASK_COLOR.red(), MASK_COLOR.green(), MASK_COLOR.blue(), MASK_COLOR.alpha())
    height, width = mask.shape
    data = np.ascontiguousarray(rgba)
    return QImage(data.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


def _dot(painter: QPainter, at: QPointF, color: QColor, radius: float = MARK_RADIUS) -> None:
    painter.setPen(QPen(QColor(0, 0, 0, 160), 1.5))
    painter.setBrush(color)
    painter.drawEllipse(at, radius, radius)


def _arrow(painter: QPainter, start: QPointF, end: QPointF) -> None:
    painter.setPen(QPen(QColor(255, 255, 255, 220), 2.0))
    painter.drawLine(start, end)
    dx, dy = end.x() - start.x(), end.y() - start.y()
    length = math.hypot(dx, dy)
    if length < 1:
        return
    ux, uy = dx / length, dy / length
    size = min(10.0, length / 2)
    left = QPointF(end.x() - size * ux + size * 0.5 * uy, end.y() - size * uy - size * 0.5 * ux)
    right = QPointF(end.x() - size * ux - size * 0.5 * uy, end.y() - size * uy + size * 0.5 * ux)
    painter.setBrush(QColor(255, 255, 255, 220))
    painter.drawPolygon(QPolygonF([end, left, right]))
