"""Photo loading and FFHQ alignment, checked against a naive re-implementation of the recipe."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editors.alignment import (
    AlignedFace,
    align_face,
    align_landmarks,
    center_crop,
    ffhq_quad,
    gaussian_blur,
)
from editors.alignment_batch import AlignmentReport, align_files
from editors.errors import AlignmentError, ImageLoadError, NoFaceFound
from editors.face_detection import detect_faces
from editors.images import is_image_file, load_image
from models.jobs import Cancelled
from tests.conftest import shared_path
from tests.helpers.images import png_with_declared_size

PORTRAITS = ("data", "portraits", "images")


# -- naive references -------------------------------------------------------------------------


def naive_template(landmarks: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """Where the FFHQ recipe puts source ``points`` in a ``size`` crop (pixel centres).

    Written from the recipe text with complex numbers, independently of the module.
    """
    lm = landmarks[:, 0] + 1j * landmarks[:, 1]
    eye_l, eye_r = lm[36:42].mean(), lm[42:48].mean()
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = (lm[48] + lm[54]) / 2 - eye_avg
    x = eye_to_eye - 1j * eye_to_mouth  # eye_to_eye minus the eye-mouth vector turned by +90°
    x = x / abs(x) * max(2.0 * abs(eye_to_eye), 1.8 * abs(eye_to_mouth))
    y = 1j * x
    center = eye_avg + 0.1 * eye_to_mouth
    p = points[:, 0] + 1j * points[:, 1] - center
    # Coordinates along x and y, from -1..1 across the square, then to pixel centres.
    u = (p * np.conj(x)).real / abs(x) ** 2
    v = (p * np.conj(y)).real / abs(y) ** 2
    return np.stack([(u + 1) / 2 * size - 0.5, (v + 1) / 2 * size - 0.5], axis=1)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """[2, 2]: image-left and image-right eye centres."""
    return np.stack([landmarks[36:42].mean(0), landmarks[42:48].mean(0)])


def bilinear_sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Sample [H, W, C] at float pixel-centre points [N, 2] (edge-clamped)."""
    h, w = image.shape[:2]
    x = np.clip(points[:, 0], 0, w - 1)
    y = np.clip(points[:, 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


# -- the recipe's geometry --------------------------------------------------------------------


def test_ffhq_quad_matches_naive_recipe() -> None:
    rng = np.random.default_rng(3)
    landmarks = rng.uniform(100, 300, size=(68, 2))
    quad, qsize = ffhq_quad(landmarks)
    # The quad corners are where the naive template puts the crop's outer corners.
    corners = naive_template(landmarks, quad, 512)
    np.testing.assert_allclose(
        corners, [[-0.5, -0.5], [-0.5, 511.5], [511.5, 511.5], [511.5, -0.5]], atol=1e-9
    )
    np.testing.assert_allclose(qsize, np.linalg.norm(quad[3] - quad[0]), rtol=1e-12)


def test_gaussian_blur_equals_scipy() -> None:
    from scipy.ndimage import gaussian_filter

    pixels = np.random.default_rng(0).uniform(0, 255, size=(70, 50, 3)).astype(np.float32)
    for sigma in (0.6, 2.5, 9.0):
        np.testing.assert_allclose(
            gaussian_blur(pixels, sigma), gaussian_filter(pixels, [sigma, sigma, 0]), atol=1e-3
        )


# -- real photos ------------------------------------------------------------------------------


@pytest.mark.needs_shared
def test_portraits_put_eyes_on_the_ffhq_template() -> None:
    """Landmarks found again on the aligned output sit where the recipe says (2 px of 256)."""
    size = 256
    folder = shared_path(*PORTRAITS)
    errors = []
    for path in sorted(folder.iterdir()):
        photo = load_image(path)
        aligned = align_face(photo, size)
        assert aligned.image.size == (size, size) and aligned.image.mode == "RGB"
        expected = naive_template(aligned.landmarks, eye_centres(aligned.landmarks), size)
        again = detect_faces(aligned.image)
        assert again, f"no face found again in the aligned {path.name}"
        errors.append(np.linalg.norm(eye_centres(again[0].landmarks) - expected, axis=1))
    errors = np.concatenate(errors)
    assert len(errors) == 24
    assert errors.max() < 2.0, errors
    assert errors.mean() < 0.8, errors


@pytest.mark.needs_shared
def test_small_dataset_faces_put_eyes_on_the_template() -> None:
    """CelebA (89x109) and UTKFace (200x200) photos: eyes within 6 px of 256, 2.5 px on average."""
    size = 256
    paths = sorted(shared_path("data", "celeba_10k", "images").glob("00000*.jpg"))[:6]
    paths += sorted(shared_path("data", "utkface", "images").glob("*.jpg"))[:6]
    errors, aligned_count = [], 0
    for path in paths:
        faces = detect_faces(path)
        if not faces:
            continue  # a few CelebA images have no detectable face, as the data README says
        aligned = align_landmarks(path, faces[0].landmarks, size)
        again = detect_faces(aligned.image)
        if not again:
            continue
        aligned_count += 1
        expected = naive_template(faces[0].landmarks, eye_centres(faces[0].landmarks), size)
        errors.append(np.linalg.norm(eye_centres(again[0].landmarks) - expected, axis=1))
    assert aligned_count >= 9
    errors = np.concatenate(errors)
    assert errors.max() < 6.0, errors
    assert errors.mean() < 2.5, errors


@pytest.mark.needs_shared
def test_ffhq_crop_aligns_to_itself() -> None:
    """An FFHQ image is already aligned: aligning it again changes it very little."""
    path = shared_path(*PORTRAITS, "ffhq_00002_256.png")
    original = np.asarray(load_image(path))
    aligned = align_face(path, 256)
    assert psnr(np.asarray(aligned.image)[16:-16, 16:-16], original[16:-16, 16:-16]) > 22.0
    # The affine is close to identity: scale within 3 %, shift within 3 px.
    linear = aligned.to_source[:, :2]
    assert abs(abs(np.linalg.det(linear)) ** 0.5 - 1) < 0.03
    assert np.abs(aligned.aligned_to_source(np.array([[127.5, 127.5]])) - 127.5).max() < 3


@pytest.mark.needs_shared
def test_to_source_maps_aligned_pixels_onto_the_photo() -> None:
    """Sampling the photo at ``aligned_to_source`` of every pixel reproduces the aligned image."""
    path = shared_path(*PORTRAITS, "pd_obama_official_portrait.jpg")
    photo = np.asarray(load_image(path), np.float64)
    faces = detect_faces(path)
    # Size chosen so one aligned pixel is about one photo pixel (no aliasing in point sampling).
    _, qsize = ffhq_quad(faces[0].landmarks)
    size = int(qsize)
    aligned = align_landmarks(path, faces[0].landmarks, size)
    ys, xs = np.mgrid[0:size, 0:size]
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    inside = aligned.aligned_to_source(centres)
    keep = (
        (inside[:, 0] > 1)
        & (inside[:, 1] > 1)
        & (inside[:, 0] < photo.shape[1] - 2)
        & (inside[:, 1] < photo.shape[0] - 2)
    )
    assert keep.mean() > 0.5
    sampled = bilinear_sample(photo, inside[keep])
    got = np.asarray(aligned.image, np.float64).reshape(-1, 3)[keep]
    assert psnr(sampled, got) > 30.0
    # A half-pixel error in the convention would cost several dB: check it is not there.
    shifted = bilinear_sample(photo, inside[keep] + 0.5)
    assert psnr(sampled, got) > psnr(shifted, got) + 3.0


@pytest.mark.needs_shared
def test_alignment_is_invariant_to_rotating_and_scaling_the_photo() -> None:
    """Rotate 17° and scale 0.6 with a known transform: the aligned crops agree."""
    photo = load_image(shared_path(*PORTRAITS, "pd_obama_official_portrait.jpg"))
    angle, scale = math.radians(17.0), 0.6
    forward = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    shift = np.array([250.0, 80.0])
    inverse = np.linalg.inv(forward)
    inverse_shift = -inverse @ shift
    moved = photo.transform(
        (900, 900),
        Image.Transform.AFFINE,
        (*inverse[0], inverse_shift[0], *inverse[1], inverse_shift[1]),
        Image.Resampling.BICUBIC,
        fillcolor=(128, 128, 128),
    )
    reference = align_face(photo, 128)
    # Same landmarks moved exactly (pixel centres: +0.5 into continuous coordinates and back).
    moved_landmarks = (reference.landmarks + 0.5) @ forward.T + shift - 0.5
    exact = align_landmarks(moved, moved_landmarks, 128)
    assert psnr(np.asarray(exact.image), np.asarray(reference.image)) > 38.0
    # End to end with re-detection: landmark noise only.
    detected = align_face(moved, 128)
    assert np.linalg.norm(detected.landmarks - moved_landmarks, axis=1).mean() < 2.5
    assert psnr(np.asarray(detected.image), np.asarray(reference.image)) > 23.0


@pytest.mark.needs_shared
def test_several_faces_largest_first_and_pickable() -> None:
    path = shared_path(*PORTRAITS, "pd_astronaut_eileen_collins_512.png")
    faces = detect_faces(path)
    assert len(faces) == 2
    assert faces[0].rect.area >= faces[1].rect.area
    first = align_face(path, 64)
    second = align_face(path, 64, face_index=1)
    assert first.faces_found == 2
    np.testing.assert_allclose(first.landmarks, faces[0].landmarks)
    np.testing.assert_allclose(second.landmarks, faces[1].landmarks)
    with pytest.raises(AlignmentError, match="face 5 asked for, but 2 found"):
        align_face(path, 64, face_index=5)


@pytest.mark.needs_shared
def test_huge_photo_is_detected_downscaled_with_full_resolution_landmarks() -> None:
    photo = load_image(shared_path(*PORTRAITS, "pd_biden_official_portrait.jpg"))  # 1200 px
    big = photo.resize((3000, 3000), Image.Resampling.BICUBIC)
    small_faces = detect_faces(photo)
    big_faces = detect_faces(big)
    assert len(big_faces) == 1
    expected = (small_faces[0].landmarks + 0.5) * 2.5 - 0.5
    # The detector box differs a little between scales, so do the landmarks: within 1 % of the face.
    face_width = big_faces[0].rect.width
    assert face_width > 800
    assert np.linalg.norm(big_faces[0].landmarks - expected, axis=1).mean() < 0.01 * face_width


# -- loading ----------------------------------------------------------------------------------


def _pattern(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    return Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), np.uint8)), "RGB")


def test_modes_become_rgb(tmp_path: Path) -> None:
    rgb = _pattern()
    values = np.asarray(rgb)
    gray = np.asarray(rgb.convert("L"))

    rgb.convert("L").save(tmp_path / "l.png")
    np.testing.assert_array_equal(
        np.asarray(load_image(tmp_path / "l.png")), np.repeat(gray[..., None], 3, 2)
    )

    rgba = rgb.convert("RGBA")
    alpha = np.full(values.shape[:2], 255, np.uint8)
    alpha[:, :16] = 0  # transparent strip becomes white
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(tmp_path / "rgba.png")
    loaded = np.asarray(load_image(tmp_path / "rgba.png"))
    assert (loaded[:, :16] == 255).all()
    np.testing.assert_array_equal(loaded[:, 16:], values[:, 16:])

    la = rgb.convert("LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "la.png"))[..., 0], gray)

    palette = rgb.quantize(16)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(
        np.asarray(load_image(tmp_path / "p.png")), np.asarray(palette.convert("RGB"))
    )

    cmyk = rgb.convert("CMYK")
    cmyk.save(tmp_path / "cmyk.jpg", quality=95)
    loaded = np.asarray(load_image(tmp_path / "cmyk.jpg"), np.float64)
    assert loaded.shape == values.shape and np.abs(loaded - values).mean() < 8

    sixteen = (gray.astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "i16.png")
    with Image.open(tmp_path / "i16.png") as check:
        assert check.mode.startswith("I")
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "i16.png"))[..., 1], gray)


@pytest.mark.parametrize(
    ("tag", "stored_as"), [(6, Image.Transpose.ROTATE_90), (3, Image.Transpose.ROTATE_180)]
)
def test_exif_orientation_is_applied(tmp_path: Path, tag: int, stored_as: Image.Transpose) -> None:
    upright = _pattern(64, 48)
    stored = upright.transpose(stored_as)  # what a camera writes; the tag says how to undo it
    exif = Image.Exif()
    exif[0x0112] = tag
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=98, subsampling=0)
    loaded = np.asarray(load_image(tmp_path / "rotated.jpg"), np.float64)
    assert loaded.shape == (48, 64, 3)
    error = np.abs(loaded - np.asarray(upright, np.float64)).mean()
    wrong = np.abs(
        loaded - np.asarray(upright.transpose(Image.Transpose.ROTATE_180), np.float64)
    ).mean()
    assert error < 3 and wrong > 30


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), (200, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 200))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    loaded = np.asarray(load_image(tmp_path / "anim.gif"))
    assert loaded[..., 0].mean() > 150 and loaded[..., 2].mean() < 50


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not an image\n" * 10, "not an image"),
        ("truncated-jpeg", "corrupt or truncated"),
        ("one-pixel", "too small"),
        ("bomb", "decompression bomb"),
        ("moderate-bomb", "decompression bomb"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "photo.jpg"
    if content == "truncated-jpeg":
        buffer = io.BytesIO()
        _pattern(256, 256).save(buffer, format="JPEG", quality=95)
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif content == "one-pixel":
        Image.new("RGB", (1, 1)).save(path, format="PNG")
    elif content == "bomb":
        path.write_bytes(png_with_declared_size(30000, 30000))
    elif content == "moderate-bomb":  # over our limit, under Pillow's own error threshold
        path.write_bytes(png_with_declared_size(13000, 12000))
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(ImageLoadError):
        align_face(path, 64)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="not a file"):
        load_image(tmp_path)


def test_is_image_file(tmp_path: Path) -> None:
    _pattern().save(tmp_path / "a.png")
    (tmp_path / "b.pt").write_bytes(b"PK\x03\x04 not an image")
    (tmp_path / "bomb.png").write_bytes(png_with_declared_size(30000, 30000))
    assert is_image_file(tmp_path / "a.png")
    assert not is_image_file(tmp_path / "b.pt")
    assert is_image_file(tmp_path / "bomb.png")


# -- no face, centre crop ---------------------------------------------------------------------


def test_no_face_raises_and_center_crop_maps_back(tmp_path: Path) -> None:
    _pattern(96, 64).save(tmp_path / "blocks.png")
    with pytest.raises(NoFaceFound, match="no face found"):
        align_face(tmp_path / "blocks.png", 32)
    crop = center_crop(tmp_path / "blocks.png", 32)
    assert isinstance(crop, AlignedFace) and crop.method == "center-crop" and crop.landmarks is None
    # The crop is the central 64x64 square: aligned corners map onto its pixel edges.
    np.testing.assert_allclose(
        crop.aligned_to_source(np.array([[-0.5, -0.5], [31.5, 31.5]])),
        [[15.5, -0.5], [79.5, 63.5]],
        atol=1e-9,
    )
    np.testing.assert_allclose(
        crop.source_to_aligned(crop.aligned_to_source(np.array([[3.0, 7.0]]))),
        [[3.0, 7.0]],
        atol=1e-9,
    )
    expected = load_image(tmp_path / "blocks.png").crop((16, 0, 80, 64))
    expected = np.asarray(expected.resize((32, 32), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(np.asarray(crop.image), expected)


# -- data sets --------------------------------------------------------------------------------


@pytest.mark.needs_shared
def test_align_files_counts_skips_and_resumes(tmp_path: Path) -> None:
    folder = shared_path(*PORTRAITS)
    photos = [folder / "ffhq_00001_256.png", folder / "pd_obama_official_portrait.jpg"]
    _pattern(96, 64).save(tmp_path / "noface.png")
    (tmp_path / "notes.jpg").write_text("hello")
    inputs = [*photos, tmp_path / "noface.png", tmp_path / "notes.jpg"]
    out = tmp_path / "aligned"
    steps = []
    first = align_files(inputs, out, 64, on_step=steps.append)
    assert isinstance(first, AlignmentReport)
    assert [p.name for p in first.written] == [
        "ffhq_00001_256.png",
        "pd_obama_official_portrait.png",
    ]
    assert {p.name for p, _ in first.failed} == {"noface.png", "notes.jpg"}
    assert [s.step for s in steps] == [1, 2, 3, 4] and steps[-1].metrics["failed"] == 2
    assert load_image(out / "pd_obama_official_portrait.png").size == (64, 64)
    # The written file is the same crop align_face makes.
    direct = np.asarray(align_face(photos[1], 64).image)
    np.testing.assert_array_equal(
        np.asarray(load_image(out / "pd_obama_official_portrait.png")), direct
    )

    again = align_files(inputs, out, 64)
    assert again.written == () and len(again.skipped) == 2 and len(again.failed) == 2


@pytest.mark.needs_shared
def test_align_files_cancels_with_partial_report(tmp_path: Path) -> None:
    folder = shared_path(*PORTRAITS)
    inputs = [folder / "ffhq_00001_256.png", folder / "ffhq_00002_256.png"]
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled) as info:
        align_files(inputs, tmp_path / "out", 32, should_stop=should_stop)
    partial = info.value.partial
    assert isinstance(partial, AlignmentReport) and len(partial.written) == 1
    assert not (tmp_path / "out" / "ffhq_00002_256.png").exists()


def test_align_files_rejects_duplicate_stems(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"would both be written as a\.png"):
        align_files([tmp_path / "x" / "a.jpg", tmp_path / "y" / "a.png"], tmp_path / "out", 32)
