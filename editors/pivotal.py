"""Pivotal tuning (PTI, Roich et al. 2022): fine-tune the generator around a photo's pivot latent.

Projection alone leaves real photos blurry or drives W+ out of the editable region. PTI keeps an
editable pivot (one w) and instead moves the generator's weights a little so that the pivot draws
the photo, while a locality regulariser keeps the outputs of latents far from the pivot unchanged
and an edit regulariser keeps short steps from the pivot changing the picture as they do on the
original model (so directions still act as they do on generated faces).

Here the weights move only through a compact delta, stored per photo instead of a whole tuned
generator (PTI's ~127 MB per photo): a low-rank update ``up @ down`` of the synthesis
convolutions at half and full resolution (LoRA-style, trained directly in that form so nothing is
lost by compressing), plus the full ToRGB weights and biases, which are tiny. The coarse layers
keep their weights (the face's layout stays the original model's, and backpropagation stops
early). The delta is kept in fp16 and
the reported PSNR is measured after that rounding, so a saved delta reproduces it. The weights
that read the style channels of localized sliders (``protected_channels``) are left as they
were, so those sliders act on the tuned model's layers as on the original's.

Thread safety: tuning works on a private copy; the caller's generator is never written.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from editors.alignment import AlignedFace
from editors.directions import DirectionSet
from editors.latent_io import LatentFile
from editors.losses import CompositeLoss, WeightedTerm, psnr_u8
from editors.projection import (
    LossChoice,
    ProjectionConfig,
    build_loss,
    latent_std,
    match_saturation,
    prepare_target,
)
from models.formats.native import atomic_write
from models.formats.npz import read_npz
from models.generator import Generator, to_rgb_u8
from models.jobs import Cancelled, OnStep, Progress, ShouldStop, report

FILE_KIND = "latentstudio-tuning-delta"
SCHEMA_VERSION = 1
DELTA_SUFFIX = ".tuning.npz"


class TuningFileError(ValueError):
    """A tuning delta file is unreadable, damaged or made for another model."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{path if path is not None else '<tuning>'}: {reason}")


@dataclass(frozen=True, slots=True)
class TuningConfig:
    """Knobs of ``tune``; defaults fit the demo model's 60 s CPU budget."""

    steps: int = 300  # optimisation steps on the weights
    # Layers below this fraction of the output resolution keep their weights: leaving the coarse
    # layers alone keeps the face's layout (and how edits move it) the original model's, and
    # the backward pass stops early (demo model: 0.5 gave +1.6 dB at half the CPU time of 0).
    tuned_from: float = 0.5
    rank: int = 1  # rank of each convolution's update (the delta's size grows with it)
    detail_rank: int = 7  # rank in the blocks at half and full resolution, where detail lives
    tune_biases: bool = False  # also the activations' biases and noise strengths
    learning_rate: float = 0.04  # Adam, on the delta's factors; the first step's rate
    final_lr_fraction: float = 0.1  # cosine decay to this fraction of it by the last step
    loss: LossChoice = "auto"  # image distance, as in projection ("auto": VGG16 LPIPS if cached)
    pixel_weight: float = 20.0  # pixel MSE in [-1, 1] units (PSNR needs it)
    ssim_weight: float = 1.0  # offline loss: 1 - MS-SSIM
    identity_weight: float = 0.1  # offline loss: dlib descriptor distance
    identity_every: int = 2  # the costly identity term on every k-th step only, k times as heavy
    locality_weight: float = 1.0  # PTI's locality regulariser (pixel MSE vs the original model)
    locality_every: int = 4  # regularise every k-th step (PTI: 10)
    locality_radius: float = 1.0  # distance of the sampled latents from the pivot, in w spreads
    edit_weight: float = 40.0  # a short step from the pivot changes the picture as originally
    edit_radius: float = 0.2  # that step, in w spreads (+2 sigma of smile is 0.18 on the demo)
    preview_every: int = 10
    seed: int = 303

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must not be negative, got {self.steps}")
        if self.rank < 1 or self.detail_rank < 1:
            raise ValueError(f"ranks must be at least 1, got {self.rank}, {self.detail_rank}")
        if min(self.locality_every, self.identity_every, self.preview_every) < 1:
            raise ValueError("the *_every settings must be at least 1")
        if not 0 < self.final_lr_fraction <= 1:
            raise ValueError(f"final_lr_fraction must be in (0, 1], got {self.final_lr_fraction}")

    def replace(self, **changes: Any) -> TuningConfig:
        """A copy with ``changes`` applied (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# ---------------------------------------------------------------------------------------------
# The delta


@dataclass(frozen=True, slots=True, eq=False)
class TuningDelta:
    """The change of a generator's weights: low-rank factors and small full tensors (fp16)."""

    model_fingerprint: str  # Generator.fingerprint() of the model it applies to
    low_rank: Mapping[str, tuple[np.ndarray, np.ndarray]]  # param -> (up [out, r], down [r, fan])
    full: Mapping[str, np.ndarray]  # param -> additive tensor of the parameter's shape
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_values(self) -> int:
        """Numbers stored."""
        factors = sum(up.size + down.size for up, down in self.low_rank.values())
        return factors + sum(v.size for v in self.full.values())

    @property
    def nbytes(self) -> int:
        """Bytes of the stored numbers (fp16)."""
        return 2 * self.num_values

    def dense(self) -> dict[str, torch.Tensor]:
        """The additive change of each parameter (float32)."""
        changes = {name: torch.from_numpy(v.astype(np.float32)) for name, v in self.full.items()}
        for name, (up, down) in self.low_rank.items():
            changes[name] = torch.from_numpy(up.astype(np.float32) @ down.astype(np.float32))
        return changes

    def check_fits(self, generator: Generator, path: str | Path | None = None) -> None:
        """Raise ``TuningFileError`` unless the delta was made for ``generator``."""
        fingerprint = generator.fingerprint()
        if self.model_fingerprint != fingerprint:
            raise TuningFileError(
                path,
                f"this tuning was made for the model with fingerprint {self.model_fingerprint}; "
                f"the open model ({generator.name or 'unnamed'}) has fingerprint {fingerprint}",
            )
        params = dict(generator.named_parameters())
        # Sizes are checked on the stored shapes, before any factor product is formed.
        sizes = {name: up.shape[0] * down.shape[1] for name, (up, down) in self.low_rank.items()}
        sizes.update({name: value.size for name, value in self.full.items()})
        for name, size in sizes.items():
            if name not in params or params[name].numel() != size:
                raise TuningFileError(path, f"the tuning changes {name}, which this model lacks")


def apply_delta(
    generator: Generator, delta: TuningDelta, path: str | Path | None = None
) -> Generator:
    """A copy of ``generator`` with ``delta`` added to its weights (the original is unchanged).

    Raises:
        TuningFileError: the delta belongs to another model.
    """
    delta.check_fits(generator, path)
    tuned = copy.deepcopy(generator)
    params = dict(tuned.named_parameters())
    with torch.no_grad():
        for name, change in delta.dense().items():
            param = params[name]
            param.add_(change.reshape(param.shape).to(param.device, param.dtype))
    tuned.name = f"{generator.name} (tuned)" if generator.name else "tuned"
    tuned.provenance = {**generator.provenance, "tuning": {"base": delta.model_fingerprint}}
    tuned.base_fingerprint = delta.model_fingerprint  # type: ignore[attr-defined]
    return tuned


def tuned_for_latent(generator: Generator, latent: LatentFile) -> Generator:
    """``generator`` with the tuning delta ``latent`` refers to applied (itself when none).

    Raises:
        TuningFileError: the delta is missing, damaged or belongs to another model.
    """
    path = latent.tuning_path
    if path is None:
        return generator
    return apply_delta(generator, load_delta(path), path)


def base_fingerprint(generator: Generator) -> str:
    """The fingerprint of the model a tuned generator came from (its own when not tuned)."""
    return str(getattr(generator, "base_fingerprint", None) or generator.fingerprint())


def delta_arrays(delta: TuningDelta) -> dict[str, np.ndarray]:
    """The delta as named arrays (fp16 factors and a JSON header), for ``.npz`` files."""
    header = {
        "kind": FILE_KIND,
        "schema_version": SCHEMA_VERSION,
        "model_fingerprint": delta.model_fingerprint,
        "metadata": dict(delta.metadata),
    }
    arrays: dict[str, np.ndarray] = {"header": np.array(json.dumps(header, sort_keys=True))}
    for name, (up, down) in delta.low_rank.items():
        arrays[f"up:{name}"] = np.asarray(up, np.float16)
        arrays[f"down:{name}"] = np.asarray(down, np.float16)
    for name, value in delta.full.items():
        arrays[f"full:{name}"] = np.asarray(value, np.float16)
    return arrays


def delta_from_arrays(arrays: Mapping[str, np.ndarray], path: str | Path | None) -> TuningDelta:
    """Inverse of ``delta_arrays``.

    Raises:
        TuningFileError: not a tuning delta, or damaged.
    """
    arrays = dict(arrays)
    try:
        header = json.loads(str(arrays.pop("header")[()]))
    except (KeyError, ValueError) as exc:
        raise TuningFileError(path, f"not a readable tuning delta ({exc})") from None
    if not isinstance(header, dict) or header.get("kind") != FILE_KIND:
        raise TuningFileError(path, "not a Latent Studio tuning delta")
    if int(header.get("schema_version", 0)) > SCHEMA_VERSION:
        raise TuningFileError(path, "written by a newer version of the app")
    low_rank: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    full: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        kind, _, name = key.partition(":")
        if value.dtype.kind != "f" or not np.isfinite(value).all():
            raise TuningFileError(path, f"{name or key} is not finite floating-point data")
        if kind == "full":
            full[name] = value
        elif kind == "up":
            down = arrays.get(f"down:{name}")
            if down is None or value.ndim != 2 or down.ndim != 2 or value.shape[1] != down.shape[0]:
                raise TuningFileError(path, f"damaged low-rank factors for {name}")
            low_rank[name] = (value, down)
        elif kind != "down":
            raise TuningFileError(path, f"unexpected entry {key!r}")
    metadata = header.get("metadata")
    return TuningDelta(
        str(header.get("model_fingerprint", "")), low_rank, full,
        dict(metadata) if isinstance(metadata, dict) else {},
    )  # fmt: skip


def save_delta(path: str | Path, delta: TuningDelta) -> Path:
    """Write ``delta`` atomically as an ``.npz`` (fp16 arrays and a JSON header)."""
    path = Path(path)
    arrays = delta_arrays(delta)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write)
    return path


def load_delta(path: str | Path) -> TuningDelta:
    """Read a delta written by ``save_delta`` (no code in the file is run).

    Raises:
        TuningFileError: missing, unreadable or not a tuning delta.
    """
    path = Path(path)
    if not path.is_file():
        raise TuningFileError(path, "no such file (the tuning delta the latent refers to)")
    try:
        arrays = read_npz(path)  # bounded: a hostile header cannot ask for huge arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise TuningFileError(path, f"not a readable tuning delta ({exc})") from None
    return delta_from_arrays(arrays, path)


# ---------------------------------------------------------------------------------------------
# Tuning


class _LowRankUpdate(nn.Module):
    """weight + (up @ down) reshaped; ``up`` starts at zero so tuning starts at the original."""

    def __init__(
        self, shape: torch.Size, rank: int, rng: torch.Generator, keep: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        out_channels = shape[1] if len(shape) == 5 else shape[0]  # [1, out, in, k, k] or [out, in]
        fan = math.prod(shape) // out_channels
        self.up = nn.Parameter(torch.zeros(out_channels, rank))
        self.down = nn.Parameter(torch.randn(rank, fan, generator=rng) / math.sqrt(fan))
        # 0 on the input channels whose weights must stay (``_input_mask``), else 1
        self.register_buffer("keep", keep.reshape(1, fan) if keep is not None else None)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(up, down) as applied: ``down`` is zero on the kept input channels."""
        return self.up, self.down if self.keep is None else self.down * self.keep

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        up, down = self.factors()
        return weight + (up @ down).reshape(weight.shape)


class _FullUpdate(nn.Module):
    def __init__(self, shape: torch.Size, keep: torch.Tensor | None = None) -> None:
        super().__init__()
        self.change = nn.Parameter(torch.zeros(shape))
        self.register_buffer("keep", keep)

    def value(self) -> torch.Tensor:
        """The change as applied: zero on the kept input channels."""
        return self.change if self.keep is None else self.change * self.keep

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.value()


def protected_channels(directions: DirectionSet | None) -> dict[int, list[int]]:
    """``{style layer: channels}`` that the set's localized (style-space) sliders move."""
    channels: dict[int, set[int]] = {}
    for style in getattr(directions, "styles", None) or ():
        for layer, channel in style.channels:
            channels.setdefault(layer, set()).add(channel)
    return {layer: sorted(found) for layer, found in sorted(channels.items())}


def _input_mask(shape: torch.Size, channels: Sequence[int]) -> torch.Tensor | None:
    """1 everywhere but on the input channels ``channels`` of a [1, out, in, k, k] weight."""
    if not channels or len(shape) != 5:
        return None
    keep = torch.ones(shape[2:])
    keep[list(channels)] = 0.0
    return keep


def tunable_parameters(
    generator: Generator, config: TuningConfig | None = None
) -> tuple[list[str], list[str]]:
    """(low-rank, full) parameter names that tuning changes: the synthesis network only.

    Convolutions with more than 4096 weights get a low-rank update; smaller tensors (biases,
    noise strengths, ToRGB weights) a full one. Mapping, modulation and the constant input stay,
    and so do the convolutions below ``config.tuned_from`` of the output resolution (ToRGB
    layers are always tuned: they are tiny and set the colours at every scale).
    """
    config = config or TuningConfig()
    low_rank, full = [], []
    for name, param in generator.named_parameters():
        if name.startswith(("style.", "mapping.", "input.")) or ".modulation." in name:
            continue
        layer = _layer(generator, name)
        coarse = layer is not None and layer.resolution < config.tuned_from * generator.resolution
        if coarse and not layer.is_rgb:
            continue
        if not config.tune_biases and name.endswith((".activate.bias", ".noise.weight")):
            continue
        (low_rank if param.ndim >= 4 and param.numel() > 4096 else full).append(name)
    return low_rank, full


def _layer(generator: Generator, name: str) -> Any:
    """The style layer (``StyleLayer``) owning parameter ``name``, or None."""
    layers = generator.style_layers() if hasattr(generator, "style_layers") else []
    return next((layer for layer in layers if name.startswith(f"{layer.name}.")), None)


def _rank(generator: Generator, name: str, config: TuningConfig) -> int:
    """``detail_rank`` for convolutions at half or full resolution, else ``rank``."""
    layer = _layer(generator, name)
    detail = layer is None or 2 * layer.resolution >= generator.resolution
    return config.detail_rank if detail else config.rank


def _attach(
    work: Generator, config: TuningConfig, protect: Mapping[int, Sequence[int]]
) -> dict[str, nn.Module]:
    rng = torch.Generator().manual_seed(config.seed)
    low_rank, full = tunable_parameters(work, config)
    updates: dict[str, nn.Module] = {}
    for name in low_rank + full:
        owner_name, _, attribute = name.rpartition(".")
        owner = work.get_submodule(owner_name)
        shape = getattr(owner, attribute).shape
        layer = _layer(work, name)
        keep = _input_mask(shape, protect.get(layer.index, ()) if layer is not None else ())
        update = (
            _LowRankUpdate(shape, _rank(work, name, config), rng, keep)
            if name in low_rank
            else _FullUpdate(shape, keep[None, None] if keep is not None else None)
        )
        update = update.to(work.device)
        parametrize.register_parametrization(owner, attribute, update, unsafe=True)
        updates[name] = update
    return updates


def _delta_of(updates: Mapping[str, nn.Module], fingerprint: str, meta: dict) -> TuningDelta:
    def half(t: torch.Tensor) -> np.ndarray:
        return t.detach().to(torch.float16).cpu().numpy().copy()

    def halves(update: _LowRankUpdate) -> tuple[np.ndarray, np.ndarray]:
        up, down = update.factors()
        return half(up), half(down)

    low_rank = {n: halves(u) for n, u in updates.items() if isinstance(u, _LowRankUpdate)}
    full = {n: half(u.value()) for n, u in updates.items() if isinstance(u, _FullUpdate)}
    return TuningDelta(fingerprint, low_rank, full, meta)


@dataclass(frozen=True, slots=True, eq=False)
class TuningResult:
    """What ``tune`` produced."""

    generator: Generator  # the tuned model (a full Generator; the input one is unchanged)
    delta: TuningDelta  # what to store to rebuild ``generator`` from the original
    ws: np.ndarray  # [num_ws, w_dim] the pivot
    image: np.ndarray  # [R, R, 3] uint8 render of the pivot by the tuned model
    target: np.ndarray  # [R, R, 3] uint8
    psnr: float  # dB, image vs target (after the fp16 rounding of the delta)
    seconds: float
    steps: int
    loss_name: str
    cancelled: bool = False


def tune(
    generator: Generator,
    target: AlignedFace | np.ndarray,
    ws: np.ndarray | torch.Tensor,
    *,
    steps: int | None = None,
    config: TuningConfig | None = None,
    protect: Mapping[int, Sequence[int]] | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> TuningResult:
    """Tune ``generator`` so that the pivot ``ws`` draws ``target``.

    Args:
        generator: the model (left unchanged).
        target: an aligned face or uint8 [H, W, 3]; brought to the model's resolution.
        ws: the pivot [num_ws, w_dim] (from ``project`` in space "w").
        steps: overrides ``config.steps``.
        protect: ``{style layer: channels}`` whose input weights stay unchanged
            (``protected_channels``): on 12 portraits the demo's localized smile then widened
            the tuned reconstructions' mouths 0.62x as much as generated faces' instead of 0.52x.
        on_step: progress each step (``loss``, its terms, ``locality``); a preview now and then.
        should_stop: polled each step.

    Returns:
        The tuned generator, its compact delta and the reconstruction.

    Raises:
        Cancelled: stopped; ``partial`` is the ``TuningResult`` of the steps done.
        ValueError: not a StyleGAN2 model.
    """
    if generator.kind != "stylegan2":
        raise ValueError(
            f"pivotal tuning needs a StyleGAN2 model (an editable W space), not {generator.kind}"
        )
    config = (config or TuningConfig()).replace(steps=steps)
    started = time.perf_counter()
    device = generator.device
    prepared = prepare_target(target, generator.resolution)
    loss_config = ProjectionConfig(
        loss=config.loss, pixel_weight=config.pixel_weight, ssim_weight=config.ssim_weight,
        identity_weight=config.identity_weight, mse_weight=config.pixel_weight,
    )  # fmt: skip
    distance, light = _losses(build_loss(loss_config, prepared, device=device), config)
    target_tensor = prepared.tensor.to(device)
    pivot = torch.as_tensor(np.asarray(ws, np.float32)).to(device).reshape(1, generator.num_ws, -1)
    fingerprint = generator.fingerprint()

    work = copy.deepcopy(generator).requires_grad_(False)
    updates = _attach(work, config, protect or {})
    params = [p for update in updates.values() for p in update.parameters()]
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    rng = torch.Generator(device=device).manual_seed(config.seed)
    spread = latent_std(generator, 2000)
    radius = config.locality_radius * spread
    if config.edit_weight > 0:
        with torch.no_grad():
            original = generator.synthesis(pivot)
    done = 0

    def finish(cancelled: bool) -> TuningResult:
        meta = {
            "steps": done, "rank": config.rank, "detail_rank": config.detail_rank,
            "loss": distance.name,
        }  # fmt: skip
        delta = _delta_of(updates, fingerprint, meta)
        tuned = apply_delta(generator, delta)
        with torch.no_grad():
            image = to_rgb_u8(tuned.synthesis(pivot))[0]
        psnr = psnr_u8(image, prepared.rgb)
        delta = dataclasses.replace(delta, metadata={**meta, "psnr": psnr})
        return TuningResult(
            tuned, delta, pivot[0].cpu().numpy().copy(), image, prepared.rgb, psnr,
            time.perf_counter() - started, done, distance.name, cancelled,
        )  # fmt: skip

    for step in range(config.steps):
        if should_stop is not None and should_stop():
            raise Cancelled(finish(cancelled=True))
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * _lr_factor(config, step)
        images = work.synthesis(pivot)
        loss = distance if step % config.identity_every == 0 else light
        total = loss(match_saturation(images, target_tensor)).sum()
        metrics = {**loss.last_values}
        if config.locality_weight > 0 and step % config.locality_every == 0:
            near = _near_pivot(generator, pivot, radius, rng)
            with torch.no_grad():
                reference = generator.synthesis(near)
            locality = (work.synthesis(near) - reference).square().mean()
            total = total + config.locality_weight * locality
            metrics["locality"] = float(locality.detach())
        if config.edit_weight > 0 and step % config.locality_every == 1 % config.locality_every:
            moved = _near_pivot(generator, pivot, config.edit_radius * spread, rng)
            with torch.no_grad():
                wanted = generator.synthesis(moved) - original
            edit = (work.synthesis(moved) - images - wanted).square().mean()
            total = total + config.edit_weight * edit
            metrics["edit"] = float(edit.detach())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        done = step + 1
        preview = None
        if done == config.steps or done % config.preview_every == 0:
            preview = to_rgb_u8(images.detach()[:1])[0]
        report(
            on_step,
            Progress(
                step=done, total=config.steps, message=f"tuning {done}/{config.steps}",
                metrics={"loss": float(total.detach()), **metrics}, preview=preview,
            ),
        )  # fmt: skip
    return finish(cancelled=False)


def _losses(distance: CompositeLoss, config: TuningConfig) -> tuple[CompositeLoss, CompositeLoss]:
    """(the loss of identity steps, the loss of the others); terms of weight 0 are left out."""
    terms = [term for term in distance.terms if term.weight > 0]
    light = [term for term in terms if term.term.name != "identity"]
    if config.identity_every == 1 or len(light) == len(terms) or not light:
        return CompositeLoss(terms), CompositeLoss(terms)
    heavy = [
        term
        if term.term.name != "identity"
        else WeightedTerm(term.term, term.weight * config.identity_every)
        for term in terms
    ]
    return CompositeLoss(heavy), CompositeLoss(light)


def _lr_factor(config: TuningConfig, step: int) -> float:
    """Cosine decay from 1 at the first step to ``final_lr_fraction`` at the last."""
    t = step / max(config.steps - 1, 1)
    return config.final_lr_fraction + (1 - config.final_lr_fraction) * 0.5 * (
        1 + math.cos(math.pi * t)
    )


def _near_pivot(
    generator: Generator, pivot: torch.Tensor, radius: float, rng: torch.Generator
) -> torch.Tensor:
    """PTI's regulariser latent: the pivot moved ``radius`` towards a random mapped z."""
    z = torch.randn(1, generator.z_dim, generator=rng, device=pivot.device)
    with torch.no_grad():
        w = generator.mapping(z)
    direction = w[:, None, :] - pivot
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return pivot + radius * direction
