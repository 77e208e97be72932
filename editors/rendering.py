"""Turning latents into pictures: batch rendering for the CLI and the interactive ``Renderer``.

``Renderer`` is the Qt-free half of the GUI's render thread (NVIDIA's visualizer split): the GUI
sends it ``RenderArgs`` values and gets ``RenderResult`` values back; it never sees a tensor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from editors.images import save_rgb
from editors.masks import local_synthesis
from models.generator import Generator, NoiseMode, seed_to_z, to_rgb_u8
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report

if TYPE_CHECKING:
    from editors.mixing import LatentSource
    from editors.state import EditState

# Called by the render thread after a full-resolution frame of an edited latent:
# (unedited rgb [H, W, 3] uint8, edited rgb [H, W, 3] uint8) -> distance, or None if unmeasurable.
IdentityProbe = Callable[[np.ndarray, np.ndarray], "float | None"]


def render_seeds(
    generator: Generator,
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    truncation_psi: float = 1.0,
    noise_mode: NoiseMode = "const",
    batch_size: int = 4,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> list[Path]:
    """Render one PNG per seed into ``out_dir`` as ``seed{seed:04d}.png``.

    Returns:
        The written paths, in seed order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with torch.inference_mode():
        for start in range(0, len(seeds), batch_size):
            check_stop(should_stop, paths)
            chunk = list(seeds[start : start + batch_size])
            z = seed_to_z(chunk, generator.z_dim).to(generator.device)
            ws = generator.broadcast(generator.mapping(z, truncation_psi=truncation_psi))
            images = generator.synthesis(ws, noise_mode=noise_mode)
            for seed, rgb in zip(chunk, to_rgb_u8(images), strict=True):
                paths.append(save_rgb(rgb, out / f"seed{seed:04d}.png"))
            report(on_step, Progress(len(paths), len(seeds), f"{len(paths)}/{len(seeds)} images"))
    return paths


@dataclass(frozen=True, slots=True, eq=False)
class RenderArgs:
    """Everything that decides one interactive frame.

    ``seed``/``ws``/``truncation_psi`` give the unedited latent and ``noise_*`` the noise;
    ``state`` (when given) adds the edits: attribute and component sliders and style mixing.
    """

    seed: int | None = 0  # draw w from this seed, unless ``ws`` is given
    ws: np.ndarray | None = None  # [num_ws, w_dim] float32 latent to render as is
    truncation_psi: float = 1.0  # applied to seed latents only
    noise_mode: NoiseMode = "const"
    noise_strength: tuple[float, ...] | None = None  # per-layer noise multipliers
    draft: bool = False  # reduced resolution while a slider is held
    state: EditState | None = None  # the edits to resolve on top of the base latent
    measure_identity: bool = False  # also report the identity drift of the edit

    def same_as(self, other: RenderArgs | None) -> bool:
        """True when rendering ``other`` would give the same picture."""
        from editors.state import states_equal

        if other is None:
            return False
        if (self.ws is None) != (other.ws is None):
            return False
        if self.ws is not None and other.ws is not None and not np.array_equal(self.ws, other.ws):
            return False
        if not states_equal(self.state, other.state):
            return False
        return (
            self.seed,
            self.truncation_psi,
            self.noise_mode,
            self.noise_strength,
            self.draft,
            self.measure_identity,
        ) == (
            other.seed,
            other.truncation_psi,
            other.noise_mode,
            other.noise_strength,
            other.draft,
            other.measure_identity,
        ) and self.noise_mode != "random"


@dataclass(frozen=True, slots=True, eq=False)
class RenderResult:
    """One rendered frame."""

    rgb: np.ndarray  # [H, W, 3] uint8
    ws: np.ndarray  # [num_ws, w_dim] float32, the latent actually rendered (edits resolved)
    render_ms: float  # wall time of the render
    draft: bool  # rendered at reduced resolution
    state: EditState | None = None  # the edit state this frame shows
    start_block: int = 0  # first synthesis block recomputed (0 = full render; cache statistics)
    identity_distance: float | None = None  # drift from the unedited face, when measured
    interpolated: bool = False  # blended along a slider between rendered frames (a preview)


# On a CPU, images this large render slowly enough to want a preview while dragging.
DRAFT_MIN_RESOLUTION = 256


def wants_drafts(generator: Generator) -> bool:
    """True when ``generator``'s full frames are slow enough to preview in draft while a slider
    is dragged (the GUI's rule, shared with the edit benchmark)."""
    return generator.device.type == "cpu" and generator.resolution >= DRAFT_MIN_RESOLUTION


@dataclass(slots=True)
class Renderer:
    """Renders ``RenderArgs`` with one generator, reusing mapped seeds and cached activations.

    Edits are resolved here, on the render thread, because a seed's latent needs the mapping
    network. Not thread-safe: one thread (the GUI's render thread) owns it.
    """

    generator: Generator
    draft_resolution: int = 128  # preview size used while dragging on large models (adapts)
    draft_budget_ms: float = 150.0  # drafts slower than 1.5x this halve the preview size
    min_draft_resolution: int = 64  # smallest preview (smaller ones stop reading as faces)
    identity_probe: IdentityProbe | None = None  # drift measure; None = look for editors.identity
    _w_cache: dict[int, torch.Tensor] = field(default_factory=dict)
    _synthesis_cache: object | None = None
    _probe_checked: bool = False
    _reference: tuple[object, np.ndarray] | None = None  # unedited picture for identity drift
    _max_draft: int = 128

    def __post_init__(self) -> None:
        from models.stylegan2 import StyleGAN2Generator, SynthesisCache

        if isinstance(self.generator, StyleGAN2Generator):
            self._synthesis_cache = SynthesisCache()
        self._max_draft = self.draft_resolution

    def w_for_seed(self, seed: int) -> torch.Tensor:
        """Untruncated w [w_dim] of a seed (cached)."""
        if seed not in self._w_cache:
            if len(self._w_cache) > 256:
                self._w_cache.clear()
            with torch.inference_mode():
                z = seed_to_z([seed], self.generator.z_dim).to(self.generator.device)
                self._w_cache[seed] = self.generator.mapping(z)[0]
        return self._w_cache[seed]

    def seed_ws(self, seed: int, truncation_psi: float) -> np.ndarray:
        """The truncated latent of ``seed`` broadcast to every row, [num_ws, w_dim] float32."""
        with torch.inference_mode():
            w = self.generator.truncate(self.w_for_seed(seed)[None], truncation_psi)
            ws = self.generator.broadcast(w)[0]
        return ws.float().cpu().numpy()

    def source_ws(self, source: LatentSource) -> np.ndarray:
        """The latent [num_ws, w_dim] of a style-mixing donor (or any ``LatentSource``)."""
        if source.ws is not None:
            return self._check_rows(np.asarray(source.ws, np.float32), "the donor latent")
        assert source.seed is not None
        return self.seed_ws(source.seed, source.truncation_psi)

    def _check_rows(self, ws: np.ndarray, what: str) -> np.ndarray:
        shape = (self.generator.num_ws, self.generator.w_dim)
        if ws.size == shape[0] * shape[1]:
            return ws.reshape(shape)
        raise ValueError(f"{what} has shape {list(ws.shape)}; this model needs {list(shape)}")

    def base_ws(self, args: RenderArgs) -> np.ndarray:
        """The unedited latent of ``args``, [num_ws, w_dim] float32."""
        if args.ws is not None:
            return self._check_rows(np.asarray(args.ws, dtype=np.float32), "the latent")
        if args.seed is None:
            raise ValueError("RenderArgs needs a seed or ws")
        return self.seed_ws(args.seed, args.truncation_psi)

    def resolve_ws(self, args: RenderArgs) -> torch.Tensor:
        """The ws [1, num_ws, w_dim] that ``args`` describes, edits included."""
        from editors.state import resolve_ws

        base = self.base_ws(args)
        if args.state is not None:
            mix = args.state.mix
            donor = self.source_ws(mix.donor) if mix is not None and mix.is_active else None
            base = resolve_ws(args.state, base, donor)
        return torch.from_numpy(np.ascontiguousarray(base)).to(self.generator.device)[None]

    def render(self, args: RenderArgs) -> RenderResult:
        """Render one frame."""
        start = time.perf_counter()
        generator = self.generator
        ws = self.resolve_ws(args)
        options: dict[str, object] = {}
        cache = self._synthesis_cache
        if cache is not None:
            options["cache"] = cache
            if args.noise_strength is not None:
                options["noise_strength"] = args.noise_strength
        if (
            args.draft
            and generator.resolution > self.draft_resolution
            and self.draft_resolution in _block_resolutions(generator)
        ):
            options["max_resolution"] = self.draft_resolution
        with torch.inference_mode():
            # Style-channel and masked edits of the state are applied inside the synthesis.
            mode = args.noise_mode
            images = local_synthesis(generator, args.state, ws, noise_mode=mode, **options)
        if not bool(torch.isfinite(images).all()):  # would show as black: say why instead
            source = generator.source.path if generator.source else generator.name
            raise ValueError(
                f"{source}: the model renders NaN or infinite values (damaged or overflowing "
                "weights, or an extreme edit)"
            )
        rgb = to_rgb_u8(images)[0]
        if options.get("max_resolution"):
            self._adapt_draft((time.perf_counter() - start) * 1000.0)
        distance = None
        if args.measure_identity and not options.get("max_resolution"):
            distance = self._identity_distance(args, rgb)
        return RenderResult(
            rgb=rgb,
            ws=ws[0].detach().cpu().numpy().astype(np.float32),
            render_ms=(time.perf_counter() - start) * 1000.0,
            draft=bool(options.get("max_resolution")),
            state=args.state,
            start_block=int(getattr(cache, "last_start_block", 0)) if cache is not None else 0,
            identity_distance=distance,
        )

    def _adapt_draft(self, elapsed_ms: float) -> None:
        # Keep drags responsive on slow machines: a draft far over budget halves the preview
        # size (down to ``min_draft_resolution``); one far under budget doubles it back.
        if (
            elapsed_ms > 1.5 * self.draft_budget_ms
            and self.draft_resolution // 2 >= self.min_draft_resolution
        ):
            self.draft_resolution //= 2
        elif elapsed_ms < self.draft_budget_ms / 4 and self.draft_resolution * 2 <= self._max_draft:
            self.draft_resolution *= 2

    def _identity_distance(self, args: RenderArgs, rgb: np.ndarray) -> float | None:
        if args.state is None or not args.state.has_edits:
            return 0.0
        probe = self.identity_probe
        if probe is None and not self._probe_checked:
            self._probe_checked = True
            probe = self.identity_probe = find_identity_probe()
        if probe is None:
            return None
        return probe(self._unedited_rgb(args), rgb)

    def _unedited_rgb(self, args: RenderArgs) -> np.ndarray:
        base = self.base_ws(args)
        key = (base.tobytes(), args.noise_mode, args.noise_strength)
        if self._reference is None or self._reference[0] != key:
            options: dict[str, object] = {}
            if args.noise_strength is not None:
                options["noise_strength"] = args.noise_strength
            ws = torch.from_numpy(np.ascontiguousarray(base)).to(self.generator.device)[None]
            with torch.inference_mode():
                images = self.generator.synthesis(ws, noise_mode=args.noise_mode, **options)
            self._reference = (key, to_rgb_u8(images)[0])
        return self._reference[1]


class IdentityDriftProbe:
    """Identity drift with ``editors.identity.IdentityMeter``: one meter per unedited picture.

    Returns None when the unedited picture has no detectable face (nothing to compare with).
    """

    def __init__(self) -> None:
        self._reference_key: bytes | None = None
        self._meter: object | None = None

    def __call__(self, reference: np.ndarray, edited: np.ndarray) -> float | None:
        import hashlib

        from editors.identity import IdentityMeter

        key = hashlib.sha1(reference.tobytes()).digest()
        if key != self._reference_key:
            self._reference_key = key
            try:
                self._meter = IdentityMeter(np.array(reference))
            except ValueError:  # no face in the unedited picture
                self._meter = None
        if self._meter is None:
            return None
        return float(self._meter.distance(np.array(edited)))  # type: ignore[attr-defined]


def find_identity_probe() -> IdentityProbe | None:
    """An ``IdentityDriftProbe`` when ``editors.identity`` is installed, else None."""
    import importlib.util

    if importlib.util.find_spec("editors.identity") is None:
        return None
    return IdentityDriftProbe()


def limit_identity_drift(
    generator: Generator,
    state: EditState,
    name: str,
    amount: float,
    *,
    kind: str = "attribute",
    threshold: float = 0.6,
    probe: IdentityProbe | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> float:
    """The amount, between the current one and ``amount``, that keeps identity drift <= threshold.

    "Preserve identity" mode: the slider asked for ``amount``; the edit is shortened by bisection
    (``editors.identity.preserve_identity_step``) when the face would drift too far from the
    unedited one. Returns ``amount`` unchanged when drift cannot be measured (no face).

    Args:
        generator: the model.
        state: the state before the change.
        name: the attribute (or component) that moves.
        amount: the requested amount, latent units.
        kind: "attribute" or "component".
        threshold: the largest acceptable distance (0.6 = dlib's same-person boundary).
        probe: drift measure; None = ``IdentityDriftProbe``.
    """
    from editors.identity import preserve_identity_step
    from editors.state import with_amount, with_component

    renderer = Renderer(generator)
    probe = probe or IdentityDriftProbe()
    change = with_amount if kind == "attribute" else with_component
    amounts = state.attribute_amounts if kind == "attribute" else state.component_amounts
    start = float(amounts.get(name, 0.0))
    reference = renderer._unedited_rgb(state.render_args())
    if probe(reference, reference) is None:
        return amount

    def distance_for(step: float) -> float:
        rgb = renderer.render(change(state, name, start + step).render_args()).rgb
        distance = probe(reference, rgb)
        return float("inf") if distance is None else distance

    step = preserve_identity_step(
        distance_for, amount - start, threshold, on_step=on_step, should_stop=should_stop
    )
    return start + step.amount


def render_thumbnails(
    generator: Generator,
    sources: Sequence[LatentSource],
    *,
    size: int = 96,
    noise_mode: NoiseMode = "const",
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> list[np.ndarray]:
    """Small pictures of latents (seeds or ws), for grids and donor previews.

    Args:
        sources: what to render (``LatentSource`` seeds are mapped and truncated).
        size: width and height of each thumbnail; never larger than the model's resolution.

    Returns:
        One ``uint8`` [size, size, 3] array per source, in order.
    """
    from PIL import Image

    renderer = Renderer(generator)
    renderer._synthesis_cache = None  # unrelated latents: the cache would only cost memory
    size = min(size, generator.resolution)
    # Stop at the smallest block that still covers the thumbnail: far cheaper on big models.
    resolution = next((r for r in _block_resolutions(generator) if r >= size), generator.resolution)
    thumbnails: list[np.ndarray] = []
    with torch.inference_mode():
        for index, source in enumerate(sources):
            check_stop(should_stop, thumbnails)
            ws = torch.from_numpy(renderer.source_ws(source)).to(generator.device)[None]
            options: dict[str, object] = {}
            if resolution < generator.resolution:
                options["max_resolution"] = resolution
            rgb = to_rgb_u8(generator.synthesis(ws, noise_mode=noise_mode, **options))[0]
            if rgb.shape[0] != size:
                rgb = np.asarray(
                    Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS)
                )
            thumbnails.append(rgb)
            report(
                on_step, Progress(index + 1, len(sources), f"{index + 1}/{len(sources)} samples")
            )
    return thumbnails


def _block_resolutions(generator: Generator) -> list[int]:
    block_resolutions = getattr(generator, "block_resolutions", None)
    return list(block_resolutions()) if callable(block_resolutions) else [generator.resolution]


def render_states(
    generator: Generator,
    states: Sequence[EditState],
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> list[RenderResult]:
    """Render several edit states at full resolution (e.g. history entries missing a picture)."""
    renderer = Renderer(generator)
    results: list[RenderResult] = []
    for index, state in enumerate(states):
        check_stop(should_stop, results)
        results.append(renderer.render(state.render_args()))
        report(on_step, Progress(index + 1, len(states), f"{index + 1}/{len(states)} pictures"))
    return results
