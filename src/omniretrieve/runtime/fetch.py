"""Fetching images by URL without becoming a proxy into the server's network (SSRF).

Only http and https; the host is resolved once and every address it resolves to must be public
(no loopback, private, link-local, multicast, reserved or unspecified addresses, IPv4 or IPv6);
the connection goes to the checked address (no second DNS lookup that could answer otherwise);
redirects are followed by hand, each hop checked the same way; a byte cap applies, and two
clocks: ``timeout_s`` for each connect and read, ``deadline_s`` for the whole fetch (redirects
and body included), so a server that sends a byte at a time cannot hold a fetch for minutes.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from omniretrieve.errors import InputError, LimitExceededError

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
"""6to4: the IPv4 address rides in bits 16-48; it may name a private or loopback host."""
SITE_LOCAL = ipaddress.ip_network("fec0::/10")
"""Deprecated IPv6 site-local addresses: private, although Python calls them global."""
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in SIX_TO_FOUR or address in SITE_LOCAL or address in NAT64:
            return False  # wrapped IPv4 or private by definition: never fetched
        if address.teredo is not None:
            return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float = 10.0
    """Each connect and each read."""
    deadline_s: float = 20.0
    """The whole fetch: every redirect and the whole body."""
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 3
    allowed_networks: tuple[str, ...] = field(default_factory=tuple)
    """Networks allowed although not public (e.g. an internal image store); empty by default."""
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    """Host names fetched from whatever they resolve to (a deployment's own image hosts,
    ``--allow-image-host``); every other host keeps the public-address rule."""

    def allows(self, address: IPAddress) -> bool:
        if is_public(address):
            return True
        return any(address in ipaddress.ip_network(net) for net in self.allowed_networks)


def check_url(
    url: str, policy: FetchPolicy, *, field: str, resolver: Resolver = system_resolver
) -> tuple[str, int, str]:
    """Validate ``url`` and return (host, port, the address to connect to), or raise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InputError(
            f"{field}: only http(s) image URLs are fetched, not {parts.scheme!r}", field=field
        )
    host = parts.hostname
    if not host:
        raise InputError(f"{field}: the URL has no host", field=field)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InputError(f"{field}: the URL's port is invalid", field=field) from exc
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
        except (OSError, UnicodeError) as exc:
            raise InputError(f"{field}: the host {host!r} cannot be resolved", field=field) from exc
    if not addresses:
        raise InputError(f"{field}: the host {host!r} cannot be resolved", field=field)
    named = host.lower().rstrip(".") in {h.lower().rstrip(".") for h in policy.allowed_hosts}
    refused = [] if named else [a for a in addresses if not policy.allows(a)]
    if refused:
        raise InputError(
            f"{field}: refusing to fetch from a non-public address ({refused[0]}): loopback, "
            "private, link-local and reserved addresses are never fetched",
            field=field,
        )
    return host, port, str(addresses[0])


def fetch_url(
    url: str,
    policy: FetchPolicy,
    *,
    field: str = "image",
    resolver: Resolver = system_resolver,
) -> bytes:
    """GET ``url`` under ``policy``; returns the body bytes or raises InputError/LimitExceeded."""
    import httpx

    deadline = time.monotonic() + policy.deadline_s
    current = url
    for _ in range(policy.max_redirects + 1):
        host, port, address = check_url(current, policy, field=field, resolver=resolver)
        parts = urlsplit(current)
        pinned = parts._replace(
            netloc=f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        ).geturl()
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "omniretrieve"}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            timeout = min(policy.timeout_s, _left(deadline, policy, field))
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
                with client.stream(
                    "GET", pinned, headers=headers, extensions=extensions
                ) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        current = urljoin(current, location)
                        continue
                    if response.status_code != 200:
                        raise InputError(
                            f"{field}: fetching the image returned HTTP {response.status_code}",
                            field=field,
                        )
                    return _read_capped(
                        response.iter_bytes(), policy.max_bytes, field, deadline, policy
                    )
        except httpx.HTTPError as exc:
            raise InputError(
                f"{field}: the image could not be fetched ({type(exc).__name__})", field=field
            ) from exc
    raise InputError(f"{field}: more than {policy.max_redirects} redirects", field=field)


def _left(deadline: float, policy: FetchPolicy, field: str) -> float:
    """Seconds left before the fetch's deadline, or an error once it passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise InputError(
            f"{field}: fetching the image took longer than {policy.deadline_s:g} s", field=field
        )
    return left


def _read_capped(
    chunks: Iterable[bytes], limit: int, field: str, deadline: float, policy: FetchPolicy
) -> bytes:
    body = bytearray()
    for chunk in chunks:
        _left(deadline, policy, field)
        body.extend(chunk)
        if len(body) > limit:
            raise LimitExceededError(
                f"{field}: the image is larger than {limit} bytes", field=field
            )
    return bytes(body)
