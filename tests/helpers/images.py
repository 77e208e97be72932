"""Hostile image files for input-validation tests."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png_with_declared_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (data for 1x1 only)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)
