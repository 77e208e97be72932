"""Bounds on what a checkpoint or archive may ask for, checked before anything is allocated.

A file is data written by someone else: its architecture numbers, tensor shapes and archive
member sizes are claims. These checks compare the claims with sane limits and with the bytes the
file really holds, so that a small file can neither build a huge network, nor inflate into
gigabytes, nor hand over a tensor whose shape is larger than its storage.
"""

from __future__ import annotations

import itertools
import math
import stat
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

# The largest published StyleGAN2/ProGAN networks are 1024 px with 512 feature maps and 512-d
# latents; these limits leave ample room while keeping every network a file can describe small.
MAX_RESOLUTION = 2048
MAX_CHANNELS = 8192
MAX_LATENT_DIM = 8192
MAX_MAPPING_LAYERS = 64
MAX_CLASSES = 100_000
MAX_PARAMETERS = 2_000_000_000

# Archives: an uncompressed member may be as big as the file; a compressed one may inflate at
# most this much (deflate reaches 1000:1 only on degenerate data such as long runs of zeros).
MAX_COMPRESSION_RATIO = 50
MAX_ARCHIVE_MEMBERS = 100_000


class LimitError(ValueError):
    """A file asks for more than the limits allow (the caller adds the file name)."""


def require_regular_file(path: Path) -> None:
    """Refuse FIFOs, devices and sockets before opening them (opening a FIFO blocks forever).

    Raises:
        LimitError: ``path`` exists but is not a regular file.
        FileNotFoundError: ``path`` does not exist.
    """
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise LimitError("is a folder, not a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or special file"
        raise LimitError(f"is {kind}, not a regular file")


def integer(value: Any, what: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high] (bools, floats and strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise LimitError(f"{what} must be an integer, got {type(value).__name__} {value!r:.40}")
    if not low <= value <= high:
        raise LimitError(f"{what} {value} is outside the supported range {low}..{high}")
    return int(value)


def finite_number(value: Any, what: str) -> float:
    """``value`` as a finite float (bools, strings, NaN and infinities are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LimitError(f"{what} must be a finite number, got {value!r:.40}")
    return float(value)


def check_tensor(name: str, tensor: Any) -> torch.Tensor:
    """Refuse a tensor that claims more elements than its storage holds (zero or tiny strides).

    Raises:
        LimitError: not a tensor, zero stride on a dimension longer than 1, or overlapping views.
    """
    if not isinstance(tensor, torch.Tensor):
        raise LimitError(f"entry {name!r} is a {type(tensor).__name__}, not a tensor")
    if tensor.layout is not torch.strided or tensor.is_quantized:
        raise LimitError(f"tensor {name!r} has an unsupported layout")
    if any(s > 1 and st == 0 for s, st in zip(tensor.shape, tensor.stride(), strict=True)):
        raise LimitError(
            f"tensor {name!r} has a zero stride (shape {list(tensor.shape)} "
            f"backed by {tensor.untyped_storage().nbytes()} bytes)"
        )
    if tensor.numel() * tensor.element_size() > tensor.untyped_storage().nbytes():
        raise LimitError(
            f"tensor {name!r} of shape {list(tensor.shape)} is larger than its storage "
            f"({tensor.untyped_storage().nbytes()} bytes)"
        )
    return tensor


def check_tensors(tensors: Mapping[str, Any]) -> int:
    """``check_tensor`` on every value; return the bytes of the distinct storages behind them."""
    storages: dict[int, int] = {}
    for name, tensor in tensors.items():
        check_tensor(str(name), tensor)
        storage = tensor.untyped_storage()
        storages[storage.data_ptr() or id(storage)] = storage.nbytes()
    return sum(storages.values())


def _conv_chain(channels: Sequence[int], w_dim: int) -> int:
    # Modulated 3x3 convs (two per block after 4x4, one at 4x4) and their style affines.
    total = 16 * channels[0] + 9 * channels[0] ** 2 + w_dim * channels[0]
    for c_in, c_out in itertools.pairwise(channels):
        total += 9 * c_in * c_out + 9 * c_out * c_out + w_dim * (c_in + c_out)
    return total


def check_stylegan2(arch: Mapping[str, Any], available_bytes: int | None) -> None:
    """Validate a StyleGAN2 architecture dict before the network is built.

    ``available_bytes``: what the file's tensors really hold; the network's weights (a lower
    bound that counts only the convolutions and fully connected layers) must fit in it.

    Raises:
        LimitError: a number of the wrong type or out of range, or more weights than the file has.
    """
    resolution = integer(arch.get("resolution"), "resolution", 8, MAX_RESOLUTION)
    if resolution & (resolution - 1):
        raise LimitError(f"resolution {resolution} is not a power of two")
    channels = arch.get("channels")
    if not isinstance(channels, list | tuple) or len(channels) != int(math.log2(resolution)) - 1:
        raise LimitError(f"channels must list one count per scale 4..{resolution}")
    channels = [integer(c, "channel count", 1, MAX_CHANNELS) for c in channels]
    z_dim = integer(arch.get("z_dim", 512), "z_dim", 1, MAX_LATENT_DIM)
    w_dim = integer(arch.get("w_dim", 512), "w_dim", 1, MAX_LATENT_DIM)
    layers = integer(arch.get("mapping_layers", 8), "mapping_layers", 0, MAX_MAPPING_LAYERS)
    c_dim = integer(arch.get("c_dim", 0) or 0, "c_dim", 0, MAX_CLASSES)
    embed = arch.get("embed_features")
    embed = integer(embed, "embed_features", 1, MAX_LATENT_DIM) if embed is not None else w_dim
    for key in ("lr_mlp", "conv_clamp"):
        if arch.get(key) is not None:
            finite_number(arch[key], key)
    mapping = (z_dim * w_dim + (layers - 1) * w_dim * w_dim) if layers else 0
    labels = c_dim * embed if c_dim else 0
    _check_parameters(mapping + labels + _conv_chain(channels, w_dim), available_bytes)


def check_progan(arch: Mapping[str, Any], available_bytes: int | None) -> None:
    """Validate a ProGAN architecture dict (z size, depths per scale) before building it.

    Raises:
        LimitError: as ``check_stylegan2``.
    """
    z_dim = integer(arch.get("z_dim", 512), "z_dim", 1, MAX_LATENT_DIM)
    depths = arch.get("depths")
    max_scales = int(math.log2(MAX_RESOLUTION)) - 1
    if not isinstance(depths, list | tuple) or not 1 <= len(depths) <= max_scales:
        raise LimitError(f"depths must list 1..{max_scales} scales")
    depths = [integer(d, "scale depth", 1, MAX_CHANNELS) for d in depths]
    for key in ("alpha", "leaky_relu"):
        finite_number(arch.get(key, 0.0), key)
    total = z_dim * 16 * depths[0] + 9 * depths[0] ** 2
    for d_in, d_out in itertools.pairwise(depths):
        total += 9 * d_in * d_out + 9 * d_out * d_out
    _check_parameters(total, available_bytes)


def _check_parameters(minimum: int, available_bytes: int | None) -> None:
    if minimum > MAX_PARAMETERS:
        raise LimitError(f"the network would have over {minimum:,} parameters")
    # One byte per weight is the most generous reading (fp16 needs two, fp32 four).
    if available_bytes is not None and minimum > available_bytes:
        raise LimitError(
            f"the architecture needs at least {minimum:,} weights but the file holds only "
            f"{available_bytes:,} bytes of tensors"
        )


def check_zip_members(
    archive: zipfile.ZipFile, file_size: int, *, max_total: int | None = None
) -> list[zipfile.ZipInfo]:
    """Check every member's declared sizes before anything is read or inflated.

    Stored members must fit in the file; compressed ones may inflate at most
    ``MAX_COMPRESSION_RATIO`` times; the total must stay under ``max_total`` when given.

    Raises:
        LimitError: too many members, a size that contradicts the file, or too much data.
    """
    members = archive.infolist()
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise LimitError(f"the archive has {len(members):,} members")
    total = 0
    for info in members:
        size = info.file_size
        if info.compress_type == zipfile.ZIP_STORED:
            if size > file_size:
                raise LimitError(
                    f"member {info.filename!r} claims {size:,} bytes in a {file_size:,}-byte file"
                )
        elif size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) + 65536:
            raise LimitError(
                f"member {info.filename!r} would inflate {info.compress_size:,} bytes to "
                f"{size:,} bytes (a decompression bomb?)"
            )
        total += size
    if max_total is not None and total > max_total:
        raise LimitError(f"the archive would unpack to {total:,} bytes (limit {max_total:,})")
    return members


def product(values: Iterable[int]) -> int:
    """Exact product of Python ints (no overflow, unlike numpy)."""
    result = 1
    for value in values:
        result *= int(value)
    return result
