"""A voice call's conversation, held in memory by the one process that serves it.

A text turn reads the call, stores the caller's words, runs the engine and stores the reply,
one after the other: the reply is wanted only once it is complete. A voice caller waits for the
first word of the reply, so `LiveCall.take_turn` keeps the engine and its state in memory and
runs the engine at once, its lines going to the `Speech` as they are decided, while the caller's
words are written beside it; the reply and the state are stored when the engine is done, before
the next turn. The records and their guarantees are the text path's: the same rows, the same
compare-and-set on the turn count, the same per-call lock (so a hang-up through the API waits
for the turn being taken).
"""

from __future__ import annotations

import asyncio
import time

from voxflow.core.context import AppContext
from voxflow.engine.completeness import answer_completes
from voxflow.engine.interpreter import Engine
from voxflow.engine.speech import Speech
from voxflow.engine.state import State
from voxflow.runtime import runtime_loader
from voxflow.sessions.models import Call
from voxflow.sessions.runtime import engine_for
from voxflow.sessions.service import (
    TurnOutcome,
    record_turn_issue,
    store_caller_words,
    store_reply,
    store_turn_timings,
    turn_lock,
)


class LiveCall:
    def __init__(self, context: AppContext, call: Call, engine: Engine, state: State) -> None:
        self.context = context
        self.call = call
        self.engine = engine
        self.state = state

    @classmethod
    async def open(cls, context: AppContext, call: Call) -> LiveCall:
        compiled = await runtime_loader(context).load_version(
            call.org_id, call.workflow_id, call.version_number
        )
        engine = await engine_for(context, compiled, org_id=call.org_id, call_id=call.id)
        return cls(context, call, engine, State.model_validate_json(call.state))

    @property
    def node_id(self) -> str | None:
        return self.state.node_id

    def answer_completes(self, text: str) -> bool:
        """Whether `text` alone answers the node the call waits at (a voice turn can end early)."""
        return answer_completes(self.engine.version, self.state, text, now=self.engine.clock())

    @property
    def last_agent_seq(self) -> int:
        """The stored agent turn the caller is answering now."""
        return self.call.turn_count * 2

    async def take_turn(self, text: str, speech: Speech | None = None) -> TurnOutcome:
        """The caller said `text`: the reply is spoken as it comes, then stored with the state."""
        async with turn_lock(self.context, self.call.id):
            before = self.state.model_copy(deep=True)
            user_seq = self.call.turn_count * 2 + 1
            words = asyncio.create_task(
                store_caller_words(self.context, self.call, user_seq, text, self.state.node_id)
            )
            started = time.perf_counter()
            try:
                events = await self.engine.handle_user_turn(self.state, text, speech=speech)
            except BaseException:
                self.state = before  # the stored state is the truth: nothing of this turn happened
                await asyncio.gather(words, return_exceptions=True)
                raise
            latency = (time.perf_counter() - started) * 1000
            if speech is not None:  # its last line can finish playing while the turn is stored
                speech.close()
            try:
                await words
                await store_reply(
                    self.context, self.call, events, self.state, latency, user_seq + 1
                )
            except BaseException:
                self.state = before
                raise
            self.call.turn_count += 1
            if self.state.outcome is not None:
                self.call.outcome = self.state.outcome
            return TurnOutcome(events=events, outcome=self.state.outcome)

    async def store_timings(self, seq: int, timings: dict[str, float]) -> None:
        """Record a voice turn's timings on agent turn `seq` (after it is stored)."""
        async with turn_lock(self.context, self.call.id):
            await store_turn_timings(self.context, self.call, seq, timings)

    async def record_issue(self, seq: int, code: str, message: str) -> None:
        """Note on agent turn `seq` what failed while it was voiced (after it is stored)."""
        async with turn_lock(self.context, self.call.id):
            node_id = self.state.node_id or ""
            await record_turn_issue(self.context, self.call, seq, node_id, code, message)
