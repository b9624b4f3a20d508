"""The stand-ins' own control surface, used by tests that run the function in another process."""

from __future__ import annotations

import pytest
import requests

from shared.exceptions import QuotaExceededError
from shared.media.request import GenerationRequest
from shared.media.vertex_backend import VertexBackend
from tests.standin.vertex_server import VertexStandIn

MODELS = "/v1/projects/p/locations/us-central1/publishers/google/models"
PREDICT = f"{MODELS}/imagen-4.0-generate-001:predict"
FETCH = f"{MODELS}/veo-3.0-generate-001:fetchPredictOperation"


def test_scenarios_can_be_queued_and_requests_read_over_http(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    queued = requests.post(
        f"{vertex_standin.url}/_standin/scenarios",
        json={"scenario": "quota", "times": 50, "method": "predict"},
        timeout=5,
    )
    assert queued.status_code == 200
    request = GenerationRequest(kind="image", prompt="a heron", model="imagen-4.0-generate-001")
    with pytest.raises(QuotaExceededError):
        backend.generate_image(request, job_id="job-ctl-1")

    recorded = requests.get(f"{vertex_standin.url}/_standin/requests", timeout=5).json()
    assert recorded and all(r["path"].endswith(":predict") for r in recorded)
    assert recorded[0]["body"]["instances"][0]["prompt"] == "a heron"

    requests.post(f"{vertex_standin.url}/_standin/reset", timeout=5)
    assert requests.get(f"{vertex_standin.url}/_standin/requests", timeout=5).json() == []


def test_the_standin_refuses_what_vertex_refuses(vertex_standin: VertexStandIn) -> None:
    no_auth = requests.post(
        f"{vertex_standin.url}{PREDICT}", json={"instances": [{"prompt": "x"}]}, timeout=5
    )
    assert no_auth.status_code == 401 and no_auth.json()["error"]["status"] == "UNAUTHENTICATED"
    wrong_method = requests.post(
        f"{vertex_standin.url}{PREDICT.replace(':predict', ':generateContent')}",
        json={},
        headers={"Authorization": "Bearer t"},
        timeout=5,
    )
    assert wrong_method.status_code == 404
    unknown_operation = requests.post(
        f"{vertex_standin.url}{FETCH}",
        json={"operationName": "projects/p/locations/l/publishers/google/models/veo/operations/x"},
        headers={"Authorization": "Bearer t"},
        timeout=5,
    )
    assert unknown_operation.status_code == 404
