"""Face chips, descriptors and the identity-drift meter against dlib itself."""

from __future__ import annotations

import collections
import csv
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image

from editors.identity import (
    _MEAN_FACE_5,
    _MEAN_FACE_X,
    _MEAN_FACE_Y,
    IdentityMeter,
    IdentityStep,
    chip_transform,
    detect_landmarks,
    face_chip_details,
    face_descriptor,
    face_descriptors,
    identity_distance,
    preserve_identity_step,
    scale_transform,
    similarity_transform,
)
from models.face_identity import chip_pyramid_plan, cut_chips, model_path
from models.jobs import Cancelled, Progress
from tests.conftest import shared_path

dlib = pytest.importorskip("dlib")


def synthetic_face(
    rng: np.random.Generator, count: int, centre: tuple[float, float], scale: float, angle: float
) -> np.ndarray:
    """Integer landmarks (dlib stores parts as ints): a face-shaped template, rotated, scaled,
    moved and jittered. The template only has to look like a face so the fitted chip has the
    asked size; dlib checks the fit itself."""
    if count == 5:
        unit = np.array(_MEAN_FACE_5)
    else:
        unit = rng.uniform(0, 1, (68, 2))  # jaw and brows: dlib ignores them
        unit[17:] = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], axis=1)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = (unit - 0.5) @ rot.T * scale + np.array(centre) + rng.normal(0, 1.5, (count, 2))
    return np.round(points)


def as_dlib(points: np.ndarray):
    left, top = points.min(axis=0).astype(int)
    right, bottom = points.max(axis=0).astype(int)
    return dlib.full_object_detection(
        dlib.rectangle(left, top, right, bottom), [dlib.point(int(x), int(y)) for x, y in points]
    )


# seed, (image H, W), landmark count, centre, scale, angle: small, pyramid 1 and 2, off the
# edge, 5 points upside down-ish.
CASES = [
    (0, (120, 100), 68, (50, 60), 40, 0.3),
    (1, (700, 600), 68, (300, 350), 330, -0.2),
    (2, (1000, 1000), 5, (500, 480), 640, 0.05),
    (3, (300, 260), 68, (25, 280), 120, 0.8),
    (4, (200, 200), 5, (100, 100), 60, -1.2),
]


@pytest.mark.parametrize(("seed", "size", "count", "centre", "scale", "angle"), CASES)
def test_chip_details_and_chip_match_dlib(seed, size, count, centre, scale, angle) -> None:
    rng = np.random.default_rng(seed)
    points = synthetic_face(rng, count, centre, scale, angle)
    det = as_dlib(points)
    for chip_size, padding in ((150, 0.25), (100, 0.4)):
        expected = dlib.get_face_chip_details(det, chip_size, padding)
        ours = face_chip_details(points, chip_size, padding)
        r = expected.rect
        np.testing.assert_allclose(
            ours.rect, (r.left(), r.top(), r.right(), r.bottom()), rtol=0, atol=1e-8
        )
        assert ours.angle == pytest.approx(expected.angle, abs=1e-12)
        assert (ours.rows, ours.cols) == (expected.rows, expected.cols)

    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    chip = dlib.get_face_chip(image, det, size=150, padding=0.25)
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    ours = cut_chips(pixels, chip_transform(points), quantize=True)[0]
    np.testing.assert_array_equal(ours.permute(1, 2, 0).numpy(), chip)


def test_cases_cover_pyramid_levels_and_borders() -> None:
    levels = set()
    for seed, size, count, centre, scale, angle in CASES:
        rng = np.random.default_rng(seed)
        transform = chip_transform(synthetic_face(rng, count, centre, scale, angle))
        levels.add(chip_pyramid_plan(transform, size)[1])
    assert levels == {0, 1, 2}
    # The fourth case's chip hangs over the left edge: dlib fills it with zeros.
    seed, size, count, centre, scale, angle = CASES[3]
    rng = np.random.default_rng(seed)
    image = torch.full((1, 3, *size), 200.0)
    chip = cut_chips(image, chip_transform(synthetic_face(rng, count, centre, scale, angle)))
    assert (chip == 0).any() and (chip == 200).any()


def test_similarity_transform_recovers_a_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(10, 2))
    m_true = 2.5 * np.array([[math.cos(0.7), -math.sin(0.7)], [math.sin(0.7), math.cos(0.7)]])
    dst = src @ m_true.T + np.array([3.0, -4.0])
    m, t = similarity_transform(src, dst)
    np.testing.assert_allclose(m, m_true, atol=1e-12)
    np.testing.assert_allclose(t, [3.0, -4.0], atol=1e-12)


def test_landmark_count_is_checked() -> None:
    with pytest.raises(ValueError, match=r"\[68, 2\] or \[5, 2\]"):
        face_chip_details(np.zeros((10, 2)))


def test_scale_transform_keeps_pixel_centres() -> None:
    rng = np.random.default_rng(1)
    transform = chip_transform(synthetic_face(rng, 5, (50, 40), 40, 0.2))
    scaled = scale_transform(transform, (100, 80), (200, 160))
    chip_point = np.array([17.0, 90.0, 1.0])
    # Pixel centre x in the small image is at 2x + 0.5 in the doubled one.
    np.testing.assert_allclose(scaled @ chip_point, 2 * (transform @ chip_point) + 0.5)


# ---------------------------------------------------------------------------------------------
# Real faces (../shared).


def load(name: str) -> np.ndarray:
    return np.array(Image.open(shared_path("data", "portraits", "images", name)).convert("RGB"))


@pytest.fixture(scope="module")
def dlib_pipeline():
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))
    recognizer = dlib.face_recognition_model_v1(str(model_path()))
    return detector, predictor, recognizer


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", ["ffhq_00002_256.png", "pd_biden_official_portrait.jpg"])
def test_face_descriptor_matches_dlib(name: str, dlib_pipeline) -> None:
    detector, predictor, recognizer = dlib_pipeline
    image = load(name)
    shape = predictor(image, detector(image, 1 if min(image.shape[:2]) < 400 else 0)[0])
    expected = np.array(recognizer.compute_face_descriptor(image, shape))
    ours = face_descriptor(image)
    assert ours is not None and ours.shape == (128,)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)
    landmarks = detect_landmarks(image)
    assert landmarks is not None
    np.testing.assert_array_equal(landmarks, [[p.x, p.y] for p in shape.parts()])


def test_face_descriptor_none_without_face() -> None:
    assert face_descriptor(np.full((120, 120, 3), 128, np.uint8)) is None
    with pytest.raises(ValueError, match="no face found"):
        IdentityMeter(np.full((120, 120, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        face_descriptor(np.zeros((64, 64), np.uint8))


@pytest.mark.needs_shared
def test_same_and_different_people_portraits() -> None:
    biden, biden_standing, obama = face_descriptors(
        [
            load("pd_biden_official_portrait.jpg"),
            load("pd_biden_standing.jpg"),
            load("pd_obama_official_portrait.jpg"),
        ]
    )
    assert identity_distance(biden, biden_standing) < 0.6
    assert identity_distance(biden, obama) > 0.6
    assert identity_distance(biden_standing, obama) > 0.6


@pytest.mark.needs_shared
def test_same_and_different_people_celeba() -> None:
    root = shared_path("data", "celeba_10k")
    by_person = collections.defaultdict(list)
    with open(root / "identity.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            by_person[row["identity"]].append(row["filename"])
    # The first four people (by file name) with at least three images: 12 faces.
    people = sorted((files for files in by_person.values() if len(files) >= 3), key=min)[:4]
    names = [(person, name) for person, files in enumerate(people) for name in files[:3]]
    images = [np.array(Image.open(root / "images" / name).convert("RGB")) for _, name in names]
    descriptors = face_descriptors(images)
    assert all(d is not None for d in descriptors)
    faces = [(person, d) for (person, _), d in zip(names, descriptors, strict=True)]
    same = [
        identity_distance(a, b) for (p, a), (q, b) in itertools.combinations(faces, 2) if p == q
    ]
    different = [
        identity_distance(a, b) for (p, a), (q, b) in itertools.combinations(faces, 2) if p != q
    ]
    # 89x109 CelebA crops are small and the sets nearly touch; medians sit on either side.
    assert np.median(same) < 0.6 < np.median(different)
    assert np.mean(same) + 0.2 < np.mean(different)


@pytest.mark.needs_shared
def test_identity_meter() -> None:
    reference = load("ffhq_00000_256.png")
    other = load("ffhq_00001_256.png")
    meter = IdentityMeter(reference)
    assert meter.distance(reference) < 1e-5
    # Another resolution of the same picture reuses the (rescaled) reference transform.
    half = np.array(Image.fromarray(reference).resize((128, 128), Image.BILINEAR))
    assert meter.distance(half) < 0.25
    assert meter.distance(other) > 0.6
    blends = [
        meter.distance(np.round(reference * (1 - a) + other * a).astype(np.uint8))
        for a in (0.0, 0.5, 1.0)
    ]
    assert blends[0] < blends[1] < blends[2]
    # An edit the detector cannot read still gets a distance.
    covered = reference.copy()
    covered[100:200] = 0
    assert detect_landmarks(covered) is None
    assert 0.0 < meter.distance(covered) < 2.0

    pixels = torch.from_numpy(reference).permute(2, 0, 1)[None].float().requires_grad_(True)
    distance = meter.distances(pixels)
    assert distance.shape == (1,) and float(distance.detach()) < 0.02  # unrounded chip: a hair off
    distance.sum().backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# preserve_identity_step (pure).


def linear_drift(base: float, rate: float):
    calls: list[float] = []

    def distance_for(amount: float) -> float:
        calls.append(amount)
        return base + rate * abs(amount)

    return distance_for, calls


def test_preserve_identity_step_keeps_a_safe_step() -> None:
    distance_for, calls = linear_drift(0.1, 0.25)
    step = preserve_identity_step(distance_for, 1.5, 0.6)
    assert step == IdentityStep(1.5, pytest.approx(0.475), 1, shrunk=False)
    assert calls == [1.5]


@pytest.mark.parametrize("amount", [4.0, -4.0])
def test_preserve_identity_step_bisects(amount: float) -> None:
    distance_for, calls = linear_drift(0.1, 0.25)
    progress: list[Progress] = []
    step = preserve_identity_step(distance_for, amount, 0.55, iterations=8, on_step=progress.append)
    limit = 1.8 * math.copysign(1, amount)  # 0.1 + 0.25 * 1.8 = 0.55
    assert step.shrunk and step.evaluations == 9 == len(calls)
    assert abs(step.amount) <= 1.8 and abs(step.amount - limit) <= 4.0 / 2**8
    assert math.copysign(1, step.amount) == math.copysign(1, amount)
    assert step.distance == pytest.approx(0.1 + 0.25 * abs(step.amount))
    assert step.distance <= 0.55
    assert len(progress) == 9 and progress[-1].step == progress[-1].total


def test_preserve_identity_step_when_nothing_is_safe() -> None:
    distance_for, calls = linear_drift(0.7, 0.1)
    step = preserve_identity_step(distance_for, 2.0, 0.6, iterations=4)
    assert step == IdentityStep(0.0, pytest.approx(0.7), 6, shrunk=True)
    assert calls[-1] == 0.0


def test_preserve_identity_step_cancels_with_partial() -> None:
    distance_for, calls = linear_drift(0.1, 0.25)
    with pytest.raises(Cancelled) as info:
        preserve_identity_step(distance_for, 4.0, 0.55, should_stop=lambda: len(calls) >= 3)
    assert isinstance(info.value.partial, IdentityStep)
    # Tried 4 (too far), 2 (too far), 1 (fine), then asked to stop.
    assert info.value.partial.amount == pytest.approx(1.0)
