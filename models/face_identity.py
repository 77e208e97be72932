"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a torch module.

Reproduces ``dlib.face_recognition_model_v1(path).compute_face_descriptor(chip)`` (dlib 20,
``examples/dnn_face_recognition_ex.cpp``): a 29-layer ResNet over 150x150 RGB face chips giving
128-D descriptors; two photos of one person are usually less than 0.6 apart. Unlike dlib, it is
differentiable, batched, and runs on any torch device. The weights are read from the
``face-recognition-models`` pip package (never imported: its ``__init__`` needs ``pkg_resources``).

Also :func:`cut_chips`, a differentiable version of dlib's chip extraction
(``extract_image_chips``): bilinear sampling plus dlib's 5x5 image pyramid when a face is much
larger than the chip.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from models.dlib_dnn import (
    AddPrev,
    Affine,
    Conv,
    DlibNetwork,
    Fc,
    InputRGB,
    Pool,
    Relu,
    Skip,
    Tag,
    read_dlib_network,
)

PACKAGE = "face_recognition_models"
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150  # the network's fixed input size
CHIP_PADDING = 0.25  # the padding dlib's descriptors expect from get_face_chip
SAME_PERSON_DISTANCE = 0.6  # dlib's threshold: below it, two descriptors are one person


def model_path(filename: str = MODEL_FILE) -> Path:
    """Path of a model file shipped by the ``face-recognition-models`` package.

    Args:
        filename: a file in the package's ``models/`` folder (e.g.
            ``shape_predictor_68_face_landmarks.dat``).

    Raises:
        FileNotFoundError: the package is not installed, or lacks the file.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the '{PACKAGE.replace('_', '-')}' package is not installed; it provides {filename} "
            f"(pip install face-recognition-models)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found in the installed '{PACKAGE}' package")
    return path


# ---------------------------------------------------------------------------------------------
# The network's C++ type, spelled as a layout (outermost first) for models.dlib_dnn.


def _block() -> list[str]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return ["affine", "con", "relu", "affine", "con"]


def _ares() -> list[str]:
    # relu<add_prev1<block<tag1<SUBNET>>>>
    return ["relu", "add_prev1", *_block(), "tag1"]


def _ares_down() -> list[str]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<stride 2, tag1<SUBNET>>>>>>>>
    return ["relu", "add_prev2", "avg_pool", "skip1", "tag2", *_block(), "tag1"]


FACE_RESNET_LAYOUT: tuple[str, ...] = (
    "loss_metric",
    "fc_no_bias",
    "avg_pool",
    *_ares_down(),  # alevel0: 256
    *_ares(),
    *_ares(),
    *_ares_down(),  # alevel1: 256
    *_ares(),
    *_ares(),
    *_ares_down(),  # alevel2: 128
    *_ares(),
    *_ares(),
    *_ares(),
    *_ares_down(),  # alevel3: 64
    *_ares(),
    *_ares(),
    *_ares(),  # alevel4: 32
    "max_pool",
    "relu",
    "affine",
    "con",
    "input_rgb_image_sized",
)


# ---------------------------------------------------------------------------------------------
# dlib's tensor semantics.


def dlib_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``tt::add(dest, a, b)`` as add_prev uses it: the result has the larger size in every
    dimension, and each input counts as zero where it has no element (extra channels, and rows
    and columns past its bottom/right edge).

    Args:
        a, b: [N, C, H, W] tensors, sizes may differ.
    """
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape, strict=True)]

    def grow(t: torch.Tensor) -> torch.Tensor:
        pad: list[int] = []
        for dim in (3, 2, 1, 0):  # F.pad lists the last dimension first
            pad += [0, shape[dim] - t.shape[dim]]
        return F.pad(t, pad)

    return grow(a) + grow(b)


def dlib_pool(
    x: torch.Tensor,
    kind: str,
    size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> torch.Tensor:
    """dlib's max/avg pooling: output ``1 + (n + 2p - w) // s``; each window is clipped to the
    image, so padding never enters a max and never counts in an average.

    Args:
        x: [N, C, H, W].
        kind: ``"max"`` or ``"avg"``.
        size: window (rows, cols); 0 means the whole input in that dimension.
        stride, padding: (y, x).
    """
    window = (size[0] or x.shape[2], size[1] or x.shape[3])
    pad = (padding[1], padding[1], padding[0], padding[0])
    if kind == "max":
        padded = F.pad(x, pad, value=-math.inf) if any(pad) else x
        return F.max_pool2d(padded, window, stride)
    if kind != "avg":
        raise ValueError(f"unknown pooling kind {kind!r}")
    if not any(pad):
        return F.avg_pool2d(x, window, stride)
    total = F.avg_pool2d(F.pad(x, pad), window, stride, divisor_override=1)
    ones = torch.ones_like(x[:1, :1])
    count = F.avg_pool2d(F.pad(ones, pad), window, stride, divisor_override=1)
    return total / count


# ---------------------------------------------------------------------------------------------
# Layers.


class DlibConv(nn.Conv2d):
    """``con_`` (cross-correlation, symmetric zero padding, optional fused relu)."""

    def __init__(self, record: Conv) -> None:
        out_ch, in_ch, kh, kw = record.weight.shape
        super().__init__(
            in_ch,
            out_ch,
            (kh, kw),
            stride=record.stride,
            padding=record.padding,
            bias=record.bias is not None,
        )
        self.fused_relu = record.relu
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(record.weight))
            if record.bias is not None:
                self.bias.copy_(torch.from_numpy(record.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return F.relu(y) if self.fused_relu else y


class DlibAffine(nn.Module):
    """``affine_``: ``x * gamma + beta`` (batch norm folded into a fixed affine map)."""

    def __init__(self, record: Affine) -> None:
        super().__init__()
        shape = (1, -1, 1, 1) if record.conv_mode else (1, *record.gamma.shape)
        self.gamma = nn.Parameter(torch.from_numpy(record.gamma).reshape(shape))
        self.beta = nn.Parameter(torch.from_numpy(record.beta).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


class DlibPool(nn.Module):
    """``max_pool_``/``avg_pool_`` with dlib's window rules (see :func:`dlib_pool`)."""

    def __init__(self, record: Pool) -> None:
        super().__init__()
        self.record = record

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.record
        return dlib_pool(x, r.kind, r.size, r.stride, r.padding)

    def extra_repr(self) -> str:
        r = self.record
        return f"{r.kind}, size={r.size}, stride={r.stride}, padding={r.padding}"


class DlibFc(nn.Module):
    """``fc_``: flattens [N, C, H, W] in dlib's (C, H, W) order, then ``x @ weight``."""

    def __init__(self, record: Fc) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(record.weight.T.copy()))  # [out, in]
        self.bias = None if record.bias is None else nn.Parameter(torch.from_numpy(record.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight, self.bias)


class DlibTagOp(nn.Module):
    """``tagN`` / ``skipN`` / ``add_prevN``: handled by :class:`FaceIdentity`'s tag table."""

    def __init__(self, op: str, tag: int) -> None:
        super().__init__()
        self.op = op
        self.tag = tag

    def extra_repr(self) -> str:
        return f"{self.op}{self.tag}"


def _module_for(record: object) -> nn.Module:
    if isinstance(record, Conv):
        return DlibConv(record)
    if isinstance(record, Affine):
        return DlibAffine(record)
    if isinstance(record, Relu):
        return nn.ReLU()
    if isinstance(record, Pool):
        return DlibPool(record)
    if isinstance(record, Fc):
        return DlibFc(record)
    if isinstance(record, Tag):
        return DlibTagOp("tag", record.tag)
    if isinstance(record, Skip):
        return DlibTagOp("skip", record.tag)
    if isinstance(record, AddPrev):
        return DlibTagOp("add_prev", record.tag)
    raise TypeError(f"no torch layer for {type(record).__name__}")


class FaceIdentity(nn.Module):
    """dlib's face-recognition ResNet; ``embed`` maps face chips to 128-D descriptors.

    The parameters are frozen (``requires_grad`` False) but the module is differentiable with
    respect to its input, so it can serve as an identity loss. Move it with ``.to(device)``.

    Args:
        path: a ``dlib_face_recognition_resnet_model_v1.dat``; None = the installed package's.
        network: an already parsed network (overrides ``path``; used by tests).

    Raises:
        FileNotFoundError: ``path`` is None and the package is not installed.
        CheckpointError: the file is truncated or is not this network.
    """

    def __init__(
        self, path: str | Path | None = None, *, network: DlibNetwork | None = None
    ) -> None:
        super().__init__()
        if network is None:
            path = model_path() if path is None else Path(path)
            network = read_dlib_network(path, FACE_RESNET_LAYOUT)
        self.source = None if path is None else Path(path)
        first = network.layers[0]
        if not isinstance(first, InputRGB):
            raise TypeError("the network's first layer must be its input layer")
        self.chip_size = (first.rows or CHIP_SIZE, first.cols or CHIP_SIZE)
        self.register_buffer(
            "mean",
            torch.tensor(first.mean, dtype=torch.float32).reshape(1, 3, 1, 1),
            persistent=False,
        )
        self.layers = nn.ModuleList(_module_for(r) for r in network.layers[1:])
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.mean.device

    def normalize(self, chips: torch.Tensor) -> torch.Tensor:
        """dlib's input layer: ``(pixel - mean) / 256`` per channel. [N, 3, H, W] -> same."""
        return (chips - self.mean.to(chips.dtype)) / 256.0

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """Compute descriptors of face chips.

        Args:
            chips: float [N, 3, 150, 150], RGB, values 0–255, cut like
                ``dlib.get_face_chip(image, landmarks, size=150, padding=0.25)`` (see
                :func:`cut_chips`).

        Returns:
            [N, 128] descriptors (dtype of ``chips``, on the module's device).
        """
        if chips.ndim != 4 or chips.shape[1] != 3 or tuple(chips.shape[2:]) != self.chip_size:
            raise ValueError(
                f"chips must be [N, 3, {self.chip_size[0]}, {self.chip_size[1]}], "
                f"got {list(chips.shape)}"
            )
        x = self.normalize(chips.to(self.device))
        tags: dict[int, torch.Tensor] = {}
        for layer in self.layers:
            if isinstance(layer, DlibTagOp):
                # dlib's layer<tagN> finds the nearest tagN below, i.e. the latest one run.
                if layer.op == "tag":
                    tags[layer.tag] = x
                elif layer.op == "skip":
                    x = tags[layer.tag]
                else:
                    x = dlib_add(x, tags[layer.tag])
            else:
                x = layer(x)
        return x

    forward = embed


def descriptor_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between descriptors [..., 128] (differentiable). Returns [...]."""
    return torch.linalg.vector_norm(a - b, dim=-1)


# ---------------------------------------------------------------------------------------------
# Chip extraction.


def generator_to_pixels(images: torch.Tensor) -> torch.Tensor:
    """Map generator output in [-1, 1] to the 0–255 pixel range :func:`cut_chips` expects.

    Uses ``x * 127.5 + 127.5`` clamped to [0, 255]: ``models.generator.to_rgb_u8`` gives the
    same values rounded to the nearest integer. Differentiable. [N, 3, H, W] -> same.
    """
    return (images * 127.5 + 127.5).clamp(0.0, 255.0)


_PYRAMID_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)  # dlib's pyramid_down<2> 5x5 Gaussian, sum 16 per axis


def _lround(value: float) -> int:
    # C's lround: halves go away from zero (numpy's round goes to even).
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def _pyramid_down(image: torch.Tensor, quantize: bool) -> torch.Tensor | None:
    """One dlib ``pyramid_down<2>`` step: 5x5 [1 4 6 4 1]^2 / 256 filter, keep every other pixel,
    output ``(n - 3) // 2``; pixel (y, x) is centred on input (2y + 2, 2x + 2). None when dlib
    would return an empty image (input side <= 8)."""
    _, _, height, width = image.shape
    if height <= 8 or width <= 8:
        return None
    taps = torch.tensor(_PYRAMID_TAPS, dtype=image.dtype, device=image.device) / 16.0
    # Separable, like dlib (rows, then columns). On integer pixels every partial sum is a
    # multiple of 1/256 below 256, so float64 is exact and the floor matches dlib's.
    down = F.conv2d(image, taps.reshape(1, 1, 1, 5).expand(3, 1, 1, 5), stride=(1, 2), groups=3)
    down = F.conv2d(down, taps.reshape(1, 1, 5, 1).expand(3, 1, 5, 1), stride=(2, 1), groups=3)
    down = down[:, :, : (height - 3) // 2, : (width - 3) // 2]
    # dlib sums integers and divides by 256 with truncation.
    return down.floor() if quantize else down


def _sample_bilinear(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples at pixel coordinates, zero where dlib's interpolate_bilinear gives up.

    Args:
        image: [1, 3, H, W].
        points: [S, S, 2] (x, y) pixel coordinates.

    Returns:
        [1, 3, S, S]; a sample is 0 unless its four neighbours all lie inside the image.
    """
    _, _, height, width = image.shape
    x, y = points[..., 0], points[..., 1]
    left, top = torch.floor(x), torch.floor(y)
    inside = (left >= 0) & (top >= 0) & (left + 1 <= width - 1) & (top + 1 <= height - 1)
    # align_corners=True maps -1/+1 to the centres of the first/last pixels: coordinate u.
    grid = torch.stack(
        [2.0 * x / max(width - 1, 1) - 1.0, 2.0 * y / max(height - 1, 1) - 1.0], dim=-1
    )
    sampled = F.grid_sample(
        image, grid[None].to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return sampled * inside.to(image.dtype)


def _sample_bilinear_exact(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """:func:`_sample_bilinear` with dlib's exact arithmetic (float64, its operation order).

    dlib truncates ``(1-b)*((1-a)*tl + a*tr) + b*((1-a)*bl + a*br)`` to uint8; on flat areas
    that sum can land a hair under an integer, so the order matters for a bit-exact chip.
    """
    _, _, height, width = image.shape
    x, y = points[..., 0].double(), points[..., 1].double()
    left, top = torch.floor(x), torch.floor(y)
    inside = (left >= 0) & (top >= 0) & (left + 1 <= width - 1) & (top + 1 <= height - 1)
    a, b = x - left, y - top
    col = left.clamp(0, max(width - 2, 0)).long()
    row = top.clamp(0, max(height - 2, 0)).long()
    plane = image[0].double()  # [3, H, W]
    col1 = (col + 1).clamp(max=width - 1)
    row1 = (row + 1).clamp(max=height - 1)
    tl, tr = plane[:, row, col], plane[:, row, col1]
    bl, br = plane[:, row1, col], plane[:, row1, col1]
    value = (1 - b) * ((1 - a) * tl + a * tr) + b * ((1 - a) * bl + a * br)
    return (value * inside)[None]


def chip_pyramid_plan(
    transform: npt.ArrayLike, image_size: tuple[int, int], size: int = CHIP_SIZE
) -> tuple[tuple[int, int, int, int], int]:
    """Where dlib's ``extract_image_chips`` samples a chip from: its crop and pyramid level.

    Args:
        transform: [2, 3] chip pixel -> image pixel map (x, y).
        image_size: (H, W) of the image.
        size: chip side in pixels.

    Returns:
        ``((left, top, right, bottom), level)``: the inclusive crop box dlib builds its pyramid
        from and the number of ``pyramid_down`` steps used (0 = the image itself).
    """
    t = np.asarray(transform, dtype=np.float64).reshape(2, 3)
    height, width = image_size
    corners = (
        np.array(
            [[0, 0, 1], [size - 1, 0, 1], [size - 1, size - 1, 1], [0, size - 1, 1]],
            dtype=np.float64,
        )
        @ t.T
    )
    # The chip rectangle's extent (right - left) before rotation; its area is (extent + 1)^2.
    extent = math.hypot(t[0, 0], t[1, 0]) * (size - 1)
    steps, grow = 0, 2.0
    extent /= 2.0  # dlib tests the once-downsampled rectangle first
    while (extent + 1.0) ** 2 > size * size:
        extent /= 2.0
        steps += 1
        grow = grow * 2 + 2
    lo = corners.min(axis=0) - grow
    hi = corners.max(axis=0) + grow
    box = (
        _lround(max(lo[0], 0.0)),
        _lround(max(lo[1], 0.0)),
        _lround(min(hi[0], width - 1.0)),
        _lround(min(hi[1], height - 1.0)),
    )
    return box, steps


def cut_chips(
    images: torch.Tensor,
    transforms: torch.Tensor | npt.ArrayLike,
    size: int = CHIP_SIZE,
    *,
    quantize: bool = False,
) -> torch.Tensor:
    """Cut face chips the way ``dlib.get_face_chip``/``extract_image_chips`` does.

    Bilinear sampling at ``transform @ [x, y, 1]`` for each chip pixel; when the face is more
    than about twice the chip's size, dlib first shrinks a crop around it with its 5x5 Gaussian
    pyramid, and so does this (same crop, same levels, same coordinate mapping). Samples whose
    2x2 neighbourhood leaves the image are 0, as in dlib.

    Args:
        images: float [N, 3, H, W], RGB, values 0–255 (convert generator output in [-1, 1] with
            :func:`generator_to_pixels`). Differentiable.
        transforms: [N, 2, 3] (or [2, 3] for all), chip pixel -> image pixel (x, y), as given by
            ``editors.identity.chip_transform``. The sampling grid is differentiable with
            respect to a tensor given here; the crop and pyramid level are not.
        size: chip side in pixels.
        quantize: truncate to integers where dlib does (after each pyramid level and after
            sampling), in float64, to reproduce dlib's uint8 chip bit for bit from integer
            pixel values; not differentiable. Without it, chips sit above dlib's by less than
            one grey level per truncation (1 + pyramid levels).

    Returns:
        [N, 3, size, size] chips, dtype and device of ``images``.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W], got {list(images.shape)}")
    count, _, height, width = images.shape
    t_all = torch.as_tensor(transforms, dtype=torch.float64)
    if t_all.shape == (2, 3):
        t_all = t_all.expand(count, 2, 3)
    if tuple(t_all.shape) != (count, 2, 3):
        raise ValueError(f"transforms must be [{count}, 2, 3], got {list(t_all.shape)}")
    t_all = t_all.to(images.device)
    coords = torch.arange(size, dtype=torch.float64, device=images.device)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    chip_points = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1)  # [S, S, 3]

    chips = []
    for i in range(count):
        t = t_all[i]
        box, steps = chip_pyramid_plan(t.detach().cpu().numpy(), (height, width), size)
        left, top, right, bottom = box
        if right < left or bottom < top:  # the chip lies wholly outside the image
            chips.append(images.new_zeros(1, 3, size, size))
            continue
        # dlib builds its pyramid from (and samples) sub_image(img, box); the box's edges decide
        # which samples are valid. Exact mode works in float64 like dlib's interpolation.
        crop: torch.Tensor | None = images[i : i + 1, :, top : bottom + 1, left : right + 1]
        if quantize:
            crop = crop.double()
        for _ in range(steps):
            crop = _pyramid_down(crop, quantize) if crop is not None else None
        if crop is None:  # dlib's pyramid gives an empty image: every sample is background
            chips.append(images.new_zeros(1, 3, size, size))
            continue
        points = chip_points @ t.T - t.new_tensor([left, top])  # [S, S, 2] crop pixels
        for _ in range(steps):
            # dlib's pyramid_down<2>::point_down (its own convention, kept for exactness).
            points = points / 2.0 - points.new_tensor([1.25, 0.75])
        if quantize:
            chip = _sample_bilinear_exact(crop, points).floor()
        else:
            chip = _sample_bilinear(crop, points)
        chips.append(chip.to(images.dtype))
    return torch.cat(chips)


def chips_to_tensor(chips: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 RGB chips ([H, W, 3], a list of them or [N, H, W, 3]) -> float [N, 3, H, W], 0–255."""
    array = np.asarray(chips)
    if array.ndim == 3:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).to(torch.float32)
