"""AirtableClient's pace: at most 5 requests a second to one base, bases independent.

The limiter's clock (the event loop's) is frozen and moved by hand, so the test never depends
on how fast the machine runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

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


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def run_until(condition: Callable[[], bool], turns: int = 500) -> None:
    """Let the other tasks run (the clock being frozen, no timer can fire) until `condition`."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def let_others_run(turns: int = 100) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_each_base_gets_at_most_5_requests_per_second(
    client: AirtableClient, airtable: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    clock = FrozenClock(loop.time())
    monkeypatch.setattr(loop, "time", clock)  # the limiter's clock; only this test moves it
    busy = airtable.get(f"/v0/{BASE}/Leads").respond(json={"records": []})
    other = airtable.get(f"/v0/{OTHER_BASE}/Leads").respond(json={"records": []})

    busy_calls = [asyncio.create_task(client.find_records(TOKEN, BASE, "Leads")) for _ in range(7)]
    other_calls = [
        asyncio.create_task(client.find_records(TOKEN, OTHER_BASE, "Leads")) for _ in range(5)
    ]
    await run_until(lambda: all(task.done() for task in other_calls))
    await let_others_run()
    assert (busy.call_count, other.call_count) == (5, 5)

    clock.now += 0.2  # one more request's worth of capacity
    await run_until(lambda: busy.call_count == 6)
    await let_others_run()
    assert busy.call_count == 6

    clock.now += 0.2
    await run_until(lambda: all(task.done() for task in busy_calls))
    assert busy.call_count == 7
