"""Hand-written zip archives whose directory says what an attacker wants it to say."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

ZIP_STORED, ZIP_DEFLATED = 0, 8


def zeros_deflated(size: int, chunk: int = 1 << 20) -> bytes:
    """A raw deflate stream of ``size`` zero bytes, built in milliseconds.

    Each chunk is compressed with a full flush, which resets the compressor, so every chunk's
    output is the same bytes: compress one and repeat it.
    """
    assert size % chunk == 0
    one = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = one.compress(bytes(chunk)) + one.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return block * (size // chunk) + tail


def write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> Path:
    """Write members ``(name, data, method, declared_size, crc)`` as given (no checking)."""
    out = io.BytesIO()
    central = []
    for name, data, method, declared, crc in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(data),
                declared,
                len(encoded),
                0,
            )
        )
        out.write(encoded + data)
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(data),
                declared,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(
        struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory),
                    start, 0)
    )  # fmt: skip
    path.write_bytes(out.getvalue())
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as ``.npy`` file bytes."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header_only(shape: tuple[int, ...], dtype: str = "<f4", data: bytes = b"") -> bytes:
    """A ``.npy`` header declaring ``shape`` followed by ``data`` (usually far too little)."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    npy_format.write_array_header_1_0(buffer, header)  # magic string included
    return buffer.getvalue() + data


def stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    """An honest stored member."""
    return name, data, ZIP_STORED, len(data), zlib.crc32(data)
