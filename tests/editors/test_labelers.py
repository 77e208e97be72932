"""Labelers: head pose from known projections, landmark measures, classifier and manual tags."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from editors.labelers import (
    FACE_MODEL_POINTS,
    ClassifierLabeler,
    LandmarkLabeler,
    ManualLabeler,
    SampleBatch,
    camera_matrix,
    face_measures,
    head_pose,
    shape_predictor_path,
)
from models.classifier import AttributeClassifier
from tests.conftest import shared_path


def projected_landmarks(yaw: float, pitch: float, roll: float, size=(256, 256)) -> np.ndarray:
    import cv2

    rotation = Rotation.from_euler("ZYX", [roll, yaw, pitch], degrees=True).as_matrix()
    indices = sorted(FACE_MODEL_POINTS)
    model = np.array([FACE_MODEL_POINTS[i] for i in indices], np.float64)
    rvec, _ = cv2.Rodrigues(rotation)
    image_points, _ = cv2.projectPoints(
        model, rvec, np.array([0.0, 0.0, 600.0]), camera_matrix(size), np.zeros(4)
    )
    landmarks = np.zeros((68, 2))
    landmarks[indices] = image_points.reshape(-1, 2)
    return landmarks


@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (-20, 10, 5), (10, -15, -12)])
def test_head_pose_recovers_known_angles(angles) -> None:
    yaw, pitch, roll = head_pose(projected_landmarks(*angles), (256, 256))
    assert (yaw, pitch, roll) == pytest.approx(angles, abs=0.5)


def frontal_face() -> np.ndarray:
    """A hand-made 68-point set: eyes at y=100, mouth at y=160 (only the points measures use)."""
    points = np.zeros((68, 2))
    for start, cx in ((36, 80.0), (42, 140.0)):
        # outer/inner corners and lids (open eye: lids 6 px apart)
        points[start : start + 6] = [
            [cx - 15, 100],
            [cx - 5, 97],
            [cx + 5, 97],
            [cx + 15, 100],
            [cx + 5, 103],
            [cx - 5, 103],
        ]
    points[48], points[54] = [85, 160], [135, 160]
    points[51], points[57] = [110, 152], [110, 168]
    for top, bottom in ((61, 67), (62, 66), (63, 65)):
        points[top], points[bottom] = [110, 159], [110, 161]
    return points


def test_face_measures_are_invariant_to_position_scale_and_tilt() -> None:
    base = face_measures(frontal_face())
    assert base["eye_open"] == pytest.approx(0.2)  # (6 + 6) / (2 * 30)
    assert base["mouth_open"] == pytest.approx(2 / 60)  # eye centres are 60 px apart
    assert base["smile"] == pytest.approx(50 / 60)  # no lift: width only
    angle = math.radians(20)
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = face_measures(frontal_face() @ rotate.T * 2.5 + [40, -7])
    for key in base:
        assert moved[key] == pytest.approx(base[key], abs=1e-9)


def test_face_measures_follow_the_face() -> None:
    smiling = frontal_face()
    smiling[[48, 54], 1] -= 6  # corners lifted
    open_mouth = frontal_face()
    open_mouth[[61, 62, 63], 1] -= 5
    open_mouth[[65, 66, 67], 1] += 5
    closed_eyes = frontal_face()
    closed_eyes[[37, 38, 43, 44], 1] += 2.5
    closed_eyes[[40, 41, 46, 47], 1] -= 2.5
    base = face_measures(frontal_face())
    assert face_measures(smiling)["smile"] == pytest.approx(base["smile"] + 6 / 60)
    assert face_measures(open_mouth)["mouth_open"] == pytest.approx(12 / 60)
    assert face_measures(closed_eyes)["eye_open"] == pytest.approx(1 / 30)


def test_landmark_labeler_no_face_in_noise() -> None:
    labeler = LandmarkLabeler()
    noise = np.random.default_rng(0).integers(0, 255, size=(2, 32, 32, 3), dtype=np.uint8)
    images = torch.from_numpy(noise).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    labels = labeler.label(SampleBatch((0, 1), np.zeros((2, 4), np.float32), images))
    assert labels.shape == (2, 7)
    assert np.isnan(labels[:, :6]).all() and (labels[:, 6] == 0).all()
    assert shape_predictor_path().name == "shape_predictor_68_face_landmarks.dat"


def test_landmark_labeler_on_a_real_face() -> None:
    from PIL import Image

    folder = shared_path("data", "celeba_10k", "images")
    image = np.asarray(Image.open(sorted(folder.iterdir())[0]).convert("RGB"))
    labels = LandmarkLabeler().label_rgb(image)
    assert labels[6] == 1.0  # CelebA images are aligned, frontal-ish faces
    yaw, _pitch, roll = labels[:3]
    assert abs(yaw) < 45 and abs(roll) < 20
    assert 0.0 < labels[5] < 0.6  # eye aspect ratio of an open eye is about 0.2-0.35


def test_classifier_labeler_thresholds_with_margin() -> None:
    torch.manual_seed(0)
    classifier = AttributeClassifier(
        ["Smiling", "age", "Eyeglasses"], [True, False, True], input_size=16, width=4, num_stages=2
    ).eval()
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        classifier.head.bias.copy_(torch.tensor([0.0, 30.0, 0.0]))
        predictions = classifier.predict(images).numpy()
    labeler = ClassifierLabeler(classifier, ["age", "Smiling"], margin=0.0005)
    labels = labeler.label(SampleBatch(tuple(range(6)), np.zeros((6, 2), np.float32), images))
    assert labeler.binary == (False, True)
    np.testing.assert_allclose(labels[:, 0], predictions[:, 1], rtol=1e-5)
    p = predictions[:, 0]
    expected = np.where(p >= 0.5005, 1.0, np.where(p <= 0.4995, 0.0, np.nan))
    np.testing.assert_array_equal(labels[:, 1], expected)
    with pytest.raises(ValueError, match="does not predict Beard"):
        ClassifierLabeler(classifier, ["Beard"])


def test_manual_labeler_uses_seeds_only() -> None:
    labeler = ManualLabeler(" glasses ", {3: True, 5: False})
    assert (
        labeler.attributes == ("glasses",) and not labeler.needs_images and labeler.seeds == (3, 5)
    )
    labels = labeler.label(SampleBatch((5, 4, 3), np.zeros((3, 2), np.float32)))
    np.testing.assert_array_equal(labels[:, 0], [0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="name the attribute"):
        ManualLabeler("  ", {})
