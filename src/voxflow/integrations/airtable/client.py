"""An Airtable Web API client that keeps to Airtable's limits and retries what is safe to retry.

Airtable allows 5 requests per second per base and answers 429 beyond that, asking for 30
seconds of quiet. Each client instance paces its requests per base, waits as asked on a 429,
and retries 5xx answers and network failures with exponential backoff, a bounded number of
times. Creating records is not idempotent, so a create is only repeated when Airtable cannot
have carried it out (429, 503, or a connection that never opened).

Every failure is a `ToolError` (401 is the subclass `AirtableUnauthorized`, so a caller can
refresh the token and try again).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from aiolimiter import AsyncLimiter
from cachetools import LRUCache
from pydantic import JsonValue
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from voxflow.integrations.airtable.errors import (
    AirtableUnauthorized,
    RateLimited,
    Target,
    Unavailable,
    refusal,
)
from voxflow.integrations.airtable.payloads import (
    AirtableBase,
    AirtableRecord,
    AirtableTable,
    BasesPage,
    RecordsPage,
    TablesPage,
    parse_payload,
)
from voxflow.tools.registry import ToolError

__all__ = [
    "AIRTABLE_API",
    "AirtableBase",
    "AirtableClient",
    "AirtableRecord",
    "AirtableTable",
    "AirtableUnauthorized",
    "RecordUpdate",
    "SortField",
]

AIRTABLE_API = "https://api.airtable.com"
REQUESTS_PER_SECOND_PER_BASE = 5
MAX_RECORDS_PER_WRITE = 10  # Airtable's limit for one create or update request
MAX_PAGE_SIZE = 100
RATE_LIMIT_WAIT_S = 30.0  # what Airtable asks for when it does not send Retry-After
MAX_RETRY_AFTER_S = 60.0
MAX_ATTEMPTS = 3
REQUEST_TIMEOUT_S = 10.0
# Limiters of bases not used for a while are forgotten, so a long-lived process serving many
# orgs does not keep one per base it ever saw.
MAX_TRACKED_BASES = 4096
# Listing bases is not about one base; it gets a limiter of its own.
_ACCOUNT_LIMITER_KEY = ""

Sleep = Callable[[float], Awaitable[None]]
_T = TypeVar("_T")


@dataclass(frozen=True)
class SortField:
    field: str
    direction: Literal["asc", "desc"] = "asc"


@dataclass(frozen=True)
class RecordUpdate:
    id: str
    fields: Mapping[str, JsonValue]


class AirtableClient:
    """Airtable's Web API for any number of tokens, over one pooled HTTP client.

    `sleep` is how the client waits between attempts (tests pass one that only records);
    `transport` replaces the network (tests only).
    """

    def __init__(
        self,
        *,
        base_url: str = AIRTABLE_API,
        timeout_s: float = REQUEST_TIMEOUT_S,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._limiters: LRUCache[str, AsyncLimiter] = LRUCache(maxsize=MAX_TRACKED_BASES)
        self._backoff = wait_exponential(multiplier=0.5, max=4)

    async def aclose(self) -> None:
        await self._http.aclose()  # a no-op when closed already: several tools share us

    def _limiter(self, base: str) -> AsyncLimiter:
        limiter = self._limiters.get(base)
        if limiter is None:
            limiter = AsyncLimiter(REQUESTS_PER_SECOND_PER_BASE, time_period=1)
            self._limiters[base] = limiter
        return limiter

    # --- schema ------------------------------------------------------------------------------

    async def list_bases(self, token: str) -> list[AirtableBase]:
        bases: list[AirtableBase] = []
        offset: str | None = None
        while True:
            params = [("offset", offset)] if offset else []
            page = await self._request(
                "GET", "/v0/meta/bases", token=token, target=Target(), params=params
            )
            parsed = parse_payload(BasesPage, page)
            bases += [AirtableBase(b.id, b.name, b.permission_level) for b in parsed.bases]
            offset = parsed.offset
            if not offset or not parsed.bases:
                return bases

    async def list_tables(self, token: str, base: str) -> list[AirtableTable]:
        page = await self._request(
            "GET", f"/v0/meta/bases/{_segment(base)}/tables", token=token, target=Target(base)
        )
        return [AirtableTable(t.id, t.name) for t in parse_payload(TablesPage, page).tables]

    # --- records -----------------------------------------------------------------------------

    async def find_records(
        self,
        token: str,
        base: str,
        table: str,
        *,
        formula: str | None = None,
        fields: Sequence[str] | None = None,
        sort: Sequence[SortField] = (),
        max_records: int = MAX_PAGE_SIZE,
    ) -> list[AirtableRecord]:
        """Records of `table` matching `formula`, page after page, at most `max_records`."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        params: list[tuple[str, str]] = [
            ("maxRecords", str(max_records)),
            ("pageSize", str(min(max_records, MAX_PAGE_SIZE))),
        ]
        if formula:
            params.append(("filterByFormula", formula))
        params += [("fields[]", field) for field in fields or ()]
        for index, order in enumerate(sort):
            params += [(f"sort[{index}][field]", order.field)]
            params += [(f"sort[{index}][direction]", order.direction)]
        records: list[AirtableRecord] = []
        offset: str | None = None
        while True:
            page = parse_payload(
                RecordsPage,
                await self._request(
                    "GET",
                    _table_path(base, table),
                    token=token,
                    target=Target(base, table),
                    params=params + ([("offset", offset)] if offset else []),
                ),
            )
            records += [record.as_record() for record in page.records]
            offset = page.offset
            if not offset or not page.records or len(records) >= max_records:
                return records[:max_records]

    async def create_records(
        self,
        token: str,
        base: str,
        table: str,
        records: Sequence[Mapping[str, JsonValue]],
        *,
        typecast: bool = False,
    ) -> list[AirtableRecord]:
        """Create one record per field mapping, ten per request, in order."""
        items: list[dict[str, JsonValue]] = [{"fields": dict(fields)} for fields in records]
        return await self._write_batches("POST", token, base, table, items, typecast=typecast)

    async def update_records(
        self,
        token: str,
        base: str,
        table: str,
        updates: Sequence[RecordUpdate],
        *,
        typecast: bool = False,
    ) -> list[AirtableRecord]:
        """Set the given fields of each record (PATCH: fields not named keep their values)."""
        items: list[dict[str, JsonValue]] = [
            {"id": update.id, "fields": dict(update.fields)} for update in updates
        ]
        return await self._write_batches("PATCH", token, base, table, items, typecast=typecast)

    async def _write_batches(
        self,
        method: Literal["POST", "PATCH"],
        token: str,
        base: str,
        table: str,
        items: list[dict[str, JsonValue]],
        *,
        typecast: bool,
    ) -> list[AirtableRecord]:
        target, path = Target(base, table), _table_path(base, table)
        written: list[AirtableRecord] = []
        for batch in _batches(items, MAX_RECORDS_PER_WRITE):
            body: dict[str, JsonValue] = {"records": list(batch), "typecast": typecast}
            try:
                page = await self._request(method, path, token=token, target=target, body=body)
            except ToolError as exc:
                if not written or isinstance(exc, AirtableUnauthorized):
                    raise
                # Earlier batches are in Airtable already; whoever retries must know.
                raise ToolError(
                    f"{exc.message} ({len(written)} of {len(items)} records were saved first)",
                    retryable=exc.retryable,
                ) from exc
            written += [record.as_record() for record in parse_payload(RecordsPage, page).records]
        return written

    # --- one request, paced and retried ------------------------------------------------------

    async def _request(
        self,
        method: Literal["GET", "POST", "PATCH"],
        path: str,
        *,
        token: str,
        target: Target,
        params: Sequence[tuple[str, str]] = (),
        body: JsonValue = None,
    ) -> Any:
        repeatable = method != "POST"
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: _worth_retrying(exc, repeatable=repeatable)),
            sleep=self._sleep,
            reraise=True,
        )
        request = self._http.build_request(
            method,
            path,
            params=list(params),
            json=body if method != "GET" else None,
            headers={"Authorization": f"Bearer {token}"},
        )
        limiter = self._limiter(target.base or _ACCOUNT_LIMITER_KEY)
        try:
            return await retrying(self._attempt, request, limiter, target)
        except RateLimited:
            raise ToolError(
                f"Airtable is rate limiting requests to {target.describe()}; try again shortly",
                retryable=True,
            ) from None
        except Unavailable as exc:
            # Not for a create Airtable may have carried out: repeating it could duplicate.
            retryable = repeatable or not exc.maybe_processed
            raise ToolError(exc.message, retryable=retryable) from None

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RateLimited):
            return error.wait_s
        return self._backoff(state)

    async def _attempt(self, request: httpx.Request, limiter: AsyncLimiter, target: Target) -> Any:
        await limiter.acquire()  # pacing is not part of the request's time budget
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Unavailable(
                f"could not reach Airtable ({type(exc).__name__})", maybe_processed=False
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            raise Unavailable(
                f"Airtable did not answer within {self._timeout_s:g} s", maybe_processed=True
            ) from None
        except httpx.TransportError as exc:
            # The class name only: a message could repeat the URL, filter values included.
            raise Unavailable(
                f"the connection to Airtable failed ({type(exc).__name__})", maybe_processed=True
            ) from None
        return _answer(response, target)


def _answer(response: httpx.Response, target: Target) -> Any:
    status = response.status_code
    if status == 401:
        raise AirtableUnauthorized("Airtable refused the access token")
    if status == 429:
        raise RateLimited(_retry_after(response))
    if status >= 500:
        # A 503 comes from a server that took nothing on; other 5xx may have done the work.
        raise Unavailable(f"Airtable failed ({status})", maybe_processed=status != 503)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not response.is_success:
        raise refusal(status, payload, target)
    if payload is None:
        raise ToolError(f"Airtable sent a response that is not JSON ({status})")
    return payload


def _worth_retrying(error: BaseException, *, repeatable: bool) -> bool:
    if isinstance(error, RateLimited):
        return True
    return isinstance(error, Unavailable) and (repeatable or not error.maybe_processed)


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:  # absent, or an HTTP date: Airtable's documented pause
        return RATE_LIMIT_WAIT_S
    if not math.isfinite(seconds) or seconds < 0:
        return RATE_LIMIT_WAIT_S
    return min(seconds, MAX_RETRY_AFTER_S)


def _table_path(base: str, table: str) -> str:
    return f"/v0/{_segment(base)}/{_segment(table)}"


def _segment(value: str) -> str:
    # Table names may hold "/", "?", "#" or spaces; each must stay one path segment.
    return quote(value, safe="")


def _batches(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
