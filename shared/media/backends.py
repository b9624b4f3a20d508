"""The media backend interface, and the one backend of this process, chosen by GENERATION_BACKEND.

Error contract for callers (the job lifecycle): every failure is a GenmediaError, never a bare
exception. From `poll_video`, `retryable=True` means the poll itself failed (quota, outage, timeout):
keep the operation and poll again later; `retryable=False` means the operation has ended in failure:
fail the job with the error's `reason` (e.g. VIDEO_GENERATION_FAILED, VIDEO_EMPTY_RESULT,
CONTENT_FILTERED, UPSTREAM_QUOTA_EXCEEDED).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.media.request import GenerationRequest, MediaOutput

__all__ = ["MediaBackend", "get_backend", "reset_backends"]


class MediaBackend(ABC):
    """Generates media for one job; outputs are URIs (gs:// or file://), never bytes."""

    name: str

    @abstractmethod
    def generate_image(self, request: GenerationRequest, *, job_id: str) -> list[MediaOutput]:
        """Generate the images of `request` now (one upstream call, retried inside the deadline)."""

    @abstractmethod
    def start_video(self, request: GenerationRequest, *, job_id: str) -> str:
        """Start generating the video of `request`; returns the operation name to poll."""

    @abstractmethod
    def poll_video(self, operation_name: str, *, model: str, job_id: str) -> list[MediaOutput] | None:
        """Look at the operation once: None while it runs, its outputs once done (never waits)."""

    def warm(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Build clients now (imports included), so a paced call leaves on its slot, not seconds later."""


_lock = threading.Lock()
_cached: tuple[Settings, MediaBackend] | None = None


def get_backend(settings: Settings) -> MediaBackend:
    """The backend for `settings`, built on first use and reused (its clients and pools with it)."""
    global _cached
    cached = _cached
    # Equal settings share a backend: tests that rebuild Settings per case keep their warm clients.
    if cached is not None and (cached[0] is settings or cached[0] == settings):
        return cached[1]
    with _lock:
        if _cached is None or _cached[0] != settings:
            _cached = (settings, _build(settings))
        return _cached[1]


def reset_backends() -> None:
    """Forget the cached backend (tests that change module state between cases)."""
    global _cached
    with _lock:
        _cached = None


def _build(settings: Settings) -> MediaBackend:
    # Imported here so that importing this module stays cheap: each backend pulls in its own stack.
    if settings.generation_backend == "local":
        from shared.media.local_backend import LocalBackend

        return LocalBackend(settings)
    from shared.media.vertex_backend import VertexBackend

    return VertexBackend(settings)
