"""The OpenAPI generator on its own (no database, no served function): templating, auth, errors, examples."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import flask
import jsonschema_rs
import pytest
import schemathesis

import functions
import shared
from functions.generation import models as generation_models
from functions.scheduling import models as scheduling_models
from functions.scheduling import service as scheduling_service
from shared import openapi
from shared.aip193 import error_body
from shared.exceptions import GenmediaError, ValidationError
from shared.http_api import Router, json_response
from shared.openapi_components import GRPC_CODES, Error

NAMESPACES = [generation_models, scheduling_models, scheduling_service]


def ok(request: flask.Request, *args: Any, **kwargs: Any) -> flask.Response:
    """Answer 200."""
    return json_response({})


def sample_router() -> Router:
    """A function with an open route, a scoped body route and a scoped path route."""
    router = Router()
    router.route("GET", "/healthz")(ok)
    router.route("POST", "/v1/generations", scope="generate")(ok)
    router.route("GET", "/v1/generations/<job_id>", scope="generate")(ok)
    router.route("POST", "/v1/schedules:tick", scope="tick")(ok)
    return router


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi.build_document(sample_router().routes(), title="sample", models=NAMESPACES)


def all_error_classes() -> list[type[GenmediaError]]:
    """Every GenmediaError subclass in shared/ and functions/ (entry points aside: they read settings)."""
    for package in (shared, functions):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith(".main"):
                importlib.import_module(module.name)
    found, stack = [], [GenmediaError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def test_werkzeug_variables_become_openapi_templates() -> None:
    assert openapi.openapi_path("/v1/generations/<job_id>") == "/v1/generations/{job_id}"
    assert openapi.openapi_path("/v1/schedules/<schedule_id>:pause") == "/v1/schedules/{schedule_id}:pause"
    assert openapi.openapi_path("/items/<int:n>") == "/items/{n}"


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(doc).validate()


def test_a_route_missing_from_the_catalog_fails_the_build() -> None:
    router = sample_router()
    router.route("GET", "/v1/secret")(ok)

    with pytest.raises(openapi.UndocumentedRouteError, match="GET /v1/secret"):
        openapi.build_document(router.routes(), title="sample", models=NAMESPACES)


def test_scoped_routes_need_a_bearer_key_with_their_scope_and_open_routes_nothing(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert paths["/healthz"]["get"]["security"] == []
    assert paths["/v1/generations"]["post"]["security"] == [{"bearerAuth": ["generate"]}]
    assert "`generate` scope" in paths["/v1/generations"]["post"]["description"]
    assert paths["/v1/schedules:tick"]["post"]["security"] == [{"bearerAuth": ["admin"]}, {"cloudSchedulerOidc": []}]


def test_a_body_route_documents_its_model_examples_headers_and_every_error(doc: dict[str, Any]) -> None:
    post = doc["paths"]["/v1/generations"]["post"]
    body = post["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/GenerationCreate"}
    assert set(body["examples"]) == {"image", "video", "with a webhook"}
    assert {"200", "201", "202"} <= set(post["responses"])
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
    errors = {s for s in post["responses"] if int(s) >= 400}
    assert errors == {"400", "401", "403", "409", "413", "415", "429", "500", "503"}
    refs = [p.get("$ref") for p in post["parameters"]]
    assert refs == ["#/components/parameters/IdempotencyKey", "#/components/parameters/RequestId"]
    assert post["responses"]["201"]["headers"]["X-Request-Id"] == {"$ref": "#/components/headers/XRequestId"}


def test_a_path_route_documents_its_variable_and_404(doc: dict[str, Any]) -> None:
    get = doc["paths"]["/v1/generations/{job_id}"]["get"]
    assert get["parameters"][0] == {"name": "job_id", "in": "path", "required": True,
                                    "schema": {"type": "string", "minLength": 1}}
    assert "404" in get["responses"] and "400" not in get["responses"]


def test_error_responses_pin_their_code_and_429_and_503_carry_retry_after(doc: dict[str, Any]) -> None:
    responses = doc["components"]["responses"]
    for name, response in responses.items():
        status = int(name.removeprefix("Error"))
        content = response["content"]["application/json"]
        pinned = content["schema"]["allOf"][1]["properties"]["error"]["properties"]
        assert pinned["code"] == {"const": status}
        assert content["example"]["error"]["code"] == status
        validator = jsonschema_rs.validator_for({**content["schema"], "components": doc["components"]})
        assert validator.is_valid(content["example"]), name
        assert ("Retry-After" in response["headers"]) == (status in (429, 503))


def test_every_error_the_code_can_raise_fits_the_error_schema() -> None:
    for cls in all_error_classes():
        err = cls(retry_after=3) if cls.retryable else cls()
        Error.model_validate(error_body(err, "req-1"))
        assert cls.grpc_status in GRPC_CODES.get(cls.http_status, ()), f"{cls.__name__}: add it to GRPC_CODES"


def test_the_error_schema_refuses_what_the_contract_forbids(doc: dict[str, Any]) -> None:
    schema = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Error", "components": doc["components"]})
    body = error_body(ValidationError.for_field("prompt", "must not be empty"), "req-1")
    info = body["error"]["details"][0]

    assert schema.is_valid(body)
    assert not schema.is_valid({"error": {**body["error"], "details": body["error"]["details"][1:]}})
    assert not schema.is_valid({"error": {**body["error"], "details": [info, *body["error"]["details"]]}})
    assert not schema.is_valid({"error": {**body["error"], "stack_trace": "Traceback ..."}})
    assert not schema.is_valid({"error": {**body["error"], "details": [{**info, "reason": "not upper"}]}})


def test_every_response_example_fits_the_generated_schema() -> None:
    doc = openapi.build_document(sample_router().routes() + batch_routes(), title="s", models=NAMESPACES)
    examples = [(name, content["schema"], content["example"])
                for item in doc["paths"].values() for operation in item.values()
                for name, response in operation["responses"].items()
                for content in response.get("content", {}).values() if "example" in content]
    assert {schema["$ref"].rsplit("/", 1)[-1] for _, schema, _ in examples if "$ref" in schema} >= set(
        openapi.RESPONSE_EXAMPLES)
    for name, schema, example in examples:
        validator = jsonschema_rs.validator_for({**schema, "components": doc["components"]})
        assert validator.is_valid(example), f"example for {name}: {list(validator.iter_errors(example))[:1]}"


def batch_routes() -> list[Any]:
    """`POST /v1/batches`, whose responses carry the Batch example."""
    router = Router()
    router.route("POST", "/v1/batches", scope="batch")(ok)
    return router.routes()


def test_every_request_example_is_a_valid_request() -> None:
    namespaces = openapi._namespaces(NAMESPACES)
    for key, operation in openapi.CATALOG.items():
        for name, example in operation.examples.items():
            assert operation.body, key
            openapi._resolve(operation.body, namespaces).model_validate(example), f"{key} example {name}"


def test_the_document_is_built_once_per_router_and_handed_out_as_copies() -> None:
    router = sample_router()
    first = openapi.document(router, title="sample", models=NAMESPACES)
    first["paths"].clear()
    second = openapi.document(router, title="sample", models=NAMESPACES)

    assert second["paths"] and openapi._encoded(router, "sample", NAMESPACES) is openapi._cache[router]


def test_a_new_router_never_gets_a_document_built_for_an_earlier_one() -> None:
    for _ in range(3):  # a collected router's id() may be reused; its document must not be
        router = sample_router()
        router.route("GET", "/v1/schedules", scope="schedule")(ok)
        assert "/v1/schedules" in openapi.document(router, title="sample", models=NAMESPACES)["paths"]
        del router
        assert "/v1/schedules" not in openapi.document(sample_router(), title="sample", models=NAMESPACES)["paths"]
