"""User preferences, the only place that touches ``QSettings``."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "LatentStudio"
APPLICATION = "LatentStudio"
SCHEMA_VERSION = 1
MAX_RECENT = 10


class AppSettings:
    """Typed access to the preferences file (INI format, per user)."""

    def __init__(self) -> None:
        self._settings = QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
        )
        self.migrate()

    def migrate(self) -> None:
        """Bring an older preferences file up to the current schema."""
        version = int(self._settings.value("schema_version", 0) or 0)
        if version < SCHEMA_VERSION:
            self._settings.setValue("schema_version", SCHEMA_VERSION)

    @property
    def recent_models(self) -> list[str]:
        """Most recently opened checkpoints, newest first."""
        value = self._settings.value("models/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(item) for item in (value or [])]

    def add_recent_model(self, path: str) -> None:
        """Put ``path`` at the top of the recent list."""
        recent = [path] + [item for item in self.recent_models if item != path]
        self._settings.setValue("models/recent", recent[:MAX_RECENT])

    @property
    def truncation_psi(self) -> float:
        """Truncation used for new seeds."""
        return float(self._settings.value("render/truncation_psi", 0.7))

    @truncation_psi.setter
    def truncation_psi(self, value: float) -> None:
        self._settings.setValue("render/truncation_psi", float(value))

    @property
    def window_geometry(self) -> QByteArray | None:
        """Saved main-window geometry."""
        value = self._settings.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self._settings.setValue("window/geometry", value)

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._settings.sync()
