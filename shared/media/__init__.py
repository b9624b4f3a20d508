"""Generating images and videos: the request model, per-model capabilities, and the backends.

Public entry points (import them from their modules; this package imports nothing, so it stays cheap):
- `shared.media.request`: `GenerationRequest`, `MediaOutput`.
- `shared.media.capabilities`: `resolve(request)` (fills the default model, 400s unsupported fields),
  `capabilities_for(model)`, `MODELS`, `DEFAULT_MODELS`.
- `shared.media.backends`: `MediaBackend` (`generate_image`, `start_video`, `poll_video`),
  `get_backend(settings)`, `reset_backends()`.
"""
