"""The Vertex AI backend: Imagen, Gemini image and Veo through google-genai, outputs in Cloud Storage."""

from __future__ import annotations

import re
import threading
import time
import warnings
from typing import TYPE_CHECKING

from shared.exceptions import (
    ImagenGenerationError,
    ServiceUnavailableError,
    VeoGenerationError,
    VertexAIError,
)
from shared.media import vertex_requests, vertex_results
from shared.media.backends import MediaBackend
from shared.media.capabilities import capabilities_for, resolve
from shared.media.request import GenerationRequest, Kind, MediaOutput
from shared.media.storage import OutputStore
from shared.media.upstream import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from google import genai

    from shared.config import Settings

_OPERATION_LOCATION = re.compile(r"^projects/[^/]+/locations/([^/]+)/")
# Sent when VERTEX_BASE_URL is set without VERTEX_TOKEN: a stand-in wants some bearer token, and
# falling back to Application Default Credentials there would only fail later, request by request.
PLACEHOLDER_TOKEN = "genmedia-no-token"


def build_client(settings: Settings, location: str) -> genai.Client:
    """A google-genai client for Vertex AI v1 in `location`; with VERTEX_BASE_URL, a static token."""
    from google import genai
    from google.genai import types

    # We call Imagen on purpose (the default image model is Gemini); its deprecation notice would be a
    # stray non-JSON line on stderr at the first Imagen request of every instance.
    warnings.filterwarnings("ignore", message="The generate_images method is deprecated")
    credentials = None  # without VERTEX_BASE_URL: Application Default Credentials, on first request
    if settings.vertex_base_url:
        from google.oauth2.credentials import Credentials

        token = settings.vertex_token.get_secret_value() if settings.vertex_token else PLACEHOLDER_TOKEN
        # No expiry and no refresh token: `expired` stays False, so google-genai sends this token as is,
        # never refreshes it and never looks for Application Default Credentials.
        credentials = Credentials(token=token)  # type: ignore[no-untyped-call]
    return genai.Client(
        vertexai=True,
        project=settings.google_cloud_project,
        location=location,
        credentials=credentials,
        # v1, not the SDK's v1beta1 default, which some Veo models refuse. No HttpRetryOptions: the
        # SDK then tries once and upstream.call_with_retry owns retries (see its docstring for why).
        http_options=types.HttpOptions(
            api_version="v1",
            base_url=settings.vertex_base_url,
            timeout=int(settings.vertex_deadline_seconds * 1000),
        ),
    )


class VertexBackend(MediaBackend):
    """Generates on Vertex AI; one google-genai client per location, built on first use."""

    name = "vertex"

    def __init__(self, settings: Settings, *, policy: RetryPolicy | None = None) -> None:
        self._settings = settings
        self._policy = policy or RetryPolicy()
        bucket = settings.output_bucket
        self._store = OutputStore(bucket, settings.google_cloud_project) if bucket else None
        self._clients: dict[str, genai.Client] = {}
        self._lock = threading.Lock()

    def client(self, location: str | None = None) -> genai.Client:
        """The client for `location` (default VERTEX_LOCATION), shared by every request of this process."""
        location = location or self._settings.vertex_location
        client = self._clients.get(location)
        if client is None:
            with self._lock:
                client = self._clients.get(location)
                if client is None:
                    client = self._clients[location] = build_client(self._settings, location)
        return client

    def warm(self) -> None:
        self.client()

    def generate_image(self, request: GenerationRequest, *, job_id: str) -> list[MediaOutput]:
        request = resolve(request)
        vertex_requests.require_resolved(request)
        model = str(request.model)
        # The bucket is checked before anything is generated (and billed) that could not be kept.
        folder, deadline = self._output_store().folder_uri("image", job_id), self._deadline()
        if capabilities_for(model).api == "imagen":
            answer = call_with_retry(
                lambda left: self.client().models.generate_images(
                    model=model, prompt=request.prompt,
                    config=vertex_requests.imagen_config(request, folder, left),
                ),
                deadline=deadline, policy=self._policy, rejected=ImagenGenerationError, idempotent=True,
                what=f"{model}:predict",
            )
            produced = vertex_results.imagen_media(answer)
        else:
            content = call_with_retry(
                lambda left: self.client().models.generate_content(
                    model=model, contents=vertex_requests.gemini_contents(request),
                    config=vertex_requests.gemini_config(request, left),
                ),
                deadline=deadline, policy=self._policy, rejected=ImagenGenerationError, idempotent=True,
                what=f"{model}:generateContent",
            )
            produced = vertex_results.gemini_media(content)
        return self._keep("image", job_id, produced, deadline)

    def start_video(self, request: GenerationRequest, *, job_id: str) -> str:
        request = resolve(request)
        vertex_requests.require_resolved(request)
        model, caps = str(request.model), capabilities_for(str(request.model))
        folder = self._output_store().folder_uri("video", job_id)
        operation = call_with_retry(
            lambda left: self.client().models.generate_videos(
                model=model, source=vertex_requests.veo_source(request),
                config=vertex_requests.veo_config(request, caps, folder, left),
            ),
            # Not idempotent: a request that timed out may have started a (billed) video already.
            deadline=self._deadline(), policy=self._policy, rejected=VeoGenerationError, idempotent=False,
            what=f"{model}:predictLongRunning",
        )
        if not operation.name:
            raise VertexAIError(detail="predictLongRunning answered without an operation name")
        return operation.name

    def poll_video(self, operation_name: str, *, model: str, job_id: str) -> list[MediaOutput] | None:
        from google.genai import types

        match = _OPERATION_LOCATION.match(operation_name)
        client = self.client(match.group(1) if match else None)
        deadline = self._deadline()
        operation = call_with_retry(
            lambda left: client.operations.get(
                # `name` comes from the SDK's Operation mixin, which mypy does not see as a field.
                types.GenerateVideosOperation(name=operation_name),  # type: ignore[call-arg]
                config=types.GetOperationConfig(http_options=vertex_requests.http_options(left)),
            ),
            deadline=deadline, policy=self._policy, rejected=VeoGenerationError, idempotent=True,
            what=f"{model}:fetchPredictOperation",
        )
        produced = vertex_results.video_media(operation)
        return None if produced is None else self._keep("video", job_id, produced, deadline)

    def _keep(self, kind: Kind, job_id: str, produced: list[vertex_results.Produced],
              deadline: float) -> list[MediaOutput]:
        """Outputs as URIs: Vertex's gs:// URIs as they are, returned bytes uploaded to OUTPUT_BUCKET."""
        outputs = []
        for index, item in enumerate(produced):
            if item.uri is not None:
                outputs.append(MediaOutput(uri=item.uri, mime_type=item.mime_type))
            elif item.data is not None:
                left = deadline - time.monotonic()
                outputs.append(self._output_store().upload(kind, job_id, index, item.data, item.mime_type,
                                                           timeout=left))
        return outputs

    def _output_store(self) -> OutputStore:
        if self._store is None:
            # Start-up validation should have caught this; answer 503 rather than crash the request.
            raise ServiceUnavailableError("generation is not configured", detail="OUTPUT_BUCKET is not set")
        return self._store

    def _deadline(self) -> float:
        return time.monotonic() + self._settings.vertex_deadline_seconds
