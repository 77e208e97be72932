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


def test_mp4_interpolation(setup, tmp_path) -> None:
    import cv2

    generator, state = setup
    end = with_amount(state.replace(seed=9), "smile", 2.0)
    path = export_video(
        generator,
        InterpolationSpec(state, end),
        tmp_path / "blend.mp4",
        VideoConfig(frames=6, size=64, ping_pong=True),
    )
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float64))
    capture.release()
    assert len(frames) == 10 and frames[0].shape == (64, 64, 3)  # 6 there, 4 back
    start = np.asarray(
        Image.fromarray(Renderer(generator).render(state.render_args()).rgb).resize(
            (64, 64), Image.Resampling.LANCZOS
        ),
        np.float64,
    )
    assert np.abs(frames[0] - start).mean() < 12.0  # lossy codec
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
