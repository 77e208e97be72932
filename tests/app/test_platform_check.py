"""Before Qt starts: a missing system library or display gives the fix, not Qt's abort (134)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.platform_check import distro_family, platform_problem

ROOT = Path(__file__).resolve().parents[2]


def _missing(name: str):
    def load(path: str) -> None:
        if path.endswith(name) or ("libqxcb" in path and name != "libxcb-cursor.so.0"):
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    return load


@pytest.mark.parametrize(
    ("family", "command", "package"),
    [
        ("debian", "sudo apt-get install", "libxcb-cursor0"),
        ("fedora", "sudo dnf install", "xcb-util-cursor"),
        ("arch", "sudo pacman -S", "xcb-util-cursor"),
    ],
)
def test_missing_xcb_cursor_names_the_library_and_the_install_command(
    family: str, command: str, package: str
) -> None:
    message = platform_problem(
        {"DISPLAY": ":0"}, "linux", _missing("libxcb-cursor.so.0"), family=family
    )
    assert message is not None
    assert "libxcb-cursor.so.0" in message and f"{command} " in message and package in message


def test_missing_library_of_the_plugin_itself_is_named() -> None:
    message = platform_problem({"DISPLAY": ":0"}, "linux", _missing("libxcb-icccm.so.4"), "debian")
    assert message is not None and "libxcb-icccm.so.4" in message and "libxcb-icccm4" in message


def test_unknown_distribution_lists_every_family() -> None:
    message = platform_problem({"DISPLAY": ":0"}, "linux", _missing("libEGL.so.1"), "unknown")
    assert message is not None
    for command in ("apt-get install", "dnf install", "pacman -S", "zypper install"):
        assert command in message


def test_no_problem_when_everything_loads_or_no_screen_is_wanted() -> None:
    def loads(path: str) -> None:
        return None

    assert platform_problem({"DISPLAY": ":0"}, "linux", loads) is None
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", _missing("x.so")) is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", _missing("x.so")) is None
    assert platform_problem({}, "darwin", _missing("x.so")) is None
    assert "DISPLAY is not set" in (platform_problem({}, "linux", loads) or "")


def test_distro_family_from_os_release() -> None:
    assert distro_family("ID=ubuntu\nID_LIKE=debian\n") == "debian"
    assert distro_family('ID="rocky"\nID_LIKE="rhel centos fedora"\n') == "fedora"
    assert distro_family("ID=arch\n") == "arch"
    assert distro_family('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n') == "suse"
    assert distro_family("ID=plan9\n") is None


@pytest.mark.slow  # a fresh interpreter importing torch and Qt
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="display check is Linux-only")
def test_launch_without_a_display_exits_with_the_message_not_a_qt_abort() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "cannot open a window" in result.stderr and "QT_QPA_PLATFORM=offscreen" in result.stderr


def test_readme_names_the_same_install_commands() -> None:
    from app.platform_check import XCB_PACKAGES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in XCB_PACKAGES.values():
        assert f"`{command}`" in readme
