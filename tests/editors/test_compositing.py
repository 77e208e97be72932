"""Compositing an edited aligned face back into the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editors.alignment import align_face, center_crop
from editors.compositing import composite, face_mask, face_to_source
from editors.images import load_image
from tests.conftest import shared_path


def _blocks(width: int = 96, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    return Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), np.uint8)), "RGB")


def test_centre_crop_composite_replaces_the_square_only(tmp_path: Path) -> None:
    photo = _blocks()
    photo.save(tmp_path / "p.png")
    crop = center_crop(tmp_path / "p.png", 32)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    out = np.asarray(composite(tmp_path / "p.png", crop, red, feather=0.1))
    original = np.asarray(photo)
    # Outside the central 64x64 square (x in [16, 80)) nothing changes.
    np.testing.assert_array_equal(out[:, :16], original[:, :16])
    np.testing.assert_array_equal(out[:, 80:], original[:, 80:])
    # Its middle is the face; between, a feathered blend.
    assert (out[24:40, 40:56] == [255, 0, 0]).all()
    edge, before = out[32, 16:24, 0].astype(int), original[32, 16:24, 0].astype(int)
    assert (edge >= before).all() and ((edge > before) & (edge < 255)).any()


def test_face_to_source_matches_alignment_at_any_face_size(tmp_path: Path) -> None:
    _blocks().save(tmp_path / "p.png")
    crop = center_crop(tmp_path / "p.png", 32)
    # The corner of a 16 px face image (outer edge at -0.5) lands on the crop's corner.
    corner = face_to_source(crop, 16) @ np.array([-0.5, -0.5, 1.0])
    np.testing.assert_allclose(corner, crop.quad[0], atol=1e-9)
    far = face_to_source(crop, 16) @ np.array([15.5, 15.5, 1.0])
    np.testing.assert_allclose(far, crop.quad[2], atol=1e-9)


@pytest.mark.needs_shared
def test_unedited_face_composites_back_to_the_photo() -> None:
    path = shared_path("data", "portraits", "images", "pd_obama_official_portrait.jpg")
    photo = np.asarray(load_image(path), np.float64)
    aligned = align_face(path, 256)
    out = np.asarray(composite(path, aligned, aligned.image), np.float64)
    mask = face_mask(aligned, 256)
    assert mask.max() == pytest.approx(1.0, abs=1e-3) and mask.min() == 0.0
    # Inside the face the photo comes back up to resampling blur; outside it is untouched.
    nose = aligned.landmarks[30].astype(int)
    window = (slice(nose[1] - 20, nose[1] + 20), slice(nose[0] - 20, nose[0] + 20))
    mse = np.mean((out[window] - photo[window]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 28
    np.testing.assert_array_equal(out[:40], photo[:40])


@pytest.mark.needs_shared
def test_edited_face_lands_on_the_face() -> None:
    path = shared_path("data", "portraits", "images", "pd_biden_official_portrait.jpg")
    aligned = align_face(path, 64)
    green = np.zeros((64, 64, 3), np.uint8)
    green[..., 1] = 255
    out = np.asarray(composite(path, aligned, green))
    photo = np.asarray(load_image(path))
    nose = aligned.landmarks[30].round().astype(int)
    assert (out[nose[1], nose[0]] == [0, 255, 0]).all()
    chin = aligned.landmarks[8].round().astype(int)
    assert out[chin[1] + 60, chin[0], 1] == photo[chin[1] + 60, chin[0], 1]  # below the chin
    with pytest.raises(ValueError, match="aligned from a 1200x1200 image"):
        composite(Image.new("RGB", (100, 100)), aligned, green)


def test_laplacian_blend_limits_and_seam() -> None:
    from editors.compositing import laplacian_blend

    rng = np.random.default_rng(4)
    back = rng.uniform(0, 255, (64, 80, 3)).astype(np.float32)
    front = rng.uniform(0, 255, (64, 80, 3)).astype(np.float32)
    ones, zeros = np.ones((64, 80), np.float32), np.zeros((64, 80), np.float32)
    np.testing.assert_allclose(laplacian_blend(back, front, ones, 3), front, atol=1e-3)
    np.testing.assert_allclose(laplacian_blend(back, front, zeros, 3), back, atol=1e-3)
    half = np.where(np.arange(80) < 40, 1.0, 0.0).astype(np.float32)[None].repeat(64, 0)
    np.testing.assert_allclose(
        laplacian_blend(back, front, half, 0),
        front * half[..., None] + back * (1 - half[..., None]),
    )
    # Flat images: the pyramid spreads the step over a band as wide as its coarsest level.
    flat = laplacian_blend(np.zeros_like(back), np.full_like(front, 200), half, 3)[32]
    assert flat[0, 0] == pytest.approx(200, abs=1) and flat[-1, 0] == pytest.approx(0, abs=1)
    ramp = flat[30:50, 0]
    assert (np.diff(ramp) <= 1e-3).all() and ((ramp > 5) & (ramp < 195)).sum() >= 4


def test_colour_match_uses_the_reconstruction_so_edits_survive(tmp_path: Path) -> None:
    from editors.compositing import match_colours

    rng = np.random.default_rng(5)
    photo = rng.uniform(40, 200, (32, 32, 3)).astype(np.float32)
    mask = np.ones((32, 32), np.float32)
    reference = photo * 0.8 + 20  # the model draws the photo duller and brighter
    corrected = match_colours(reference, reference, photo, mask)
    np.testing.assert_allclose(corrected, photo, atol=1e-2)
    edited = reference.copy()
    edited[..., 2] += 30  # an edit adds blue
    shifted = match_colours(edited, reference, photo, mask)
    np.testing.assert_allclose(shifted[..., 2] - photo[..., 2], 30 / 0.8, atol=1e-2)

    # Through composite: a colour-shifted unedited face comes back as the photo.
    # A smooth photo, so that resampling blur does not hide the colour error.
    image = _blocks(32, 16).resize((96, 64), Image.Resampling.BICUBIC)
    image.save(tmp_path / "p.png")
    crop = center_crop(tmp_path / "p.png", 32)
    face = np.asarray(crop.image, np.float32)
    dull = np.clip(face * 0.8 + 20, 0, 255).astype(np.uint8)
    matched = np.asarray(composite(tmp_path / "p.png", crop, dull, reference=dull), np.float64)
    plain = np.asarray(composite(tmp_path / "p.png", crop, dull), np.float64)
    original = np.asarray(image, np.float64)
    centre = (slice(20, 44), slice(36, 60))
    assert (
        np.abs(matched[centre] - original[centre]).mean()
        < 0.5 * np.abs(plain[centre] - original[centre]).mean()
    )
