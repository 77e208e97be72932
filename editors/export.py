"""Exporting edits: still images and videos (a slider sweep or an interpolation between two states).

Videos are MP4 (H.264 through PyAV, whose wheel ships the codec, so browsers and players accept
it) or GIF (Pillow), chosen by the file extension, written to a temporary file beside the target
and renamed over it only when complete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from editors.images import save_rgb
from editors.rendering import RenderArgs, Renderer
from editors.state import EditState, with_amount, with_component
from models.formats.native import atomic_temp_file
from models.generator import Generator
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report

VIDEO_SUFFIXES = (".mp4", ".gif")


def export_image(rgb: np.ndarray, path: str | Path) -> Path:
    """Write the picture on screen (``uint8`` [H, W, 3]) atomically; format from the extension."""
    return save_rgb(rgb, path)


@dataclass(frozen=True, slots=True, eq=False)
class SweepSpec:
    """Move one slider from ``start`` to ``stop`` (latent units) with everything else fixed."""

    state: EditState
    kind: Literal["attribute", "component"]
    name: str
    start: float
    stop: float

    def __post_init__(self) -> None:
        directions = self.state.directions if self.kind == "attribute" else self.state.components
        if directions is None or self.name not in directions:
            raise ValueError(f"there is no {self.kind} called {self.name!r} to sweep")


@dataclass(frozen=True, slots=True, eq=False)
class InterpolationSpec:
    """Blend linearly from the latent of ``start`` to that of ``end`` (both fully resolved)."""

    start: EditState
    end: EditState


@dataclass(frozen=True, slots=True)
class VideoConfig:
    """How a video is made."""

    frames: int = 60  # frames from start to end
    fps: float = 30.0  # playback rate
    size: int | None = None  # output width and height in pixels; None = the model's resolution
    ping_pong: bool = False  # go back to the start as well (for seamless loops)

    def __post_init__(self) -> None:
        if self.frames < 2:
            raise ValueError(f"a video needs at least 2 frames, got {self.frames}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.size is not None and self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")


def _times(config: VideoConfig) -> list[float]:
    times = list(np.linspace(0.0, 1.0, config.frames))
    if config.ping_pong:
        times += times[-2:0:-1]
    return [float(t) for t in times]


def frame_args(
    renderer: Renderer, spec: SweepSpec | InterpolationSpec, config: VideoConfig
) -> Iterator[RenderArgs]:
    """The render request of every frame, in order."""
    if isinstance(spec, InterpolationSpec):
        start = renderer.resolve_ws(spec.start.render_args())[0].cpu().numpy()
        end = renderer.resolve_ws(spec.end.render_args())[0].cpu().numpy()
    for t in _times(config):
        if isinstance(spec, SweepSpec):
            amount = (1.0 - t) * spec.start + t * spec.stop
            change = with_amount if spec.kind == "attribute" else with_component
            yield change(spec.state, spec.name, amount).render_args()
        else:
            ws = (np.float32(1.0 - t) * start + np.float32(t) * end).astype(np.float32)
            yield RenderArgs(
                seed=None,
                ws=ws,
                noise_mode=spec.start.noise_mode,
                noise_strength=spec.start.noise_strength,
            )


class H264Writer:
    """Writes RGB frames to an H.264 MP4 (yuv420p, the pixel format every player decodes).

    yuv420p needs even sides, so odd-sized frames are scaled up by one pixel.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int | None = None) -> None:
        import av  # imported here: only video export needs it

        height = width if height is None else height
        self._container = av.open(str(path), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width = width + width % 2
        self._stream.height = height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "18", "preset": "medium"}  # visually lossless
        self._av = av

    def add(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(
            width=self._stream.width, height=self._stream.height, format="yuv420p"
        )
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode():  # flush the encoder's delayed frames
                self._container.mux(packet)
        finally:
            self._container.close()


class _GifWriter:
    def __init__(self, path: Path, fps: float, size: int) -> None:
        self._path = path
        self._duration_ms = max(20, round(1000.0 / fps))  # browsers clamp faster GIFs
        self._frames: list[Image.Image] = []

    def add(self, rgb: np.ndarray) -> None:
        self._frames.append(Image.fromarray(rgb))

    def close(self) -> None:
        if self._frames:
            first, *rest = self._frames
            first.save(
                self._path,
                format="GIF",
                save_all=True,
                append_images=rest,
                duration=self._duration_ms,
                loop=0,
            )


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS))


def export_video(
    generator: Generator,
    spec: SweepSpec | InterpolationSpec,
    path: str | Path,
    config: VideoConfig | None = None,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """Render ``spec`` frame by frame into an MP4 or GIF at ``path`` (a background job).

    Raises:
        ValueError: the extension is neither .mp4 nor .gif.
        OSError: the video cannot be written.
        Cancelled: ``should_stop`` returned True; nothing is left at ``path``.
    """
    path = Path(path)
    config = config or VideoConfig()
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: unsupported video type {suffix or '(none)'}; use .mp4 or .gif")
    size = config.size or generator.resolution
    tmp = atomic_temp_file(path, suffix)
    total = len(_times(config))
    renderer = Renderer(generator)
    writer = (H264Writer if suffix == ".mp4" else _GifWriter)(tmp, config.fps, size)
    try:
        try:
            for index, args in enumerate(frame_args(renderer, spec, config)):
                check_stop(should_stop)
                writer.add(_resize(renderer.render(args).rgb, size))
                report(on_step, Progress(index + 1, total, f"frame {index + 1}/{total}"))
        finally:
            writer.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
