"""AirtableClient's pace: at most 5 requests a second to one base, bases independent.

aiolimiter does the pacing (its own tests cover the bucket); these pin down how the client uses
it: one limiter of 5 requests per second per base, taken before every attempt, so retries are
paced too, and one base's queue never holds up another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from voxflow.integrations.airtable.client import AirtableClient

API = "https://airtable.test"
BASE = "appAAAAAAAAAAAAAA"
OTHER_BASE = "appBBBBBBBBBBBBBB"
TOKEN = "tok-1"


@pytest.fixture
async def client() -> AsyncIterator[AirtableClient]:
    airtable = AirtableClient(base_url=API)
    yield airtable
    await airtable.aclose()


@pytest.fixture
def airtable() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


def test_each_base_has_one_limiter_of_5_requests_per_second(client: AirtableClient) -> None:
    limiter = client._limiter(BASE)

    assert client._limiter(BASE) is limiter
    assert client._limiter(OTHER_BASE) is not limiter
    assert (limiter.max_rate, limiter.time_period) == (5, 1)


async def test_every_attempt_takes_its_base_limiter_first(
    airtable: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = AirtableClient(base_url=API, sleep=_no_sleep)
    taken: list[str] = []
    for base in (BASE, OTHER_BASE):
        limiter = client._limiter(base)
        original = limiter.acquire

        async def acquire(amount: float = 1, base: str = base, original=original) -> None:
            taken.append(base)
            await original(amount)

        monkeypatch.setattr(limiter, "acquire", acquire)
    airtable.get(f"/v0/{BASE}/Leads").respond(429, headers={"Retry-After": "0"})
    airtable.get(f"/v0/{OTHER_BASE}/Leads").respond(json={"records": []})

    await asyncio.gather(
        client.find_records(TOKEN, OTHER_BASE, "Leads"),
        client.find_records(TOKEN, BASE, "Leads"),
        return_exceptions=True,
    )

    await client.aclose()
    assert taken.count(OTHER_BASE) == 1
    assert taken.count(BASE) == 3  # the first attempt and both retries after the 429s


async def _no_sleep(_seconds: float) -> None:
    return None


async def test_a_sixth_request_to_a_base_waits_while_another_base_does_not(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    busy = airtable.get(f"/v0/{BASE}/Leads").respond(json={"records": []})
    other = airtable.get(f"/v0/{OTHER_BASE}/Leads").respond(json={"records": []})

    busy_calls = [asyncio.create_task(client.find_records(TOKEN, BASE, "Leads")) for _ in range(6)]
    other_calls = [
        asyncio.create_task(client.find_records(TOKEN, OTHER_BASE, "Leads")) for _ in range(5)
    ]
    await asyncio.gather(*other_calls)
    sent_before_the_other_base_finished = busy.call_count
    await asyncio.gather(*busy_calls)

    assert other.call_count == 5
    # The sixth needs capacity the bucket only regains over the next 200 ms; the other base's
    # five went out meanwhile, so it cannot have been sent yet.
    assert sent_before_the_other_base_finished <= 5
    assert busy.call_count == 6
