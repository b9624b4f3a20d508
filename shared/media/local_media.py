"""Placeholder media for the local backend: a real PNG and a real H.264 MP4, derived from the prompt."""

from __future__ import annotations

import hashlib

from shared.media import h264, mp4, png
from shared.media.request import GenerationRequest

VIDEO_FPS = 8
_LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}
_STRIPE_PERIOD = 64  # pixels between two bright stripes of the video


def seed_of(request: GenerationRequest, index: int) -> bytes:
    """32 bytes that differ per prompt, seed and output index, so outputs are told apart at a glance."""
    text = f"{request.model}\x00{request.prompt}\x00{request.seed}\x00{index}"
    return hashlib.sha256(text.encode()).digest()


def image_size(aspect_ratio: str | None, resolution: str | None) -> tuple[int, int]:
    """(width, height) for "W:H" with the long side of `resolution` (1K when unset)."""
    long_side = _LONG_SIDE.get(resolution or "1K", 1024)
    w, h = (int(part) for part in (aspect_ratio or "1:1").split(":"))
    if w >= h:
        return long_side, max(1, round(long_side * h / w))
    return max(1, round(long_side * w / h)), long_side


def video_size(aspect_ratio: str | None) -> tuple[int, int]:
    """Small 16:9 or 9:16 frames (multiples of 16): raw I_PCM macroblocks cost 1.5 bytes a pixel."""
    return (144, 256) if aspect_ratio == "9:16" else (256, 144)


def render_png(seed: bytes, width: int, height: int) -> bytes:
    """A gradient PNG whose colours come from `seed`."""
    return png.encode_png(width, height, png.gradient_rows(width, height, seed))


def render_mp4(seed: bytes, width: int, height: int, seconds: int, fps: int = VIDEO_FPS) -> bytes:
    """An H.264 MP4 of diagonal stripes drifting right, tinted by `seed`, `seconds` long."""
    # Luma in video range (16-235); I_PCM samples must avoid 0, which this also guarantees.
    period = _STRIPE_PERIOD
    ramp = bytes(16 + (i % period) * 219 // (period - 1) for i in range(width + period))
    chroma_size = (width // 2) * (height // 2)
    cb, cr = bytes((64 + seed[0] // 2,)) * chroma_size, bytes((64 + seed[1] // 2,)) * chroma_size
    speed = 2 + seed[2] % 4
    frames = []
    for t in range(seconds * fps):
        offsets = ((y - t * speed) % _STRIPE_PERIOD for y in range(height))
        luma = b"".join(ramp[o : o + width] for o in offsets)
        frames.append(h264.Frame(luma, cb, cr))
    return encode_mp4(frames, width, height, fps)


def encode_mp4(frames: list[h264.Frame], width: int, height: int, fps: int = VIDEO_FPS) -> bytes:
    """An H.264 MP4 of these frames."""
    encoder = h264.IntraEncoder(width, height)
    samples = [encoder.encode(frame) for frame in frames]
    return mp4.write_mp4(encoder.sps(), encoder.pps(), samples, width=width, height=height, fps=fps)
