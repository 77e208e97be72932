"""Turning latents into pictures: batch rendering for the CLI and the interactive ``Renderer``.

``Renderer`` is the Qt-free half of the GUI's render thread (NVIDIA's visualizer split): the GUI
sends it ``RenderArgs`` values and gets ``RenderResult`` values back; it never sees a tensor.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from editors.images import save_rgb
from models.generator import Generator, NoiseMode, seed_to_z, to_rgb_u8
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report


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
    """Everything that decides one interactive frame."""

    seed: int | None = 0  # draw w from this seed, unless ``ws`` is given
    ws: np.ndarray | None = None  # [num_ws, w_dim] float32 latent to render as is
    truncation_psi: float = 1.0  # applied to seed latents only
    noise_mode: NoiseMode = "const"
    noise_strength: tuple[float, ...] | None = None  # per-layer noise multipliers
    draft: bool = False  # reduced resolution while a slider is held

    def same_as(self, other: RenderArgs | None) -> bool:
        """True when rendering ``other`` would give the same picture."""
        if other is None:
            return False
        if (self.ws is None) != (other.ws is None):
            return False
        if self.ws is not None and other.ws is not None and not np.array_equal(self.ws, other.ws):
            return False
        return (self.seed, self.truncation_psi, self.noise_mode, self.noise_strength, self.draft) == (
            other.seed, other.truncation_psi, other.noise_mode, other.noise_strength, other.draft
        ) and self.noise_mode != "random"


@dataclass(frozen=True, slots=True, eq=False)
class RenderResult:
    """One rendered frame."""

    rgb: np.ndarray  # [H, W, 3] uint8
    ws: np.ndarray  # [num_ws, w_dim] float32, the latent actually rendered
    render_ms: float  # wall time of the render
    draft: bool  # rendered at reduced resolution


@dataclass(slots=True)
class Renderer:
    """Renders ``RenderArgs`` with one generator, reusing mapped seeds and cached activations.

    Not thread-safe: one thread (the GUI's render thread) owns it.
    """

    generator: Generator
    draft_resolution: int = 128  # preview size used while dragging on large models
    _w_cache: dict[int, torch.Tensor] = field(default_factory=dict)
    _synthesis_cache: object | None = None

    def __post_init__(self) -> None:
        from models.stylegan2 import SynthesisCache, StyleGAN2Generator

        if isinstance(self.generator, StyleGAN2Generator):
            self._synthesis_cache = SynthesisCache()

    def w_for_seed(self, seed: int) -> torch.Tensor:
        """Untruncated w [w_dim] of a seed (cached)."""
        if seed not in self._w_cache:
            if len(self._w_cache) > 256:
                self._w_cache.clear()
            with torch.inference_mode():
                z = seed_to_z([seed], self.generator.z_dim).to(self.generator.device)
                self._w_cache[seed] = self.generator.mapping(z)[0]
        return self._w_cache[seed]

    def resolve_ws(self, args: RenderArgs) -> torch.Tensor:
        """The ws [1, num_ws, w_dim] that ``args`` describes."""
        generator = self.generator
        if args.ws is not None:
            ws = torch.as_tensor(np.asarray(args.ws, dtype=np.float32), device=generator.device)
            return ws.reshape(1, generator.num_ws, generator.w_dim)
        if args.seed is None:
            raise ValueError("RenderArgs needs a seed or ws")
        with torch.inference_mode():
            w = generator.truncate(self.w_for_seed(args.seed)[None], args.truncation_psi)
            return generator.broadcast(w)

    def render(self, args: RenderArgs) -> RenderResult:
        """Render one frame."""
        start = time.perf_counter()
        generator = self.generator
        ws = self.resolve_ws(args)
        options: dict[str, object] = {}
        if self._synthesis_cache is not None:
            options["cache"] = self._synthesis_cache
            if args.noise_strength is not None:
                options["noise_strength"] = args.noise_strength
            if args.draft and generator.resolution > self.draft_resolution:
                options["max_resolution"] = self.draft_resolution
        with torch.inference_mode():
            images = generator.synthesis(ws, noise_mode=args.noise_mode, **options)
        rgb = to_rgb_u8(images)[0]
        return RenderResult(
            rgb=rgb,
            ws=ws[0].detach().cpu().numpy().astype(np.float32),
            render_ms=(time.perf_counter() - start) * 1000.0,
            draft=bool(options.get("max_resolution")),
        )
