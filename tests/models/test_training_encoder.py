"""The latent-encoder job: learns to invert a tiny generator, records its fingerprint, resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import load_generator, save_generator
from models.encoder import encoder_path_for, load_encoder
from models.jobs import Cancelled, Progress
from models.training.checkpoints import load_checkpoint
from models.training.config import EncoderConfig
from models.training.encoder import train_encoder
from models.training.runs import RunFolder


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def model_file(tmp_path: Path, tiny_generator) -> Path:
    return save_generator(tiny_generator(resolution=8, w_dim=16), tmp_path / "tiny.safetensors")


def config_for(model: Path, **overrides: object) -> EncoderConfig:
    fields: dict[str, object] = dict(
        model=str(model),
        input_size=8,
        width=8,
        max_channels=32,
        batch_size=16,
        kimg=1.6,
        lr=0.003,
        device="cpu",
        threads=1,
        tick_seconds=0,
        checkpoint_minutes=1e6,
        num_samples=4,
        sample_minutes=0,
    )
    fields.update(overrides)
    return EncoderConfig(**fields)  # type: ignore[arg-type]


def naive_latent_error(encoder, generator, seeds: range) -> float:
    """Mean squared ws error on fresh broadcast samples, computed outside the trainer."""
    errors = []
    for seed in seeds:
        z = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(10_000 + seed))
        with torch.no_grad():
            ws = generator.broadcast(generator.mapping(z, truncation_psi=0.8))
            images = generator.synthesis(ws, noise_mode="const")
            errors.append(float(((encoder(images) - ws) ** 2).mean()))
    return float(np.mean(errors))


def test_encoder_learns_to_invert_the_generator(model_file: Path, tmp_path: Path) -> None:
    generator = load_generator(model_file, device="cpu")
    summary = train_encoder(config_for(model_file, install=True), tmp_path / "run")
    encoder = load_encoder(summary.artifact)
    assert encoder.generator_fingerprint == generator.fingerprint()
    assert encoder.metrics["steps"] == 100

    untrained_error = naive_latent_error(_untrained(generator), generator, range(16))
    trained_error = naive_latent_error(encoder, generator, range(16))
    assert trained_error < 0.5 * untrained_error
    assert encoder_path_for(model_file).is_file()  # --install copies it where projection looks
    assert (tmp_path / "run" / "samples").is_dir()


def _untrained(generator):
    from models.encoder import LatentEncoder

    encoder = LatentEncoder(
        generator.num_ws, generator.w_dim, input_size=8, width=8, max_channels=32
    )
    encoder.w_avg.copy_(generator.w_avg)
    return encoder.eval()


def test_real_photo_stage_and_exact_resume(model_file: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    config = config_for(model_file, data=str(photos), kimg=0.064, real_kimg=0.064)
    assert config.total_steps == 8
    straight = train_encoder(config, tmp_path / "a")
    run_b = RunFolder(tmp_path / "b")

    def stop_in_the_real_stage(progress: Progress) -> None:
        if progress.message.startswith("step 6/"):
            run_b.request("stop")

    with pytest.raises(Cancelled) as stopped:
        train_encoder(config, run_b.path, on_step=stop_in_the_real_stage)
    assert stopped.value.partial.step == 6
    resumed = train_encoder(config, tmp_path / "b", resume=True)
    a = load_checkpoint(straight.checkpoint)["trainer"]["encoder"]
    b = load_checkpoint(resumed.checkpoint)["trainer"]["encoder"]
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert load_encoder(resumed.artifact).metrics["real_photos"] == 10


def test_real_stage_needs_data(model_file: Path) -> None:
    with pytest.raises(ValueError, match="needs data"):
        config_for(model_file, real_kimg=1.0)


def test_fp16_encoder_file_is_half_the_size_and_loads_as_fp32(tmp_path: Path) -> None:
    from models.encoder import LatentEncoder, save_encoder

    encoder = LatentEncoder(num_ws=6, w_dim=32, input_size=16, width=8, max_channels=16)
    torch.manual_seed(0)
    for parameter in encoder.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    full = save_encoder(encoder, tmp_path / "full.safetensors")
    half = save_encoder(encoder, tmp_path / "half.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_encoder(half)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.no_grad():
        expected = encoder.eval()(images)
        torch.testing.assert_close(loaded(images), expected, rtol=1e-2, atol=1e-2)
        assert not torch.equal(loaded(images), expected)  # it really went through fp16
