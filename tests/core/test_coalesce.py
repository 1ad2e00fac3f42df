"""Coalescer: concurrent calls share one round trip, and no answer predates its question."""

from __future__ import annotations

import asyncio

import pytest

from voxflow.core.coalesce import Coalescer


class Store:
    """A slow shared store that records every round trip and answers on a signal."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def run(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("store unreachable")
        return [item * 10 for item in items]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_item_alone_is_sent_at_once() -> None:
    store = Store()
    store.release.set()
    coalescer = Coalescer(store.run)

    assert await coalescer.submit(7) == 70
    assert store.calls == [[7]]
    assert coalescer.idle


async def test_items_arriving_during_a_call_share_the_next_call_and_get_their_own_answers() -> None:
    store = Store()
    coalescer = Coalescer(store.run)
    first = asyncio.create_task(coalescer.submit(1))
    await _settle()
    waiting = [asyncio.create_task(coalescer.submit(n)) for n in (2, 3, 4)]
    await _settle()

    store.release.set()

    assert await first == 10
    assert await asyncio.gather(*waiting) == [20, 30, 40]
    assert store.calls == [[1], [2, 3, 4]]


async def test_an_item_submitted_after_a_call_was_sent_is_not_answered_by_that_call() -> None:
    # The freshness rule: a revocation committed just before a request arrives must be seen,
    # so a request never takes the answer of a round trip that left before it came.
    store = Store()
    coalescer = Coalescer(store.run)
    early = asyncio.create_task(coalescer.submit(1))
    await _settle()
    late = asyncio.create_task(coalescer.submit(2))
    await _settle()

    store.release.set()
    await asyncio.gather(early, late)

    assert [2] in store.calls
    assert all(2 not in call for call in store.calls if 1 in call)


async def test_a_failure_reaches_every_waiter_of_that_call_and_the_next_call_still_runs() -> None:
    store = Store()
    coalescer = Coalescer(store.run)
    store.fail_next = True
    first = asyncio.create_task(coalescer.submit(1))
    await _settle()
    second = asyncio.create_task(coalescer.submit(2))
    await _settle()

    store.release.set()

    with pytest.raises(ConnectionError):
        await first
    assert await second == 20


async def test_a_cancelled_waiter_does_not_strand_the_others() -> None:
    store = Store()
    coalescer = Coalescer(store.run)
    leader = asyncio.create_task(coalescer.submit(1))
    await _settle()
    follower = asyncio.create_task(coalescer.submit(2))
    await _settle()

    leader.cancel()
    store.release.set()

    assert await follower == 20
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert coalescer.idle
