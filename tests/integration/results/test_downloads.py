"""Download links: every output carries one; anyone can GET it with no key until it expires; a changed,
expired or foreign link is a 403 in the error format and never the file; in the cloud it redirects to a
V4-signed Cloud Storage URL signed through IAM signBlob, one Google call per download and none per link."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared import config
from shared.results import gcs_links
from shared.results.downloads import mint_url
from tests.servers import make_client, serve
from tests.standin import iam_server
from tests.standin.iam_server import IamStandIn

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def local_env(db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path / "media"))
    config.get_settings.cache_clear()
    return tmp_path / "media"


def _image(client: Any) -> dict[str, Any]:
    response = client.post("/v1/generations", json={"kind": "image", "prompt": "a red fox", "number_of_outputs": 2,
                                                   "model": "imagen-4.0-generate-001"})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def _path_and_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_every_output_carries_a_url_that_serves_the_image_with_no_key(local_env: Path, api_key: str) -> None:
    client = make_client("generation", key=api_key)
    job = _image(client)
    anonymous = make_client("generation")
    for output in job["outputs"]:
        assert output["url"].startswith("http://localhost/v1/files/images/")
        response = anonymous.get(_path_and_query(output["url"]))
        assert response.status_code == 200, response.get_json()
        assert response.mimetype == "image/png" and response.data.startswith(PNG)
        assert response.data == Path(urllib.parse.urlsplit(output["uri"]).path).read_bytes()
    again = client.get(f"/v1/generations/{job['id']}").get_json()
    assert all(o["url"] for o in again["outputs"])


def test_urls_are_never_stored(local_env: Path, api_key: str, db: Any) -> None:
    import sqlalchemy as sa

    _image(make_client("generation", key=api_key))
    engine = sa.create_engine(db.url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT outputs FROM jobs")).scalar_one()
    engine.dispose()
    assert [sorted(o) for o in stored] == [["mime_type", "uri"]] * 2


def _mutations(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    signature, expires = query["signature"], query["expires"]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    middle = signature[:10] + ("x" if signature[10] != "x" else "y") + signature[11:]
    path = parts.path
    other = path.replace("/0.png", "/1.png") if path.endswith("/0.png") else path.replace("/1.png", "/0.png")
    return [
        f"{path}?expires={expires}&signature={flipped}",
        f"{path}?expires={expires}&signature={middle}",
        f"{path}?expires={int(expires) + 1}&signature={signature}",
        f"{other}?expires={expires}&signature={signature}",
        f"{path}?expires={expires}",
        f"{path}",
        f"{path}?expires=abc&signature={signature}",
        f"{path}/../../../etc/passwd?expires={expires}&signature={signature}",
    ]


def test_a_changed_url_is_a_403_in_the_error_format_never_the_file(local_env: Path, api_key: str) -> None:
    job = _image(make_client("generation", key=api_key))
    anonymous = make_client("generation")
    for changed in _mutations(job["outputs"][0]["url"]):
        response = anonymous.get(changed)
        assert response.status_code == 403, (changed, response.status_code)
        error = response.get_json()["error"]
        assert error["status"] == "PERMISSION_DENIED"
        assert error["details"][0]["reason"] == "SIGNATURE_INVALID"
        assert PNG not in response.data


def test_an_expired_url_is_a_403(local_env: Path, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _image(make_client("generation", key=api_key))
    with make_client("generation").application.test_request_context():
        stale = mint_url(job["outputs"][0]["uri"], now=time.time() - 901)
    assert stale is not None
    response = make_client("generation").get(_path_and_query(stale))
    assert response.status_code == 403
    assert response.get_json()["error"]["details"][0]["reason"] == "SIGNATURE_EXPIRED"


def test_a_url_from_another_deployment_is_a_403(local_env: Path, api_key: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    job = _image(make_client("generation", key=api_key))
    monkeypatch.setenv("API_KEY_PEPPER", "another-deployments-pepper-" + "y" * 20)
    config.get_settings.cache_clear()
    response = make_client("generation").get(_path_and_query(job["outputs"][0]["url"]))
    assert response.status_code == 403


def test_the_ttl_setting_bounds_the_link(local_env: Path, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOWNLOAD_URL_TTL_SECONDS", "60")
    config.get_settings.cache_clear()
    job = _image(make_client("generation", key=api_key))
    expires = int(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(job["outputs"][0]["url"]).query))["expires"])
    assert 0 < expires - time.time() <= 60


def test_the_base_url_setting_and_the_forwarded_scheme_shape_the_link(local_env: Path, api_key: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client("generation", key=api_key)
    job = _image(client)
    forwarded = client.get(f"/v1/generations/{job['id']}", headers={"X-Forwarded-Proto": "https"}).get_json()
    assert forwarded["outputs"][0]["url"].startswith("https://localhost/v1/files/")
    monkeypatch.setenv("DOWNLOAD_BASE_URL", "https://media.example.com/")
    config.get_settings.cache_clear()
    configured = client.get(f"/v1/generations/{job['id']}").get_json()
    assert configured["outputs"][0]["url"].startswith("https://media.example.com/v1/files/images/")


@pytest.fixture
def iam_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[IamStandIn, dict[str, str]]]:
    standin, server, env = iam_server.start(tmp_path)
    env = {**env, **iam_server.env_for_signing()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    gcs_links.reset_gcs_links()
    yield standin, env
    gcs_links.reset_gcs_links()
    server.stop()


def test_in_the_cloud_a_download_redirects_to_a_v4_signed_url_for_one_signblob(
    vertex_env: dict[str, str], iam_standin: tuple[IamStandIn, dict[str, str]], api_key: str, gcs_standin: Any,
    vertex_standin: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    iam, env = iam_standin
    vertex_standin.queue("success-bytes", times=3)  # so the outputs land in the Cloud Storage stand-in
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", env["GOOGLE_APPLICATION_CREDENTIALS"])
    config.get_settings.cache_clear()
    client = make_client("generation", key=api_key)
    jobs = [_image(client) for _ in range(3)]
    listed = [client.get(f"/v1/generations/{j['id']}").get_json() for j in jobs]
    assert iam.count("signBlob") == 0 and iam.count("token") == 0  # minting 12 links cost nothing

    anonymous = make_client("generation")
    url = listed[0]["outputs"][0]["url"]
    response = anonymous.get(_path_and_query(url))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{gcs_standin.url}/genmedia-test-outputs/images/")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Credential"].startswith("generation@genmedia-test.iam.gserviceaccount.com/")
    assert iam.count("signBlob") == 1
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200 and fetched.content.startswith(PNG)
    anonymous.get(_path_and_query(listed[1]["outputs"][1]["url"]))
    assert iam.count("signBlob") == 2 and iam.count("token") == 1  # the token is reused


def test_a_served_process_redirects_without_credentials_in_the_request(
    vertex_env: dict[str, str], iam_standin: tuple[IamStandIn, dict[str, str]], api_key: str, db: Any,
    tmp_path: Path, vertex_standin: Any,
) -> None:
    iam, env = iam_standin
    vertex_standin.queue("success-bytes")
    with serve("generation", {**vertex_env, **env, "DATABASE_URL": db.url}, tmp=tmp_path) as served:
        job = requests.post(f"{served.url}/v1/generations", json={"kind": "image", "prompt": "a kite"},
                            headers={"Authorization": f"Bearer {api_key}"}, timeout=30).json()
        url = job["outputs"][0]["url"]
        assert url.startswith(served.url + "/v1/files/")
        followed = requests.get(url, timeout=30)
        assert followed.status_code == 200 and followed.content.startswith(PNG)
        tampered = requests.get(url.replace("expires=", "expires=1"), timeout=30, allow_redirects=False)
        assert tampered.status_code == 403 and tampered.json()["error"]["code"] == 403
    assert iam.count("signBlob") == 1
