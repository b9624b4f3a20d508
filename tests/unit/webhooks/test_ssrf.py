"""Webhook URLs: every spelling of a forbidden host is refused, and every address a name has is judged."""

from __future__ import annotations

import ipaddress

import pytest

from shared.webhooks.ssrf import UnsafeUrlError, check_url, classify, parse_url, resolve_checked

LOOPBACK_SPELLINGS = [
    "https://127.0.0.1/", "https://2130706433/", "https://0x7f000001/", "https://0x7f.1/", "https://0177.0.0.1/",
    "https://127.1/", "https://127.0.0.1./", "https://[::1]/", "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/", "https://[0:0:0:0:0:ffff:127.0.0.1]/", "https://[::127.0.0.1]/",
    "https://[2002:7f00:1::]/", "https://localhost/", "https://LOCALHOST./", "https://a.b.localhost/",
    "https://１２７.0.0.1/",  # full-width digits normalise to 127.0.0.1
]
PRIVATE = ["https://10.0.0.1/", "https://172.16.5.4/", "https://192.168.1.1/", "https://100.64.0.1/",
           "https://[fd12:3456::1]/", "https://[fc00::1]/", "https://0xa000001/", "https://012.0.0.1/"]
NEVER = [
    "https://169.254.169.254/computeMetadata/v1/", "https://169.254.169.254./", "https://2852039166/",
    "https://0xa9fea9fe/", "https://0251.0376.0251.0376/", "https://169.254.43518/",
    "https://[::ffff:169.254.169.254]/", "https://[::ffff:a9fe:a9fe]/", "https://[64:ff9b::a9fe:a9fe]/",
    "https://[fd00:ec2::254]/", "https://[fe80::1]/", "https://metadata.google.internal/",
    "https://METADATA.google.internal./", "https://metadata/", "https://169.254.1.1/", "https://0.0.0.0/",
    "https://0/", "https://[::]/", "https://224.0.0.1/", "https://255.255.255.255/",
]
MALFORMED = [
    "ftp://example.com/", "https://user:pass@example.com/", "https://example.com@169.254.169.254/",
    "https://169.254.169.254@example.com/", "https://example.com#@127.0.0.1", "https://exa mple.com/",
    "https:///path", "https://[fe80::1%25eth0]/", "https://1.2.3.4.5/", "https://256.0.0.1/",
    "https://example.com\\@127.0.0.1/", "https://ex%61mple.com/", "https://example.com:99999/",
    "javascript:alert(1)", "https://" + "a" * 2100 + ".com/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + PRIVATE)
def test_loopback_and_private_hosts_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(UnsafeUrlError, match="loopback, private"):
        parse_url(url, allow_private=False)


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + PRIVATE)
def test_the_development_flag_admits_loopback_and_private_hosts(url: str) -> None:
    assert parse_url(url, allow_private=True).port == 443


@pytest.mark.parametrize("url", NEVER)
@pytest.mark.parametrize("allow_private", [False, True])
def test_link_local_and_metadata_targets_never_pass(url: str, allow_private: bool) -> None:
    with pytest.raises(UnsafeUrlError, match=r"link-local|metadata"):
        parse_url(url, allow_private=allow_private)


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_and_userinfo_tricks_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        parse_url(url, allow_private=True)


def test_http_only_with_the_development_flag() -> None:
    with pytest.raises(UnsafeUrlError, match="https"):
        parse_url("http://example.com/hook", allow_private=False)
    assert parse_url("http://127.0.0.1:9000/hook", allow_private=True).port == 9000


def test_a_public_url_keeps_its_name_port_path_and_query() -> None:
    target = parse_url("https://Hooks.Example.COM.:8443/in/genmedia?token=abc", allow_private=False)
    assert (target.host, target.port, target.path) == ("hooks.example.com", 8443, "/in/genmedia?token=abc")
    assert target.host_header == "hooks.example.com:8443"
    assert parse_url("https://8.8.8.8", allow_private=False).path == "/"


def test_every_resolved_address_must_pass_not_just_the_first() -> None:
    target = parse_url("https://mixed.example/", allow_private=False)
    with pytest.raises(UnsafeUrlError):
        resolve_checked(target, allow_private=False, resolve=lambda host, port: ["8.8.8.8", "10.1.2.3"])
    assert resolve_checked(target, allow_private=False, resolve=lambda host, port: ["8.8.8.8", "1.1.1.1"]) == [
        ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("1.1.1.1")]


def test_a_name_that_resolves_to_metadata_is_refused_even_when_private_is_allowed() -> None:
    with pytest.raises(UnsafeUrlError, match="link-local"):
        check_url("https://rebind.example/", allow_private=True, resolve=lambda h, p: ["169.254.169.254"])
    with pytest.raises(UnsafeUrlError, match="loopback"):
        check_url("https://rebind.example/", allow_private=False, resolve=lambda h, p: ["::ffff:127.0.0.1"])


def test_a_name_that_does_not_resolve_yet_is_accepted_and_judged_again_at_send_time() -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    assert check_url("https://not-yet.example/", allow_private=False, resolve=nxdomain).host == "not-yet.example"


@pytest.mark.parametrize(("address", "expected"), [
    ("8.8.8.8", "public"), ("2001:4860:4860::8888", "public"), ("127.0.0.1", "private"),
    ("100.64.0.1", "private"), ("fd00::1", "private"), ("169.254.169.254", "forbidden"),
    ("fe80::1", "forbidden"), ("::ffff:8.8.8.8", "public"), ("2002:a9fe:a9fe::", "forbidden"),
])
def test_classify(address: str, expected: str) -> None:
    assert classify(ipaddress.ip_address(address)) == expected
