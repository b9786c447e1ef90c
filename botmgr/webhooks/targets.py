"""Where a webhook may point: http or https, to a host whose every address is public.

A receiver inside the service's own network (loopback, private ranges, link-local —
cloud metadata at 169.254.169.254 —, shared, reserved, multicast) would let whoever
registers a webhook make the service send requests there. Such a URL is refused unless
``BOTMGR_WEBHOOK_ALLOW_PRIVATE=1``. The check runs when the endpoint is registered or
changed, and again at every attempt (DNS may have changed since): the attempt then
connects to the very address that was checked (``Target``), so a name that resolves
differently a moment later (DNS rebinding) cannot slip in between check and connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from botmgr.errors import Invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL = 2048


class TargetRefused(Invalid):
    """The URL is malformed, does not resolve, or points into a private network."""


@dataclass(frozen=True, slots=True)
class Target:
    """The checked URL, and the address the attempt connects to."""

    url: SplitResult
    address: Address

    @property
    def host(self) -> str:
        return self.url.hostname or ""

    @property
    def port(self) -> int:
        return self.url.port or (443 if self.url.scheme == "https" else 80)

    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name (the Host header
        and TLS's server name keep the name: ``sender``)."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        path = self.url.path or "/"
        query = f"?{self.url.query}" if self.url.query else ""
        return f"{self.url.scheme}://{host}:{self.port}{path}{query}"

    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> SplitResult:
    """The URL's parts, or TargetRefused saying what is wrong with it."""
    if len(url) > MAX_URL:
        raise TargetRefused(f"url: longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise TargetRefused(f"url: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("url: only http and https are allowed")
    if not parts.hostname:
        raise TargetRefused("url: no host")
    if parts.username is not None or parts.password is not None:
        # A secret in the URL would be shown wherever the URL is: the signature
        # authenticates the service instead.
        raise TargetRefused("url: credentials in the URL are not allowed (use the secret)")
    if parts.fragment:
        raise TargetRefused("url: a fragment is never sent; leave it out")
    return parts


def private(address: Address) -> bool:
    """Not an address on the public internet (or an IPv4 one mapped into IPv6 that is
    not)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return private(address.ipv4_mapped)
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
    )


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The URL checked and resolved: every address its host has must be public (unless
    ``allow_private``); the first is the one to connect to."""
    parts = parse(url)
    host = parts.hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, ValueError) as exc:  # UnicodeError, an embedded NUL …
            raise TargetRefused(f"url: the host {host!r} does not resolve ({exc})") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
    if not addresses:
        raise TargetRefused(f"url: the host {host!r} has no address")
    if not allow_private:
        refused = [a for a in addresses if private(a)]
        if refused:
            raise TargetRefused(
                f"url: {host} resolves to {refused[0]}, a loopback, private, link-local or "
                "reserved address (BOTMGR_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
            )
    return Target(parts, addresses[0])
