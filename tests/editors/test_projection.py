"""Photo projection on tiny generators: convergence, spaces, cancellation, losses, init."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from editors.losses import ms_ssim, psnr_u8, ssim, ssim_u8
from editors.projection import (
    ProjectionConfig,
    ProjectionResult,
    learning_rate,
    match_saturation,
    noise_regularization,
    project,
)
from models.generator import Generator, to_rgb_u8
from models.jobs import Cancelled, Progress


def target_of(generator: Generator, seed: int = 5) -> tuple[np.ndarray, torch.Tensor]:
    """An image the generator can make exactly, and its ws [num_ws, w_dim]."""
    z = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = generator.broadcast(generator.mapping(z))
        return to_rgb_u8(generator.synthesis(ws))[0], ws[0]


def initial_psnr(generator: Generator, target: np.ndarray) -> float:
    with torch.no_grad():
        image = to_rgb_u8(generator.synthesis(generator.broadcast(generator.w_avg[None])))[0]
    return psnr_u8(image, target)


# -- convergence ------------------------------------------------------------------------------


def test_w_plus_projection_closes_in_on_a_generated_target(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    target, _ = target_of(generator)
    steps: list[Progress] = []
    result = project(generator, target, steps=100, space="w+", loss="offline", on_step=steps.append)
    assert isinstance(result, ProjectionResult)
    assert result.ws.shape == (generator.num_ws, generator.w_dim) and result.ws.dtype == np.float32
    assert result.loss_name == "pixel+ms-ssim" and result.space == "w+" and result.init == "w_avg"
    assert result.steps == 100 and result.losses.shape == (100,)
    assert result.losses[-10:].mean() < 0.2 * result.losses[:10].mean()
    assert result.psnr > initial_psnr(generator, target) + 8
    # The reported metrics are those of the returned latent, recomputed here independently.
    with torch.no_grad():
        image = to_rgb_u8(generator.synthesis(torch.from_numpy(result.ws)[None]))[0]
    np.testing.assert_array_equal(image, result.image)
    assert result.psnr == pytest.approx(psnr_u8(image, target))
    # Progress: every step, metrics per term, previews every 10 steps and at the end.
    assert [p.step for p in steps] == list(range(1, 101))
    assert {"loss", "pixel", "ms-ssim", "lr"} <= set(steps[0].metrics)
    previews = [p.step for p in steps if p.preview is not None]
    assert previews == list(range(10, 101, 10))
    assert steps[-1].preview.shape == (16, 16, 3)


@pytest.mark.slow
def test_w_plus_reaches_30_db_within_1000_steps(tiny_generator: Any) -> None:
    for resolution in (16, 32):
        generator = tiny_generator(resolution)
        target, _ = target_of(generator)
        result = project(generator, target, steps=1000, space="w+")
        assert result.psnr >= 30.0, (resolution, result.psnr)


def test_w_space_optimises_one_row(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    target, _ = target_of(generator, seed=7)
    result = project(generator, target, steps=60, space="w", loss="pixel")
    assert result.space == "w"
    np.testing.assert_array_equal(result.ws, np.repeat(result.ws[:1], generator.num_ws, axis=0))
    assert result.psnr > initial_psnr(generator, target) + 3


def test_target_is_centre_cropped_and_resized(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    photo = np.zeros((40, 60, 3), np.uint8)
    photo[:, 10:50] = 200  # the central 40x40 square is uniform
    result = project(generator, Image.fromarray(photo), steps=2, loss="pixel")
    assert result.target.shape == (16, 16, 3)
    assert (result.target == 200).all()


def test_generator_is_left_untouched(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    for param in generator.parameters():
        param.requires_grad_(True)  # even when grads are enabled on the weights
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    target, _ = target_of(generator)
    project(generator, target, steps=5, loss="pixel", config=ProjectionConfig(optimize_noise=True))
    for key, value in generator.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert all(p.grad is None for p in generator.parameters())


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_mid_run_gives_best_so_far(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    target, _ = target_of(generator)
    seen: list[Progress] = []

    def should_stop() -> bool:
        return len(seen) >= 12

    with pytest.raises(Cancelled) as info:
        project(
            generator, target, steps=500, loss="pixel", on_step=seen.append, should_stop=should_stop
        )
    partial = info.value.partial
    assert isinstance(partial, ProjectionResult) and partial.cancelled
    assert partial.steps == 12 and len(seen) == 12
    # Best so far: the latent of the lowest loss seen, rendered.
    assert partial.psnr > initial_psnr(generator, target)


# -- settings ---------------------------------------------------------------------------------


def test_config_json_round_trip_and_validation() -> None:
    config = ProjectionConfig(steps=42, space="w", mse_weight=0.5)
    assert ProjectionConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown projection settings: stpes"):
        ProjectionConfig.from_json('{"stpes": 3}')
    with pytest.raises(ValueError, match="space must be one of"):
        ProjectionConfig(space="s")
    with pytest.raises(ValueError, match="steps must be at least 1"):
        ProjectionConfig(steps=0)
    assert config.replace(steps=None, space="w+").space == "w+"


def test_learning_rate_schedule_matches_nvidia() -> None:
    config = ProjectionConfig()
    steps = 1000
    for step in (0, 10, 49, 50, 400, 750, 800, 999):
        t = step / steps
        ramp = min(1.0, (1.0 - t) / 0.25)
        ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
        ramp *= min(1.0, t / 0.05)
        assert learning_rate(config, t) == pytest.approx(0.1 * ramp)


def test_noise_regularization_matches_formula() -> None:
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(1, 1, 16, 16, generator=g), torch.randn(1, 1, 4, 4, generator=g)]
    expected = 0.0
    for v in maps:
        v = v.clone()
        while True:
            right = torch.cat([v[..., -1:], v[..., :-1]], dim=3)  # roll by one along W
            down = torch.cat([v[..., -1:, :], v[..., :-1, :]], dim=2)
            expected += float((v * right).mean()) ** 2 + float((v * down).mean()) ** 2
            if v.shape[2] <= 8:
                break
            v = v.reshape(1, 1, v.shape[2] // 2, 2, v.shape[3] // 2, 2).mean((3, 5))
    assert float(noise_regularization(maps)) == pytest.approx(expected, rel=1e-5)


def test_match_saturation_clips_only_where_the_target_is_clipped() -> None:
    target = torch.tensor([1.0, -1.0, 0.5, 1.0, -1.0])
    images = torch.tensor([1.7, -1.4, 1.7, 0.2, 0.3], requires_grad=True)
    out = match_saturation(images, target)
    torch.testing.assert_close(out.detach(), torch.tensor([1.0, -1.0, 1.7, 0.2, 0.3]))
    out.sum().backward()
    torch.testing.assert_close(images.grad, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))


# -- metrics ----------------------------------------------------------------------------------


def naive_ssim(a: np.ndarray, b: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """Per-channel SSIM with a Gaussian window, valid positions only, averaged (loops)."""
    coords = np.arange(window) - (window - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]
        for i in range(x.shape[0] - window + 1):
            for j in range(x.shape[1] - window + 1):
                px, py = x[i : i + window, j : j + window], y[i : i + window, j : j + window]
                mx, my = (kernel * px).sum(), (kernel * py).sum()
                vx = (kernel * px * px).sum() - mx**2
                vy = (kernel * py * py).sum() - my**2
                cov = (kernel * px * py).sum() - mx * my
                values.append(
                    (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
                )
    return float(np.mean(values))


def test_ssim_matches_naive_reference() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(20, 18, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape), 0, 255).astype(np.uint8)
    assert ssim_u8(a, b) == pytest.approx(naive_ssim(a / 255.0, b / 255.0), abs=1e-6)
    assert ssim_u8(a, a) == pytest.approx(1.0)
    assert psnr_u8(a, a) == float("inf")


def test_ms_ssim_combines_scales() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 48, 48, generator=g)
    y = (x + 0.1 * torch.randn(2, 3, 48, 48, generator=g)).clamp(0, 1)
    # 48 px allows 3 scales (48, 24, 12) with an 11 px window.
    weights = torch.tensor([0.0448, 0.2856, 0.3001])
    weights = weights / weights.sum()
    from editors.losses import _ssim_maps

    cs0 = _ssim_maps(x, y, 11)[1].mean((1, 2, 3))
    cs1 = _ssim_maps(F.avg_pool2d(x, 2), F.avg_pool2d(y, 2), 11)[1].mean((1, 2, 3))
    s2 = ssim(F.avg_pool2d(x, 4), F.avg_pool2d(y, 4))
    expected = cs0 ** weights[0] * cs1 ** weights[1] * s2 ** weights[2]
    torch.testing.assert_close(ms_ssim(x, y), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(2), rtol=1e-5, atol=1e-6)


# -- loss choice ------------------------------------------------------------------------------


def test_vgg16_loss_when_weights_are_cached(tiny_generator: Any, tmp_path: Path) -> None:
    from models.runtime import cache_dir
    from tests.helpers.vgg16 import torchvision_state

    generator = tiny_generator(32)
    target, _ = target_of(generator)
    with pytest.raises(ValueError, match="VGG16 weights are not in the model cache"):
        project(generator, target, steps=2, loss="vgg16")
    assert project(generator, target, steps=2).loss_name == "pixel+ms-ssim"  # auto, offline

    path = cache_dir() / "models" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision_state(), path)
    result = project(generator, target, steps=3)
    assert result.loss_name == "vgg16-baseline"  # no learned LPIPS weights: named as such
    result = project(generator, target, steps=3, config=ProjectionConfig(mse_weight=1.0))
    assert result.loss_name == "vgg16-baseline+pixel"

    from models.vgg16 import LPIPS_MEMBER, LPIPS_WHEEL
    from tests.helpers.vgg16 import lpips_state

    buffer = io.BytesIO()
    torch.save(lpips_state(), buffer)
    with zipfile.ZipFile(path.parent / LPIPS_WHEEL, "w") as archive:
        archive.writestr(LPIPS_MEMBER, buffer.getvalue())
    assert project(generator, target, steps=3).loss_name == "vgg16-lpips"


def test_discriminator_features_join_the_offline_loss(tiny_generator: Any) -> None:
    from models.discriminator import StyleGAN2Discriminator

    generator = tiny_generator(16)
    torch.manual_seed(0)
    discriminator = StyleGAN2Discriminator(16, (32, 32, 32)).eval()
    target, _ = target_of(generator)
    result = project(generator, target, steps=3, discriminator=discriminator)
    assert result.loss_name == "pixel+ms-ssim+discriminator"


# -- initialisation ---------------------------------------------------------------------------


class ExactEncoder(torch.nn.Module):
    """Stands in for a trained encoder: predicts the target's true latent."""

    def __init__(self, ws: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("ws", ws.clone())
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        assert images.shape[1:] == (3, 16, 16) and float(images.abs().max()) <= 1.0
        return self.ws[None].expand(images.shape[0], -1, -1)


def test_encoder_init_starts_at_its_prediction(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    target, ws = target_of(generator)
    encoder = ExactEncoder(ws)
    result = project(generator, target, steps=1, encoder=encoder, loss="pixel")
    assert encoder.calls == 1 and result.init == "encoder"
    assert result.psnr > 40  # one step at learning rate 0 (ramp-up): the prediction itself
    plain = project(generator, target, steps=1, init="w_avg", encoder=encoder, loss="pixel")
    assert plain.init == "w_avg" and plain.psnr < 30


def test_encoder_found_beside_the_model_file(tiny_generator: Any, tmp_path: Path) -> None:
    from models.encoder import LatentEncoder, encoder_path_for, save_encoder
    from models.generator import CheckpointSource

    generator = tiny_generator(16)
    generator.source = CheckpointSource(tmp_path / "tiny.pt", "rosinality .pt")
    target, _ = target_of(generator)
    with pytest.raises(ValueError, match="no trained encoder"):
        project(generator, target, steps=1, init="encoder")
    encoder = LatentEncoder(
        generator.num_ws,
        generator.w_dim,
        input_size=16,
        generator_fingerprint=generator.fingerprint(),
    )
    save_encoder(encoder, encoder_path_for(tmp_path / "tiny.pt"))
    assert project(generator, target, steps=1).init == "encoder"
    other = LatentEncoder(
        generator.num_ws, generator.w_dim, input_size=16, generator_fingerprint="0" * 16
    )
    save_encoder(other, encoder_path_for(tmp_path / "tiny.pt"))
    assert project(generator, target, steps=1).init == "w_avg"  # trained for another model


# -- ProGAN: project into z -------------------------------------------------------------------


class TinyProGAN(Generator):
    """A ProGAN-shaped stand-in: no mapping network (w = z), one style row, conv synthesis."""

    kind = "progan"

    def __init__(self) -> None:
        super().__init__()
        self.resolution, self.z_dim, self.w_dim, self.num_ws = 16, 8, 8, 1
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(8, 16 * 4 * 4)
        self.conv = torch.nn.Conv2d(16, 3, 3, padding=1)
        self.register_buffer("w_avg", torch.zeros(8))
        self.requires_grad_(False)

    def mapping_raw(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return z

    def synthesis(
        self, ws: torch.Tensor, *, noise_mode: str = "const", **options: Any
    ) -> torch.Tensor:
        x = F.leaky_relu(self.fc(ws[:, 0]).view(-1, 16, 4, 4), 0.2)
        return torch.tanh(self.conv(F.interpolate(x, scale_factor=4, mode="bilinear")))


def test_progan_projects_into_z() -> None:
    generator = TinyProGAN().eval()
    z_true = torch.randn(1, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        target = to_rgb_u8(generator.synthesis(z_true[:, None]))[0]
    result = project(generator, target, steps=200, space="w+", loss="pixel")
    assert result.space == "z" and result.init == "z-search"
    assert result.z is not None and result.z.shape == (8,)
    np.testing.assert_array_equal(result.ws, result.z[None])  # mapping is the identity
    assert result.psnr > 30
