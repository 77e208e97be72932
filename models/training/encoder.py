"""Latent-encoder training: learn image -> ws for a frozen generator (a head start for projection).

Stage 1 (``kimg``) uses pairs the generator makes itself: sample ws (truncated, half of them
style-mixed so W+ is covered), render, and regress the ws from the image (latent loss) while the
re-rendered prediction must match the image (pixel loss through the frozen generator). Stage 2
(``real_kimg``, optional) refines on real photos with the pixel loss alone. The file records the
generator's fingerprint, so the app uses it only with the model it was trained for.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.encoder import LatentEncoder, encoder_path_for, save_encoder
from models.generator import Generator, to_rgb_u8
from models.jobs import OnStep, ShouldStop
from models.training.config import EncoderConfig
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

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.safetensors"
_VALIDATION_SAMPLES = 32


class EncoderTrainer:
    """One encoder optimisation step at a time, with its resumable state."""

    task = "encoder"

    def __init__(
        self,
        config: EncoderConfig,
        generator: Generator,
        real: ImageDataset | None,
        dist: DistContext,
        model_path: str | Path | None = None,
    ) -> None:
        if config.real_kimg > 0 and real is None:
            raise ValueError("the real-photo stage needs data")
        self.config = config
        self.dist = dist
        self.device = dist.device
        self.model_path = model_path
        self.local_batch = dist.local_batch(config.batch_size)
        self.total_steps = config.total_steps
        self.synthetic_steps = config.synthetic_steps
        self.images_per_step = config.batch_size
        self.G = copy.deepcopy(generator).to(self.device).eval().requires_grad_(False)
        self.real = real
        self.sampler = EpochSampler(len(real), config.batch_size, config.seed) if real else None

        torch.manual_seed(config.seed)
        self.encoder = LatentEncoder(
            generator.num_ws,
            generator.w_dim,
            input_size=config.input_size,
            width=config.width,
            max_channels=config.max_channels,
            generator_fingerprint=generator.fingerprint(),
        )
        self.encoder.w_avg.copy_(generator.w_avg.detach().float().cpu())
        self.encoder.to(self.device)
        dist.broadcast_module(self.encoder)
        self.optimizer = torch.optim.Adam(
            self.encoder.parameters(), lr=config.lr, betas=(0.9, 0.99)
        )
        fixed = torch.Generator().manual_seed(config.seed + 1)
        self.fixed_z = torch.randn(_VALIDATION_SAMPLES, generator.z_dim, generator=fixed)
        self.validation: dict[str, float] = {}
        torch.manual_seed(config.seed * 1000 + 31 + dist.rank)

    # -- data ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _sample_ws(
        self, batch: int, generator: torch.Generator | None = None, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Truncated ws [B, num_ws, w_dim]; half the batch mixes two latents at a random row."""
        G = self.G
        if z is None:
            z = torch.randn(batch, G.z_dim, generator=generator)
        z = z.to(self.device)
        ws = G.broadcast(G.mapping(z, truncation_psi=self.config.truncation_psi))
        if G.num_ws > 1:
            z2 = torch.randn(z.shape, generator=generator).to(self.device)
            ws2 = G.broadcast(G.mapping(z2, truncation_psi=self.config.truncation_psi))
            cut = torch.randint(1, G.num_ws, (z.shape[0],), generator=generator).to(self.device)
            mixed = torch.arange(z.shape[0], device=self.device) % 2 == 1
            rows = torch.arange(G.num_ws, device=self.device).view(1, -1)
            take_second = (rows >= cut.view(-1, 1)) & mixed.view(-1, 1)
            ws = torch.where(take_second.unsqueeze(-1), ws2, ws)
        return ws

    def _render(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode="const")

    # -- Trainer protocol -------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """A synthetic-pair step (latent + pixel loss), or a real-photo step (pixel loss)."""
        config = self.config
        self.encoder.train()
        out: dict[str, torch.Tensor] = {}
        if step < self.synthetic_steps:
            ws = self._sample_ws(self.local_batch)
            with torch.no_grad():
                images = self._render(ws)
            predicted = self.encoder(images)
            latent_loss = F.mse_loss(predicted, ws)
            loss = config.latent_weight * latent_loss
            out["latent_mse"] = latent_loss.detach()
            if config.image_weight > 0:
                image_loss = F.mse_loss(self._render(predicted), images)
                loss = loss + config.image_weight * image_loss
                out["image_mse"] = image_loss.detach()
        else:
            assert self.real is not None and self.sampler is not None
            indices = self.sampler.batch(step - self.synthetic_steps)
            start = self.dist.rank * self.local_batch
            images = self.real.batch(indices[start : start + self.local_batch], self.device)
            image_loss = F.mse_loss(self._render(self.encoder(images)), images)
            loss = image_loss
            out["real_image_mse"] = image_loss.detach()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_gradients(self.encoder.parameters())
        self.optimizer.step()
        out["loss"] = loss.detach()
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Latent and pixel error on fixed generated samples (no global randomness)."""
        self.encoder.eval()
        fixed = torch.Generator().manual_seed(self.config.seed + 2)
        ws = self._sample_ws(_VALIDATION_SAMPLES, generator=fixed, z=self.fixed_z)
        images = self._render(ws)
        predicted = self.encoder(images)
        return {
            "val_latent_mse": float(F.mse_loss(predicted, ws)),
            "val_image_mse": float(F.mse_loss(self._render(predicted), images)),
        }

    def extra_metrics(self) -> dict[str, float]:
        """Validation errors from the latest sample grid."""
        return dict(self.validation)

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        """Pairs (input, reconstruction): generated inputs, then real photos when there are any."""
        self.validation = self.validate()
        self.encoder.eval()
        count = self.config.num_samples
        fixed = torch.Generator().manual_seed(self.config.seed + 2)
        inputs = self._render(self._sample_ws(count, generator=fixed, z=self.fixed_z[:count]))
        if self.real is not None:
            real = self.real.batch(np.arange(min(count, len(self.real))), self.device)
            inputs = torch.cat(
                [inputs[: count - len(real) // 2], real[: len(real) // 2 + count % 2]]
            )
        outputs = self._render(self.encoder(inputs))
        tiles = []
        for source, rebuilt in zip(to_rgb_u8(inputs), to_rgb_u8(outputs), strict=True):
            tiles += [source, rebuilt]
        return image_grid(tiles, columns=4)

    def state_dict(self) -> dict[str, Any]:
        """Encoder and optimiser."""
        return {
            "encoder": self.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "architecture": self.encoder.architecture(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` output.

        Raises:
            ValueError: the checkpoint was made for another generator or architecture.
        """
        if state["architecture"] != self.encoder.architecture():
            raise ValueError(
                "the checkpoint holds an encoder for another generator or architecture"
            )
        self.encoder.load_state_dict(state["encoder"])
        self.optimizer.load_state_dict(state["optimizer"])

    def export(self, run: RunFolder, step: int) -> Path:
        """Write ``RUN_DIR/encoder.safetensors`` (with ``install``, also beside the model)."""
        metrics = {
            **self.validate(),
            "steps": step,
            "generator": str(self.model_path or ""),
            "real_photos": len(self.real) if self.real is not None else 0,
        }
        path = run.path / ENCODER_FILE
        save_encoder(copy.deepcopy(self.encoder).cpu().float(), path, metrics=metrics)
        if self.config.install and self.model_path:
            target = encoder_path_for(self.model_path)
            shutil.copyfile(path, target)
            log.info("installed the encoder as %s", target)
        return path


def train_encoder(
    config: EncoderConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    preprocess: Preprocess | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainSummary:
    """Train an encoder for the generator in ``config.model`` into ``run_dir``.

    Returns the summary; ``artifact`` is the encoder file (also copied to
    ``encoder_path_for(config.model)`` when ``config.install`` is set).

    Raises:
        Cancelled: stopped on request (``partial`` is the summary).
        CheckpointError, ValueError, OSError: unreadable model, bad data or config.
    """
    check_aligner(config, preprocess)

    def build(
        dist: DistContext, run: RunFolder, report_to: OnStep | None, stop: ShouldStop | None
    ) -> EncoderTrainer:
        from models import load_generator

        generator = load_generator(config.model, device="cpu")
        real = None
        if config.data:
            real = load_job_images(
                config, generator.resolution, dist, run, preprocess, report_to, stop
            )
        return EncoderTrainer(config, generator, real, dist, model_path=config.model)

    return execute_job(
        "encoder", config, run_dir, build, resume=resume, on_step=on_step, should_stop=should_stop
    )
