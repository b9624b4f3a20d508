"""A minimal MP4 (ISO/IEC 14496-12 and -15) writer for one H.264 video track, moov before mdat."""

from __future__ import annotations

import struct

from shared.media import h264

_MOVIE_TIMESCALE = 1000
_MEDIA_TIMESCALE = 90_000  # divisible by every frame rate we use, so each sample delta is exact
_IDENTITY = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)


def _box(kind: bytes, *payload: bytes) -> bytes:
    data = b"".join(payload)
    return struct.pack(">I", 8 + len(data)) + kind + data


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def write_mp4(sps: bytes, pps: bytes, samples: list[bytes], *, width: int, height: int, fps: int) -> bytes:
    """An .mp4 file of `samples` (one IDR NAL unit each, no start code) at `fps` frames a second."""
    if not samples or _MEDIA_TIMESCALE % fps:
        raise ValueError("need at least one sample and a frame rate that divides 90000")
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")
    # AVC samples are length-prefixed NAL units (lengthSizeMinusOne = 3 in avcC).
    payloads = [struct.pack(">I", len(s)) + s for s in samples]
    placeholder = _moov(sps, pps, payloads, width, height, fps, chunk_offset=0)
    chunk_offset = len(ftyp) + len(placeholder) + 8  # the offset field has a fixed size
    moov = _moov(sps, pps, payloads, width, height, fps, chunk_offset=chunk_offset)
    return ftyp + moov + _box(b"mdat", *payloads)


def _moov(sps: bytes, pps: bytes, payloads: list[bytes], width: int, height: int, fps: int, *,
          chunk_offset: int) -> bytes:
    count = len(payloads)
    delta = _MEDIA_TIMESCALE // fps
    movie_duration = count * _MOVIE_TIMESCALE // fps
    mvhd = _full_box(
        b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, _MOVIE_TIMESCALE, movie_duration),
        struct.pack(">IH10x", 0x10000, 0x100), _IDENTITY, bytes(24), struct.pack(">I", 2),
    )
    tkhd = _full_box(
        b"tkhd", 0, 3,  # enabled | in movie
        struct.pack(">IIII", 0, 0, 1, 0), struct.pack(">I8xhhhH", movie_duration, 0, 0, 0, 0),
        _IDENTITY, struct.pack(">II", width << 16, height << 16),
    )
    media_header = struct.pack(">IIIIHH", 0, 0, _MEDIA_TIMESCALE, count * delta, _LANGUAGE_UND, 0)
    mdhd = _full_box(b"mdhd", 0, 0, media_header)
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(sps, pps, width, height)),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, count, delta)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1)),  # every sample in one chunk
        _full_box(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *map(len, payloads))),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
        # No stss box: every sample is an IDR picture, so every sample is a sync sample.
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    return _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf)))


def _avc1(sps: bytes, pps: bytes, width: int, height: int) -> bytes:
    avcc = _box(
        b"avcC",
        struct.pack(">BBBBBB", 1, h264.PROFILE_IDC, h264.CONSTRAINT_FLAGS, h264.LEVEL_IDC, 0xFF, 0xE1),
        struct.pack(">H", len(sps)), sps, b"\x01", struct.pack(">H", len(pps)), pps,
    )
    name = b"genmedia local"
    return _box(
        b"avc1", bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
        struct.pack(">II4xH", 0x480000, 0x480000, 1), bytes((len(name),)) + name.ljust(31, b"\x00"),
        struct.pack(">Hh", 0x18, -1), avcc,
    )
