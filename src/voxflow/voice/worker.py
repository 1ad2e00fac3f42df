"""The LiveKit agent worker (`voxflow worker`): one job per call dispatched to `voxflow`.

POST /v1/sessions with `transport: "livekit"` creates the call's room and an explicit dispatch
to `agent_name="voxflow"` whose metadata is a `DispatchMetadata`. LiveKit hands the job to a
worker with room to spare (each worker reports its load as active calls / `capacity`); the
worker runs it in a job process prepared beforehand (`prewarm`: an `AppContext` and the speech
models, once per process). The job:

    metadata → the call (org-scoped, live, transport livekit) → join the room → `run_call`
    with the room's audio (livekit's RoomIO, the caller's identity only) → end the call

`serve_job` is all of it except the room: tests give it fake audio I/O instead. A call ends
with the workflow (its outcome, already stored by the agent), when the caller leaves the room
(`abandoned`) or at the workflow's `max_duration_s` (`timeout`). JSON messages (`transcript`,
`node`, `end`, `error`, as on the audio WebSocket) go to the caller over the room's data
channel, topic `voxflow`. A workflow's transfer moves a phone (SIP) caller with LiveKit's SIP
transfer; any other caller is told where to go (`{"type": "transfer"}`). On SIGTERM livekit's
worker stops taking jobs and waits (up to `drain_timeout`) for the calls in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess, room_io, stt, tts
from livekit.agents.voice.io import AudioInput, AudioOutput
from pydantic import ValidationError

from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.settings import Settings
from voxflow.engine.events import End, Outcome, Transfer
from voxflow.sessions import service
from voxflow.sessions.models import Call
from voxflow.sessions.repository import CallRepository
from voxflow.voice.agent import SendJson, TransferCall
from voxflow.voice.call import run_call, tell_the_client
from voxflow.voice.livekit_api import (
    AGENT_NAME,
    DispatchMetadata,
    LiveKitConfig,
    caller_identity,
    transfer_sip_caller,
)
from voxflow.voice.offline import VoiceModels, shared_models

log = structlog.get_logger("voxflow.voice.worker")

DATA_TOPIC = "voxflow"
DEFAULT_CAPACITY = 4
DEFAULT_DRAIN_TIMEOUT_S = 900
DEFAULT_HEALTH_PORT = 8081
# Loading the offline models in a fresh job process takes a few seconds.
PREWARM_TIMEOUT_S = 120.0
_CONTEXT, _MODELS = "voxflow_context", "voxflow_models"


class JobRefused(Exception):
    """The job names no call this worker may serve (bad metadata, unknown, ended, other org)."""


def parse_metadata(raw: str | None) -> DispatchMetadata:
    """The job's metadata; raises `JobRefused` with one readable line when it is not one."""
    if not raw:
        raise JobRefused("the job has no metadata (dispatch it through POST /v1/sessions)")
    try:
        return DispatchMetadata.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "metadata"
        raise JobRefused(f"bad job metadata: {where}: {first['msg']}") from None


async def job_call(context: AppContext, metadata: DispatchMetadata) -> Call:
    """The live LiveKit call the metadata names, looked up in its org; or `JobRefused`."""
    async with context.sessionmaker() as session:
        call = await CallRepository(session).get(metadata.org_id, metadata.session_id)
    if call is None or (call.agent_id, call.version_number) != (
        metadata.agent_id,
        metadata.version,
    ):
        raise JobRefused(f"no session {metadata.session_id} in org {metadata.org_id}")
    if call.transport != "livekit":
        raise JobRefused(f"session {call.id} is not a LiveKit voice session")
    if call.outcome is not None:
        raise JobRefused(f"session {call.id} has ended ({call.outcome})")
    return call


async def serve_job(
    context: AppContext,
    metadata_json: str | None,
    *,
    send: SendJson,
    audio_input: AudioInput | None = None,
    audio_output: AudioOutput | None = None,
    connect: Callable[[Call], Awaitable[rtc.Room]] | None = None,
    stop: asyncio.Event | None = None,
    models: VoiceModels | None = None,
    stt_override: stt.STT[Any] | None = None,
    tts_override: tts.TTS[Any] | None = None,
    transfer: TransferCall | None = None,
) -> Outcome:
    """Serve one dispatched call to its end; returns how it ended.

    `connect` joins the call's room once the call is known to be servable; the audio I/O left
    None is then the room's. Raises `JobRefused` (nothing touched) for a job naming no call it
    may serve. `stop` ends the call as `abandoned` (the caller left); a failure to join the
    room or of the call itself ends it as `failed`.
    """
    call = await job_call(context, parse_metadata(metadata_json))
    room = None
    if connect is not None:
        try:
            room = await connect(call)
        except Exception:
            await service.end_call(context, call.org_id, call.id, "failed", "room unavailable")
            raise
    log.info("worker_call_started", call_id=call.id, org_id=call.org_id, room=bool(room))
    stop = stop or asyncio.Event()
    ending: list[tuple[Outcome, str]] = [("abandoned", "caller left")]

    async def time_limit() -> None:
        deadline = await service.overdue_at(context, call)
        await asyncio.sleep(max((deadline - utcnow()).total_seconds(), 0.0))
        ending.insert(0, ("timeout", "max_duration_s"))
        stop.set()

    watchdog = asyncio.create_task(time_limit())
    try:
        outcome = await run_call(
            context,
            call,
            audio_input=audio_input,
            audio_output=audio_output,
            send=send,
            stop=stop,
            models=models,
            stt_override=stt_override,
            tts_override=tts_override,
            room=room,
            transfer=transfer,
            room_options=room_io.RoomOptions(
                participant_identity=caller_identity(call.id),
                text_input=False,
                close_on_disconnect=True,
            ),
        )
    except Exception:
        log.exception("worker_call_failed", call_id=call.id)
        ending.insert(0, ("failed", "voice call failed"))
        outcome = None
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watchdog
    if outcome is None:
        outcome, reason = ending[0]
        events = await service.end_call(context, call.org_id, call.id, outcome, reason)
        ended = [event.outcome for event in events if isinstance(event, End)]
        if ended:
            await send({"type": "end", "outcome": ended[-1]})
    log.info("worker_call_ended", call_id=call.id, outcome=outcome)
    return outcome


def sip_transfer(config: LiveKitConfig | None, room: rtc.Room, send: SendJson) -> TransferCall:
    """Transfer the room's phone caller over SIP; a caller in an app is told where to go."""
    tell = tell_the_client(send)

    async def transfer(handover: Transfer) -> None:
        phone = next(
            (
                participant
                for participant in room.remote_participants.values()
                if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP
            ),
            None,
        )
        if phone is None or config is None:
            await tell(handover)
            return
        await transfer_sip_caller(config, room.name, phone.identity, handover.target)

    return transfer


# The worker process (LiveKit's side) and its job processes.


def calls_load(capacity: int, server: AgentServer) -> float:
    """The worker's load: its calls over its capacity (at 1.0 LiveKit sends it no more)."""
    return min(len(server.active_jobs) / capacity, 1.0)


def prewarm(settings: Settings, proc: JobProcess) -> None:
    """Prepare a job process: its `AppContext` and the speech models (loaded once)."""
    proc.userdata[_CONTEXT] = AppContext.create(settings)
    proc.userdata[_MODELS] = asyncio.run(shared_models(settings))


async def entrypoint(ctx: JobContext) -> None:
    """One dispatched call: `serve_job` with the room's audio, then leave the room."""
    context: AppContext = ctx.proc.userdata[_CONTEXT]
    ctx.add_shutdown_callback(context.close)

    async def send(message: dict[str, Any]) -> None:
        if not ctx.room.isconnected():
            return
        try:
            payload = json.dumps(message).encode()
            await ctx.room.local_participant.publish_data(payload, topic=DATA_TOPIC)
        except Exception as exc:  # the caller's view only: the call goes on
            log.warning("worker_send_failed", error=repr(exc))

    async def transfer(handover: Transfer) -> None:
        config = LiveKitConfig.from_settings(context.settings)
        await sip_transfer(config, ctx.room, send)(handover)

    async def connect(_call: Call) -> rtc.Room:
        await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
        return ctx.room

    try:
        outcome = await serve_job(
            context,
            ctx.job.metadata,
            send=send,
            connect=connect,
            models=ctx.proc.userdata.get(_MODELS),
            transfer=transfer,
        )
    except JobRefused as exc:
        log.warning("worker_job_refused", job_id=ctx.job.id, reason=str(exc))
        ctx.shutdown(reason=f"refused: {exc}")
        return
    # Nobody stays in a room whose call is over: close it now rather than when LiveKit's
    # departure timeout notices the room is empty.
    with contextlib.suppress(Exception):
        await ctx.delete_room()
    ctx.shutdown(reason=f"call ended ({outcome})")


def build_server(
    settings: Settings,
    config: LiveKitConfig,
    *,
    capacity: int = DEFAULT_CAPACITY,
    drain_timeout: int = DEFAULT_DRAIN_TIMEOUT_S,
    health_port: int = DEFAULT_HEALTH_PORT,
) -> AgentServer:
    """livekit's worker for explicit dispatch to `voxflow`, at most `capacity` calls at once.

    Its HTTP health check (`GET /` on `health_port`) answers 200 while the worker is connected
    to LiveKit, for an orchestrator's liveness probe.
    """
    server = AgentServer(
        ws_url=config.url,
        api_key=config.api_key,
        api_secret=config.api_secret,
        setup_fnc=functools.partial(prewarm, settings),
        load_fnc=functools.partial(calls_load, capacity),
        load_threshold=1.0,
        drain_timeout=drain_timeout,
        num_idle_processes=min(capacity, 2),
        initialize_process_timeout=PREWARM_TIMEOUT_S,
        port=health_port,
    )
    server.rtc_session(entrypoint, agent_name=AGENT_NAME)
    return server


def run_worker(server: AgentServer, *, log_level: str = "INFO") -> None:
    """Run the worker until SIGTERM/SIGINT, then drain (livekit's production mode)."""
    from livekit.agents.cli import cli as livekit_cli
    from livekit.agents.cli import proto

    # livekit's own `start` command does exactly this (its CLI would re-parse our argv).
    livekit_cli._run_worker(server, proto.CliArgs(log_level=log_level, log_format="json"))
