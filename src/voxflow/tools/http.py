"""The builtin `http.request` tool: one HTTP call whose response becomes a workflow variable.

A response of any status is a result (the workflow branches on `result.status`); what keeps a
response from arriving at all — network failure, timeout, a refused address, a body over
1 MiB — is a ToolError.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)

from voxflow.tools.network import (
    AddressPolicy,
    AddressRefusedError,
    GuardedNetworkBackend,
    GuardedTransport,
    HostResolutionError,
    IPNetwork,
    check_http_url,
)
from voxflow.tools.registry import ToolContext, ToolError, ToolSpec

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2048
MAX_HEADERS = 50
MAX_HEADER_VALUE_LENGTH = 8192
MAX_TIMEOUT_S = 10.0
# Response headers a workflow may read; the others are noise or could carry session cookies.
RESULT_HEADERS = ("content-type", "etag", "last-modified", "location", "retry-after")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
# Set by the HTTP client itself; letting a workflow change them breaks framing or body decoding.
_CLIENT_MANAGED_HEADERS = frozenset(
    {
        "accept-encoding",
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Only what we can decode with a bounded output size (see _CappedBody).
_ACCEPT_ENCODING = "gzip, deflate"


def _check_header_name(name: str) -> str:
    if not _TOKEN.fullmatch(name):
        raise ValueError("not a valid header name")
    if name.lower() in _CLIENT_MANAGED_HEADERS:
        raise ValueError(f"the {name} header is set by the HTTP client")
    return name


def _check_header_value(value: str) -> str:
    # Visible ASCII, space and tab: no header injection through CR/LF, nothing httpx can't encode.
    if not all(char == "\t" or " " <= char <= "~" for char in value):
        raise ValueError("header values may only hold printable ASCII characters")
    return value


HeaderName = Annotated[str, AfterValidator(_check_header_name)]
HeaderValue = Annotated[
    str, Field(max_length=MAX_HEADER_VALUE_LENGTH), AfterValidator(_check_header_value)
]


class HttpRequestArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: Annotated[
        str,
        Field(max_length=MAX_URL_LENGTH, description="An http or https URL."),
        AfterValidator(check_http_url),
    ]
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, max_length=MAX_HEADERS, description="Request headers."
    )
    # Aliased: a field named `json` would shadow BaseModel.json.
    body: JsonValue | None = Field(
        default=None, alias="json", description="JSON request body; not allowed with GET."
    )
    timeout_s: float = Field(
        default=MAX_TIMEOUT_S,
        gt=0,
        le=MAX_TIMEOUT_S,
        allow_inf_nan=False,
        description="Deadline for the whole call, redirects included, in seconds.",
    )

    @field_validator("body")
    @classmethod
    def _no_body_with_get(cls, body: JsonValue | None, info: ValidationInfo) -> JsonValue | None:
        # info.data lacks "method" when the method itself was invalid (or a template).
        if body is not None and info.data.get("method") == "GET":
            raise ValueError("a GET request cannot have a JSON body")
        return body


HTTP_REQUEST_SPEC = ToolSpec(
    name="http.request",
    description=(
        "Call an HTTP API. The result is {status, headers, body}: body is the parsed JSON "
        "when the response is JSON, else its text. Any status is a result; network errors, "
        "timeouts and responses over 1 MiB are errors."
    ),
    args_model=HttpRequestArgs,
)


class HttpRequestTool:
    """`http.request`, through one reused, SSRF-guarded httpx client (close with `aclose`).

    `transport` replaces the guarded transport, and so the guard with it: tests only.
    """

    spec: ToolSpec = HTTP_REQUEST_SPEC

    def __init__(
        self,
        *,
        allow_private_networks: bool = False,
        allowed_networks: Sequence[IPNetwork] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if transport is None:
            policy = AddressPolicy(
                allow_private_networks=allow_private_networks, allowed_networks=allowed_networks
            )
            transport = GuardedTransport(GuardedNetworkBackend(policy))
        self._client = httpx.AsyncClient(
            transport=transport,
            trust_env=False,  # else proxy settings from the environment bypass the transport
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"accept-encoding": _ACCEPT_ENCODING},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(self, args: HttpRequestArgs, context: ToolContext) -> JsonValue:
        host = httpx.URL(args.url).host
        try:
            # One deadline for everything (DNS, connects, redirects, a slowly dripping body):
            # a caller is waiting on the line.
            async with asyncio.timeout(args.timeout_s):
                return await self._send(args)
        except (TimeoutError, httpx.TimeoutException):
            raise ToolError(
                f"request to {host} timed out after {args.timeout_s:g} s", retryable=True
            ) from None
        except AddressRefusedError as exc:
            raise ToolError(str(exc)) from None
        except HostResolutionError as exc:
            raise ToolError(str(exc), retryable=exc.transient) from None
        except httpx.TooManyRedirects:
            raise ToolError(
                f"request to {host} redirected more than {MAX_REDIRECTS} times"
            ) from None
        except httpx.UnsupportedProtocol:
            raise ToolError(f"request to {host} redirected to a non-HTTP URL") from None
        except httpx.NetworkError as exc:
            raise ToolError(f"request to {host} failed: {_describe(exc)}", retryable=True) from None
        except httpx.HTTPError as exc:
            raise ToolError(f"request to {host} failed: {_describe(exc)}") from None

    async def _send(self, args: HttpRequestArgs) -> JsonValue:
        request = self._client.build_request(
            args.method,
            args.url,
            headers=args.headers,
            json=args.body,
            timeout=args.timeout_s,
        )
        response = await self._client.send(request, stream=True)
        try:
            raw = await _read_capped(response)
        finally:
            await response.aclose()
        result_headers: dict[str, JsonValue] = {
            name: response.headers[name] for name in RESULT_HEADERS if name in response.headers
        }
        return {
            "status": response.status_code,
            "headers": result_headers,
            "body": _parse_body(raw, response),
        }


async def _read_capped(response: httpx.Response) -> bytes:
    """The decoded body, refusing (without reading on) one larger than MAX_RESPONSE_BYTES."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity" and _declared_length(response) > MAX_RESPONSE_BYTES:
        raise _too_large(response)
    body = _CappedBody(encoding, MAX_RESPONSE_BYTES)
    # Raw bytes: httpx's own decoders inflate a whole chunk at once, so a small compressed
    # chunk could blow up to many megabytes in memory before we can count it.
    async for chunk in response.aiter_raw():
        if not body.feed(chunk):
            raise _too_large(response)
    if not body.finish():
        raise _too_large(response)
    return bytes(body.data)


class _CappedBody:
    """Accumulates a body, decompressing with an output bound; feed() False means too large."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        self.data = bytearray()
        self._limit = limit
        self._decompressor: Any = None
        if content_encoding in ("gzip", "x-gzip"):
            self._decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        elif content_encoding == "deflate":
            self._decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)
        elif content_encoding not in ("", "identity"):
            raise ToolError(f"response uses an unsupported content-encoding: {content_encoding}")

    def feed(self, chunk: bytes) -> bool:
        if self._decompressor is None:
            self.data += chunk
        else:
            # Asking for one byte more than fits shows "too large" without inflating the rest;
            # input left over when that happens stays in unconsumed_tail, unread.
            room = self._limit - len(self.data) + 1
            try:
                self.data += self._decompressor.decompress(chunk, room)
            except zlib.error:
                raise ToolError("could not decompress the response body") from None
        return len(self.data) <= self._limit

    def finish(self) -> bool:
        if self._decompressor is not None:
            self.data += self._decompressor.flush()
        return len(self.data) <= self._limit


def _declared_length(response: httpx.Response) -> int:
    try:
        return int(response.headers.get("content-length", "0"))
    except ValueError:  # malformed; the streamed count still applies
        return 0


def _too_large(response: httpx.Response) -> ToolError:
    return ToolError(f"response from {response.request.url.host} is larger than 1 MiB")


def _parse_body(raw: bytes, response: httpx.Response) -> JsonValue:
    if _is_json(response.headers.get("content-type", "")) and raw.strip():
        try:
            parsed: JsonValue = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            pass  # announced as JSON but is not: hand the workflow the text
        else:
            return parsed
    try:
        return raw.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are accepted by Python's json but are not JSON; results must stay JSON.
    raise ValueError(f"{name} is not valid JSON")


def _describe(exc: httpx.HTTPError) -> str:
    # The class name says enough ("ConnectError", "RemoteProtocolError") and, unlike the
    # message, cannot echo a URL with credentials in its query string.
    return type(exc).__name__
