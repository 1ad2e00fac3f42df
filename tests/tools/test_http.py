"""http.request: responses mocked with respx, and the SSRF guard against a real local server."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from voxflow.tools import ToolError, ToolRegistry, default_registry

API = "https://api.example.com"
MiB = 1024 * 1024


@pytest.fixture
async def registry() -> AsyncIterator[ToolRegistry]:
    tools = default_registry()
    yield tools
    await tools.aclose()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


class CountingStream(httpx.AsyncByteStream):
    """A response body served chunk by chunk, counting how many chunks were asked for."""

    def __init__(self, chunk: bytes, count: int, pause_s: float = 0.0) -> None:
        self._chunk, self._count, self._pause_s = chunk, count, pause_s
        self.served = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self._count):
            await asyncio.sleep(self._pause_s)
            self.served += 1
            yield self._chunk


# --- responses (respx stands in for the network, so the address guard is not involved) ---


async def test_json_response_is_parsed(registry: ToolRegistry, api: respx.MockRouter) -> None:
    api.get("/orders/42").respond(json={"id": 42, "status": "shipped"})
    result = await registry.call("http.request", {"url": f"{API}/orders/42"})
    assert result == {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": {"id": 42, "status": "shipped"},
    }


async def test_text_response_stays_text(registry: ToolRegistry, api: respx.MockRouter) -> None:
    api.get("/hello").respond(
        text="grüß dich", headers={"content-type": "text/plain; charset=utf-8"}
    )
    result = await registry.call("http.request", {"url": f"{API}/hello"})
    assert isinstance(result, dict)
    assert result["body"] == "grüß dich"


async def test_json_with_a_suffix_media_type_is_parsed(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    api.get("/problem").respond(
        400, content=b'{"title": "bad"}', headers={"content-type": "application/problem+json"}
    )
    result = await registry.call("http.request", {"url": f"{API}/problem"})
    assert result == {
        "status": 400,
        "headers": {"content-type": "application/problem+json"},
        "body": {"title": "bad"},
    }


@pytest.mark.parametrize("content", [b"{not json", b'{"x": NaN}', b"[" * 100_000])
async def test_broken_json_is_returned_as_text(
    registry: ToolRegistry, api: respx.MockRouter, content: bytes
) -> None:
    api.get("/broken").respond(content=content, headers={"content-type": "application/json"})
    result = await registry.call("http.request", {"url": f"{API}/broken"})
    assert isinstance(result, dict)
    assert result["body"] == content.decode()


async def test_post_sends_the_json_body(registry: ToolRegistry, api: respx.MockRouter) -> None:
    route = api.post("/orders").respond(201, json={"id": 7})
    result = await registry.call(
        "http.request",
        {"method": "POST", "url": f"{API}/orders", "json": {"item": "pizza", "qty": 2}},
    )
    assert isinstance(result, dict)
    assert (result["status"], result["body"]) == (201, {"id": 7})
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {"item": "pizza", "qty": 2}


async def test_error_statuses_are_results(registry: ToolRegistry, api: respx.MockRouter) -> None:
    api.get("/missing").respond(404, text="no such order")
    api.get("/down").respond(503, json={"error": "maintenance"})
    missing = await registry.call("http.request", {"url": f"{API}/missing"})
    down = await registry.call("http.request", {"url": f"{API}/down"})
    assert isinstance(missing, dict)
    assert isinstance(down, dict)
    assert (missing["status"], missing["body"]) == (404, "no such order")
    assert (down["status"], down["body"]) == (503, {"error": "maintenance"})


async def test_headers_go_out_and_only_allow_listed_ones_come_back(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    route = api.get("/me").respond(
        json={},
        headers={"Set-Cookie": "session=secret", "ETag": '"v1"', "Retry-After": "30"},
    )
    result = await registry.call(
        "http.request",
        {"url": f"{API}/me", "headers": {"Authorization": "Bearer t0k", "X-Key": "k1"}},
    )
    sent = route.calls.last.request.headers
    assert (sent["authorization"], sent["x-key"]) == ("Bearer t0k", "k1")
    assert sent["accept-encoding"] == "gzip, deflate"
    assert isinstance(result, dict)
    assert result["headers"] == {
        "content-type": "application/json",
        "etag": '"v1"',
        "retry-after": "30",
    }


async def test_gzip_bodies_are_decoded(registry: ToolRegistry, api: respx.MockRouter) -> None:
    api.get("/zipped").respond(
        content=gzip.compress(b'{"ok": true}'),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    result = await registry.call("http.request", {"url": f"{API}/zipped"})
    assert isinstance(result, dict)
    assert result["body"] == {"ok": True}


async def test_read_timeout_is_a_retryable_error(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    api.get("/slow").mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(ToolError) as caught:
        await registry.call("http.request", {"url": f"{API}/slow", "timeout_s": 2})
    assert caught.value.message == "request to api.example.com timed out after 2 s"
    assert caught.value.retryable


async def test_the_deadline_covers_a_slowly_dripping_body(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    api.get("/drip").respond(stream=CountingStream(b"x", count=100, pause_s=0.05))
    with pytest.raises(ToolError) as caught:
        await registry.call("http.request", {"url": f"{API}/drip", "timeout_s": 0.2})
    assert caught.value.retryable
    assert "timed out" in caught.value.message


async def test_connection_failure_is_a_retryable_error(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    api.get("/").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(ToolError) as caught:
        await registry.call("http.request", {"url": f"{API}/?token=s3cret"})
    assert caught.value.message == "request to api.example.com failed: ConnectError"
    assert caught.value.retryable


async def test_reading_stops_past_one_mebibyte(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    chunk = b"x" * (64 * 1024)
    body = CountingStream(chunk, count=10 * 16)  # 10 MiB if read to the end
    api.get("/huge").respond(stream=body)
    with pytest.raises(ToolError) as caught:
        await registry.call("http.request", {"url": f"{API}/huge"})
    assert caught.value.message == "response from api.example.com is larger than 1 MiB"
    assert not caught.value.retryable
    assert body.served == 17  # 16 chunks fill 1 MiB exactly; the 17th is one too many


async def test_a_declared_length_over_the_cap_is_refused_unread(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    body = CountingStream(b"x", count=10)
    api.get("/huge").respond(stream=body, headers={"content-length": str(2 * MiB)})
    with pytest.raises(ToolError, match="larger than 1 MiB"):
        await registry.call("http.request", {"url": f"{API}/huge"})
    assert body.served == 0


async def test_a_body_of_exactly_one_mebibyte_is_fine(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    api.get("/full").respond(content=b"a" * MiB, headers={"content-type": "text/plain"})
    result = await registry.call("http.request", {"url": f"{API}/full"})
    assert isinstance(result, dict)
    assert isinstance(result["body"], str)
    assert len(result["body"]) == MiB


async def test_an_unadvertised_content_encoding_is_an_error(
    registry: ToolRegistry, api: respx.MockRouter
) -> None:
    api.get("/br").respond(content=b"\x0b\x02\x80", headers={"content-encoding": "br"})
    with pytest.raises(ToolError, match="unsupported content-encoding: br"):
        await registry.call("http.request", {"url": f"{API}/br"})


# --- the SSRF guard, over real sockets to a server on 127.0.0.1 ---


GZIP_BOMB = gzip.compress(b"\0" * (16 * MiB))  # 16 KiB on the wire


class LocalServer:
    """Minimal HTTP/1.1 server: /json answers JSON, /redirect?to=URL redirects, /loop loops,
    /bomb answers 16 KiB of gzip that inflate to 16 MiB."""

    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                self.paths.append(target)
                writer.write(self._respond(target))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _respond(self, target: str) -> bytes:
        path = urlsplit(target)
        if path.path == "/json":
            return _http(200, json.dumps({"from": "local"}).encode(), "application/json")
        if path.path == "/redirect":
            return _http(302, b"", "text/plain", location=parse_qs(path.query)["to"][0])
        if path.path == "/loop":
            return _http(302, b"", "text/plain", location="/loop")
        if path.path == "/bomb":
            return _http(200, GZIP_BOMB, "text/plain", content_encoding="gzip")
        return _http(404, b"not found", "text/plain")


def _http(
    status: int,
    body: bytes,
    content_type: str,
    *,
    location: str | None = None,
    content_encoding: str | None = None,
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} X",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        *([f"Location: {location}"] if location else []),
        *([f"Content-Encoding: {content_encoding}"] if content_encoding else []),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    local = LocalServer()
    await local.start()
    yield local
    await local.stop()


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),  # a name that resolves to loopback
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("2130706433", "loopback"),  # odd spellings of 127.0.0.1 the resolver accepts
        ("127.1", "loopback"),
        ("0x7f000001", "loopback"),
        ("0.0.0.0", "unspecified"),  # reaches local services on Linux
        ("169.254.169.254", "link-local"),
        ("10.0.0.1", "private"),
    ],
)
async def test_non_public_hosts_are_refused_before_connecting(
    registry: ToolRegistry, server: LocalServer, host: str, reason: str
) -> None:
    with pytest.raises(ToolError) as caught:
        await registry.call("http.request", {"url": server.url("/json", host), "timeout_s": 2})
    named = host.strip("[]")
    assert (
        caught.value.message == f"refused to connect to {named}: it resolves to a {reason} address"
    )
    assert not caught.value.retryable
    assert server.connections == 0


async def test_operators_can_allow_private_networks(server: LocalServer) -> None:
    tools = default_registry(allow_private_networks=True)
    try:
        direct = await tools.call("http.request", {"url": server.url("/json", "localhost")})
        redirected = await tools.call(
            "http.request", {"url": server.url(f"/redirect?to={server.url('/json')}")}
        )
    finally:
        await tools.aclose()
    expected = {"status": 200, "headers": {"content-type": "application/json"}}
    assert direct == {**expected, "body": {"from": "local"}}
    assert redirected == direct
    assert server.paths[-2:] == [f"/redirect?to={server.url('/json')}", "/json"]


@pytest.mark.parametrize(
    ("target_host", "message"),
    [
        ("127.0.0.2", "refused to connect to 127.0.0.2: it resolves to a loopback address"),
        (
            "169.254.169.254",
            "refused to connect to 169.254.169.254: it resolves to a link-local address",
        ),
    ],
)
async def test_each_redirect_hop_is_checked(
    server: LocalServer, target_host: str, message: str
) -> None:
    # Only the server's own address is allowed, so the first hop connects and the redirect
    # to another non-public address must be refused by the same guard.
    tools = default_registry(allowed_networks=[ipaddress.ip_network("127.0.0.1/32")])
    target = server.url("/json", target_host)
    try:
        with pytest.raises(ToolError) as caught:
            await tools.call(
                "http.request", {"url": server.url(f"/redirect?to={target}"), "timeout_s": 2}
            )
    finally:
        await tools.aclose()
    assert caught.value.message == message
    assert server.paths == [f"/redirect?to={target}"]


async def test_redirects_stop_after_three(server: LocalServer) -> None:
    tools = default_registry(allow_private_networks=True)
    try:
        with pytest.raises(ToolError) as caught:
            await tools.call("http.request", {"url": server.url("/loop")})
    finally:
        await tools.aclose()
    assert caught.value.message == "request to 127.0.0.1 redirected more than 3 times"
    assert server.paths == ["/loop"] * 4


async def test_a_compression_bomb_is_refused_without_inflating_it(server: LocalServer) -> None:
    # Over a real socket: respx would pre-read (and inflate) the body itself.
    tools = default_registry(allow_private_networks=True)
    tracemalloc.start()
    try:
        with pytest.raises(ToolError) as caught:
            await tools.call("http.request", {"url": server.url("/bomb")})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await tools.aclose()
    assert caught.value.message == "response from 127.0.0.1 is larger than 1 MiB"
    assert peak < 4 * MiB  # httpx's own decoder would inflate the whole 16 MiB at once
