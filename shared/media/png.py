"""A dependency-free PNG writer for the local backend's placeholder images (zlib + struct only)."""

from __future__ import annotations

import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB8 = (8, 2, 0, 0, 0)  # bit depth 8, colour type 2 (truecolour), deflate, filter 0, no interlace


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC over type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """A PNG of `height` RGB rows, each `width * 3` bytes."""
    if len(rows) != height or any(len(row) != width * 3 for row in rows):
        raise ValueError("rows must be height rows of width * 3 bytes")
    # Filter type 0 (None) on every row: the gradients compress well enough and stay fast to make.
    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, *_RGB8)
    idat = _chunk(b"IDAT", zlib.compress(raw, 6))
    return _SIGNATURE + _chunk(b"IHDR", header) + idat + _chunk(b"IEND", b"")


def gradient_rows(width: int, height: int, seed: bytes) -> list[bytes]:
    """Diagonal colour bands derived from `seed`, so each prompt gets its own recognisable picture."""
    r0, g0, b0, step = seed[0], seed[1], seed[2], 1 + seed[3] % 3
    base = bytearray(width * 3)
    for x in range(width):
        t = x * 256 // max(width, 1)
        base[3 * x : 3 * x + 3] = bytes(((r0 + t) % 256, (g0 + 2 * t) % 256, (b0 + 255 - t) % 256))
    row = bytes(base)
    # Shifting every byte by a per-row amount with bytes.translate runs in C: a 2K image stays fast.
    tables = [bytes((v + shift) % 256 for v in range(256)) for shift in range(256)]
    return [row.translate(tables[(y * step * 256 // max(height, 1)) % 256]) for y in range(height)]
