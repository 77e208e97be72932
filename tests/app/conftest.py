"""GUI fixtures: a main-window factory that cleans up its threads, settings in a temp folder."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication


@pytest.fixture(autouse=True)
def _temp_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("settings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))


@pytest.fixture
def make_main_window(qtbot) -> Iterator[Callable[..., object]]:
    """Factory ``make_main_window(model=PATH_or_None, wait=True, load_default=False)``: a window.

    With ``wait`` (and a model), returns once the model is loaded and its first frame is shown.
    Every window is closed at teardown, which stops its jobs and render thread.
    """
    from app import create_window

    windows = []

    def make(model: Path | None = None, wait: bool = True, load_default: bool = False):
        window = create_window(model=None, device="cpu", load_default=load_default)
        qtbot.addWidget(window)
        windows.append(window)
        if model is not None:
            if wait:
                with qtbot.waitSignal(window.session.frame_ready, timeout=30000):
                    window.open_model(model)
            else:
                window.open_model(model)
        return window

    yield make
    for window in windows:
        window.unsaved_guard.discard()  # a test's edits are not worth a save question
        window.close()
        assert window.render_service._thread.isFinished()
        assert [job.title for job in window.jobs.running()] == []
    # Free the closed windows' reference cycles here, on the GUI thread: left to the automatic
    # collector, a later test's worker thread may free their Qt objects (a crash; the app
    # itself collects on the GUI thread, app/garbage.py).
    windows.clear()
    gc.collect()


def wait_for_frame_of(qtbot, window, state=None):
    """The full-resolution (not draft) render of ``state`` (default: the current), once shown."""
    state = state or window.session.state
    qtbot.waitUntil(
        lambda: (
            window.session.last_frame is not None
            and window.session.last_frame.result.state is state
            and not window.session.last_frame.result.draft
        ),
        timeout=10000,
    )
    return window.session.last_frame.result


def drop_on(widget, path: Path) -> None:
    """Send real drag-enter and drop events with the file's URL to ``widget`` (as a drag does)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    centre = QPoint(widget.width() // 2, widget.height() // 2)
    with warnings.catch_warnings():
        # PySide6 marks QDragEnterEvent's only constructor (QPoint position) as deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(
            centre,
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    assert QApplication.sendEvent(widget, enter) and enter.isAccepted()
    event = QDropEvent(
        QPointF(widget.width() / 2, widget.height() / 2), Qt.DropAction.CopyAction, mime,
        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    assert QApplication.sendEvent(widget, event)
