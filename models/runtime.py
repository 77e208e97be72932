"""Device choice and per-user folders shared by the CLI and the GUI.

Each setting is resolved from an explicit argument first, then an environment variable, then a
platform default, so the GUI can pass its preference without touching the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

APP_NAME = "LatentStudio"
APP_AUTHOR = "LatentStudio"
ENV_DEVICE = "LATENTSTUDIO_DEVICE"
ENV_CACHE_DIR = "LATENTSTUDIO_CACHE_DIR"


def default_device() -> torch.device:
    """Return CUDA when a GPU is usable, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve a device from an argument, then ``LATENTSTUDIO_DEVICE``, then the default.

    Raises:
        ValueError: the name is not a device torch knows, or asks for CUDA where there is none.
    """
    if device is None:
        device = os.environ.get(ENV_DEVICE) or None
    if device is None:
        return default_device()
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r} (use 'cpu', 'cuda' or 'cuda:N')") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available here")
    return resolved


def cache_dir(explicit: str | Path | None = None) -> Path:
    """Return the folder for downloaded weights and caches (created on demand).

    Order: ``explicit``, then ``LATENTSTUDIO_CACHE_DIR``, then the platform's user cache folder.
    """
    if explicit is not None:
        path = Path(explicit)
    elif os.environ.get(ENV_CACHE_DIR):
        path = Path(os.environ[ENV_CACHE_DIR])
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def device_label(device: torch.device) -> str:
    """Return a short human name for a device, e.g. 'CPU' or 'CUDA (NVIDIA H100)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA ({torch.cuda.get_device_name(index)})"
    return device.type.upper()
