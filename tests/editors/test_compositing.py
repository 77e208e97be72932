"""Compositing an edited aligned face back into the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editors.alignment import align_face, center_crop
from editors.images import load_image
from editors.compositing import composite, face_mask, face_to_source
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
