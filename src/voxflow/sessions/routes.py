"""Sessions over REST and WebSocket: start one, talk to it, stream it.

WebSocket protocol (`/v1/sessions/{id}/stream`): the client sends
`{"type": "user_text", "text": …}`; the server sends `agent_text`, `node`, `variable`,
`transfer`, `end` and `error` messages (see `schemas.StreamMessage`). On connect the server
replays what the agent has done so far (the greeting). A malformed or unknown message gets an
`error` message and the session goes on; an unknown or ended session closes with 4404, a
missing or wrong credential with 4401, a frame over 64 KiB with 1009. Turns sent while one is
processing are queued and answered in order. If the client goes away, the call ends
`abandoned`, every turn kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Query, Request, WebSocket, WebSocketDisconnect, status
from pydantic import ValidationError

from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.deps import NO_NUL
from voxflow.core.errors import VoxflowError, problem_responses
from voxflow.core.routing import ApiRoute
from voxflow.orgs.auth import ApiKeyPrincipal, AuthSubject, MemberDep, get_principal
from voxflow.orgs.models import Role
from voxflow.sessions import service
from voxflow.sessions.models import Call
from voxflow.sessions.schemas import (
    ErrorMessage,
    SessionCreate,
    SessionStarted,
    StreamMessage,
    TurnResult,
    UserText,
)
from voxflow.voice import livekit_api

log = structlog.get_logger("voxflow.sessions")
router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=ApiRoute)
SessionID = Annotated[
    str, Path(max_length=64, pattern=NO_NUL, description="Session id (the call's, `call_…`)")
]
MAX_FRAME_BYTES = 64 * 1024
# After the client left, how long a turn it already sent may take to finish and be stored.
TURN_DRAIN_SECONDS = 30.0
CLOSE_NOT_FOUND, CLOSE_UNAUTHORIZED, CLOSE_TOO_BIG = 4404, 4401, 1009


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionStarted,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503),
)
async def start_session(body: SessionCreate, auth: MemberDep, request: Request) -> SessionStarted:
    """Start a text or voice session with an agent; its version is fixed now (pin, latest or
    canary). Voice over WebSocket: stream audio at `audio_url` (docs/api.md). Voice over
    LiveKit: join `room` at `livekit_url` with `token`; the agent is dispatched to it."""
    context: AppContext = request.app.state.context
    # Checked before the call exists, so a server without LiveKit leaves nothing behind.
    livekit = livekit_api.require_config(context.settings) if body.transport == "livekit" else None
    started = await service.start_session(context, auth, body)
    call = started.call
    base = context.settings.public_url.replace("http", "ws", 1).rstrip("/")
    assert call.stream_token_expires_at is not None
    audio_url = None
    if call.transport == "websocket":
        audio_url = f"{base}/v1/sessions/{call.id}/audio?token={started.stream_token}"
    room = None
    if livekit is not None and call.outcome is None:
        room = await service.open_livekit_room(context, livekit, call)
    return SessionStarted(
        session_id=call.id,
        audio_url=audio_url,
        stream_url=f"{base}/v1/sessions/{call.id}/stream?token={started.stream_token}",
        stream_token_expires_at=call.stream_token_expires_at,
        agent_id=call.agent_id,
        version=call.version_number,
        messages=service.to_messages(started.events),
        ended=call.outcome is not None,
        livekit_url=room.url if room else None,
        room=room.room if room else None,
        token=room.token if room else None,
    )


@router.post(
    "/{session_id}/turns",
    response_model=TurnResult,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
)
async def take_turn(
    session_id: SessionID, body: UserText, auth: MemberDep, request: Request
) -> TurnResult:
    """Say something to the agent; returns what it did (the same messages the stream sends)."""
    result = await service.take_turn(request.app.state.context, auth, session_id, body.text)
    return TurnResult(
        messages=service.to_messages(result.events),
        ended=result.outcome is not None,
        outcome=result.outcome,
    )


@router.websocket("/{session_id}/stream")
async def stream(
    websocket: WebSocket,
    session_id: Annotated[str, Path(max_length=64)],
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> None:
    context: AppContext = websocket.app.state.context
    await websocket.accept()
    try:
        call = await _authorized_call(context, websocket, session_id, token)
    except VoxflowError:
        await websocket.close(CLOSE_UNAUTHORIZED, "authenticate with ?token= or an API key")
        return
    if call is None:
        await websocket.close(CLOSE_NOT_FOUND, "no such live session")
        return
    await StreamSession(context, websocket, call).run()


async def _authorized_call(
    context: AppContext, websocket: WebSocket, session_id: str, token: str | None
) -> Call | None:
    if token:
        return await service.stream_call(context, session_id, token)
    principal = await get_principal(websocket)
    if not isinstance(principal, ApiKeyPrincipal):
        raise VoxflowError("a stream needs its token or an API key")
    return await service.get_live_call(context, principal.org_id, session_id)


class StreamSession:
    """One WebSocket: a reader that queues the caller's turns, a worker that answers them."""

    def __init__(self, context: AppContext, websocket: WebSocket, call: Call) -> None:
        self.context = context
        self.websocket = websocket
        self.call = call
        self.auth = AuthSubject(org_id=call.org_id, role=Role.member)
        # None tells the worker that no more turns will come.
        self.turns: asyncio.Queue[str | None] = asyncio.Queue()
        self.connected = True
        self.ended = False

    async def run(self) -> None:
        await self._send(await service.messages_so_far(self.context, self.call))
        worker = asyncio.create_task(self._answer_turns())
        watchdog = asyncio.create_task(self._watch_time_limit(worker))
        try:
            await self._read_turns()
        finally:
            watchdog.cancel()
            # Turns already received are still taken (and stored), even if nobody listens.
            self.turns.put_nowait(None)
            try:
                await asyncio.wait_for(worker, timeout=TURN_DRAIN_SECONDS)
            except (TimeoutError, asyncio.CancelledError):
                worker.cancel()
            if not self.ended:
                await service.end_call(
                    self.context, self.call.org_id, self.call.id, "abandoned", "client left"
                )

    async def _read_turns(self) -> None:
        # Received here, in the connection's own task: uvicorn pauses reading after each
        # message until the app asks for the next one.
        while self.connected:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self.connected = False
                return
            if not await self._on_frame(message.get("text") or message.get("bytes") or ""):
                return

    async def _watch_time_limit(self, worker: asyncio.Task[None]) -> None:
        deadline = await service.overdue_at(self.context, self.call)
        await asyncio.sleep(max((deadline - utcnow()).total_seconds(), 0.0))
        if worker.done():
            return
        self.turns.put_nowait(None)
        await worker  # the turn being taken finishes first
        events = await service.end_call(
            self.context, self.call.org_id, self.call.id, "timeout", "max_duration_s"
        )
        self.ended = True
        await self._send(service.to_messages(events))
        await self._close(1000)

    async def _on_frame(self, frame: str | bytes) -> bool:
        """Queue the turn a frame carries; False when the connection must close."""
        if len(frame) > MAX_FRAME_BYTES:
            await self._close(CLOSE_TOO_BIG, "frames are limited to 64 KiB")
            return False
        try:
            data = json.loads(frame)
            request = UserText.model_validate(
                {"text": data["text"]} if data.get("type") == "user_text" else {}
            )
        except (ValueError, TypeError, KeyError, AttributeError, ValidationError):
            await self._error(
                "bad_message", 'Send {"type": "user_text", "text": "…"} (1 to 4000 characters).'
            )
            return True
        self.turns.put_nowait(request.text)
        return True

    async def _answer_turns(self) -> None:
        while (text := await self.turns.get()) is not None:
            try:
                result = await service.take_turn(self.context, self.auth, self.call.id, text)
            except VoxflowError as exc:
                await self._error(exc.slug, exc.detail)
                continue
            except Exception:
                log.exception("session_turn_failed", call_id=self.call.id)
                await self._error("internal", "The turn failed; it has been logged. Try again.")
                continue
            finally:
                self.turns.task_done()
            await self._send(service.to_messages(result.events))
            if result.outcome is not None:
                self.ended = True
                await self._close(1000)
                return
        self.turns.task_done()

    async def _send(self, messages: list[StreamMessage]) -> None:
        for message in messages:
            if not self.connected:
                return
            try:
                await self.websocket.send_text(message.model_dump_json())
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.connected = False

    async def _error(self, code: str, message: str) -> None:
        await self._send([ErrorMessage(code=code, message=message)])

    async def _close(self, code: int, reason: str = "") -> None:
        if self.connected:
            self.connected = False
            with contextlib.suppress(RuntimeError, OSError):
                await self.websocket.close(code, reason)
