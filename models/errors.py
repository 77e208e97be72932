"""Exceptions raised by model loading and saving; each message names the file and the problem."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class CheckpointError(Exception):
    """A checkpoint file could not be read or does not describe a usable generator."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedFormatError(CheckpointError):
    """The file's content matches none of the known checkpoint formats."""

    def __init__(self, path: str | Path, tried: Sequence[str], detail: str = "") -> None:
        self.tried = tuple(tried)
        reason = "not a supported checkpoint"
        if detail:
            reason += f" ({detail})"
        reason += f"; tried: {', '.join(self.tried)}"
        super().__init__(path, reason)
