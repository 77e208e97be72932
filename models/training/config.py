"""Frozen, JSON-round-trippable configurations of the training jobs, and the capacity presets.

The CLI and the wizard build the same objects; defaults are written once, here. ``from_json``
rejects unknown keys so a typo in a hand-edited ``config.json`` fails loudly.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

AugmentMode = Literal["ada", "diffaugment", "none"]
AUGMENT_MODES: tuple[AugmentMode, ...] = ("ada", "diffaugment", "none")


class _JsonConfig:
    """Mixin: ``to_dict``/``to_json``/``from_dict``/``from_json`` for flat frozen dataclasses."""

    task: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-compatible data (tuples become lists)."""
        out = {}
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        """The fields as an indented JSON object."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a mapping, refusing unknown keys and values of the wrong type.

        Raises:
            ValueError: naming the unknown keys or the offending field.
        """
        specs = {spec.name: spec for spec in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(specs))
        if unknown:
            raise ValueError(
                f"unknown {cls.task} config keys: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(specs))})"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {name: _coerce(name, value, hints[name]) for name, value in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"bad {cls.task} config: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse ``to_json`` output (see ``from_dict``)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("config JSON must be an object")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig(_JsonConfig):
    """The fields every training task has: where it runs."""

    device: str | None = None  # cpu, cuda, cuda:N; None = CUDA when present
    threads: int = 0  # CPU threads for torch; 0 = torch's default


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopConfig(RunConfig):
    """The fields of every task that ``run_loop`` trains: seed, timing of its outputs, name."""

    seed: int = 0  # seeds weights, latents, noise, augmentation and data order
    checkpoint_minutes: float = 10.0  # write a checkpoint at least this often
    keep_checkpoints: int = 3  # how many recent checkpoints to keep
    tick_seconds: float = 10.0  # write a metrics line at least this often
    sample_minutes: float = 2.0  # write a sample grid at least this often
    num_samples: int = 16  # images in the sample grid (fixed latents)
    name: str = ""  # display name of the exported model; "" = run folder name


def _steps_for_kimg(kimg: float, batch_size: int) -> int:
    """Steps of ``batch_size`` images needed to show ``kimg`` thousand images (rounded up)."""
    return -(-round(kimg * 1000) // batch_size)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a simple type hint; lists become tuples, ints may become floats."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0]) if len(inner) == 1 else value
    if origin is Literal:
        if value not in args:
            raise ValueError(f"config field {name!r} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"config field {name!r} must be a list, got {value!r}")
        return tuple(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"config field {name!r} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config field {name!r} must be an integer, got {value!r}")
        return value
    if hint is bool and not isinstance(value, bool):
        raise ValueError(f"config field {name!r} must be true or false, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ValueError(f"config field {name!r} must be a string, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Capacity presets


@dataclass(frozen=True, slots=True)
class StyleGAN2Preset:
    """Network size and batch of one capacity preset (NVIDIA's rule, see channels_from_base)."""

    name: str
    channel_base: int  # C(r) = min(channel_base // r, channel_max)
    channel_max: int
    w_dim: int  # z_dim = w_dim
    mapping_layers: int
    batch_size: int
    lr: float
    ema_kimg: float
    note: str  # plain-language purpose


DEFAULT_PRESET = "small"
STYLEGAN2_PRESETS: dict[str, StyleGAN2Preset] = {
    preset.name: preset
    for preset in (
        StyleGAN2Preset(
            "tiny",
            1024,
            64,
            64,
            2,
            16,
            0.0025,
            2.0,
            "CPU try-out: blurry faces within minutes at 32-64 px",
        ),
        StyleGAN2Preset(
            "small",
            2048,
            128,
            128,
            4,
            16,
            0.0025,
            5.0,
            "64 px on a CPU in hours (the built-in demo model's size)",
        ),
        StyleGAN2Preset(
            "medium",
            8192,
            256,
            256,
            8,
            32,
            0.0025,
            10.0,
            "64-256 px on one GPU in hours",
        ),
        StyleGAN2Preset(
            "large",
            16384,
            512,
            512,
            8,
            64,
            0.0025,
            20.0,
            "256-512 px on one or more GPUs in days (NVIDIA's paper256)",
        ),
        StyleGAN2Preset(
            "ffhq",
            32768,
            512,
            512,
            8,
            32,
            0.002,
            10.0,
            "1024 px, several GPUs for a week or more (StyleGAN2 config-f)",
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# Job configurations


@dataclass(frozen=True, slots=True)
class StyleGAN2Config(LoopConfig):
    """Everything that defines a StyleGAN2 training run (``models/training/stylegan2.py``)."""

    task: ClassVar[str] = "stylegan2"

    data: str  # folder or .zip of images
    resolution: int = 64  # training size in pixels (power of two >= 8)
    align_faces: bool = False  # align faces FFHQ-style while caching (editors' face aligner)
    mirror: bool = True  # random horizontal flips of the real images
    alpha_mask: bool = False  # transparent pixels are not in the photo: hidden from D
    preset: str = "small"  # name of the capacity preset the fields below came from
    channel_base: int = 2048  # generator/discriminator width: C(r) = min(base // r, max)
    channel_max: int = 128
    w_dim: int = 128  # latent size (z_dim = w_dim)
    mapping_layers: int = 4  # layers of the mapping network
    batch_size: int = 16  # images per step over all processes
    kimg: float = 500.0  # length of the run in thousands of real images shown to D
    lr: float = 0.0025  # Adam learning rate of G and D (betas 0, 0.99)
    r1_gamma: float = 0.0  # R1 weight; 0 = NVIDIA's heuristic 0.0002 * res^2 / batch
    r1_interval: int = 16  # lazy R1: every N steps
    pl_weight: float = 2.0  # path-length regularisation weight; 0 = off
    pl_interval: int = 4  # lazy path-length: every N steps
    pl_batch_shrink: int = 2  # path-length batch = batch / shrink
    pl_decay: float = 0.01  # running-mean decay of the path length
    style_mixing: float = 0.9  # probability of mixing two latents at a random cut
    ema_kimg: float = 5.0  # half-life of the EMA generator in thousands of images
    ema_rampup: float = 0.05  # EMA half-life <= images seen * rampup early on; 0 = off
    mbstd_group: int = 4  # minibatch-stddev group size of D
    augment: AugmentMode = "ada"  # "ada" (p tuned by r_t), "diffaugment" (always on), "none"
    ada_target: float = 0.6  # target of r_t = E[sign(D(real))]
    ada_interval: int = 4  # adjust p every N steps
    ada_kimg: float = 100.0  # images (thousands) for p to move by 1
    augment_p: float = 0.0  # initial p (ADA) or fixed p when ada_target <= 0
    diffaugment_policy: str = "color,translation,cutout"  # DiffAugment ops
    mixed_precision: bool = True  # bf16 autocast of main passes (CUDA, CPUs with AMX/AVX512-BF16)
    channels_last: bool = False  # NHWC memory format (measure before turning on)
    init_from: str | None = None  # fine-tune: start from this generator file (and its D if any)
    export_fp16: bool = False  # store the exported generator in float16

    def __post_init__(self) -> None:
        res = self.resolution
        if res < 8 or res & (res - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {res}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2")
        if self.kimg <= 0:
            raise ValueError("kimg must be positive")
        if self.augment not in AUGMENT_MODES:
            raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {self.augment!r}")
        for name in (
            "r1_interval",
            "pl_interval",
            "pl_batch_shrink",
            "ada_interval",
            "num_samples",
            "keep_checkpoints",
            "mbstd_group",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @classmethod
    def from_preset(cls, preset: str, data: str, **overrides: Any) -> StyleGAN2Config:
        """A config with the capacity fields of ``preset``; ``overrides`` win over the preset.

        Raises:
            ValueError: unknown preset name.
        """
        if preset not in STYLEGAN2_PRESETS:
            raise ValueError(
                f"unknown preset {preset!r}; choose one of {', '.join(STYLEGAN2_PRESETS)}"
            )
        spec = STYLEGAN2_PRESETS[preset]
        fields: dict[str, Any] = {
            "preset": preset,
            "channel_base": spec.channel_base,
            "channel_max": spec.channel_max,
            "w_dim": spec.w_dim,
            "mapping_layers": spec.mapping_layers,
            "batch_size": spec.batch_size,
            "lr": spec.lr,
            "ema_kimg": spec.ema_kimg,
        }
        fields.update(overrides)
        return cls(data=data, **fields)

    @property
    def total_steps(self) -> int:
        """Steps of ``batch_size`` images needed to show ``kimg`` thousand images."""
        return max(1, _steps_for_kimg(self.kimg, self.batch_size))

    @property
    def effective_r1_gamma(self) -> float:
        """``r1_gamma``, or NVIDIA's auto heuristic 0.0002 * res^2 / batch when it is 0."""
        if self.r1_gamma > 0:
            return self.r1_gamma
        return 0.0002 * self.resolution**2 / self.batch_size


@dataclass(frozen=True, slots=True)
class ProGANConfig(LoopConfig):
    """A progressive-growing GAN run (``models/training/progan.py``)."""

    task: ClassVar[str] = "progan"

    data: str  # folder or .zip of images
    resolution: int = 64  # final size in pixels
    align_faces: bool = False  # align faces while caching
    mirror: bool = True  # random horizontal flips
    latent_size: int = 128  # z size (= features at 4x4 cap)
    feature_base: int = 2048  # features C(r) = min(base // r, max)
    feature_max: int = 128
    batch_size: int = 16  # images per step
    phase_kimg: float = 30.0  # thousands of images per fade-in and per stable phase
    lr: float = 0.001  # Adam (betas 0, 0.99)
    gp_weight: float = 10.0  # WGAN-GP gradient-penalty weight
    drift: float = 0.001  # drift term eps * E[D(real)^2]
    ema_kimg: float = 10.0  # half-life of the EMA generator
    mbstd_group: int = 4  # minibatch-stddev group size

    def __post_init__(self) -> None:
        res = self.resolution
        if res < 8 or res & (res - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {res}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2")

    @property
    def total_steps(self) -> int:
        """4x4 stable phase, then one fade-in and one stable phase per doubling."""
        doublings = self.resolution.bit_length() - 3
        phase_steps = max(1, _steps_for_kimg(self.phase_kimg, self.batch_size))
        return (1 + 2 * doublings) * phase_steps


@dataclass(frozen=True, slots=True)
class ClassifierConfig(LoopConfig):
    """An attribute-classifier run (``models/training/classifier.py``)."""

    task: ClassVar[str] = "classifier"

    data: str  # folder or .zip of images
    labels: str  # CSV with a file-name column and one column per attribute
    attributes: tuple[str, ...] = ()  # columns to learn; () = every numeric column
    file_column: str = ""  # CSV column with the image file names; "" = auto
    group_column: str = ""  # split train/validation by this column (e.g. identity); "" = random
    group_file: str = ""  # CSV holding group_column if not the labels file
    skip_rows_with: str = ""  # drop CSV rows where this column is non-empty (e.g. duplicate_of)
    validation_fraction: float = 0.1  # share of images (or groups) held out
    resolution: int = 64  # images are cached at this size and fed at input_size
    align_faces: bool = False
    mirror: bool = True  # random horizontal flips while training
    input_size: int = 64  # network input size
    width: int = 32  # channels of the first stage
    num_stages: int = 4  # stride-2 residual stages
    batch_size: int = 64
    epochs: float = 10.0  # passes over the training split
    lr: float = 0.001  # AdamW
    weight_decay: float = 0.0001
    sample_minutes: float = field(default=0.0, kw_only=True)  # no sample grids
    num_samples: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be between 0 and 1")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2")
        if self.epochs <= 0:
            raise ValueError("epochs must be positive")


@dataclass(frozen=True, slots=True)
class EncoderConfig(LoopConfig):
    """A latent-encoder run (``models/training/encoder.py``): image -> ws for a frozen generator."""

    task: ClassVar[str] = "encoder"

    model: str  # generator file the encoder inverts
    data: str = ""  # optional folder/zip of real photos for a refinement stage
    align_faces: bool = False  # align the real photos while caching
    input_size: int = 64  # encoder input size
    width: int = 32  # channels at full resolution
    max_channels: int = 256
    batch_size: int = 16
    kimg: float = 50.0  # thousands of generated images for the synthetic stage
    real_kimg: float = 0.0  # thousands of real photos for the refinement stage (needs data)
    lr: float = 0.0005  # Adam
    latent_weight: float = 1.0  # weight of the ws regression loss (synthetic stage)
    image_weight: float = 1.0  # weight of the pixel reconstruction loss
    truncation_psi: float = 0.8  # sample training latents with this truncation
    install: bool = False  # also copy the result beside the model (where projection looks)
    num_samples: int = field(default=8, kw_only=True)  # reconstruction pairs in the sample grid

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.kimg < 0 or self.real_kimg < 0 or self.kimg + self.real_kimg <= 0:
            raise ValueError("kimg + real_kimg must be positive")
        if self.real_kimg > 0 and not self.data:
            raise ValueError("real_kimg > 0 needs data (a folder of real photos)")

    @property
    def synthetic_steps(self) -> int:
        """Steps of the synthetic (generated pairs) stage."""
        return _steps_for_kimg(self.kimg, self.batch_size)

    @property
    def total_steps(self) -> int:
        """Synthetic steps followed by real-photo steps."""
        return self.synthetic_steps + _steps_for_kimg(self.real_kimg, self.batch_size)


@dataclass(frozen=True, slots=True)
class DirectionsConfig(RunConfig):
    """A TL-GAN direction-fitting run (``editors/direction_fitting.py::fit_directions``).

    Plain data only, so the wizard and the CLI share it; ``editors/direction_training.py`` runs
    it. The task table is ``editors/training_tasks.py``.
    """

    task: ClassVar[str] = "directions"

    model: str  # generator whose latents are sampled
    labeler: Literal["landmarks", "classifier"] = "landmarks"  # where the labels come from
    classifier: str = ""  # attribute-classifier file (labeler "classifier")
    attributes: tuple[str, ...] = ()  # labeler attributes to fit; () = all
    num_samples: int = 2000  # latents drawn, rendered and labelled
    first_seed: int = 0  # samples use seeds first_seed, first_seed + 1, ...
    truncation_psi: float = 0.7  # truncation of the sampled latents
    layers: Literal["all", "coarse", "middle", "fine"] = "all"  # style rows the edits move
    batch_size: int = 8  # samples rendered per pass
    install: bool = False  # also save beside the model (where the editor looks)

    def __post_init__(self) -> None:
        if self.labeler == "classifier" and not self.classifier:
            raise ValueError("the classifier labeler needs a classifier file")
        if self.num_samples < 2:
            raise ValueError("num_samples must be at least 2")

    @property
    def total_steps(self) -> int:
        """Rendered batches (the fit itself is one more step)."""
        return -(-self.num_samples // self.batch_size)
