"""Outbound connections for tools, refusing non-public addresses (the SSRF guard).

DESIGN rule: outbound HTTP from tools refuses private, loopback and link-local addresses (after
DNS resolution) unless an operator allows them. The guard sits where httpcore opens TCP
connections, so every connection — the first request and every redirect hop — is checked, and
the socket goes to the very address that was checked: a DNS answer that changes between the
check and the connect (DNS rebinding) cannot slip through because there is no second lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# NAT64 gateways translate 64:ff9b::a.b.c.d to the IPv4 address a.b.c.d (RFC 6052).
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefusedError(Exception):
    """The host resolves to an address tools may not reach. The message names only the host."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"refused to connect to {host}: it resolves to a {reason} address")
        self.host = host
        self.reason = reason


class HostResolutionError(Exception):
    """DNS gave no usable address for the host."""

    def __init__(self, host: str, *, transient: bool) -> None:
        super().__init__(f"could not resolve host {host}")
        self.host = host
        self.transient = transient


def non_public_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public internet address (e.g. "loopback"), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        # These IPv6 forms carry an IPv4 address and reach it; judge the IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour or _nat64_embedded(address)
        if embedded is not None:
            return non_public_reason(embedded)
        if address.is_site_local:  # fec0::/10, deprecated but still routed privately
            return "site-local"
    # Order matters only for the wording: the most specific name comes first.
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        # Catches what the flags above miss, e.g. shared address space 100.64.0.0/10.
        ("non-global", not address.is_global),
    )
    return next((name for name, applies in checks if applies), None)


def _nat64_embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address not in _NAT64_PREFIX:
        return None
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """All addresses of `host` (literal IPs, including odd spellings like 2130706433, too)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        transient = exc.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None))
        raise HostResolutionError(host, transient=transient) from exc
    addresses: dict[IPAddress, None] = {}  # ordered set: keep the resolver's preference order
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            addresses[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    if not addresses:
        raise HostResolutionError(host, transient=False)
    return list(addresses)


class AddressPolicy:
    """Which addresses tools may connect to: public ones, plus what the operator allows."""

    def __init__(
        self, *, allow_private_networks: bool = False, allowed_networks: Sequence[IPNetwork] = ()
    ) -> None:
        self.allow_private_networks = allow_private_networks
        self.allowed_networks = tuple(allowed_networks)

    def refusal_reason(self, address: IPAddress) -> str | None:
        if self.allow_private_networks or any(address in net for net in self.allowed_networks):
            return None
        return non_public_reason(address)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks, then connects to the checked IP.

    httpcore still hands the URL's host name to `start_tls`, so TLS SNI and certificate
    verification use the name, not the IP we connected to.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver = resolve_host,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolver
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._checked_addresses(host, port, resolve_timeout=timeout)
        last_error: Exception | None = None
        for address in addresses:  # like a browser: fall back to the next address of the host
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None  # _checked_addresses never returns an empty list
        raise last_error

    async def _checked_addresses(
        self, host: str, port: int, *, resolve_timeout: float | None
    ) -> list[IPAddress]:
        try:
            async with asyncio.timeout(resolve_timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out resolving {host}") from None
        # Refuse if ANY address is off limits: picking only the good ones would let a
        # hostile DNS answer mix a public decoy with the internal target.
        for address in addresses:
            reason = self._policy.refusal_reason(address)
            if reason is not None:
                raise AddressRefusedError(host, reason)
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefusedError(path, "Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, its connection pool opening connections through our backend."""

    def __init__(
        self,
        network_backend: httpcore.AsyncNetworkBackend,
        *,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits if limits is not None else httpx.Limits()
        # The process's CA bundle settings (SSL_CERT_FILE) still apply, for on-prem CAs.
        ssl_context = httpx.create_ssl_context(trust_env=True)
        # trust_env=False: an HTTP(S)_PROXY from the environment would connect for us, to
        # wherever it likes, bypassing the guard.
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx 0.28 does not accept a network backend, but its transport only delegates to
        # the httpcore pool in `_pool`; replace that pool (the SSRF tests fail if this breaks).
        assert isinstance(self._pool, httpcore.AsyncConnectionPool)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network_backend,
        )


def check_http_url(value: str) -> str:
    """A pydantic validator: an absolute http(s) URL with a host (its address is checked later,
    when connecting)."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        raise ValueError("not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise ValueError("only http and https URLs are allowed")
    if not url.host:
        raise ValueError("the URL has no host")
    return value
