"""The hand-written PNG and H.264/MP4 files are valid: Pillow and FFmpeg (PyAV) decode them exactly."""

from __future__ import annotations

import io
import struct

import av
import pytest
from PIL import Image

from shared.media import h264, local_media, mp4, png


def test_png_has_the_signature_and_decodes_to_the_pixels_written() -> None:
    rows = png.gradient_rows(40, 30, b"\x01\x02\x03\x04")
    data = png.encode_png(40, 30, rows)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    assert (image.format, image.size, image.mode) == ("PNG", (40, 30), "RGB")
    assert image.tobytes() == b"".join(rows)


def test_png_refuses_rows_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="rows"):
        png.encode_png(4, 2, [b"\x00" * 12])


def test_different_prompts_give_different_pictures() -> None:
    a = png.gradient_rows(16, 16, bytes(range(4)))
    b = png.gradient_rows(16, 16, bytes(range(10, 14)))
    assert a != b


@pytest.mark.parametrize(("ratio", "resolution", "size"), [
    (None, None, (1024, 1024)), ("16:9", "1K", (1024, 576)), ("9:16", "2K", (1152, 2048)),
    ("21:9", "4K", (4096, 1755)), ("3:4", None, (768, 1024)),
])
def test_local_image_size_follows_aspect_ratio_and_resolution(
    ratio: str | None, resolution: str | None, size: tuple[int, int]
) -> None:
    assert local_media.image_size(ratio, resolution) == size


def test_emulation_prevention_escapes_start_code_prefixes() -> None:
    nal = h264._nal(0x65, b"\x00\x00\x01\x00\x00\x00\x00\x00\x03\x05")
    assert nal == b"\x65\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03\x00\x03\x05"


def test_encoder_refuses_sizes_that_are_not_whole_macroblocks() -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        h264.IntraEncoder(100, 64)


def _boxes(data: bytes, offset: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, start, size) of the ISO BMFF boxes in data[offset:end]."""
    found, end = [], len(data) if end is None else end
    while offset < end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        found.append((kind, offset, size))
        offset += size
    return found


def test_mp4_box_layout_is_ftyp_moov_mdat_with_a_correct_chunk_offset() -> None:
    data = local_media.render_mp4(b"\x00\x01\x02", 32, 16, seconds=1, fps=4)
    top = _boxes(data)
    assert [kind for kind, _, _ in top] == [b"ftyp", b"moov", b"mdat"]
    assert sum(size for _, _, size in top) == len(data)
    stco = data.index(b"stco")
    (chunk_offset,) = struct.unpack(">I", data[stco + 12 : stco + 16])
    mdat_start = top[2][1]
    assert chunk_offset == mdat_start + 8
    stsz = data.index(b"stsz")
    first_sample_size = struct.unpack(">I", data[stsz + 16 : stsz + 20])[0]
    # Each sample is a 4-byte length then that many bytes of IDR slice NAL unit.
    assert struct.unpack(">I", data[chunk_offset : chunk_offset + 4])[0] == first_sample_size - 4
    assert data[chunk_offset + 4] == 0x65


def test_mp4_decodes_with_ffmpeg_to_the_exact_frames_encoded() -> None:
    width, height, fps = 64, 32, 5
    encoder = h264.IntraEncoder(width, height)
    frames = [
        h264.Frame(bytes((16 + (x + 7 * t) % 200) for _ in range(height) for x in range(width)),
                   bytes((90 + t,)) * (width * height // 4), bytes((150,)) * (width * height // 4))
        for t in range(10)
    ]
    data = mp4.write_mp4(encoder.sps(), encoder.pps(), [encoder.encode(f) for f in frames],
                         width=width, height=height, fps=fps)
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", width, height)
        assert stream.average_rate == fps
        assert container.duration == 2_000_000  # 10 frames at 5 fps, in microseconds
        decoded = list(container.decode(video=0))
    assert len(decoded) == len(frames)
    for frame, source in zip(decoded, frames, strict=True):
        assert frame.format.name == "yuv420p"
        plane = frame.planes[0]
        pixels, stride = bytes(plane), plane.line_size
        assert b"".join(pixels[r * stride : r * stride + width] for r in range(height)) == source.y
        assert frame.key_frame


def test_local_video_plays_for_the_requested_duration() -> None:
    data = local_media.render_mp4(b"\x05\x06\x07", 256, 144, seconds=4)
    with av.open(io.BytesIO(data), mode="r") as container:
        assert container.duration == 4_000_000
        assert sum(1 for _ in container.decode(video=0)) == 4 * local_media.VIDEO_FPS
