"""Export: images, MP4/GIF videos of sweeps and interpolations, cancellation leaves nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from editors.directions import Direction, DirectionSet
from editors.export import InterpolationSpec, SweepSpec, VideoConfig, export_image, export_video
from editors.rendering import Renderer
from editors.state import EditState, with_amount
from models.jobs import Cancelled


@pytest.fixture
def setup(tiny_generator):
    generator = tiny_generator(resolution=32, w_dim=16)
    directions = DirectionSet((Direction("smile", np.random.default_rng(0).normal(size=16)),))
    return generator, EditState(seed=4, directions=directions)


def test_gif_sweep_frames_match_renders(setup, tmp_path) -> None:
    generator, state = setup
    progress = []
    path = export_video(
        generator,
        SweepSpec(state, "attribute", "smile", -3.0, 3.0),
        tmp_path / "sweep.gif",
        VideoConfig(frames=5, fps=10),
        on_step=progress.append,
    )
    expected = [
        Renderer(generator).render(with_amount(state, "smile", a).render_args()).rgb
        for a in (-3.0, 0.0, 3.0)
    ]
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (32, 32)
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB"), np.float64))
    # GIF quantises to a palette: each frame must be close to its own render and closest to it.
    for index, frame in enumerate((frames[0], frames[2], frames[4])):
        errors = [np.abs(frame - reference).mean() for reference in expected]
        assert errors[index] < 10.0 and int(np.argmin(errors)) == index, errors
    assert [p.step for p in progress] == [1, 2, 3, 4, 5]


def test_mp4_interpolation_is_h264(setup, tmp_path) -> None:
    import av

    generator, state = setup
    end = with_amount(state.replace(seed=9), "smile", 2.0)
    path = export_video(
        generator,
        InterpolationSpec(state, end),
        tmp_path / "blend.mp4",
        VideoConfig(frames=6, size=64, ping_pong=True),
    )
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        # H.264 in yuv420p: what browsers and phones play (MPEG-4 Part 2 'mp4v' they refuse).
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        frames = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(stream)]
    assert len(frames) == 10 and frames[0].shape == (64, 64, 3)  # 6 there, 4 back
    start = np.asarray(
        Image.fromarray(Renderer(generator).render(state.render_args()).rgb).resize(
            (64, 64), Image.Resampling.LANCZOS
        ),
        np.float64,
    )
    assert np.abs(frames[0] - start).mean() < 12.0  # lossy, 4:2:0 chroma on noisy pictures
    assert np.abs(frames[0] - frames[5]).mean() > np.abs(frames[0] - frames[-1]).mean()


def test_cancel_and_bad_extension_leave_nothing(setup, tmp_path) -> None:
    generator, state = setup
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        export_video(
            generator,
            SweepSpec(state, "attribute", "smile", 0, 1),
            tmp_path / "v.mp4",
            VideoConfig(frames=10),
            should_stop=lambda: next(calls) >= 3,
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"use \.mp4 or \.gif"):
        export_video(generator, InterpolationSpec(state, state), tmp_path / "v.avi")
    with pytest.raises(ValueError, match="no attribute called 'frown'"):
        SweepSpec(state, "attribute", "frown", 0, 1)
    rgb = np.zeros((8, 8, 3), np.uint8)
    assert export_image(rgb, tmp_path / "x.png").is_file()


def test_odd_sized_mp4_is_padded_to_even_sides(setup, tmp_path) -> None:
    import av

    generator, state = setup
    path = export_video(
        generator, SweepSpec(state, "attribute", "smile", 0, 1), tmp_path / "odd.mp4",
        VideoConfig(frames=3, size=33),
    )  # fmt: skip
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (34, 34)
