"""Input pictures in the local backend: a video starts on its image, an edit visibly derives from it.

Decoding a PNG, JPEG or WebP needs a real decoder, so this module uses Pillow (installed by
requirements-dev.txt, which `make run` and the tests use). Only the local backend imports it, on its
first request with an input: deployed functions (GENERATION_BACKEND=vertex) never decode a picture,
they hand Vertex AI its Cloud Storage URI, and their upload checks parse headers by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from shared.exceptions import ValidationError
from shared.media import h264, png
from shared.media.request import GenerationRequest, MediaRef

if TYPE_CHECKING:
    from PIL import Image

_TINT = 0.3  # how much of the prompt's colour an edit blends in: clearly changed, clearly the input


class InputUnreadableError(ValidationError):
    """An input passed the header checks but its pixels do not decode (a corrupt or truncated body)."""

    reason = "INPUT_UNREADABLE"
    default_message = "an input picture could not be decoded; upload it again"


def _open(ref: MediaRef, root: Path) -> Image.Image:
    """The referenced picture as RGB; only files inside the local data directory are ever opened."""
    from PIL import Image

    path = Path(unquote(urlsplit(str(ref.uri)).path)).resolve()
    if not path.is_relative_to(root):
        raise ValueError("input outside the local data directory")
    try:
        with Image.open(path) as picture:
            return picture.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputUnreadableError(detail=type(exc).__name__) from exc


def _fitted(ref: MediaRef, root: Path, size: tuple[int, int]) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.fit(_open(ref, root), size)


def edited_png(request: GenerationRequest, root: Path, size: tuple[int, int], seed: bytes) -> bytes:
    """The first input fitted to `size`, tinted with the prompt's colour, the other inputs inset along
    the bottom: a picture that is plainly made from the inputs, and differs per prompt."""
    from PIL import Image

    refs = ([request.image] if request.image else []) + list(request.input_images or ())
    base = _fitted(refs[0], root, size)
    width, height = size
    thumb = max(1, min(width // 4, height // 4))
    for index, ref in enumerate(refs[1:]):
        base.paste(_fitted(ref, root, (thumb, thumb)), (8 + index * (thumb + 8), height - thumb - 8))
    tinted = Image.blend(base, Image.new("RGB", size, (seed[0], seed[1], seed[2])), _TINT)
    raw = tinted.tobytes()
    rows = [raw[y * width * 3 : (y + 1) * width * 3] for y in range(height)]
    return png.encode_png(width, height, rows)


def video_frames(request: GenerationRequest, root: Path, size: tuple[int, int], count: int) -> list[h264.Frame]:
    """`count` frames starting exactly on `image` (fitted): a slow zoom, or a cross-fade to
    `last_frame` when there is one, which then is the last frame."""
    from PIL import Image

    assert request.image is not None
    first = _fitted(request.image, root, size)
    last = _fitted(request.last_frame, root, size) if request.last_frame else None
    width, height = size
    frames = []
    for t in range(count):
        progress = t / max(1, count - 1)
        if last is not None:
            picture = Image.blend(first, last, progress)
        else:
            margin_x, margin_y = int(width * 0.1 * progress), int(height * 0.1 * progress)
            box = (margin_x, margin_y, width - margin_x, height - margin_y)
            picture = first.crop(box).resize(size) if margin_x or margin_y else first
        frames.append(_yuv420(picture))
    return frames


def _yuv420(picture: Image.Image) -> h264.Frame:
    """RGB -> video-range 4:2:0 planes (luma 16-235, chroma 16-240; I_PCM must never hold a 0)."""
    from PIL import Image

    y, cb, cr = picture.convert("YCbCr").split()
    half = (picture.width // 2, picture.height // 2)
    luma = y.point([16 + v * 219 // 255 for v in range(256)])
    chroma = [16 + v * 224 // 255 for v in range(256)]
    cb = cb.resize(half, Image.Resampling.BOX).point(chroma)
    cr = cr.resize(half, Image.Resampling.BOX).point(chroma)
    return h264.Frame(luma.tobytes(), cb.tobytes(), cr.tobytes())
