"""Pieces the panels share: a scrolling grid of slider rows, and sliders whose drags undo as one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLayout, QScrollArea, QSlider, QWidget

if TYPE_CHECKING:
    from app.session import Session


def scrolling_grid() -> tuple[QWidget, QGridLayout, QScrollArea]:
    """A frameless scroll area around a grid whose column 1 (the sliders) takes the spare width.

    Returns:
        (the grid's widget, the grid, the scroll area to put in the panel's layout).
    """
    widget = QWidget()
    grid = QGridLayout(widget)
    grid.setColumnStretch(1, 1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(widget)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    return widget, grid, scroll


def clear_layout(layout: QLayout) -> None:
    """Take every item out of ``layout`` and delete its widgets."""
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget()
        if widget is not None:
            widget.setParent(None)  # gone from findChild at once, freed later
            widget.deleteLater()


def drag_slider(
    session: Session,
    name: str,
    minimum: int,
    maximum: int,
    on_change: Callable[[int], None],
    value: int = 0,
) -> QSlider:
    """A horizontal slider named ``name`` at ``value`` that calls ``on_change(value)`` on moves.

    A drag is one edit: pressing and releasing the handle open and close the session's drag.
    """
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setObjectName(name)
    slider.setRange(minimum, maximum)
    slider.setValue(value)  # before connecting: the initial value is no edit
    slider.valueChanged.connect(on_change)
    slider.sliderPressed.connect(session.begin_drag)
    slider.sliderReleased.connect(session.end_drag)
    return slider
