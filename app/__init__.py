"""The Qt front end. ``create_window`` builds the main window; ``run`` adds the event loop."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.garbage import collect_on_gui_thread
from app.main_window import MainWindow

__all__ = ["MainWindow", "create_window", "ensure_application", "run"]


def ensure_application(argv: list[str] | None = None) -> QApplication:
    """Return the running ``QApplication``, creating it on first use."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setApplicationName("Latent Studio")
        app.setOrganizationName("LatentStudio")
    assert isinstance(app, QApplication)
    return app


def create_window(
    model: str | Path | None = None, device: str | None = None, *, load_default: bool = True
) -> MainWindow:
    """Build and show the main window without entering the event loop.

    Args:
        model: checkpoint to open; None opens the built-in demo model when it is installed
            (and ``load_default``), otherwise the welcome panel.
        device: "cpu", "cuda" or None (CUDA when present).
        load_default: open the demo model when no ``model`` is given.
    """
    from models import default_model_path

    ensure_application()
    window = MainWindow(device=device)
    window.show()
    target = Path(model) if model is not None else (default_model_path() if load_default else None)
    if target is not None:
        window.open_model(target)
    return window


def run(model: str | Path | None = None, device: str | None = None) -> int:
    """Open the window and run the event loop until it closes; return the exit code."""
    app = ensure_application()
    collect_on_gui_thread(app)
    window = create_window(model=model, device=device)
    code = app.exec()
    del window
    return code
