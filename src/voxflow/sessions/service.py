"""A session's life: start on an agent's resolved version, take turns, end; every turn stored.

Each caller turn is written (and committed) before the engine runs, and the agent's reply with
the engine's state after it, so a crash loses at most the reply being computed and any process
can take the next turn from the stored state. Turns of one call run one at a time in this
process (an ordered lock); across processes, a compare-and-set on the turn count refuses a
turn that raced another (409).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import JsonValue
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.errors import Conflict, InvalidInput, NotFound, ProblemItem
from voxflow.core.ids import new_id
from voxflow.engine.events import (
    EVENTS,
    End,
    EnterNode,
    Event,
    Outcome,
    RuntimeIssue,
    Say,
    SetVariable,
    Transfer,
    spoken_text,
)
from voxflow.engine.state import State
from voxflow.orgs.auth import AuthSubject
from voxflow.runtime import runtime_loader
from voxflow.sessions.models import Call, CallTurn
from voxflow.sessions.repository import CallRepository
from voxflow.sessions.runtime import engine_for
from voxflow.sessions.schemas import (
    AgentText,
    Ended,
    NodeEntered,
    SessionCreate,
    StreamMessage,
    Transferred,
    VariableSet,
)
from voxflow.voice import livekit_api
from voxflow.voice.retention import recording_relpath
from voxflow.webhooks import events as webhook_events

STREAM_TOKEN_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class StartedSession:
    call: Call
    events: list[Event]
    stream_token: str


@dataclass(frozen=True)
class TurnOutcome:
    events: list[Event]
    outcome: Outcome | None


def stream_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def to_messages(events: Sequence[Event]) -> list[StreamMessage]:
    """Engine events as the messages clients see (WebSocket and REST alike)."""
    messages: list[StreamMessage] = []
    for event in events:
        match event:
            case Say():
                messages.append(AgentText(text=event.text))
            case EnterNode():
                messages.append(NodeEntered(id=event.id))
            case SetVariable():
                messages.append(VariableSet(name=event.name, value=event.value))
            case Transfer():
                messages.append(Transferred(target=event.target))
            case End():
                messages.append(Ended(outcome=event.outcome))
            case _:  # tool calls and runtime issues stay in the call record
                pass
    return messages


async def start_session(
    context: AppContext, auth: AuthSubject, data: SessionCreate
) -> StartedSession:
    call_id = new_id("call")
    loaded = await runtime_loader(context).load_agent(auth.org_id, data.agent_id, call_id)
    engine = await engine_for(context, loaded.compiled, org_id=auth.org_id, call_id=call_id)
    variables: dict[str, JsonValue] = {**loaded.variables, **data.variables}
    undeclared = sorted(set(data.variables) - set(loaded.compiled.document.variables))
    if undeclared:
        raise InvalidInput(
            "Only variables the workflow declares can be set.",
            errors=[
                ProblemItem(detail="not declared by the workflow", pointer=f"/variables/{name}")
                for name in undeclared
            ],
        )
    started = time.perf_counter()
    state, events = await engine.start(variables)
    latency = (time.perf_counter() - started) * 1000
    token, now = secrets.token_urlsafe(32), utcnow()
    # Voice calls of an agent that records write a WAV (relative to the data dir).
    records = loaded.record and data.mode == "voice"
    recording = recording_relpath(auth.org_id, call_id) if records else None
    call = Call(
        id=call_id,
        org_id=auth.org_id,
        agent_id=loaded.agent_id,
        workflow_id=loaded.workflow_id,
        version_number=loaded.version_number,
        version_id=loaded.version_id,
        mode=data.mode,
        transport=data.transport,
        recording_path=recording,
        outcome=state.outcome,
        initial_variables=json.dumps(variables),
        state=state.model_dump_json(),
        turn_count=0,
        stream_token_hash=stream_token_hash(token),
        stream_token_expires_at=now + STREAM_TOKEN_TTL,
        started_at=now,
        updated_at=now,
        ended_at=now if state.ended else None,
    )
    async with context.sessionmaker() as session, session.begin():
        session.add(call)
        await session.flush()
        session.add(_agent_turn(call, 0, events, state, latency))
        await webhook_events.call_started(session, call)
    return StartedSession(call=call, events=events, stream_token=token)


async def take_turn(context: AppContext, auth: AuthSubject, call_id: str, text: str) -> TurnOutcome:
    async with turn_lock(context, call_id):
        call = await _open_call(context, auth.org_id, call_id)
        state = State.model_validate_json(call.state)
        user_seq = call.turn_count * 2 + 1
        # The caller's words are stored first: whatever happens next, they are on record.
        await store_caller_words(context, call, user_seq, text, state.node_id)
        compiled = await runtime_loader(context).load_version(
            call.org_id, call.workflow_id, call.version_number
        )
        engine = await engine_for(context, compiled, org_id=call.org_id, call_id=call.id)
        started = time.perf_counter()
        events = await engine.handle_user_turn(state, text)
        latency = (time.perf_counter() - started) * 1000
        await store_reply(context, call, events, state, latency, user_seq + 1)
        return TurnOutcome(events=events, outcome=state.outcome)


async def end_call(
    context: AppContext, org_id: str, call_id: str, outcome: Outcome, reason: str
) -> list[Event]:
    """End a live call from outside the conversation (hang-up, time limit); no-op if ended."""
    async with turn_lock(context, call_id):
        async with context.sessionmaker() as session:
            call = await CallRepository(session).get(org_id, call_id)
        if call is None or call.outcome is not None:
            return []
        compiled = await runtime_loader(context).load_version(
            call.org_id, call.workflow_id, call.version_number
        )
        state = State.model_validate_json(call.state)
        engine = await engine_for(context, compiled, org_id=call.org_id, call_id=call.id)
        events = engine.end(state, outcome, reason)
        await store_reply(context, call, events, state, 0.0, call.turn_count * 2 + 2)
        return events


async def overdue_at(context: AppContext, call: Call) -> datetime:
    """When the call reaches its workflow's `max_duration_s`."""
    compiled = await runtime_loader(context).load_version(
        call.org_id, call.workflow_id, call.version_number
    )
    started = State.model_validate_json(call.state).started_at
    return started + timedelta(seconds=compiled.document.settings.max_duration_s)


async def stream_call(context: AppContext, call_id: str, token: str) -> Call | None:
    """The live call a stream token opens, if the token is right and fresh."""
    async with context.sessionmaker() as session:
        call = await CallRepository(session).get_by_stream_token(call_id, stream_token_hash(token))
    expires = call.stream_token_expires_at if call is not None else None
    if call is None or expires is None or expires < utcnow():
        return None
    return call


async def get_live_call(context: AppContext, org_id: str, call_id: str) -> Call | None:
    async with context.sessionmaker() as session:
        call = await CallRepository(session).get(org_id, call_id)
    return call if call is not None and call.outcome is None else None


async def messages_so_far(context: AppContext, call: Call) -> list[StreamMessage]:
    async with context.sessionmaker() as session:
        turns = await CallRepository(session).turns(call.org_id, call.id)
    messages: list[StreamMessage] = []
    for turn in turns:
        if turn.role == "agent":
            messages += to_messages(EVENTS.validate_json(turn.events))
    return messages


async def _open_call(context: AppContext, org_id: str, call_id: str) -> Call:
    async with context.sessionmaker() as session:
        call = await CallRepository(session).get(org_id, call_id)
    if call is None:
        raise NotFound(f"No session {call_id}.")
    if call.outcome is not None:
        raise Conflict(f"Session {call_id} has ended ({call.outcome}).")
    return call


async def store_reply(
    context: AppContext,
    call: Call,
    events: list[Event],
    state: State,
    latency_ms: float,
    seq: int,
) -> None:
    """Store the agent's reply (turn `seq`) and the state after it, if no other turn raced it."""
    async with context.sessionmaker() as session, session.begin():
        stored = await CallRepository(session).save_progress(
            call,
            expected_turns=call.turn_count,
            state=state.model_dump_json(),
            outcome=state.outcome,
            now=utcnow(),
        )
        if not stored:
            raise raced()
        session.add(_agent_turn(call, seq, events, state, latency_ms))
        if state.outcome is not None:
            await webhook_events.call_ended(session, call.org_id, call.id)


def _agent_turn(
    call: Call, seq: int, events: list[Event], state: State, latency_ms: float
) -> CallTurn:
    return CallTurn(
        id=new_id("turn"),
        org_id=call.org_id,
        call_id=call.id,
        seq=seq,
        role="agent",
        text=spoken_text(events),
        node_id=state.node_id,
        events=EVENTS.dump_json(events).decode(),
        latency_ms=round(latency_ms, 3),
    )


async def store_caller_words(
    context: AppContext, call: Call, seq: int, text: str, node_id: str | None
) -> None:
    """Store what the caller said as turn `seq`; a turn already there means a race (409)."""
    try:
        async with context.sessionmaker() as session, session.begin():
            session.add(
                CallTurn(
                    id=new_id("turn"),
                    org_id=call.org_id,
                    call_id=call.id,
                    seq=seq,
                    role="user",
                    text=text,
                    node_id=node_id,
                )
            )
    except IntegrityError:
        raise raced() from None


async def record_turn_issue(
    context: AppContext, call: Call, seq: int, node_id: str, code: str, message: str
) -> None:
    """Add what went wrong while an agent turn was voiced (a provider failed) to its events."""
    async with context.sessionmaker() as session, session.begin():
        turn = await session.scalar(
            select(CallTurn).where(
                CallTurn.org_id == call.org_id,
                CallTurn.call_id == call.id,
                CallTurn.seq == seq,
                CallTurn.role == "agent",
            )
        )
        if turn is None:
            return
        events = EVENTS.validate_json(turn.events)
        events.append(RuntimeIssue(node_id=node_id, code=code, message=message))
        turn.events = EVENTS.dump_json(events).decode()


def raced() -> Conflict:
    return Conflict("Another turn of this session was taken at the same time; send it again.")


def turn_lock(context: AppContext, call_id: str) -> asyncio.Lock:
    # asyncio.Lock wakes waiters in arrival order, so queued turns run in the order sent.
    locks: dict[str, asyncio.Lock] = context.extras.setdefault("session_turn_locks", {})
    lock = locks.get(call_id)
    if lock is None:
        lock = locks[call_id] = asyncio.Lock()
    if len(locks) > 10_000:  # forget idle calls' locks
        for key in [key for key, held in locks.items() if not held.locked() and key != call_id]:
            del locks[key]
    return lock


async def opening_line(context: AppContext, call: Call) -> str:
    """What the agent said when the session started (turn 0), if nothing happened since."""
    if call.turn_count:
        return ""
    async with context.sessionmaker() as session:
        turn = await session.scalar(
            select(CallTurn).where(
                CallTurn.org_id == call.org_id, CallTurn.call_id == call.id, CallTurn.seq == 0
            )
        )
    return turn.text if turn is not None else ""


async def store_turn_timings(
    context: AppContext, call: Call, seq: int, timings: dict[str, float]
) -> None:
    """Record a voice turn's timings on its agent turn (`call_turns.timings`)."""
    async with context.sessionmaker() as session, session.begin():
        await session.execute(
            update(CallTurn)
            .where(
                CallTurn.org_id == call.org_id,
                CallTurn.call_id == call.id,
                CallTurn.seq == seq,
                CallTurn.role == "agent",
            )
            .values(timings=json.dumps(timings))
        )


async def open_livekit_room(
    context: AppContext, livekit: livekit_api.LiveKitConfig, call: Call
) -> livekit_api.CallRoom:
    """Create the call's room and dispatch the agent to it; a call nobody can join is ended."""
    metadata = livekit_api.DispatchMetadata(
        session_id=call.id, org_id=call.org_id, agent_id=call.agent_id, version=call.version_number
    )
    try:
        return await livekit_api.open_call_room(livekit, metadata)
    except Exception:
        # Nobody can ever join this call: end it rather than leave it live.
        await end_call(context, call.org_id, call.id, "failed", "livekit unavailable")
        raise
