"""File > Get models…: the catalog dialog downloading from a real loopback server, cancel, open."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from models import catalog
from models.catalog import CatalogEntry, models_dir
from models.downloads import part_path
from tests.conftest import make_tiny_stylegan2
from tests.helpers.http_server import LoopbackServer, catalog_file, entry_for, payload


def _checkpoint_bytes() -> bytes:
    generator = make_tiny_stylegan2(16)
    buffer = io.BytesIO()
    torch.save({"g_ema": generator.state_dict(), "latent_avg": generator.w_avg}, buffer)
    return buffer.getvalue()


@pytest.fixture
def served_catalog(
    http_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, CatalogEntry]:
    """A catalog of entries on the loopback server: a real checkpoint, a slow file, a 404."""
    checkpoint = _checkpoint_bytes()
    slow = payload(2_000_000, seed=9)
    entries = {
        "tiny": entry_for(
            http_server.add("tiny.pt", checkpoint), checkpoint, title="Tiny faces 16x16"
        ),
        "slow": entry_for(
            http_server.add("slow.bin", slow, behaviour="slow"),
            slow,
            name="slow",
            filename="slow.pt",
            title="A slow download",
        ),
        "gone": entry_for(
            f"{http_server.base_url}/gone.pkl",
            b"",
            name="gone",
            filename="gone.pkl",
            title="Vanished model",
            size_bytes=None,
            sha256=None,
        ),
        "helper": entry_for(
            http_server.add("vgg.pth", b"weights"),
            b"weights",
            name="helper",
            filename="helper.pth",
            kind="vgg16",
            title="Helper weights",
        ),
    }
    monkeypatch.setattr(catalog, "CATALOG_PATH", catalog_file(tmp_path, list(entries.values())))
    return entries


def _button(dialog, name: str):
    from PySide6.QtWidgets import QPushButton

    button = dialog.findChild(QPushButton, name)
    assert button is not None, name
    return button


def test_download_then_open_in_the_window(qtbot, make_main_window, served_catalog) -> None:
    window = make_main_window()
    window.actions_by_name["getModels"].trigger()
    dialog = window.model_manager
    assert dialog is not None and dialog.isVisible()
    assert dialog.table.rowCount() == 4
    assert dialog.table.item(0, 3).text() == served_catalog["tiny"].size_text()
    assert not _button(dialog, "open:tiny").isVisible()

    with qtbot.waitSignal(dialog.download_finished, timeout=20000):
        qtbot.mouseClick(_button(dialog, "download:tiny"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _button(dialog, "open:tiny").isVisible(), timeout=5000)
    assert (models_dir() / "tiny.pt").is_file()
    assert dialog.rows["tiny"].progress.value() == dialog.rows["tiny"].progress.maximum()
    assert not _button(dialog, "download:tiny").isVisible()

    with qtbot.waitSignal(window.session.frame_ready, timeout=30000):
        qtbot.mouseClick(_button(dialog, "open:tiny"), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert window.session.generator.resolution == 16
    assert window.status_model.text() == "tiny"


def test_helper_weights_install_without_open(qtbot, make_main_window, served_catalog) -> None:
    window = make_main_window()
    dialog = window.show_model_manager()
    with qtbot.waitSignal(dialog.download_finished, timeout=20000):
        qtbot.mouseClick(_button(dialog, "download:helper"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.rows["helper"].progress.format() == "Installed", timeout=5000)
    assert not _button(dialog, "open:helper").isVisible()


def test_cancel_keeps_the_part_and_allows_resuming(qtbot, make_main_window, served_catalog) -> None:
    window = make_main_window()
    dialog = window.show_model_manager()
    row = dialog.rows["slow"]
    qtbot.mouseClick(_button(dialog, "download:slow"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.progress.value() > 0, timeout=10000)
    assert _button(dialog, "cancel:slow").isVisible() and dialog.running_downloads() == ["slow"]
    dialog.grab().save(str(Path(models_dir()).parent / "model_manager_downloading.png"))
    qtbot.mouseClick(_button(dialog, "cancel:slow"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.progress.format() == "Cancelled", timeout=10000)
    assert (
        _button(dialog, "download:slow").isVisible()
        and not _button(dialog, "cancel:slow").isVisible()
    )
    destination = served_catalog["slow"].destination()
    assert not destination.exists() and 0 < part_path(destination).stat().st_size < 2_000_000
    assert "kept for next time" in dialog.status.text()


def test_http_error_is_reported(qtbot, make_main_window, served_catalog) -> None:
    window = make_main_window()
    dialog = window.show_model_manager()
    qtbot.mouseClick(_button(dialog, "download:gone"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.rows["gone"].progress.format() == "Failed", timeout=10000)
    # The bar stops its busy animation and really shows the word (a busy bar shows no text).
    progress = dialog.rows["gone"].progress
    assert progress.maximum() > 0 and progress.text() == "Failed"
    assert "gone.pkl: not found on the server (HTTP 404)" in dialog.status.text()
    boxes = [box for box in dialog.findChildren(QMessageBox) if box.objectName() == "errorBox"]
    assert boxes and "HTTP 404" in boxes[-1].informativeText()
    boxes[-1].close()
    assert not list(models_dir().glob("gone*"))


def test_welcome_button_opens_the_manager(qtbot, make_main_window, served_catalog) -> None:
    window = make_main_window()
    assert window.stack.currentWidget() is window.welcome
    qtbot.mouseClick(window.welcome.get_models_button, Qt.MouseButton.LeftButton)
    assert window.model_manager is not None and window.model_manager.isVisible()
    first = window.model_manager
    window.model_manager.hide()
    window.actions_by_name["getModels"].trigger()
    assert window.model_manager is first and first.isVisible()
