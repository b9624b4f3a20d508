"""One POST to a checked address: pinned to it (Host and TLS name kept), no redirects, one deadline."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.webhooks import ssrf, transport
from tests.standin.http_base import BackgroundServer
from tests.standin.webhook_receiver import Scripted, WebhookReceiver, running_receiver

LOOPBACK = [ipaddress.ip_address("127.0.0.1")]


def _target(url: str) -> ssrf.Target:
    return ssrf.parse_url(url, allow_private=True)


def test_posts_to_the_checked_address_with_the_original_host() -> None:
    with running_receiver() as (receiver, url):
        port = url.rsplit(":", 1)[1]
        # The name resolves nowhere: reaching the receiver proves we connected to the address given.
        target = _target(f"http://hooks.invalid:{port}/in?x=1")
        answer = transport.post(target, LOOPBACK, {"webhook-id": "msg_1"}, b'{"a":1}', timeout=5)
        assert answer.status == 200
        got = receiver.wait_for(1)[0].request
        assert got.headers["host"] == f"hooks.invalid:{port}"
        assert (got.path, got.query, got.body, got.headers["webhook-id"]) == ("/in", {"x": ["1"]}, b'{"a":1}', "msg_1")


def test_redirects_are_not_followed() -> None:
    with running_receiver() as (receiver, url):
        receiver.default = Scripted(302, {"Location": "http://169.254.169.254/computeMetadata/v1/"})
        answer = transport.post(_target(url + "/"), LOOPBACK, {}, b"{}", timeout=5)
        assert answer.status == 302 and len(receiver.received) == 1


def test_retry_after_is_read() -> None:
    with running_receiver() as (receiver, url):
        receiver.default = Scripted(429, {"Retry-After": "42"})
        assert transport.post(_target(url + "/"), LOOPBACK, {}, b"{}", timeout=5) == transport.Answer(429, 42.0)


def test_a_receiver_that_hangs_times_out_at_the_deadline() -> None:
    with running_receiver() as (receiver, url):
        receiver.default = Scripted(200, delay=5)
        with pytest.raises(TimeoutError):  # without the deadline this would be its 200, 5 s later
            transport.post(_target(url + "/"), LOOPBACK, {}, b"{}", timeout=0.5)


class _Trickle:
    """A server that sends its status line one byte every 0.2 s: each read is quick, the whole is not."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
                conn.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass
        finally:
            conn.close()


def test_a_receiver_that_trickles_bytes_cannot_hold_the_sender_past_the_deadline() -> None:
    trickle = _Trickle()
    # Each byte comes well within the timeout: only an overall deadline raises TimeoutError here (without
    # one, the trickle would end after 43 s in a connection closed mid-header, a different error).
    with pytest.raises(TimeoutError):
        transport.post(_target(f"http://127.0.0.1:{trickle.port}/"), LOOPBACK, {}, b"{}", timeout=1.0)
    trickle.sock.close()


def test_a_refused_connection_is_an_os_error() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OSError):
        transport.post(_target(f"http://127.0.0.1:{port}/"), LOOPBACK, {}, b"{}", timeout=2)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for hooks.test (and its key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_receiver(tls_files: tuple[Path, Path]) -> Iterator[tuple[WebhookReceiver, int, list[str | None]]]:
    """An https receiver for hooks.test on 127.0.0.1, recording the server name each client asked for."""
    cert, key = tls_files
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc]
    app = WebhookReceiver()
    server = BackgroundServer(app)
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
    server.start()
    yield app, int(server.url.rsplit(":", 1)[1]), names
    server.stop()


def test_tls_names_the_checked_host_and_verifies_its_certificate(
    tls_files: tuple[Path, Path], tls_receiver: tuple[WebhookReceiver, int, list[str | None]],
) -> None:
    receiver, port, names = tls_receiver
    trust = ssl.create_default_context(cafile=str(tls_files[0]))
    answer = transport.post(_target(f"https://hooks.test:{port}/x"), LOOPBACK, {}, b"{}", timeout=5, tls=trust)
    assert answer.status == 200 and names == ["hooks.test"]
    # Another name on the same address: the certificate does not match, nothing is sent.
    with pytest.raises(ssl.SSLCertVerificationError):
        transport.post(_target(f"https://other.test:{port}/x"), LOOPBACK, {}, b"{}", timeout=5, tls=trust)
    assert len(receiver.received) == 1
