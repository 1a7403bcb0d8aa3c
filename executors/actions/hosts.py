"""Confine HTTP calls to allowed origins and addresses; read JSON by path.

The allow-list names origins: scheme, host and port
(``http://127.0.0.1:8000``, ``https://api.example.com`` meaning port 443).
A bare legacy entry (``api.example.com``) allows the default ports only:
http on 80 and https on 443, never any other port of that host.

Used by the plan validator (``policy_errors``) and again in the child
before any request leaves, so a URL rendered from the context is checked
as strictly as a literal one. In the child the host is also resolved, and
every address it resolves to must be public, or named as an IP address on
the allow-list (``localhost`` may be loopback): a name that points at
127.0.0.1:6379 or 169.254.169.254 is refused. The request then goes to
the address that was checked (no second lookup a rebinding DNS could
answer differently).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from executors.base import ActionFailed

__all__ = [
    "Origin",
    "Target",
    "check_secret_hosts",
    "check_url",
    "json_path",
    "parse_origins",
    "resolve",
    "target_request",
]

_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")
MISSING = object()
DEFAULT_PORTS = {"http": 80, "https": 443}
SETTING = "AGENTOS_API_ALLOWED_HOSTS"


@dataclass(frozen=True)
class Origin:
    """Where a request goes: scheme, lower-case host, port."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Target:
    """A checked origin and the addresses a request to it may connect to."""

    origin: Origin
    addresses: tuple[str, ...]


def parse_origins(entry: str) -> list[Origin]:
    """Return the origins one allow-list entry allows; ValueError when malformed.

    ``scheme://host[:port]`` is one origin (the scheme's default port when
    none is given); a bare ``host`` is http on 80 and https on 443.
    """
    text = entry.strip().lower()
    if not text:
        return []
    if "://" not in text:
        if not re.fullmatch(r"[a-z0-9.-]+|\[[0-9a-f:.]+\]", text):
            raise ValueError(f"{entry!r}: give scheme://host[:port] or a bare host name")
        host = text.strip("[]")
        return [Origin(scheme, host, port) for scheme, port in DEFAULT_PORTS.items()]
    parts = urlsplit(text)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"{entry!r}: the scheme must be http or https")
    if (
        parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or not parts.hostname
    ):
        raise ValueError(f"{entry!r}: give only scheme://host[:port]")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"{entry!r}: the port is not a number") from None
    return [Origin(parts.scheme, parts.hostname, port)]


def _allowed(entries: Iterable[str]) -> set[Origin]:
    allowed: set[Origin] = set()
    for entry in entries:
        try:
            allowed.update(parse_origins(entry))
        except ValueError as exc:
            raise ActionFailed(f"{SETTING}: {exc}") from None
    return allowed


def url_origin(url: str) -> Origin:
    """Return a URL's origin, or fail naming what is wrong with the URL."""
    if any(ch in url for ch in "\r\n\t\x00 "):
        raise ActionFailed("the URL must not contain whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ActionFailed(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    if parts.username or parts.password:
        raise ActionFailed("credentials in the URL are not allowed; use a named secret")
    host = (parts.hostname or "").lower()
    if not host:
        raise ActionFailed("the URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ActionFailed("the URL's port is not a number") from None
    return Origin(parts.scheme, host, port)


def check_url(url: str, allowed_hosts: Iterable[str], *, setting: str = SETTING) -> Origin:
    """Return the URL's origin if it is on the allow-list, else fail naming why."""
    origin = url_origin(url)
    allowed = _allowed(allowed_hosts)
    if origin in allowed:
        return origin
    listed = ", ".join(sorted(str(o) for o in allowed)) or "none configured"
    same_host = sorted(str(o) for o in allowed if o.host == origin.host)
    if same_host:
        raise ActionFailed(
            f"{origin} is not on {setting}: that host is allowed only at {', '.join(same_host)}"
        )
    raise ActionFailed(f"host {origin.host!r} is not on {setting} ({listed})")


def _address_allowed(address: str, origin: Origin, listed: set[str]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) in listed:
        return True
    if origin.host == "localhost" and ip.is_loopback:
        return True
    return ip.is_global and not ip.is_multicast


def resolve(origin: Origin, allowed_hosts: Iterable[str], *, setting: str = SETTING) -> Target:
    """Resolve an allowed origin; fail unless every address it has is allowed.

    An address is allowed when it is public, or is itself named (as an IP
    address) on the allow-list, or is loopback for ``localhost``.
    """
    listed = set()
    for allowed in _allowed(allowed_hosts):
        try:
            listed.add(str(ipaddress.ip_address(allowed.host)))
        except ValueError:
            pass
    try:
        infos = socket.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ActionFailed(f"host {origin.host!r} could not be resolved: {exc}") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not _address_allowed(address, origin, listed):
            raise ActionFailed(
                f"host {origin.host!r} resolves to {address}, which is not allowed: a name "
                f"must resolve to public addresses, or to IP addresses named on {setting}"
            )
    if not addresses:
        raise ActionFailed(f"host {origin.host!r} has no address")
    return Target(origin, addresses)


def target_request(
    url: str, target: Target, address: str
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Return (url, headers, httpx extensions) that reach a checked address.

    The URL's host is replaced by the address; the Host header and the TLS
    server name stay the original host's, so virtual hosts and certificate
    checks work as before.
    """
    assert address in target.addresses
    origin = target.origin
    parts = urlsplit(url)
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{origin.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    host_header = host if DEFAULT_PORTS[origin.scheme] == origin.port else f"{host}:{origin.port}"
    extensions: dict[str, Any] = {"sni_hostname": origin.host} if origin.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def check_secret_hosts(
    names: Iterable[str], origin: Origin, secret_hosts: Mapping[str, Iterable[str]]
) -> None:
    """Fail unless every named secret is bound to the request's origin.

    A secret is sent only to the origins ``AGENTOS_SECRET_HOSTS_<NAME>``
    lists; a secret bound to nothing is sent nowhere.
    """
    for name in names:
        bound = _allowed(secret_hosts.get(name, ()))
        if origin not in bound:
            where = ", ".join(sorted(str(o) for o in bound)) or "no host"
            raise ActionFailed(
                f"secret {name!r} may not be sent to {origin}: it is bound to {where} "
                f"(AGENTOS_SECRET_HOSTS_{name})"
            )


def json_path(document: Any, path: str) -> Any:
    """Return the value at a simple JSONPath (``$.a.b[0]["c d"]``) or MISSING.

    Only member and index steps: no filters, slices or script expressions.
    """
    if not path.startswith("$"):
        raise ValueError(f"{path!r} must start with '$'")
    rest, position, current = path[1:], 0, document
    while position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if not match:
            raise ValueError(f"{path!r} is not a supported JSONPath (use $.a.b[0])")
        position = match.end()
        name, index, quoted1, quoted2 = match.groups()
        key = name if name is not None else quoted1 if quoted1 is not None else quoted2
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return MISSING
            current = current[int(index)]
        elif isinstance(current, dict) and key in current:
            current = current[key]
        else:
            return MISSING
    return current
