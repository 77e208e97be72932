"""Fixtures of the hostile-file suite: the files (written once per session) and the GUI
fixtures of tests/app (window factory, temporary settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.app.conftest import _temp_settings, make_main_window
from tests.conftest import make_tiny_stylegan2
from tests.hostile.makers import Case, build_cases

__all__ = ["_temp_settings", "hostile_cases", "make_main_window"]


@pytest.fixture(scope="session")
def hostile_cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case], Path]:
    """(folder, cases, good model): every hostile file, written once for the whole suite."""
    root = tmp_path_factory.mktemp("hostile")
    generator = make_tiny_stylegan2(16)
    model = root / "good.pt"
    state = {k: v for k, v in generator.state_dict().items() if k != "w_avg"}
    torch.save({"g_ema": state, "latent_avg": generator.w_avg.clone()}, model)
    folder = root / "files"
    return folder, build_cases(folder, model), model
