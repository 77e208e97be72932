"""Progressive-growing GAN training (Karras et al., "Progressive Growing of GANs", 2018).

The recipe: start at 4x4; for each doubling, fade the new scale in over ``phase_kimg`` thousand
images (alpha from 1 to 0 in both networks, and in the real images), then train it stable for as
long. WGAN-GP loss with the drift term eps * E[D(real)^2], minibatch standard deviation in the
discriminator's last block, pixel norm and equalized learning rate in the generator
(``models/progan.py::ProGANGenerator``, pytorch_GAN_zoo's layout) and equalized learning rate in
the discriminator below. Adam (0, 0.99); the optimisers restart when a scale is added.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.discriminator import minibatch_stddev
from models.formats.native import save_generator
from models.generator import to_rgb_u8
from models.jobs import OnStep, ShouldStop
from models.progan import EqualizedLayer, ProGANGenerator, equalized_conv, progan_from_architecture
from models.training.config import ProGANConfig
from models.training.distributed import DistContext
from models.training.images import EpochSampler, ImageDataset, Preprocess
from models.training.loop import (
    TrainSummary,
    check_aligner,
    execute_job,
    image_grid,
    load_job_images,
)
from models.training.runs import RunFolder

MODEL_FILE = "model.safetensors"
LRELU = 0.2


def progan_depths(resolution: int, base: int, maximum: int) -> list[int]:
    """Feature maps per scale 4, 8, ..., resolution: min(base // r, maximum)."""
    return [min(base // 2**i, maximum) for i in range(2, int(math.log2(resolution)) + 1)]


class ProGANDiscriminator(nn.Module):
    """A growing discriminator mirroring the generator: fromRGB, conv blocks, mbstd + dense head."""

    def __init__(self, depths: list[int] | tuple[int, ...], mbstd_group: int = 4) -> None:
        super().__init__()
        self.depths: list[int] = [int(depths[0])]
        self.mbstd_group = mbstd_group
        self.alpha = 0.0
        c4 = self.depths[0]
        self.from_rgb = nn.ModuleList([equalized_conv(3, c4, 1)])
        self.blocks = nn.ModuleList()  # blocks[k] takes scale k+1 down to scale k
        self.final_conv = equalized_conv(c4 + 1, c4, 3)
        self.final_dense = EqualizedLayer(nn.Linear(c4 * 16, c4))
        self.output = EqualizedLayer(nn.Linear(c4, 1))
        for depth in depths[1:]:
            self.grow(int(depth))
        self.alpha = 0.0

    @property
    def resolution(self) -> int:
        """Input size in pixels."""
        return 4 * 2 ** len(self.blocks)

    def grow(self, depth: int) -> None:
        """Add a scale with ``depth`` feature maps (input size doubles); alpha becomes 1."""
        device = self.output.module.weight.device
        below = self.depths[-1]
        self.blocks.append(
            nn.ModuleList([equalized_conv(depth, depth, 3), equalized_conv(depth, below, 3)]).to(
                device
            )
        )
        self.from_rgb.append(equalized_conv(3, depth, 1).to(device))
        self.depths.append(depth)
        self.alpha = 1.0

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as JSON data."""
        return {"depths": list(self.depths), "mbstd_group": self.mbstd_group}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Scores [N, 1] (WGAN critic values) for images [N, 3, R, R] at the current size."""
        top = len(self.depths) - 1
        x = F.leaky_relu(self.from_rgb[top](images), LRELU)
        for scale in range(top, 0, -1):
            conv1, conv2 = self.blocks[scale - 1]
            x = F.leaky_relu(conv1(x), LRELU)
            x = F.leaky_relu(conv2(x), LRELU)
            x = F.avg_pool2d(x, 2)
            if scale == top and self.alpha > 0:
                skip = F.leaky_relu(self.from_rgb[top - 1](F.avg_pool2d(images, 2)), LRELU)
                x = self.alpha * skip + (1 - self.alpha) * x
        x = minibatch_stddev(x, self.mbstd_group)
        x = F.leaky_relu(self.final_conv(x), LRELU)
        x = F.leaky_relu(self.final_dense(x.flatten(1)), LRELU)
        return self.output(x)


def schedule(step: int, phase_steps: int, doublings: int) -> tuple[int, float]:
    """(scale index, alpha) at ``step``: stable 4x4, then fade-in + stable per doubling."""
    phase = min(step // phase_steps, 2 * doublings)
    depth = (phase + 1) // 2
    if phase % 2 == 1:  # fading the new scale in: alpha 1 -> 0
        return depth, 1.0 - (step - phase * phase_steps) / phase_steps
    return depth, 0.0


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: E[(||grad D(x_hat)|| - 1)^2] on random interpolates of real and fake."""
    mix = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


class ProGANTrainer:
    """One ProGAN step at a time; grows both networks on schedule; fully resumable."""

    task = "progan"

    def __init__(self, config: ProGANConfig, dataset: ImageDataset, dist: DistContext) -> None:
        if dataset.resolution != config.resolution:
            raise ValueError(
                f"the data are {dataset.resolution} px, the config {config.resolution} px"
            )
        self.config = config
        self.dataset = dataset
        self.dist = dist
        self.device = dist.device
        self.local_batch = dist.local_batch(config.batch_size)
        self.depths = progan_depths(config.resolution, config.feature_base, config.feature_max)
        self.doublings = len(self.depths) - 1
        self.phase_steps = max(1, math.ceil(config.phase_kimg * 1000 / config.batch_size))
        self.total_steps = (1 + 2 * self.doublings) * self.phase_steps
        self.images_per_step = config.batch_size
        self.sampler = EpochSampler(len(dataset), config.batch_size, config.seed)

        torch.manual_seed(config.seed)
        self.G = ProGANGenerator(config.latent_size, self.depths[:1]).to(self.device)
        self.D = ProGANDiscriminator(self.depths[:1], config.mbstd_group).to(self.device)
        dist.broadcast_module(self.G)
        dist.broadcast_module(self.D)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self._new_optimizers()
        sample_rng = torch.Generator().manual_seed(config.seed)
        self.sample_z = torch.randn(config.num_samples, config.latent_size, generator=sample_rng)
        torch.manual_seed(config.seed * 1000 + 41 + dist.rank)

    def _new_optimizers(self) -> None:
        lr = self.config.lr
        self.G_opt = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        self.D_opt = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)

    def _grow_to(self, depth: int) -> None:
        while self.G.depth < depth:
            scale_depth = self.depths[self.G.depth + 1]
            self.G.grow(scale_depth)
            self.D.grow(scale_depth)
            self.dist.broadcast_module(self.G)
            self.dist.broadcast_module(self.D)
            old_keys = set(self.G_ema.state_dict())
            self.G_ema.grow(scale_depth)
            with torch.no_grad():
                live = self.G.state_dict()
                for key, value in self.G_ema.state_dict().items():
                    if key not in old_keys:
                        value.copy_(live[key])
            self.G_ema.requires_grad_(False)
            self._new_optimizers()

    def jump_to_final_phase(self) -> None:
        """Grow to full size at once (benchmarks measure the last phase's speed)."""
        self._grow_to(self.doublings)
        self._set_alpha(0.0)

    def _set_alpha(self, alpha: float) -> None:
        if self.G.depth > 0:
            self.G.set_alpha(alpha)
            self.G_ema.set_alpha(alpha)
        self.D.alpha = alpha if self.D.depths[1:] else 0.0

    def _reals(self, step: int, alpha: float) -> torch.Tensor:
        indices = self.sampler.batch(step)
        start = self.dist.rank * self.local_batch
        images = self.dataset.batch(indices[start : start + self.local_batch], self.device)
        if self.config.mirror:
            flip = torch.rand(images.shape[0], device=self.device) < 0.5
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
        size = self.G.resolution
        if images.shape[-1] != size:
            images = F.adaptive_avg_pool2d(images, size)
        if alpha > 0:  # fade the real images like the generator's output
            coarse = F.interpolate(F.avg_pool2d(images, 2), scale_factor=2.0, mode="nearest")
            images = alpha * coarse + (1 - alpha) * images
        return images

    def _fakes(self, batch: int) -> torch.Tensor:
        z = torch.randn(batch, self.config.latent_size, device=self.device)
        return self.G.synthesis(z.unsqueeze(1))

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One critic step (WGAN-GP + drift), then one generator step, then the EMA."""
        depth, alpha = schedule(step, self.phase_steps, self.doublings)
        self._grow_to(depth)
        self._set_alpha(alpha)
        config, G, D = self.config, self.G, self.D
        reals = self._reals(step, alpha)

        D.requires_grad_(True)
        with torch.no_grad():
            fakes = self._fakes(self.local_batch)
        real_scores, fake_scores = D(reals), D(fakes)
        wasserstein = real_scores.mean() - fake_scores.mean()
        penalty = gradient_penalty(D, reals, fakes)
        drift = real_scores.square().mean()
        d_loss = -wasserstein + config.gp_weight * penalty + config.drift * drift
        self.D_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.dist.average_gradients(D.parameters())
        self.D_opt.step()

        D.requires_grad_(False)
        g_loss = -D(self._fakes(self.local_batch)).mean()
        self.G_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.dist.average_gradients(G.parameters())
        self.G_opt.step()
        D.requires_grad_(True)

        self._update_ema((step + 1) * config.batch_size)
        return {
            "loss_D": d_loss.detach(),
            "loss_G": g_loss.detach(),
            "wasserstein": wasserstein.detach(),
            "gradient_penalty": penalty.detach(),
        }

    @torch.no_grad()
    def _update_ema(self, images_seen: int) -> None:
        half_life = min(self.config.ema_kimg * 1000, images_seen * 0.05)
        beta = 0.5 ** (self.config.batch_size / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))

    def extra_metrics(self) -> dict[str, float]:
        """Current size and fade factor."""
        return {"resolution": float(self.G.resolution), "alpha": float(self.G.alpha)}

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        """The EMA generator's images of the fixed latents, shown at the final size."""
        images = self.G_ema.synthesis(self.sample_z.to(self.device).unsqueeze(1))
        if images.shape[-1] != self.config.resolution:
            images = F.interpolate(images, size=self.config.resolution, mode="nearest")
        return image_grid(to_rgb_u8(images.clamp(-1, 1)))

    def state_dict(self) -> dict[str, Any]:
        """Networks at their current size, optimisers and the fade factor."""
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "G_architecture": self.G.architecture(),
            "D_architecture": self.D.architecture(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild the networks at the checkpoint's size and restore everything."""
        self.G = progan_from_architecture(dict(state["G_architecture"])).to(self.device)
        self.G_ema = progan_from_architecture(dict(state["G_architecture"])).to(self.device)
        arch = state["D_architecture"]
        self.D = ProGANDiscriminator(arch["depths"], arch["mbstd_group"]).to(self.device)
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.G_ema.eval().requires_grad_(False)
        self.D.load_state_dict(state["D"])
        self._new_optimizers()
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])

    def export(self, run: RunFolder, step: int) -> Path:
        """Write the EMA generator (its current size and fade) as ``RUN_DIR/model.safetensors``."""
        generator = copy.deepcopy(self.G_ema).cpu().float()
        config = self.config
        provenance = {
            "trained_with": "Latent Studio",
            "task": "progan",
            "data": Path(config.data).name,
            "images": len(self.dataset),
            "kimg": round(step * config.batch_size / 1000, 3),
            "steps": step,
        }
        path = run.path / MODEL_FILE
        save_generator(generator, path, name=config.name or run.path.name, provenance=provenance)
        return path


def train_progan(
    config: ProGANConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    preprocess: Preprocess | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainSummary:
    """Train a ProGAN on ``config.data`` into ``run_dir`` (same protocol as ``train_stylegan2``).

    Raises:
        Cancelled: stopped on request (``partial`` is the summary).
        TrainingDiverged, ValueError, OSError: as for StyleGAN2.
    """
    check_aligner(config, preprocess)

    def build(
        dist: DistContext, run: RunFolder, report_to: OnStep | None, stop: ShouldStop | None
    ) -> ProGANTrainer:
        dataset = load_job_images(config, config.resolution, dist, run, preprocess, report_to, stop)
        return ProGANTrainer(config, dataset, dist)

    return execute_job(
        "progan", config, run_dir, build, resume=resume, on_step=on_step, should_stop=should_stop
    )
