"""Is a webhook URL safe to call? Parse its host in every spelling, then judge every address it has.

A URL is judged twice: when it is given (so the caller gets a 400 naming `webhook_url`) and again at
send time on the addresses the name resolves to then, and the sender connects to one of exactly
those addresses (DNS rebinding cannot switch it between the check and the connection).

Hosts are parsed the way browsers and most HTTP clients parse them (the WHATWG URL standard), because
a check that reads `0x7f.1` as a name while the client reads it as 127.0.0.1 is no check at all:
decimal, hex and octal IPv4 in one to four parts, IPv6 in brackets (IPv4-mapped, 6to4, NAT64 and
Teredo addresses are judged by the IPv4 address inside), trailing dots, and no userinfo at all.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
AddressClass = Literal["public", "private", "forbidden"]

# Never a target, whatever WEBHOOK_ALLOW_PRIVATE says: cloud metadata servers and link-local.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.goog", "instance-data"})
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_LENGTH = 2048


class UnsafeUrlError(ValueError):
    """The URL may not be called; the message says why, fit to follow `webhook_url: `."""


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL: where to connect and what to ask for."""

    scheme: Literal["http", "https"]
    host: str  # lower-case name without trailing dot, or the canonical IP literal
    port: int
    path: str  # path and query, never empty
    address: IPAddress | None  # set when the host is an IP literal

    @property
    def host_header(self) -> str:
        """The `Host` header (and the TLS server name, without the port)."""
        host = f"[{self.host}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def classify(address: IPAddress) -> AddressClass:
    """public, private (loopback, RFC 1918, CGNAT, ULA, ...: only with the flag), or forbidden."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return classify(embedded)
    if address in _METADATA_ADDRESSES or address.is_link_local or address.is_multicast or address.is_unspecified:
        return "forbidden"
    if address.is_loopback:
        return "private"
    if address.is_global:
        return "public"
    if address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255"):
        return "forbidden"
    return "private"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, 6to4, NAT64, Teredo), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):  # NAT64, IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_url(url: str, *, allow_private: bool) -> Target:
    """Parse and judge everything that can be judged without DNS; UnsafeUrlError says what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise UnsafeUrlError("must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrlError("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        raise UnsafeUrlError("must be an https URL")
    if "@" in parts.netloc:
        raise UnsafeUrlError("must not contain user information (user:password@)")
    if parts.fragment:
        raise UnsafeUrlError("must not contain a fragment")
    raw_host = parts.netloc.rsplit(":", 1)[0] if port is not None or parts.netloc.endswith(":") else parts.netloc
    host, address = parse_host(raw_host)
    default = 443 if scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = Target(scheme, host, port or default, path, address)  # type: ignore[arg-type]
    if address is not None:
        check_address(address, allow_private=allow_private)
    else:
        check_name(host, allow_private=allow_private)
    return target


def parse_host(raw: str) -> tuple[str, IPAddress | None]:
    """(canonical host, its address if it is an IP literal in any spelling)."""
    if raw.startswith("["):
        if not raw.endswith("]") or "%" in raw:
            raise UnsafeUrlError("has an invalid IPv6 host")
        try:
            v6 = ipaddress.IPv6Address(raw[1:-1])
        except ValueError:
            raise UnsafeUrlError("has an invalid IPv6 host") from None
        return str(v6), v6
    if not raw or "%" in raw:
        raise UnsafeUrlError("must have a host name")
    try:
        host = raw.encode("idna").decode("ascii").lower() if not raw.isascii() else raw.lower()
    except UnicodeError:
        raise UnsafeUrlError("has an invalid host name") from None
    host = host.rstrip(".")
    if not host or len(host) > 253 or any(not label for label in host.split(".")):
        raise UnsafeUrlError("has an invalid host name")
    v4 = parse_ipv4(host)
    return (str(v4), v4) if v4 is not None else (host, None)


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """WHATWG IPv4 parsing: `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` are all 127.0.0.1.

    A host whose last label is a number is an IPv4 address or invalid, never a name.
    """
    labels = host.split(".")
    if not _is_number(labels[-1]):
        return None
    if len(labels) > 4:
        raise UnsafeUrlError("has an invalid IPv4 host")
    try:
        numbers = [_ipv4_number(label) for label in labels]
    except ValueError:
        raise UnsafeUrlError("has an invalid IPv4 host") from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise UnsafeUrlError("has an invalid IPv4 host")
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    return ipaddress.IPv4Address(value)


def _is_number(label: str) -> bool:
    if label.lower().startswith("0x"):
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return label.isdigit() and label.isascii()


def _ipv4_number(label: str) -> int:
    if label.lower().startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label[1:], 8)
    return int(label, 10)


def check_name(host: str, *, allow_private: bool) -> None:
    """Names that are a forbidden or private target whatever DNS says."""
    if host in _METADATA_HOSTS or host.endswith(".metadata.google.internal"):
        raise UnsafeUrlError("must not point at a metadata server")
    if (host == "localhost" or host.endswith(".localhost")) and not allow_private:
        raise UnsafeUrlError("must not point at a loopback, private or link-local address")


def check_address(address: IPAddress, *, allow_private: bool) -> None:
    """UnsafeUrlError unless the address may be called (private ones only with the flag)."""
    kind = classify(address)
    if kind == "forbidden":
        raise UnsafeUrlError("must not point at a link-local, metadata or reserved address")
    if kind == "private" and not allow_private:
        raise UnsafeUrlError("must not point at a loopback, private or link-local address")


def system_resolve(host: str, port: int) -> list[str]:
    """Every address of a name (IPv4 and IPv6), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_checked(target: Target, *, allow_private: bool, resolve: Resolver = system_resolve) -> list[IPAddress]:
    """The addresses to connect to, each checked; UnsafeUrlError if any one is not allowed.

    Every address must pass, not just the first: a name with one public and one private address would
    otherwise reach the private one whenever the client picks it. OSError when the name does not resolve.
    """
    if target.address is not None:
        check_address(target.address, allow_private=allow_private)
        return [target.address]
    check_name(target.host, allow_private=allow_private)
    addresses = []
    for text in resolve(target.host, target.port):
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise UnsafeUrlError("resolves to an address that is not valid") from None
        check_address(address, allow_private=allow_private)
        addresses.append(address)
    if not addresses:
        raise OSError("the host name has no addresses")
    return addresses


def check_url(url: str, *, allow_private: bool, resolve: Resolver = system_resolve) -> Target:
    """The check made when a URL is given: parse, judge, and judge what it resolves to now.

    A name that does not resolve yet passes (it may be set up later; the send-time check decides).
    """
    target = parse_url(url, allow_private=allow_private)
    try:
        resolve_checked(target, allow_private=allow_private, resolve=resolve)
    except OSError:
        pass
    return target
