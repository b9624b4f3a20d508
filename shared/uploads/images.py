"""What an uploaded file really is: PNG, JPEG or WebP, and its dimensions, from its headers alone.

Never trusts a declared type or a file name: the magic bytes decide. Never decodes pixels either: the
dimensions come from the header (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X), so a decompression bomb
(a small file declaring a huge picture) is refused by arithmetic, not by running out of memory, and a
10 MB upload costs a few reads of a few bytes. Hand-parsed rather than with Pillow: these three
headers are about a hundred lines, and the functions then never import an image decoder at all.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_PIXELS", "MAX_SIDE", "ImageInfo", "NotAnImageError", "inspect_image", "sniff"]

# Vertex reads at most a few megapixels of an input; 50 MP still passes a 48 MP phone photo whole.
MAX_PIXELS = 50_000_000
MAX_SIDE = 16_384
_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Valid (colour type, bit depths) of a PNG header (PNG spec 11.2.2).
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_MAX_JPEG_SEGMENTS = 512
_CHUNK = 64 * 1024

Reader = Callable[[int, int], bytes]
"""`read(offset, length)`: up to `length` bytes of the file from `offset` (fewer at its end)."""


class NotAnImageError(ValueError):
    """The bytes are not a PNG, JPEG or WebP picture we accept; the message says why, for the caller."""


@dataclass(frozen=True)
class ImageInfo:
    """What the headers say: the real type and the picture's size."""

    mime_type: str
    width: int
    height: int


def sniff(head: bytes) -> str | None:
    """The MIME type the first 12 bytes announce, or None."""
    if head.startswith(_PNG):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


class _Window:
    """Serves small reads from 64 KiB chunks, so a remote object costs one request per chunk touched."""

    def __init__(self, read: Reader, size: int) -> None:
        self._read, self.size = read, size
        self._chunks: dict[int, bytes] = {}

    def get(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise NotAnImageError("is truncated: its header runs past the end of the file")
        out = b""
        while len(out) < length:
            index, skip = divmod(offset + len(out), _CHUNK)
            chunk = self._chunks.get(index)
            if chunk is None:
                chunk = self._chunks[index] = self._read(index * _CHUNK, _CHUNK)
            piece = chunk[skip : skip + length - len(out)]
            if not piece:
                raise NotAnImageError("is truncated: its header runs past the end of the file")
            out += piece
        return out


def inspect_image(read: Reader, size: int) -> ImageInfo:
    """The type and dimensions of a file of `size` bytes, or NotAnImageError saying what is wrong."""
    if size <= 0:
        raise NotAnImageError("is empty (0 bytes)")
    window = _Window(read, size)
    mime = sniff(window.get(0, min(12, size)))
    if mime == "image/png":
        width, height = _png(window)
    elif mime == "image/jpeg":
        width, height = _jpeg(window)
    elif mime == "image/webp":
        width, height = _webp(window)
    else:
        raise NotAnImageError("is not a PNG, JPEG or WebP image")
    if width <= 0 or height <= 0:
        raise NotAnImageError(f"declares no dimensions ({width}x{height})")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise NotAnImageError(
            f"is {width}x{height} pixels; at most {MAX_SIDE} a side and {MAX_PIXELS // 1_000_000} megapixels")
    return ImageInfo(mime, width, height)


def _png(window: _Window) -> tuple[int, int]:
    header = window.get(8, 25)
    length, kind = struct.unpack(">I4s", header[:8])
    if kind != b"IHDR" or length != 13:
        raise NotAnImageError("is not a valid PNG: its first chunk is not IHDR")
    if struct.unpack(">I", header[21:25])[0] != zlib.crc32(header[4:21]):
        raise NotAnImageError("is not a valid PNG: its header is corrupt (bad CRC)")
    width, height, depth, colour = struct.unpack(">IIBB", header[8:18])
    if depth not in _PNG_DEPTHS.get(colour, ()):
        raise NotAnImageError("is not a valid PNG: unknown colour type or bit depth")
    if window.size < 8 + 25 + 12 or window.get(window.size - 12, 12) != _PNG_END:
        raise NotAnImageError("is not a complete PNG: it does not end with IEND (truncated upload?)")
    return width, height


def _jpeg(window: _Window) -> tuple[int, int]:
    offset = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        while window.get(offset, 1) == b"\xff" and window.get(offset + 1, 1) == b"\xff":
            offset += 1  # fill bytes before a marker
        prefix, marker = window.get(offset, 2)
        if prefix != 0xFF:
            raise NotAnImageError("is not a valid JPEG: a segment does not start with a marker")
        if marker in _JPEG_STANDALONE:
            offset += 2
            continue
        if marker in (0xD9, 0xDA):
            raise NotAnImageError("is not a valid JPEG: no frame header before the image data")
        (length,) = struct.unpack(">H", window.get(offset + 2, 2))
        if length < 2:
            raise NotAnImageError("is not a valid JPEG: a segment has an impossible length")
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", window.get(offset + 5, 4))
            return width, height
        offset += 2 + length
    raise NotAnImageError("is not a valid JPEG: no frame header in its first segments")


def _webp(window: _Window) -> tuple[int, int]:
    (riff_size,) = struct.unpack("<I", window.get(4, 4))
    if riff_size + 8 > window.size:
        raise NotAnImageError("is not a complete WebP: shorter than its RIFF header says (truncated upload?)")
    kind, data = window.get(12, 4), window.get(20, 10)
    if kind == b"VP8 ":
        if data[3:6] != b"\x9d\x01\x2a":
            raise NotAnImageError("is not a valid WebP: bad VP8 start code")
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        if data[0] != 0x2F:
            raise NotAnImageError("is not a valid WebP: bad VP8L signature")
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    raise NotAnImageError("is not a valid WebP: unknown first chunk")
