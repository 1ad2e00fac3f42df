"""Coalesce concurrent calls to a shared store (Redis) into one round trip per batch.

Under load, many requests of one process ask Redis the same kind of question at the same
moment (the credential epoch, a workflow's epoch, a rate-limit counter). Each round trip
costs far more CPU in the client than the answer does in Redis. A `Coalescer` sends at most
one call at a time: items submitted while a call is in flight wait for the *next* call, which
starts after they were submitted. So an answer is never older than the request that asked
for it (a revocation committed before a request arrived is always seen), and at low load an
item is sent at once, alone, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        """`run(items)` answers every item in order, in one round trip."""
        self._run = run
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._draining: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return self._draining is None and not self._queue

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._draining is None:
            # A task, not the submitter itself: a cancelled request must not strand the others.
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                batch = []
        finally:
            self._draining = None
            # Only when this task is cancelled (shutdown): nobody is left to answer them.
            for _, future in [*batch, *self._queue]:
                future.cancel()
            self._queue = []
