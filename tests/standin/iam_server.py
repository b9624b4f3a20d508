"""IAM Credentials and OAuth stand-ins for signing Cloud Storage URLs without Google.

google-cloud-storage signs a V4 URL through `https://iamcredentials.googleapis.com/v1/projects/-/
serviceAccounts/{email}:signBlob` (an address it builds itself), with an access token from the
runtime's credentials. Here both are real HTTP exchanges with this process:

an HTTPS proxy (`HTTPS_PROXY`) answers `CONNECT` to `oauth2.googleapis.com` (the token refresh of an
`authorized_user` credentials file) and `iamcredentials.googleapis.com` (`:signBlob`) itself, with a
certificate from a throwaway CA (`REQUESTS_CA_BUNDLE`), and serves both inside the tunnel.

Every call is recorded, so tests and benchmarks count the Google API calls a download costs.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
import ssl
import threading
from pathlib import Path
from typing import Any

from tests.standin.http_base import BackgroundServer, Incoming, Reply, _Handler

IAM_HOST = "iamcredentials.googleapis.com"
TOKEN_HOST = "oauth2.googleapis.com"  # google-auth always sends authorized_user refreshes here
HOSTS = (IAM_HOST, TOKEN_HOST)
TOKEN = "ya29.standin-access-token"
_SIGN = re.compile(r"^/v1/projects/-/serviceAccounts/(?P<email>[^/:]+):signBlob$")
SIGNING_KEY = b"iam-standin-signing-key"


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf for IAM_HOST signed by it: (ca.pem, leaf.pem, leaf-key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "genmedia test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, IAM_HOST)]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return paths


class IamStandIn:
    """The token endpoint and signBlob; `calls` lists (kind, detail) of every Google call received."""

    def __init__(self) -> None:
        self.url = ""
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for k, _ in self.calls if k == kind)

    def handle(self, request: Incoming) -> Reply:
        if request.method == "POST" and request.path == "/token":
            with self._lock:
                self.calls.append(("token", ""))
            return Reply.json(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        found = _SIGN.match(request.path)
        if request.method == "POST" and found:
            with self._lock:
                self.calls.append(("signBlob", found["email"]))
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return Reply.json(401, {"error": {"code": 401, "message": "bad token"}})
            payload = base64.b64decode((request.json() or {}).get("payload", ""))
            signed = hmac.new(SIGNING_KEY, payload, hashlib.sha256).digest()
            return Reply.json(200, {"keyId": "standin", "signedBlob": base64.b64encode(signed).decode()})
        return Reply.json(404, {"error": {"code": 404, "message": f"unsupported {request.method} {request.path}"}})


class _ProxyHandler(_Handler):
    """Plain requests go to the app; CONNECT to IAM_HOST is answered here, over TLS, by the same app."""

    def do_CONNECT(self) -> None:
        if self.path.rsplit(":", 1)[0] not in HOSTS:
            self.send_error(403, "only Google's token and IAM endpoints are proxied")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        context: ssl.SSLContext = self.server.tls  # type: ignore[attr-defined]
        try:
            tunnel = context.wrap_socket(self.connection, server_side=True)
            _Handler(tunnel, self.client_address, self.server)
        except (ssl.SSLError, OSError):
            pass
        self.close_connection = True


def start(folder: Path) -> tuple[IamStandIn, BackgroundServer, dict[str, str]]:
    """The stand-in, its server, and the environment that routes Google auth and signBlob to it."""
    standin = IamStandIn()
    server = BackgroundServer(standin)
    server._server.RequestHandlerClass = _ProxyHandler
    ca, leaf, key = _certificates(folder)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(leaf, key)
    server._server.tls = tls  # type: ignore[attr-defined]
    server.start()
    standin.url = server.url
    credentials = folder / "adc.json"
    credentials.write_text(json.dumps({"type": "authorized_user", "client_id": "standin", "client_secret": "x",
                                       "refresh_token": "standin-refresh"}))
    env = {"HTTPS_PROXY": server.url, "NO_PROXY": "127.0.0.1,localhost", "REQUESTS_CA_BUNDLE": str(ca),
           "GOOGLE_APPLICATION_CREDENTIALS": str(credentials)}
    return standin, server, env


def env_for_signing(extra: dict[str, Any] | None = None) -> dict[str, str]:
    """Settings a function needs to sign Cloud Storage links as a named account."""
    return {"DOWNLOAD_SIGNER_SERVICE_ACCOUNT": "generation@genmedia-test.iam.gserviceaccount.com", **(extra or {})}
