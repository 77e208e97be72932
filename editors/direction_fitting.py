"""The TL-GAN recipe as one background job: sample latents, render, label, fit one direction each.

``fit_directions`` is what ``python main.py train directions`` and the GUI's "Fit directions…"
dialog both call; its signature is kept stable.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from editors.direction_estimators import AttributeDirectionEstimator
from editors.directions import Direction, DirectionSet, Layers, check_layers
from editors.labelers import Labeler, SampleBatch
from models.generator import Generator, NoiseMode, seed_to_z
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report


@dataclass(frozen=True, slots=True)
class DirectionFitConfig:
    """How directions are fitted; the CLI and the dialog build the same object."""

    num_samples: int = 2000  # latents drawn and labelled (ignored when ``seeds`` is given)
    first_seed: int = 0  # samples use seeds first_seed, first_seed + 1, ...
    seeds: tuple[int, ...] | None = None  # explicit seeds (manual tags); overrides the two above
    truncation_psi: float = 0.7  # truncation of the sampled latents; 1 = off
    attributes: tuple[str, ...] | None = None  # labeler attributes to fit; None = all of them
    layers: Layers | None = None  # ws rows the fitted directions apply to; None = all
    batch_size: int = 8  # samples rendered per forward pass
    label_resolution: int | None = 256  # render at most this size for labelling; None = full
    noise_mode: NoiseMode = "const"  # noise used when rendering the samples
    target: str = "auto"  # "auto", "binary" or "continuous" labels
    heldout_fraction: float = 0.2  # share of labelled samples kept out to measure quality
    cv: int = 5  # cross-validation folds for choosing the regularisation
    min_per_class: int = 5  # fewest samples per class for a binary attribute
    min_labelled_fraction: float = 0.25  # fail when the labeler answers for fewer samples
    random_state: int = 0  # seeds the held-out split and the folds

    def __post_init__(self) -> None:
        if self.seeds is None and self.num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {self.num_samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if self.target not in ("auto", "binary", "continuous"):
            raise ValueError(f"target must be auto, binary or continuous, got {self.target!r}")
        object.__setattr__(self, "layers", check_layers(self.layers))
        if self.seeds is not None:
            object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.attributes is not None:
            object.__setattr__(self, "attributes", tuple(self.attributes))

    def sample_seeds(self) -> tuple[int, ...]:
        """The seeds of the samples, in order."""
        if self.seeds is not None:
            return self.seeds
        return tuple(range(self.first_seed, self.first_seed + self.num_samples))

    def to_json(self) -> str:
        """The config as JSON text."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DirectionFitConfig:
        """Parse ``to_json`` output; unknown keys are an error (a typo must fail loudly)."""
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown direction-fit settings: {', '.join(unknown)}")
        for key in ("seeds", "attributes", "layers"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def latent_space(generator: Generator) -> str:
    """The space directions are fitted in: "z" for ProGAN (no mapping network), else "w"."""
    return "z" if generator.kind == "progan" else "w"


def _render_batch(
    generator: Generator, w: torch.Tensor, config: DirectionFitConfig
) -> torch.Tensor:
    ws = generator.broadcast(w)
    options: dict[str, Any] = {}
    resolution = config.label_resolution
    if (
        resolution is not None
        and generator.resolution > resolution
        and generator.kind == "stylegan2"
    ):
        options["max_resolution"] = resolution
    return generator.synthesis(ws, noise_mode=config.noise_mode, **options)


def sample_and_label(
    generator: Generator,
    labeler: Labeler,
    config: DirectionFitConfig,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the config's samples and label them.

    Returns:
        ``w`` [N, w_dim] float32 and labels [N, A] float32 (NaN = unknown), A = labeler attributes.
    """
    seeds = config.sample_seeds()
    latents: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    total = len(seeds)
    with torch.inference_mode():
        for start in range(0, total, config.batch_size):
            check_stop(should_stop)
            chunk = seeds[start : start + config.batch_size]
            z = seed_to_z(chunk, generator.z_dim).to(generator.device)
            w = generator.mapping(z, truncation_psi=config.truncation_psi)
            images = _render_batch(generator, w, config) if labeler.needs_images else None
            w_numpy = w.float().cpu().numpy()
            batch = SampleBatch(tuple(chunk), w_numpy, images)
            batch_labels = np.asarray(labeler.label(batch), np.float32)
            if batch_labels.shape != (len(chunk), len(labeler.attributes)):
                raise ValueError(
                    f"labeler {labeler.name!r} returned labels of shape "
                    f"{list(batch_labels.shape)}, "
                    f"expected [{len(chunk)}, {len(labeler.attributes)}]"
                )
            latents.append(w_numpy)
            labels.append(batch_labels)
            done = min(start + config.batch_size, total)
            report(on_step, Progress(done, total + 1, f"labelling samples {done}/{total}"))
    return np.concatenate(latents), np.concatenate(labels)


def fit_directions(
    generator: Generator,
    labeler: Labeler,
    config: DirectionFitConfig,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> DirectionSet:
    """Fit one direction per attribute of ``labeler`` (sample -> render -> label -> fit).

    Attributes whose labels cannot give a direction (too few known labels, one class only) are
    skipped and explained in ``DirectionSet.notes``; if none can, ``ValueError`` lists why.

    Args:
        generator: the model whose latents are sampled.
        labeler: where the labels come from.
        config: sample count, seeds, truncation, layers, estimator settings.
        on_step: progress reports (one per rendered batch, then one for the fit).
        should_stop: polled once per batch; stopping raises ``Cancelled``.

    Returns:
        The fitted directions, tagged with ``generator.fingerprint()``.

    Raises:
        ValueError: unknown attributes, or no attribute could be fitted (message has the counts).
        Cancelled: ``should_stop`` returned True.
    """
    wanted = config.attributes or labeler.attributes
    unknown = [a for a in wanted if a not in labeler.attributes]
    if unknown:
        raise ValueError(
            f"labeler {labeler.name!r} has no attribute {', '.join(unknown)}; "
            f"it labels {', '.join(labeler.attributes)}"
        )
    w, labels = sample_and_label(
        generator, labeler, config, on_step=on_step, should_stop=should_stop
    )
    check_stop(should_stop)
    total = len(w)
    space = latent_space(generator)
    directions: list[Direction] = []
    notes: list[str] = []
    for name in wanted:
        column = labels[:, labeler.attributes.index(name)]
        known = int(np.isfinite(column).sum())
        if known < max(2, math.ceil(config.min_labelled_fraction * total)):
            notes.append(
                f"{name}: the {labeler.name} labeler gave a value for only {known} of {total} "
                "samples (e.g. no face found); try more samples or a lower truncation"
            )
            continue
        estimator = AttributeDirectionEstimator(
            target=config.target,  # type: ignore[arg-type]
            cv=config.cv,
            heldout_fraction=config.heldout_fraction,
            min_per_class=config.min_per_class,
            random_state=config.random_state,
        )
        try:
            estimator.fit(w, column)
        except ValueError as exc:
            notes.append(f"{name}: {exc}")
            continue
        fitted_with = {
            **labeler.describe(),
            "attribute": name,
            "num_samples": total,
            "labelled_samples": known,
            "truncation_psi": config.truncation_psi,
            "seeds": f"{min(config.sample_seeds())}-{max(config.sample_seeds())}",
        }
        directions.append(estimator.to_direction(name, config.layers, space, fitted_with))
        check_stop(should_stop)
    report(on_step, Progress(total + 1, total + 1, f"fitted {len(directions)} directions"))
    if not directions:
        raise ValueError("no direction could be fitted:\n" + "\n".join(notes))
    return DirectionSet(
        tuple(directions), generator.fingerprint(), generator.name, None, tuple(notes)
    )
