"""The SSRF guard's address classifier and connection pinning, without real network traffic."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxflow.tools import HttpRequestTool, ToolError
from voxflow.tools.network import (
    AddressPolicy,
    AddressRefusedError,
    GuardedNetworkBackend,
    GuardedTransport,
    HostResolutionError,
    IPAddress,
    non_public_reason,
)
from voxflow.tools.registry import ToolRegistry

PUBLIC_IP = ipaddress.ip_address("93.184.216.34")

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "fe80::1": "link-local",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "private",  # reserved 240/4; the stdlib also lists it as private
    "255.255.255.255": "private",
    "100.64.0.1": "non-global",  # shared address space (carrier-grade NAT)
    "100.127.255.254": "non-global",
    "192.0.2.1": "private",  # documentation ranges
    "198.18.0.1": "private",  # benchmarking
    "fec0::1": "site-local",
    "2001:db8::1": "private",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "64:ff9b::7f00:1": "loopback",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe": "link-local",  # NAT64 of 169.254.169.254
    "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::": "private",  # 6to4 of 192.168.1.1
    "::127.0.0.1": "reserved",  # deprecated IPv4-compatible form
}

ALLOWED = [
    "8.8.8.8",
    "93.184.216.34",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED.items())
def test_non_public_addresses_are_refused_with_a_reason(address: str, reason: str) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) is None


NON_PUBLIC_NETWORKS = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "ff00::/8",
]


@given(
    st.sampled_from(NON_PUBLIC_NETWORKS)
    .flatmap(lambda network: st.ip_addresses(network=network))
    .flatmap(lambda address: st.sampled_from(_spellings(address)))
)
def test_every_address_in_a_non_public_range_is_refused(address: IPAddress) -> None:
    assert non_public_reason(address) is not None


def _spellings(address: IPAddress) -> list[IPAddress]:
    """The address, and for IPv4 the IPv6 forms that reach it."""
    if isinstance(address, ipaddress.IPv6Address):
        return [address]
    value = int(address)
    return [
        address,
        ipaddress.IPv6Address((0xFFFF << 32) | value),  # ::ffff:a.b.c.d
        ipaddress.IPv6Address((0x0064FF9B << 96) | value),  # 64:ff9b::a.b.c.d
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80)),  # 2002:aabb:ccdd::
    ]


def test_policy_allows_listed_networks_or_everything() -> None:
    narrow = AddressPolicy(allowed_networks=[ipaddress.ip_network("10.0.0.0/24")])
    assert narrow.refusal_reason(ipaddress.ip_address("10.0.0.7")) is None
    assert narrow.refusal_reason(ipaddress.ip_address("10.0.1.7")) == "private"
    assert narrow.refusal_reason(ipaddress.ip_address("::1")) == "loopback"
    everything = AddressPolicy(allow_private_networks=True)
    assert everything.refusal_reason(ipaddress.ip_address("169.254.169.254")) is None


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the socket layer: records where connections go, then fails TLS."""

    def __init__(self) -> None:
        self.connected_to: list[tuple[str, int]] = []
        self.tls_server_names: list[str | None] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected_to.append((host, port))
        return RecordingStream(self)

    async def sleep(self, seconds: float) -> None:
        pass


class RecordingStream(httpcore.AsyncNetworkStream):
    def __init__(self, backend: RecordingBackend) -> None:
        self._backend = backend

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self._backend.tls_server_names.append(server_hostname)
        raise httpcore.ConnectError("test stops at the TLS handshake")

    async def aclose(self) -> None:
        pass


class FakeDns:
    """A resolver with fixed answers that counts lookups; a rebinding DNS would change them."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self._answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self._answers:
            raise HostResolutionError(host, transient=False)
        return [ipaddress.ip_address(address) for address in self._answers[host]]


def _tool(dns: FakeDns, sockets: RecordingBackend) -> HttpRequestTool:
    backend = GuardedNetworkBackend(AddressPolicy(), resolver=dns, inner=sockets)
    return HttpRequestTool(transport=GuardedTransport(backend))


async def _call(tool: HttpRequestTool, url: str) -> ToolError:
    registry = ToolRegistry()
    registry.register(tool)
    with pytest.raises(ToolError) as caught:
        await registry.call("http.request", {"url": url, "timeout_s": 2})
    await registry.aclose()
    return caught.value


async def test_connects_to_the_checked_ip_and_verifies_tls_against_the_host_name() -> None:
    dns = FakeDns({"api.example.com": [str(PUBLIC_IP)]})
    sockets = RecordingBackend()
    error = await _call(_tool(dns, sockets), "https://api.example.com/orders")
    assert dns.lookups == ["api.example.com"]  # one lookup: nothing to rebind in between
    assert sockets.connected_to == [(str(PUBLIC_IP), 443)]  # the socket goes to the checked IP
    assert sockets.tls_server_names == ["api.example.com"]  # SNI and cert check use the name
    assert error.retryable
    assert "ConnectError" in error.message


async def test_refuses_when_any_resolved_address_is_private() -> None:
    dns = FakeDns({"mixed.example.com": [str(PUBLIC_IP), "10.0.0.5"]})
    sockets = RecordingBackend()
    error = await _call(_tool(dns, sockets), "http://mixed.example.com/")
    assert error.message == (
        "refused to connect to mixed.example.com: it resolves to a private address"
    )
    assert not error.retryable
    assert sockets.connected_to == []


async def test_an_unresolvable_host_is_a_tool_error_naming_it() -> None:
    dns = FakeDns({})
    error = await _call(_tool(dns, RecordingBackend()), "http://nowhere.example/")
    assert error.message == "could not resolve host nowhere.example"


async def test_unix_sockets_are_refused() -> None:
    backend = GuardedNetworkBackend(AddressPolicy(allow_private_networks=True))
    with pytest.raises(AddressRefusedError):
        await backend.connect_unix_socket("/var/run/docker.sock")
