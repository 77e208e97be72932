"""Check, before ``QApplication`` exists, that Qt can open a window on this system.

Qt aborts the whole process (exit 134) when its platform plugin cannot load, printing a message a
newcomer cannot act on. On Linux the usual cause is a system library the X11 (xcb) plugin needs;
this module finds which one and prints the install command for the user's distribution instead.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# Packages with the libraries Qt's xcb plugin loads, per distribution family.
XCB_PACKAGES = {
    "debian": (
        "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
        "libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 "
        "libfontconfig1 libdbus-1-3"
    ),
    "fedora": (
        "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-image xcb-util-keysyms "
        "xcb-util-renderutil libxkbcommon-x11 libglvnd-egl libglvnd-opengl fontconfig dbus-libs"
    ),
    "arch": (
        "sudo pacman -S xcb-util-cursor xcb-util-wm xcb-util-image xcb-util-keysyms "
        "xcb-util-renderutil libxkbcommon-x11 libglvnd fontconfig dbus"
    ),
    "suse": (
        "sudo zypper install libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
        "libxcb-render-util0 libxkbcommon-x11-0 libEGL1 libOpenGL0 fontconfig libdbus-1-3"
    ),
}
FAMILY_NAMES = {
    "debian": "Debian/Ubuntu",
    "fedora": "Fedora/RHEL",
    "arch": "Arch",
    "suse": "openSUSE",
}
# Platforms that need no display server (or bring their own checks).
HEADLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "wayland")


def distro_family(os_release: str | None = None) -> str | None:
    """``debian``, ``fedora``, ``arch`` or ``suse`` from /etc/os-release (ID and ID_LIKE)."""
    if os_release is None:
        try:
            os_release = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    ids: list[str] = []
    for key in ("ID", "ID_LIKE"):
        match = re.search(rf"^{key}=\"?([^\"\n]*)\"?", os_release, flags=re.M)
        if match:
            ids += match.group(1).lower().split()
    aliases = {
        "debian": "debian", "ubuntu": "debian", "fedora": "fedora", "rhel": "fedora",
        "centos": "fedora", "arch": "arch", "suse": "suse", "opensuse": "suse",
    }  # fmt: skip
    for item in ids:
        for alias, family in aliases.items():
            if item == alias or item.startswith(alias + "-"):
                return family
    return None


def install_hint(family: str | None) -> str:
    """The install command for ``family``, or every family's command when it is unknown."""
    if family in XCB_PACKAGES:
        return f"  {XCB_PACKAGES[family]}"
    return "\n".join(f"  {FAMILY_NAMES[key]}: {XCB_PACKAGES[key]}" for key in XCB_PACKAGES)


def xcb_plugin_path() -> Path:
    """Qt's X11 platform plugin inside the installed PySide6."""
    import PySide6

    return Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def platform_problem(
    env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    load: Callable[[str], object] = ctypes.CDLL,
    family: str | None = None,
) -> str | None:
    """A message explaining why Qt could not open a window here, or None when it should work.

    Args:
        env: environment to judge (default ``os.environ``).
        platform: ``sys.platform``; only Linux is checked.
        load: loads a shared library, raising OSError naming what is missing.
        family: distribution family for the install command (default: read /etc/os-release).
    """
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return None
    requested = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if requested in HEADLESS_PLATFORMS:
        return None
    if not requested and env.get("WAYLAND_DISPLAY"):
        return None  # Qt picks its Wayland plugin, which needs none of the xcb libraries
    if not env.get("DISPLAY"):
        return (
            "Latent Studio cannot open a window: no display (DISPLAY is not set).\n"
            "Run it inside a desktop session, use the command-line tools (python main.py --help),"
            "\nor set QT_QPA_PLATFORM=offscreen to run without a screen."
        )
    plugin = xcb_plugin_path()
    if not plugin.is_file():
        return None  # an unusual Qt build: let Qt report for itself
    try:
        load(str(plugin))
        load("libxcb-cursor.so.0")  # Qt 6.5+ opens this at run time and aborts without it
    except OSError as exc:
        missing = re.match(r"\s*([^\s:]+\.so[.\d]*)", str(exc))
        what = missing.group(1) if missing else str(exc)
        family = family or distro_family()
        return (
            f"Latent Studio cannot open a window: Qt's X11 plugin needs the system library "
            f"{what}, which is not installed.\nInstall the libraries Qt needs, then start it again:"
            f"\n{install_hint(family)}"
        )
    return None


def exit_if_no_window_possible() -> None:
    """Print the problem and exit with status 1 when Qt could not open a window (see module doc)."""
    problem = platform_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        raise SystemExit(1)
