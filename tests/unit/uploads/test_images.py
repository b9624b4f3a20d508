"""What an upload really is, read from its headers: types, dimensions, and the files we refuse."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from shared.media import png
from shared.uploads.images import MAX_PIXELS, NotAnImageError, inspect_image, sniff


def encoded(fmt: str, size: tuple[int, int] = (40, 30), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(out, fmt, **options)
    return out.getvalue()


def inspect(data: bytes) -> tuple[str, int, int]:
    info = inspect_image(lambda offset, length: data[offset : offset + length], len(data))
    return info.mime_type, info.width, info.height


@pytest.mark.parametrize(("fmt", "options", "mime"), [
    ("PNG", {}, "image/png"),
    ("JPEG", {}, "image/jpeg"),
    ("JPEG", {"progressive": True}, "image/jpeg"),
    ("WEBP", {"lossless": False}, "image/webp"),
    ("WEBP", {"lossless": True}, "image/webp"),
])
def test_real_pictures_give_their_type_and_dimensions(fmt: str, options: dict[str, object], mime: str) -> None:
    assert inspect(encoded(fmt, (41, 29), **options)) == (mime, 41, 29)


def test_an_extended_webp_gives_its_canvas_size() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (33, 17), (1, 2, 3, 100)).save(out, "WEBP", exif=b"Exif\x00\x00" + b"\x00" * 20)
    assert inspect(out.getvalue()) == ("image/webp", 33, 17)


def test_a_jpeg_whose_frame_header_follows_large_metadata_is_read_across_chunks() -> None:
    jpeg = encoded("JPEG", (64, 48))
    app = b"\xff\xe2" + struct.pack(">H", 65_000) + b"\x00" * 64_998  # an ICC-sized APP2 segment
    padded = jpeg[:2] + app + app + jpeg[2:]
    reads: list[int] = []

    def read(offset: int, length: int) -> bytes:
        reads.append(offset)
        return padded[offset : offset + length]

    info = inspect_image(read, len(padded))
    assert (info.width, info.height) == (64, 48)
    assert len(reads) <= 4  # a few 64 KiB windows, never the whole file byte by byte


def test_a_ten_megabyte_png_is_checked_with_two_small_reads() -> None:
    data = png.encode_png(4, 4, [b"\x00" * 12] * 4)
    big = data[:-12] + _chunk(b"tEXt", b"x" * 10_000_000) + data[-12:]
    asked: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return big[offset : offset + length]

    assert inspect_image(read, len(big)).width == 4
    assert sum(length for _, length in asked) <= 2 * 64 * 1024


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header declares `width` x `height` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(NotAnImageError, match="100000x100000 pixels"):
        inspect(bomb_png(100_000, 100_000))
    side = int(MAX_PIXELS ** 0.5) + 1
    with pytest.raises(NotAnImageError, match="megapixels"):
        inspect(bomb_png(side, side))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"hello, I am a text file named cat.png\n", "not a PNG, JPEG or WebP"),
    (b"GIF89a" + b"\x00" * 40, "not a PNG, JPEG or WebP"),
    (b"\x89PNG\r\n\x1a\n", "truncated"),
])
def test_what_is_not_a_picture_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(NotAnImageError, match=message):
        inspect(data)


def test_a_truncated_or_corrupt_png_is_refused() -> None:
    good = encoded("PNG")
    with pytest.raises(NotAnImageError, match="IEND"):
        inspect(good[:-20])
    corrupt = bytearray(good)
    corrupt[20] ^= 0xFF  # inside IHDR: the CRC no longer matches
    with pytest.raises(NotAnImageError, match="CRC"):
        inspect(bytes(corrupt))


def test_a_png_declaring_zero_width_is_refused() -> None:
    with pytest.raises(NotAnImageError, match="no dimensions"):
        inspect(bomb_png(0, 10))


def test_a_truncated_webp_is_refused() -> None:
    with pytest.raises(NotAnImageError, match="truncated"):
        inspect(encoded("WEBP")[:-10])


def test_a_jpeg_with_no_frame_header_is_refused() -> None:
    with pytest.raises(NotAnImageError, match="JPEG"):
        inspect(b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 20)


def test_sniff_reads_only_magic_bytes() -> None:
    assert sniff(encoded("PNG")[:12]) == "image/png"
    assert sniff(encoded("JPEG")[:12]) == "image/jpeg"
    assert sniff(encoded("WEBP")[:12]) == "image/webp"
    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") is None
