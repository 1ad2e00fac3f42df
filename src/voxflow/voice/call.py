"""One voice call: a roomless livekit `AgentSession` around a `WorkflowAgent`.

    outcome = await run_call(context, call, audio_input=..., audio_output=..., send=...)

Any transport reuses it: the audio WebSocket (`voice.routes`) passes a `PushAudioInput` and a
`PacedAudioOutput`; a LiveKit worker can pass the room's audio I/O. `run_call` returns when the
workflow ended and its last line played (the outcome), or when `stop` is set or the session
closed (None: the caller left; the transport ends the call).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from livekit import rtc
from livekit.agents import AgentSession, APIConnectOptions, room_io, stt, tts, utils
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import CloseEvent, ErrorEvent, UserInputTranscribedEvent
from livekit.agents.voice.io import AudioInput, AudioOutput

from voxflow.core.context import AppContext
from voxflow.core.settings import Settings
from voxflow.engine.events import Outcome, Transfer
from voxflow.sessions.live import LiveCall
from voxflow.sessions.models import Call
from voxflow.sessions.service import opening_line
from voxflow.voice.agent import SendJson, TransferCall, TurnTimer, WorkflowAgent
from voxflow.voice.offline import VoiceModels, shared_models
from voxflow.voice.providers import (
    build_call_stt,
    build_call_tts,
    build_stt,
    build_tts,
    choose_providers,
    offline_whisper,
)
from voxflow.voice.recording import CallRecorder, RecordingAudioInput, RecordingAudioOutput
from voxflow.voice.retention import recording_file
from voxflow.voice.whisper import WhisperSTT

log = structlog.get_logger("voxflow.voice")
RETRY_ONCE = APIConnectOptions(max_retry=1, retry_interval=0.5, timeout=10.0)


def build_session(
    settings: Settings,
    models: VoiceModels,
    *,
    allow_interruptions: bool = True,
    on_tts_first_byte: Callable[[], None] | None = None,
    stt_override: stt.STT[Any] | None = None,
    tts_override: tts.TTS[Any] | None = None,
    early_end: Callable[[str], bool] | None = None,
) -> AgentSession[None]:
    """A session with the configured STT/TTS, VAD-based turns and VAD barge-in, no LLM.

    Turns and interruptions rest on silero VAD: livekit's defaults would load its cloud turn
    detector. The offline whisper STT runs its own silero segmentation and transcribes while
    the caller speaks, so it ends the turns itself ("stt"), as soon as the transcript is ready,
    or at a pause when `early_end(transcript)` is true (see `voice.offline`).
    """
    recognizer = stt_override or build_stt(settings, models)
    streams_turns = isinstance(recognizer, WhisperSTT) and recognizer.capabilities.streaming
    if isinstance(recognizer, WhisperSTT) and early_end is not None:
        recognizer.early_end = early_end
    return AgentSession(
        stt=recognizer,
        tts=tts_override or build_tts(settings, models, on_tts_first_byte),
        vad=models.vad,
        turn_handling={
            "turn_detection": "stt" if streams_turns else "vad",
            "endpointing": {"min_delay": 0.0, "max_delay": 3.0},
            "interruption": {
                "enabled": allow_interruptions,
                "mode": "vad",
                "min_duration": settings.voice_min_interruption_s,
                # Without pausable playback a "false" interruption cannot be resumed.
                "resume_false_interruption": False,
                "false_interruption_timeout": None,
            },
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
        # A failed STT or TTS request is retried once, then reported (`error` frame).
        conn_options=SessionConnectOptions(
            stt_conn_options=RETRY_ONCE, tts_conn_options=RETRY_ONCE
        ),
        # livekit ignores barge-ins for the first 3 s of agent speech while an echo canceller
        # would warm up; echo cancellation is the client's part here (browsers do it).
        aec_warmup_duration=None,
    )


def tell_the_client(send: SendJson) -> TransferCall:
    """A transfer the client carries out (the browser, an app): it is told where to."""

    async def transfer(handover: Transfer) -> None:
        await send({"type": "transfer", "target": handover.target, "mode": handover.mode})

    return transfer


async def run_call(
    context: AppContext,
    call: Call,
    *,
    audio_input: AudioInput | None,
    audio_output: AudioOutput | None,
    send: SendJson,
    stop: asyncio.Event | None = None,
    models: VoiceModels | None = None,
    stt_override: stt.STT[Any] | None = None,
    tts_override: tts.TTS[Any] | None = None,
    room: rtc.Room | None = None,
    room_options: room_io.RoomOptions | None = None,
    transfer: TransferCall | None = None,
) -> Outcome | None:
    """Run the call until the workflow ends (its outcome) or `stop` / the session closes.

    The caller's turns and the agent's replies are stored as they happen (the same as text
    sessions); voice turns' timings go to `call_turns.timings`. Ending the call when the caller
    left (`abandoned`) is the transport's part. `stt_override`/`tts_override` replace the
    configured providers (tests, or a worker with its own). With a `room` (the LiveKit
    worker), the audio I/O left None is the room's (livekit's RoomIO, `room_options`). A
    workflow's transfer is carried out by `transfer` once its line has played; by default the
    client is told (`{"type": "transfer", "target", "mode"}`) and the call ends `transferred`.
    """
    settings = context.settings
    models = models or await shared_models(settings)
    live = await LiveCall.open(context, call)
    greeting = await opening_line(context, call)
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coroutine: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await coroutine
            except Exception:
                log.exception("voice_background_failed", call_id=call.id)

        task = asyncio.create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    timer = TurnTimer(lambda seq, timings: spawn(live.store_timings(seq, timings)))
    document_settings = live.engine.document.settings
    choice = await choose_providers(context, call.org_id, call.id, document_settings)
    if stt_override is None:  # a workflow's `local` holds even where the operator has a key
        stt_override = build_call_stt(choice, models, settings)
    if tts_override is None:
        tts_override = build_call_tts(choice, models, settings, timer.tts_first_byte)
    session = build_session(
        settings,
        models,
        allow_interruptions=document_settings.interruptions,
        on_tts_first_byte=timer.tts_first_byte,
        stt_override=stt_override,
        tts_override=tts_override,
    )
    recorder: CallRecorder | None = None
    if call.recording_path and audio_input is not None and audio_output is not None:
        recorder = await CallRecorder.open(recording_file(settings, call.recording_path))
        if recorder is not None:
            audio_input = RecordingAudioInput(audio_input, recorder)
            audio_output = RecordingAudioOutput(audio_output, recorder)
    if audio_input is not None:
        session.input.audio = audio_input
    if audio_output is not None:
        session.output.audio = audio_output
        audio_output.on("playback_started", lambda _event: timer.frame_sent())
    closed = asyncio.Event()

    def transcribed(event: UserInputTranscribedEvent) -> None:
        if event.transcript.strip():
            message = {"type": "transcript", "role": "user", "text": event.transcript}
            spawn(send({**message, "final": event.is_final}))

    def errored(event: ErrorEvent) -> None:
        # livekit has retried the request (conn_options) before an unrecoverable error.
        if not isinstance(event.source, (tts.TTS, stt.STT)):
            return
        source = "stt" if isinstance(event.source, stt.STT) else "tts"
        recoverable = bool(getattr(event.error, "recoverable", False))
        log.warning(
            "voice_provider_error",
            call_id=call.id,
            source=source,
            recoverable=recoverable,
            error=str(getattr(event.error, "error", event.error)),
        )
        if recoverable:
            return
        message = f"The {source.upper()} provider failed."
        spawn(send({"type": "error", "code": f"{source}_failed", "message": message}))
        detail = str(getattr(event.error, "error", event.error))[:300]
        spawn(live.record_issue(live.last_agent_seq, f"{source}_failed", detail))
        if source == "stt":  # the caller was not heard: ask again (the TTS still works)
            agent.apologize()

    def session_closed(event: CloseEvent) -> None:
        if event.error is not None:
            log.warning("voice_session_closed", call_id=call.id, error=str(event.error))
        closed.set()

    agent = WorkflowAgent(
        live,
        send=send,
        greeting=greeting,
        allow_interruptions=document_settings.interruptions,
        timer=timer,
        transfer=transfer or tell_the_client(send),
    )

    def stt_failed(error: Exception) -> None:
        message = "The caller's speech could not be transcribed."
        spawn(send({"type": "error", "code": "stt_failed", "message": message}))
        spawn(live.record_issue(live.last_agent_seq, "stt_failed", repr(error)[:300]))
        agent.apologize()

    if session.stt is not None and (whisper := offline_whisper(session.stt)) is not None:
        whisper.on_failure = stt_failed
        # A caller who already gave what the node asks for is answered at a short pause.
        whisper.early_end = live.answer_completes

    def fell_back(source: str, provider: str) -> None:
        # The cloud provider failed twice: the offline one carries the call from here.
        log.warning("voice_provider_fell_back", call_id=call.id, source=source, provider=provider)
        message = f"{provider} failed; the offline {source.upper()} took over"
        spawn(live.record_issue(live.last_agent_seq, f"{source}_failed", message))

    if isinstance(session.stt, stt.FallbackAdapter):
        session.stt.on(
            "stt_availability_changed",
            lambda event: None if event.available else fell_back("stt", event.stt.provider),
        )
    if isinstance(session.tts, tts.FallbackAdapter):
        session.tts.on(
            "tts_availability_changed",
            lambda event: None if event.available else fell_back("tts", event.tts.provider),
        )
    session.on("user_input_transcribed", transcribed)
    session.on("error", errored)
    session.on("close", session_closed)
    waits: list[asyncio.Future[Any]] = [agent.finished, asyncio.ensure_future(closed.wait())]
    if stop is not None:
        waits.append(asyncio.ensure_future(stop.wait()))
    # Cloud plugins need an aiohttp session: a worker's job has one (then this is a no-op),
    # the WebSocket path not.
    http = contextlib.AsyncExitStack()
    await http.enter_async_context(utils.http_context.open())
    try:
        if room is None:
            await session.start(agent, record=False)
        else:
            options = room_options or room_io.RoomOptions()
            await session.start(agent, record=False, room=room, room_options=options)
            if audio_output is None and session.output.audio is not None:
                session.output.audio.on("playback_started", lambda _event: timer.frame_sent())
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits[1:]:
            waiter.cancel()
        with contextlib.suppress(Exception):
            await session.aclose()
        if recorder is not None:
            await recorder.aclose()
        await http.aclose()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5.0)
    return agent.finished.result() if agent.finished.done() else None
