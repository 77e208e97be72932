"""StyleGAN2 training on a folder of images (Karras et al. 2020, with the StyleGAN2-ADA recipe).

Losses follow NVIDIA's ``training/loss.py`` and rosinality's ``train.py``: non-saturating logistic
loss, lazy R1 on real images every ``r1_interval`` steps, lazy path-length regularisation every
``pl_interval`` steps on a shrunk batch, style mixing with one random cut per batch, Adam with
betas (0, 0.99) whose lr and betas are rescaled for the lazy intervals, and an EMA generator
whose half-life ramps up with the images seen. The networks are ``StyleGAN2Generator`` and
``StyleGAN2Discriminator`` in rosinality's layout, so downloaded models can be fine-tuned.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.discriminator import StyleGAN2Discriminator
from models.formats.native import save_generator
from models.generator import to_rgb_u8
from models.jobs import OnStep, ShouldStop
from models.stylegan2 import StyleGAN2Generator, channels_from_base
from models.training.augment import Augmenter
from models.training.config import StyleGAN2Config
from models.training.distributed import DistContext
from models.training.images import EpochSampler, ImageDataset, Preprocess
from models.training.loop import (
    TrainSummary,
    check_aligner,
    execute_job,
    image_grid,
    load_job_images,
)
from models.training.precision import autocast, autocast_dtype
from models.training.runs import RunFolder

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: softplus(D(fake)) + softplus(-D(real)), batch means."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss: softplus(-D(G(z))) = -log sigmoid(D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def hide_unknown(images: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    """Images [B, 3, H, W] in [-1, 1] faded to mid-grey (0) where ``masks`` [B, 1, H, W] is 0."""
    return images if masks is None else images * masks.to(images.dtype)


def build_networks(config: StyleGAN2Config) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
    """Fresh G and D for ``config`` (or G and, when it ships one, D of ``config.init_from``).

    Raises:
        CheckpointError: ``init_from`` cannot be read.
        ValueError: ``init_from`` is not a StyleGAN2 generator of ``config.resolution``.
    """
    if config.init_from:
        from models import load_generator

        generator = load_generator(config.init_from, device="cpu")
        if not isinstance(generator, StyleGAN2Generator):
            raise ValueError(
                f"{config.init_from}: fine-tuning needs a StyleGAN2 generator, "
                f"this is a {generator.kind!r} model"
            )
        if generator.resolution != config.resolution:
            raise ValueError(
                f"{config.init_from}: the model is {generator.resolution} px but the "
                f"run is set to {config.resolution} px"
            )
        discriminator = _load_matching_discriminator(
            config.init_from, generator, config.mbstd_group
        )
        return generator.train().requires_grad_(True), discriminator
    channels = channels_from_base(config.resolution, config.channel_base, config.channel_max)
    generator = StyleGAN2Generator(
        config.resolution,
        channels,
        z_dim=config.w_dim,
        w_dim=config.w_dim,
        mapping_layers=config.mapping_layers,
    )
    discriminator = StyleGAN2Discriminator(
        config.resolution, channels, mbstd_group=config.mbstd_group
    )
    return generator, discriminator


def _load_matching_discriminator(
    path: str, generator: StyleGAN2Generator, mbstd_group: int
) -> StyleGAN2Discriminator:
    """The discriminator stored with ``path`` if the formats layer can read one, else a new one."""
    import models

    loader = getattr(models, "load_discriminator", None)
    if loader is not None:
        found = loader(path)
        if found is not None:
            if found.resolution != generator.resolution:
                raise ValueError(
                    f"{path}: its discriminator is {found.resolution} px, the generator "
                    f"{generator.resolution} px"
                )
            return found.train().requires_grad_(True)
    log.warning("%s has no discriminator; fine-tuning starts from a fresh one", path)
    return StyleGAN2Discriminator(generator.resolution, generator.channels, mbstd_group=mbstd_group)


class StyleGAN2Trainer:
    """One StyleGAN2 optimisation step at a time, with its full resumable state."""

    task = "stylegan2"

    def __init__(self, config: StyleGAN2Config, dataset: ImageDataset, dist: DistContext) -> None:
        if dataset.resolution != config.resolution:
            raise ValueError(
                f"the data are {dataset.resolution} px, the config {config.resolution} px"
            )
        self.config = config
        self.dataset = dataset
        self.dist = dist
        self.device = dist.device
        self.local_batch = dist.local_batch(config.batch_size)
        self.total_steps = config.total_steps
        self.images_per_step = config.batch_size
        self.sampler = EpochSampler(len(dataset), config.batch_size, config.seed)

        torch.manual_seed(config.seed)  # identical initial weights on every process
        generator, discriminator = build_networks(config)
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        # The generator's grouped convolutions reshape to [1, B*C, H, W]; only D can use NHWC.
        self.G = generator.to(self.device)
        self.D = discriminator.to(self.device, memory_format=self.memory_format)
        dist.broadcast_module(self.G)
        dist.broadcast_module(self.D)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.G_opt = self._adam(self.G, config.pl_interval if config.pl_weight > 0 else 0)
        self.D_opt = self._adam(self.D, config.r1_interval)
        self.pl_mean = torch.zeros([], device=self.device)
        self.augmenter = Augmenter(
            config.augment,
            policy=config.diffaugment_policy,
            p=config.augment_p,
            target=config.ada_target,
            interval=config.ada_interval,
            speed_images=config.ada_kimg * 1000,
        )
        self.r1_gamma = config.effective_r1_gamma
        self.autocast_dtype = autocast_dtype(self.device, config.mixed_precision)
        sample_rng = torch.Generator().manual_seed(config.seed)
        self.sample_z = torch.randn(config.num_samples, self.G.z_dim, generator=sample_rng)
        # Each process draws its own latents and noise from here on.
        torch.manual_seed(config.seed * 1000 + 17 + dist.rank)

    def _adam(self, module: torch.nn.Module, reg_interval: int) -> torch.optim.Adam:
        """Adam (0, 0.99) with NVIDIA's lazy-regularisation correction of lr and betas."""
        ratio = reg_interval / (reg_interval + 1) if reg_interval > 0 else 1.0
        return torch.optim.Adam(
            module.parameters(),
            lr=self.config.lr * ratio,
            betas=(0.0**ratio, 0.99**ratio),
            eps=1e-8,
        )

    # -- pieces of a step -------------------------------------------------------------------
    def _autocast(self) -> Any:
        return autocast(self.device, self.autocast_dtype)

    def _generate(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [B, 3, R, R] and the ws [B, num_ws, w_dim] that made them (style mixing)."""
        G = self.G
        z = torch.randn(batch, G.z_dim, device=self.device)
        ws = G.mapping_raw(z).unsqueeze(1).repeat(1, G.num_ws, 1)
        if self.config.style_mixing > 0 and float(torch.rand([])) < self.config.style_mixing:
            cutoff = int(torch.randint(1, G.num_ws, []))
            w2 = G.mapping_raw(torch.randn(batch, G.z_dim, device=self.device))
            ws = torch.cat([ws[:, :cutoff], w2.unsqueeze(1).repeat(1, G.num_ws - cutoff, 1)], dim=1)
        images = G.synthesis(ws, noise_mode="random")
        return images, ws

    def _reals(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's real images [B, 3, R, R] and their masks [B, 1, R, R] (or None)."""
        indices = self.sampler.batch(step)
        start = self.dist.rank * self.local_batch
        local = indices[start : start + self.local_batch]
        images = self.dataset.batch(local, self.device)
        masks = self.dataset.batch_masks(local, self.device) if self.config.alpha_mask else None
        if self.config.mirror:
            flip = torch.rand(images.shape[0], device=self.device).view(-1, 1, 1, 1) < 0.5
            images = torch.where(flip, images.flip(3), images)
            masks = None if masks is None else torch.where(flip, masks.flip(3), masks)
        if masks is not None:
            images = hide_unknown(images, masks)
        return images.contiguous(memory_format=self.memory_format), masks

    def _step_optimizer(self, optimizer: torch.optim.Optimizer, module: torch.nn.Module) -> None:
        self.dist.average_gradients(module.parameters())
        optimizer.step()

    # -- Trainer protocol -------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """D main (+ lazy R1), G main (+ lazy path length), then the EMA update."""
        config, G, D = self.config, self.G, self.D
        reals, masks = self._reals(step)
        # Fakes are hidden where a shuffled real image is, so D cannot tell them apart by the
        # hidden areas alone and G is judged on what the photos show.
        fake_masks = None if masks is None else masks[torch.randperm(masks.shape[0])]
        out: dict[str, torch.Tensor] = {}

        # Discriminator: fakes down, reals up.
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad(), self._autocast():
            fakes, _ = self._generate(self.local_batch)
        with self._autocast():
            fake_logits = D(self.augmenter(hide_unknown(fakes, fake_masks))).float()
            real_logits = D(self.augmenter(reals)).float()
            d_loss = d_logistic_loss(real_logits, fake_logits)
        self.D_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self._step_optimizer(self.D_opt, D)
        self.augmenter.accumulate(real_logits)
        out.update(
            loss_D=d_loss.detach(),
            score_real=real_logits.detach().mean(),
            score_fake=fake_logits.detach().mean(),
        )

        if self.r1_gamma > 0 and step % config.r1_interval == 0:
            # R1 is taken on the augmented reals (exact for "none"; the usual choice otherwise).
            reals_aug = self.augmenter(reals).detach().requires_grad_(True)
            logits = D(reals_aug)
            (grad,) = torch.autograd.grad(logits.sum(), reals_aug, create_graph=True)
            penalty = grad.square().sum(dim=[1, 2, 3]).mean()
            self.D_opt.zero_grad(set_to_none=True)
            (penalty * (self.r1_gamma / 2) * config.r1_interval).backward()
            self._step_optimizer(self.D_opt, D)
            out["r1_penalty"] = penalty.detach()

        # Generator: make D call the fakes real.
        G.requires_grad_(True)
        D.requires_grad_(False)
        with self._autocast():
            fakes, _ = self._generate(self.local_batch)
            g_loss = g_nonsaturating_loss(
                D(self.augmenter(hide_unknown(fakes, fake_masks))).float()
            )
        self.G_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self._step_optimizer(self.G_opt, G)
        out["loss_G"] = g_loss.detach()

        if config.pl_weight > 0 and step % config.pl_interval == 0:
            batch = max(1, self.local_batch // config.pl_batch_shrink)
            fakes, ws = self._generate(batch)
            noise = torch.randn_like(fakes) / math.sqrt(fakes.shape[2] * fakes.shape[3])
            (grad,) = torch.autograd.grad((fakes * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
            mean_now = self.dist.all_reduce_sum(lengths.detach().mean()) / self.dist.world_size
            pl_mean = self.pl_mean.lerp(mean_now, config.pl_decay)
            self.pl_mean.copy_(pl_mean)
            penalty = (lengths - pl_mean).square().mean()
            self.G_opt.zero_grad(set_to_none=True)
            (penalty * config.pl_weight * config.pl_interval).backward()
            self._step_optimizer(self.G_opt, G)
            out["pl_penalty"] = penalty.detach()
            out["path_length"] = self.pl_mean.detach().clone()
        D.requires_grad_(True)

        self._update_ema(images_seen=(step + 1) * config.batch_size)
        reduce = self.dist.all_reduce_sum if self.dist.enabled else None
        self.augmenter.maybe_adjust(config.batch_size, reduce)
        return out

    @torch.no_grad()
    def _update_ema(self, images_seen: int) -> None:
        config = self.config
        half_life = config.ema_kimg * 1000
        if config.ema_rampup > 0:
            half_life = min(half_life, images_seen * config.ema_rampup)
        beta = 0.5 ** (config.batch_size / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    def extra_metrics(self) -> dict[str, float]:
        """Augmentation probability and r_t."""
        if self.augmenter.mode == "ada":
            return {"augment_p": self.augmenter.p, "r_t": self.augmenter.rt}
        return {}

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        """The EMA generator's images of the fixed sample latents (stored noise)."""
        G = self.G_ema
        z = self.sample_z.to(self.device)
        images = torch.cat(
            [
                G.synthesis(G.broadcast(G.mapping_raw(chunk)), noise_mode="const")
                for chunk in z.split(16)
            ]
        )
        return image_grid(to_rgb_u8(images))

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers, EMA, path-length mean and augmentation state."""
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "pl_mean": self.pl_mean.detach().clone(),
            "augment": self.augmenter.state_dict(),
            "architecture": {"G": self.G.architecture(), "D": self.D.architecture()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` output (strict about every key).

        Raises:
            ValueError: the checkpoint was made for other networks.
        """
        if state["architecture"] != {"G": self.G.architecture(), "D": self.D.architecture()}:
            raise ValueError(
                "the checkpoint holds networks of another architecture than this run's config"
            )
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])
        self.pl_mean.copy_(state["pl_mean"])
        self.augmenter.load_state_dict(state["augment"])

    def export(self, run: RunFolder, step: int) -> Path:
        """Write the EMA generator (with a fresh w_avg) as ``RUN_DIR/model.safetensors``."""
        generator = (
            copy.deepcopy(self.G_ema).to("cpu", memory_format=torch.contiguous_format).float()
        )
        generator.update_w_avg(10000)
        config = self.config
        provenance = {
            "trained_with": "Latent Studio",
            "task": "stylegan2",
            "data": Path(config.data).name,
            "images": len(self.dataset),
            "kimg": round(step * config.batch_size / 1000, 3),
            "steps": step,
            "preset": config.preset,
            "augment": config.augment,
            "fine_tuned_from": Path(config.init_from).name if config.init_from else "",
        }
        path = run.path / MODEL_FILE
        save_generator(
            generator,
            path,
            dtype=torch.float16 if config.export_fp16 else None,
            name=config.name or run.path.name,
            provenance=provenance,
        )
        return path


def train_stylegan2(
    config: StyleGAN2Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    preprocess: Preprocess | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainSummary:
    """Train StyleGAN2 on ``config.data`` into the run folder ``run_dir``.

    Args:
        config: the run's settings (see ``StyleGAN2Config``).
        run_dir: output folder (config.json, metrics.jsonl, samples/, checkpoints/, model).
        resume: continue from the newest checkpoint in ``run_dir``.
        preprocess: image operation applied while caching (face alignment); required when
            ``config.align_faces`` is set.
        on_step, should_stop: the job protocol (a stop saves a checkpoint and the model first).

    Returns:
        The summary; ``summary.artifact`` is the exported generator (native format).

    Raises:
        Cancelled: stopped on request (``partial`` is the summary).
        TrainingDiverged: NaN/inf loss.
        ValueError, OSError, CheckpointError: bad data, config or files.
    """
    check_aligner(config, preprocess)

    def build(
        dist: DistContext, run: RunFolder, report_to: OnStep | None, stop: ShouldStop | None
    ) -> StyleGAN2Trainer:
        dataset = load_job_images(config, config.resolution, dist, run, preprocess, report_to, stop)
        return StyleGAN2Trainer(config, dataset, dist)

    return execute_job(
        "stylegan2", config, run_dir, build, resume=resume, on_step=on_step, should_stop=should_stop
    )
