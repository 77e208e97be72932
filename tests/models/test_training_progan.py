"""The ProGAN job: schedule, fade-in, WGAN-GP, growth across resume, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from models import load_generator
from models.jobs import Cancelled, Progress
from models.training.checkpoints import load_checkpoint
from models.training.config import ProGANConfig
from models.training.progan import (
    ProGANDiscriminator,
    gradient_penalty,
    progan_depths,
    schedule,
    train_progan,
)
from models.training.runs import RunFolder


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_schedule_stable_then_fade_then_stable() -> None:
    phases = [schedule(step, 4, 2) for step in range(22)]
    assert phases[:4] == [(0, 0.0)] * 4
    assert phases[4:8] == [(1, 1.0), (1, 0.75), (1, 0.5), (1, 0.25)]
    assert phases[8:12] == [(1, 0.0)] * 4
    assert phases[12] == (2, 1.0) and phases[16:] == [(2, 0.0)] * 6  # stays at full size
    assert progan_depths(32, 1024, 64) == [64, 64, 64, 32]


def test_discriminator_at_alpha_one_is_the_previous_one_on_downsampled_images() -> None:
    torch.manual_seed(0)
    D = ProGANDiscriminator([8], mbstd_group=2)
    images = torch.randn(4, 3, 8, 8)
    before = D(F.avg_pool2d(images, 2))
    D.grow(8)
    D.alpha = 1.0
    torch.testing.assert_close(D(images), before)
    D.alpha = 0.0
    assert not torch.allclose(D(images), before)


def test_gradient_penalty_of_a_linear_critic() -> None:
    critic = nn.Linear(12, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.arange(12.0).view(1, 12) / 10)

    def D(x: torch.Tensor) -> torch.Tensor:
        return critic(x.flatten(1))

    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    expected = (float(critic.weight.detach().norm()) - 1) ** 2  # the gradient is w everywhere
    assert float(gradient_penalty(D, real, fake).detach()) == pytest.approx(expected, rel=1e-5)


def faces(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_progan_grows_resumes_exactly_and_exports(tmp_path: Path) -> None:
    config = ProGANConfig(
        data=str(faces(tmp_path / "data")),
        resolution=8,
        latent_size=16,
        feature_base=64,
        feature_max=16,
        batch_size=4,
        phase_kimg=0.012,
        mbstd_group=2,
        device="cpu",
        threads=1,
        tick_seconds=0,
        checkpoint_minutes=1e6,
        num_samples=4,
        sample_minutes=0,
    )
    assert config.total_steps == 9  # 3 phases of 3 steps
    straight = train_progan(config, tmp_path / "a")
    records, _ = RunFolder(tmp_path / "a").read_metrics()
    assert [r["resolution"] for r in records] == [4.0] * 3 + [8.0] * 6
    assert [round(r["alpha"], 3) for r in records[3:6]] == [1.0, 0.667, 0.333]
    model = load_generator(straight.artifact, device="cpu")
    assert model.kind == "progan" and model.resolution == 8 and model.alpha == 0.0

    run_b = RunFolder(tmp_path / "b")

    def stop_mid_fade(progress: Progress) -> None:
        if progress.message.startswith("step 4/"):
            run_b.request("stop")

    with pytest.raises(Cancelled):
        train_progan(config, run_b.path, on_step=stop_mid_fade)
    resumed = train_progan(config, run_b.path, resume=True)
    a = load_checkpoint(straight.checkpoint)["trainer"]
    b = load_checkpoint(resumed.checkpoint)["trainer"]
    for part in ("G", "D", "G_ema"):
        assert all(torch.equal(a[part][key], b[part][key]) for key in a[part]), part
