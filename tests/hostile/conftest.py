"""The GUI fixtures of tests/app (window factory, temporary settings) for the GUI-edge tests."""

from tests.app.conftest import _temp_settings, make_main_window

__all__ = ["_temp_settings", "make_main_window"]
