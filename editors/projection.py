"""Photo projection: find the latent whose image matches a target (NVIDIA's projector recipe).

Adam on one w (space "w"), one w per style input ("w+") or the input z ("z", ProGAN), with the
learning-rate and latent-noise ramps of NVIDIA's ``projector.py`` (formats.md §6.1). The image
distance is VGG16 LPIPS when its weights are in the model cache (learned LPIPS channel weights
when those are too, else LPIPS's unweighted baseline), otherwise an offline mix of pixel
MSE, multi-scale SSIM, dlib face identity and discriminator features (``editors.losses``).

Thread safety: projection never writes to the generator. Gradients are taken with
``torch.autograd.grad`` for the latent only (parameter ``.grad`` stays untouched), optimised
noise maps are our own tensors passed in with ``noise=``, and no synthesis cache is used, so the
GUI's render thread may keep rendering with the same generator object while this runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from editors.alignment import AlignedFace
from editors.losses import (
    CompositeLoss,
    DiscriminatorFeatures,
    IdentityDistance,
    MultiScaleSSIM,
    PixelMSE,
    VGGPerceptual,
    WeightedTerm,
    psnr_u8,
    ssim_u8,
)
from models.generator import Generator, to_rgb_u8
from models.jobs import Cancelled, OnStep, Progress, ShouldStop, report

log = logging.getLogger(__name__)

Space = Literal["w", "w+", "z"]
LossChoice = Literal["auto", "vgg16", "offline", "pixel"]
InitChoice = Literal["auto", "w_avg", "encoder"]
SCHEMA_VERSION = 1
Z_CANDIDATES = 16  # random z tried to start a Z projection (ProGAN has no average latent)


@dataclass(frozen=True, slots=True)
class ProjectionConfig:
    """Knobs of ``project``; the defaults are NVIDIA's projector's unless noted."""

    steps: int = 1000  # optimisation steps
    space: Space = "w+"  # "w": one w for all layers; "w+": one per style input; "z": the input
    loss: LossChoice = "auto"  # "auto": VGG16 when its weights are cached, else "offline"
    init: InitChoice = "auto"  # "auto": the model's trained encoder when there is one, else w_avg
    mse_weight: float = 0.0  # pixel MSE added to the VGG16 distance (rosinality's --mse)
    pixel_weight: float = 10.0  # offline loss: pixel MSE in [-1, 1] units (small near the end)
    ssim_weight: float = 1.0  # offline loss: 1 - MS-SSIM
    identity_weight: float = 0.1  # offline loss: dlib descriptor distance (faces only)
    discriminator_weight: float = 0.1  # offline loss: discriminator features (when shipped)
    optimize_noise: bool = False  # also fit the noise maps (off: the app renders const noise)
    initial_learning_rate: float = 0.1  # Adam learning rate at the top of the ramp
    initial_noise_factor: float = 0.05  # latent noise at step 0, in units of the latent's std
    lr_rampdown_length: float = 0.25  # final fraction of steps with a cosine ramp-down
    lr_rampup_length: float = 0.05  # first fraction of steps with a linear ramp-up
    noise_ramp_length: float = 0.75  # fraction of steps over which latent noise fades out
    regularize_noise_weight: float = 1e5  # weight of the noise-map autocorrelation penalty
    w_avg_samples: int = 10000  # z samples to estimate the spread of w
    preview_every: int = 10  # attach a preview image to every k-th progress report
    seed: int = 303  # seeds latent noise, noise maps and z candidates

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        choices = {"space": Space, "loss": LossChoice, "init": InitChoice}
        for name, kind in choices.items():
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}"
                )
        if self.preview_every < 1:
            raise ValueError("preview_every must be at least 1")

    def replace(self, **changes: Any) -> ProjectionConfig:
        """A copy with ``changes`` applied (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_json(self) -> str:
        """The config as a JSON object string."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProjectionConfig:
        """Parse ``to_json`` output; unknown keys are an error (a typo must not pass silently)."""
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown projection settings: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True, slots=True, eq=False)
class ProjectionResult:
    """What a projection found."""

    ws: np.ndarray  # [num_ws, w_dim] float32 latent (for space "z": mapping(z) broadcast)
    image: np.ndarray  # [R, R, 3] uint8 render of ws
    target: np.ndarray  # [R, R, 3] uint8 target as the projection saw it
    losses: np.ndarray  # [steps] float32 total loss per step
    loss_name: str  # e.g. "vgg16-lpips", "vgg16-baseline" or "pixel+ms-ssim+identity"
    space: Space
    init: str  # "w_avg", "encoder" or "z-search"
    steps: int  # steps done
    psnr: float  # dB, image vs target
    ssim: float  # image vs target
    seconds: float  # wall time
    config: ProjectionConfig
    z: np.ndarray | None = None  # [z_dim] for space "z"
    noise: tuple[np.ndarray, ...] | None = None  # fitted noise maps when optimize_noise
    cancelled: bool = False  # True for the partial result carried by ``Cancelled``


# ---------------------------------------------------------------------------------------------
# Target


@dataclass(frozen=True, slots=True, eq=False)
class PreparedTarget:
    """The target at the generator's resolution."""

    tensor: torch.Tensor  # [1, 3, R, R] in [-1, 1]
    rgb: np.ndarray  # [R, R, 3] uint8
    landmarks: np.ndarray | None  # [68, 2] in target pixels when known


def prepare_target(
    target: AlignedFace | Image.Image | np.ndarray, resolution: int
) -> PreparedTarget:
    """Bring a target to ``resolution`` (centre square, Lanczos), as NVIDIA's projector does.

    Args:
        target: an aligned face (its landmarks are kept for the identity loss), a Pillow image,
            or a uint8 [H, W, 3] array.
        resolution: the generator's output size.
    """
    landmarks = None
    if isinstance(target, AlignedFace):
        image = target.image
        if target.landmarks is not None:
            points = target.source_to_aligned(target.landmarks)
            landmarks = (points + 0.5) * (resolution / target.size) - 0.5
    elif isinstance(target, Image.Image):
        image = target.convert("RGB")
    else:
        array = np.asarray(target)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(
                f"target must be uint8 [H, W, 3], got {array.dtype} {list(array.shape)}"
            )
        image = Image.fromarray(array, "RGB")
    width, height = image.size
    if width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    rgb = np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    return PreparedTarget(tensor, rgb, landmarks)


# ---------------------------------------------------------------------------------------------
# Loss


@lru_cache(maxsize=2)
def _cached_lpips(path: str, lpips_path: str | None, device: str) -> torch.nn.Module:
    from models.vgg16 import LPIPSDistance, load_lpips_weights, load_vgg16

    channel_weights = load_lpips_weights(lpips_path) if lpips_path else None
    distance = LPIPSDistance(load_vgg16(path), channel_weights)
    return distance.to(device).eval().requires_grad_(False)


def build_loss(
    config: ProjectionConfig,
    target: PreparedTarget,
    *,
    device: torch.device,
    discriminator: torch.nn.Module | None = None,
) -> CompositeLoss:
    """The image distance the projection minimises.

    Raises:
        ValueError: ``loss == "vgg16"`` but the weights are not in the model cache.
    """
    from models.vgg16 import find_lpips_weights, find_vgg16_weights, vgg16_weights_path

    target_tensor = target.tensor.to(device)
    if config.loss in ("auto", "vgg16"):
        weights = find_vgg16_weights()
        if weights is None and config.loss == "vgg16":
            raise ValueError(
                f"the VGG16 weights are not in the model cache ({vgg16_weights_path()}); get them "
                "with File -> Get models… or choose the offline loss"
            )
        if weights is not None:
            # Without LPIPS's learned channel weights this is its unweighted "baseline".
            lpips_weights = find_lpips_weights()
            lpips_path = str(lpips_weights) if lpips_weights is not None else None
            lpips = _cached_lpips(str(weights), lpips_path, str(device))
            terms = [WeightedTerm(VGGPerceptual(lpips, target_tensor), 1.0)]
            if config.mse_weight > 0:
                terms.append(WeightedTerm(PixelMSE(target_tensor), config.mse_weight))
            return CompositeLoss(terms)
    if config.loss == "pixel":
        return CompositeLoss([WeightedTerm(PixelMSE(target_tensor), 1.0)])
    terms = [
        WeightedTerm(PixelMSE(target_tensor), config.pixel_weight),
        WeightedTerm(MultiScaleSSIM(target_tensor), config.ssim_weight),
    ]
    if config.identity_weight > 0:
        identity = _identity_term(target)
        if identity is not None:
            terms.append(WeightedTerm(identity, config.identity_weight))
    if discriminator is not None and config.discriminator_weight > 0:
        if getattr(discriminator, "resolution", None) == target_tensor.shape[-1]:
            disc = discriminator.to(device).eval().requires_grad_(False)
            terms.append(
                WeightedTerm(
                    DiscriminatorFeatures(disc, target_tensor), config.discriminator_weight
                )
            )
        else:
            log.info("discriminator resolution differs from the generator's; not used")
    return CompositeLoss(terms)


def _identity_term(target: PreparedTarget) -> IdentityDistance | None:
    """The face-identity term, or None when the network or a face is not available."""
    try:
        from editors.identity import IdentityMeter
    except ImportError:
        return None
    try:
        meter = IdentityMeter(target.rgb, landmarks=target.landmarks)
    except (ValueError, OSError) as exc:  # no face found, or the model file is missing
        log.info("identity loss not used: %s", exc)
        return None
    return IdentityDistance(meter)


# ---------------------------------------------------------------------------------------------
# Latents


def resolve_space(generator: Generator, space: Space) -> Space:
    """The space actually used: ProGAN (no mapping network) always projects into z."""
    if generator.kind == "progan":
        return "z"
    return space


@torch.no_grad()
def latent_std(generator: Generator, samples: int, seed: int = 123) -> float:
    """Spread of w around its mean: sqrt(mean ||w - mean||^2) over ``samples`` z (NVIDIA)."""
    rng = np.random.RandomState(seed)
    z = torch.from_numpy(rng.randn(samples, generator.z_dim).astype(np.float32))
    ws = [generator.mapping(chunk.to(generator.device)) for chunk in z.split(1024)]
    w = torch.cat(ws).double()
    return float(((w - w.mean(0)).square().sum(1).mean()).sqrt())


def latents_to_ws(generator: Generator, latent: torch.Tensor, space: Space) -> torch.Tensor:
    """ws [N, num_ws, w_dim] for an optimised latent: [N, 1, w_dim], [N, num_ws, w_dim] or z."""
    if space == "z":
        return generator.broadcast(generator.mapping(latent))
    if space == "w":
        return latent.expand(-1, generator.num_ws, -1)
    return latent


def _find_encoder(generator: Generator) -> torch.nn.Module | None:
    from models.encoder import find_encoder_for, load_encoder

    source = getattr(generator, "source", None)
    path = find_encoder_for(source.path if source is not None else None)
    if path is None:
        return None
    encoder = load_encoder(path)
    expected = getattr(encoder, "generator_fingerprint", "")
    if expected and expected != generator.fingerprint():
        log.warning("%s was trained for another model; not used", path)
        return None
    return encoder


def encode(
    generator: Generator,
    target: AlignedFace | Image.Image | np.ndarray,
    encoder: torch.nn.Module | None = None,
) -> np.ndarray | None:
    """The encoder's W+ guess [num_ws, w_dim] for ``target`` (None when the model has none)."""
    encoder = encoder if encoder is not None else _find_encoder(generator)
    if encoder is None:
        return None
    tensor = prepare_target(target, generator.resolution).tensor.to(generator.device)
    with torch.no_grad():
        ws = encoder.to(generator.device)(tensor)[0].float()
    return ws.cpu().numpy().copy()


def _initial_latent(
    generator: Generator,
    config: ProjectionConfig,
    space: Space,
    target: torch.Tensor,
    encoder: torch.nn.Module | None,
    loss: CompositeLoss,
) -> tuple[torch.Tensor, str]:
    device = generator.device
    if space == "z":
        rng = np.random.RandomState(config.seed)
        candidates = torch.from_numpy(rng.randn(Z_CANDIDATES, generator.z_dim).astype(np.float32))
        candidates = candidates.to(device)
        with torch.no_grad():
            scores = torch.cat(
                [
                    loss(generator.synthesis(latents_to_ws(generator, z[None], "z")))
                    for z in candidates
                ]
            )
        return candidates[int(scores.argmin())][None].clone(), "z-search"
    if config.init in ("auto", "encoder"):
        if encoder is None:
            encoder = _find_encoder(generator)
        if encoder is None and config.init == "encoder":
            raise ValueError("no trained encoder for this model; use init 'w_avg' or train one")
        if encoder is not None:
            with torch.no_grad():
                encoder = encoder.to(device)
                ws = encoder(target.to(device))[:1].float()
            if ws.shape[1:] != (generator.num_ws, generator.w_dim):
                raise ValueError(
                    f"the encoder predicts {list(ws.shape[1:])} latents; the model needs "
                    f"[{generator.num_ws}, {generator.w_dim}]"
                )
            return (ws.mean(dim=1, keepdim=True) if space == "w" else ws).clone(), "encoder"
    w_avg = generator.w_avg.detach().float().to(device)
    rows = 1 if space == "w" else generator.num_ws
    return w_avg.view(1, 1, -1).repeat(1, rows, 1), "w_avg"


def noise_regularization(noise: list[torch.Tensor]) -> torch.Tensor:
    """NVIDIA's penalty on spatial autocorrelation of noise maps, over a pyramid down to 8 px."""
    total = noise[0].new_zeros(())
    for maps in noise:
        v = maps
        while True:
            total = total + (v * torch.roll(v, shifts=1, dims=3)).mean().square()
            total = total + (v * torch.roll(v, shifts=1, dims=2)).mean().square()
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, kernel_size=2)
    return total


def match_saturation(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Clip images to [-1, 1] only where the target is clipped there too.

    A target pixel at 0 or 255 stands for any value beyond the range; without this, images
    that overshoot like their target would be pulled back and the optimum would move.
    Elsewhere images pass unchanged, so an overshoot against an unclipped target still counts.
    """
    high = (target >= 1.0).to(images.dtype)
    low = (target <= -1.0).to(images.dtype)
    return images - F.relu(images - 1.0) * high + F.relu(-1.0 - images) * low


def learning_rate(config: ProjectionConfig, t: float) -> float:
    """NVIDIA's schedule at progress ``t`` in [0, 1): linear ramp-up, cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / config.lr_rampup_length)
    return config.initial_learning_rate * ramp


# ---------------------------------------------------------------------------------------------
# The loop


def project(
    generator: Generator,
    target: AlignedFace | Image.Image | np.ndarray,
    *,
    config: ProjectionConfig | None = None,
    steps: int | None = None,
    space: Space | None = None,
    loss: LossChoice | None = None,
    init: InitChoice | None = None,
    encoder: torch.nn.Module | None = None,
    discriminator: torch.nn.Module | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> ProjectionResult:
    """Find the latent whose image is closest to ``target``.

    Args:
        generator: the model (left unchanged; see the module docstring on threads).
        target: an aligned face (see ``editors.alignment``), a Pillow image or uint8 [H, W, 3];
            it is centre-cropped and resized to the generator's resolution.
        config: all settings; ``steps``, ``space``, ``loss`` and ``init`` override its fields.
        encoder: a ``LatentEncoder`` for the starting point; None = the model's own if any.
        discriminator: the model's discriminator, for the offline loss.
        on_step: progress each step: metrics ``loss`` (total), one entry per loss term and
            ``lr``; every ``preview_every`` steps and at the end a preview image.
        should_stop: polled each step.

    Returns:
        The result (``ws`` [num_ws, w_dim], image, loss history, loss name, PSNR/SSIM).

    Raises:
        Cancelled: ``should_stop()`` became true; ``partial`` is the best result so far.
        ValueError: bad settings (e.g. VGG16 asked for but not downloaded).
    """
    config = (config or ProjectionConfig()).replace(steps=steps, space=space, loss=loss, init=init)
    started = time.perf_counter()
    device = generator.device
    used_space = resolve_space(generator, config.space)
    if used_space != config.space:
        log.info("%s generator: projecting into z instead of %s", generator.kind, config.space)
    prepared = prepare_target(target, generator.resolution)
    distance = build_loss(config, prepared, device=device, discriminator=discriminator)
    target_tensor = prepared.tensor.to(device)

    latent, init_name = _initial_latent(
        generator, config, used_space, target_tensor, encoder, distance
    )
    # W+ is fitted as one shared w plus per-row offsets: the shared part moves as fast as a W
    # projection, the offsets refine per layer (plain per-row Adam stalled ~2 dB short).
    base = latent.mean(dim=1, keepdim=True) if used_space == "w+" else latent
    base = base.detach().clone().requires_grad_(True)
    offsets = (latent - base).detach().clone().requires_grad_(True) if used_space == "w+" else None

    def current() -> torch.Tensor:
        return base if offsets is None else base + offsets

    spread = 1.0 if used_space == "z" else latent_std(generator, config.w_avg_samples)
    rng = torch.Generator(device=device).manual_seed(config.seed)
    noise_maps: list[torch.Tensor] | None = None
    if config.optimize_noise and hasattr(generator, "noise_buffers"):
        noise_maps = [
            torch.randn(buf.shape, generator=rng, device=device).requires_grad_(True)
            for buf in generator.noise_buffers()
        ]
    params = [base, *([offsets] if offsets is not None else []), *(noise_maps or [])]
    optimizer = torch.optim.Adam(params, betas=(0.9, 0.999), lr=config.initial_learning_rate)

    history: list[float] = []
    best_loss, best_latent = math.inf, current().detach().clone()

    def result(latent_now: torch.Tensor, cancelled: bool) -> ProjectionResult:
        return _finish(
            generator, latent_now, used_space, prepared, distance.name, init_name, history,
            noise_maps, config, started, cancelled,
        )  # fmt: skip

    for step in range(config.steps):
        if should_stop is not None and should_stop():
            raise Cancelled(result(best_latent, cancelled=True))
        t = step / config.steps
        lr = learning_rate(config, t)
        for group in optimizer.param_groups:
            group["lr"] = lr
        noise_scale = (
            spread * config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp_length) ** 2
        )
        latent = current()
        noisy = latent + torch.randn(latent.shape, generator=rng, device=device) * noise_scale
        images = generator.synthesis(
            latents_to_ws(generator, noisy, used_space), **_noise_kwargs(noise_maps)
        )
        total = distance(match_saturation(images, target_tensor)).sum()
        if noise_maps is not None:
            total = total + config.regularize_noise_weight * noise_regularization(noise_maps)
        grads = torch.autograd.grad(total, params)
        value = float(total.detach())
        if value < best_loss:
            best_loss, best_latent = value, latent.detach().clone()
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad
        optimizer.step()
        if noise_maps is not None:
            with torch.no_grad():
                for maps in noise_maps:
                    maps -= maps.mean()
                    maps *= maps.square().mean().rsqrt()
        history.append(value)
        last = step == config.steps - 1
        preview = None
        if last or (step + 1) % config.preview_every == 0:
            preview = to_rgb_u8(images.detach()[:1])[0]
        report(
            on_step,
            Progress(
                step=step + 1, total=config.steps, message=f"step {step + 1}/{config.steps}",
                metrics={"loss": value, **distance.last_values, "lr": lr}, preview=preview,
            ),
        )  # fmt: skip
    return result(current().detach(), cancelled=False)


def _noise_kwargs(noise_maps: list[torch.Tensor] | None) -> dict[str, Any]:
    return {"noise_mode": "const"} if noise_maps is None else {"noise": noise_maps}


@torch.no_grad()
def _finish(
    generator: Generator,
    latent: torch.Tensor,
    space: Space,
    prepared: PreparedTarget,
    loss_name: str,
    init_name: str,
    history: list[float],
    noise_maps: list[torch.Tensor] | None,
    config: ProjectionConfig,
    started: float,
    cancelled: bool,
) -> ProjectionResult:
    ws = latents_to_ws(generator, latent, space)
    image = to_rgb_u8(generator.synthesis(ws, **_noise_kwargs(noise_maps)))[0]
    return ProjectionResult(
        ws=ws[0].float().cpu().numpy().copy(),
        image=image,
        target=prepared.rgb,
        losses=np.asarray(history, dtype=np.float32),
        loss_name=loss_name,
        space=space,
        init=init_name,
        steps=len(history),
        psnr=psnr_u8(image, prepared.rgb),
        ssim=ssim_u8(image, prepared.rgb),
        seconds=time.perf_counter() - started,
        config=config,
        z=latent[0].float().cpu().numpy().copy() if space == "z" else None,
        noise=tuple(m.detach().cpu().numpy().copy() for m in noise_maps) if noise_maps else None,
        cancelled=cancelled,
    )
