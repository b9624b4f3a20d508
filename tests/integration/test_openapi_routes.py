"""`GET /openapi.json` on both HTTP functions: it describes exactly the routes each one serves, needs no key,
is the same document a real process serves, and costs a cold start nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import schemathesis

from shared.openapi import openapi_path
from tests.servers import ROOT, make_client, serve

FUNCTIONS = ("generation", "scheduling")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def served_function(function: str) -> tuple[Any, ModuleType]:
    """A test client of the function, and the entry point module it loaded (functions-framework keeps it
    in sys.modules as `main`), whose router is what the function serves."""
    client = make_client(function)
    return client, sys.modules["main"]


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_document_describes_exactly_the_routes_the_function_serves(function: str, db: Any) -> None:
    client, main = served_function(function)
    served = {(method, openapi_path(path)) for method, path in main.router.rules()}
    response = client.get("/openapi.json")

    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert documented(doc) == served
    schemathesis.openapi.from_dict(doc).validate()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_route_states_its_auth_and_every_error_is_the_shared_error(function: str, db: Any) -> None:
    client, main = served_function(function)
    doc = client.get("/openapi.json").get_json()
    for route in main.router.routes():
        operation = doc["paths"][openapi_path(route.path)][route.method.lower()]
        if route.scope is None:
            assert operation["security"] == []
        else:
            scopes = {"tick": ["admin"], "any": []}.get(route.scope, [route.scope])
            assert operation["security"][0] == {"bearerAuth": scopes}
            assert {"401", "403", "429", "503"} <= set(operation["responses"])
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response == {"$ref": f"#/components/responses/Error{status}"}


def test_the_document_needs_no_key_and_a_served_process_serves_the_same_one(db: Any, tmp_path: Path) -> None:
    in_process = make_client("scheduling").get("/openapi.json", headers={"Authorization": "Bearer nonsense"})
    with serve("scheduling", {"DATABASE_URL": db.url}, tmp=tmp_path) as served:
        over_http = requests.get(served.url + "/openapi.json", timeout=10)

    assert in_process.status_code == over_http.status_code == 200
    assert over_http.json() == in_process.get_json()
    assert over_http.headers["X-Request-Id"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_cold_start_imports_nothing_for_the_document(function: str, db: Any) -> None:
    probe = (f"import json, sys; sys.path.insert(0, 'functions/{function}'); import main; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('shared.openapi'))))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=False, env={**os.environ, "DATABASE_URL": db.url, "PYTHONPATH": str(ROOT)})

    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == []
