"""Reading ``.npz`` archives with bounds: member sizes and ``.npy`` header shapes are checked first.

``np.load`` trusts the archive: a member's ``.npy`` header may declare a shape of terabytes, and a
deflated member may inflate a thousandfold. Here each member's declared sizes are checked against
the file before it is opened, the header's shape against the member's size before any array is
allocated, and object arrays (pickles) are refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from models.formats.limits import LimitError, check_zip_members, product, require_regular_file

# Latents, sessions and direction sets are kilobytes to a few megabytes.
DEFAULT_MAX_TOTAL = 256 * 1024 * 1024
_MAX_HEADER = 10_000


def read_npz(path: Path, *, max_total: int = DEFAULT_MAX_TOTAL) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, read within bounds.

    Raises:
        LimitError: a member or header asks for more than the file holds or the limits allow.
        ValueError: not an npz (bad zip, not ``.npy`` members, object arrays).
        OSError: the file cannot be read.
    """
    path = Path(path)
    require_regular_file(path)
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            members = check_zip_members(archive, size, max_total=max_total)
            arrays: dict[str, np.ndarray] = {}
            for info in members:
                if info.is_dir():
                    continue
                key = info.filename.removesuffix(".npy")
                with archive.open(info) as member:
                    arrays[key] = _read_npy(member, info)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a readable .npz archive ({exc})") from None
    except (EOFError, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"damaged .npz archive ({type(exc).__name__}: {exc})") from None
    return arrays


def _read_npy(member: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray:
    name = info.filename
    try:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(
                member, max_header_size=_MAX_HEADER
            )
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npy_format.read_array_header_2_0(
                member, max_header_size=_MAX_HEADER
            )
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, SyntaxError, TypeError) as exc:
        raise ValueError(f"member {name!r} is not a .npy array ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"member {name!r} holds Python objects (refused: pickled data)")
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise ValueError(f"member {name!r} has a bad shape {shape}")
    nbytes = product(shape) * dtype.itemsize
    if nbytes > info.file_size:
        raise LimitError(
            f"member {name!r} declares shape {list(shape)} ({nbytes:,} bytes) but holds "
            f"{info.file_size:,} bytes"
        )
    data = member.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"member {name!r} is truncated")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C").copy()
