"""The audio WebSocket of a voice session: `WS /v1/sessions/{id}/audio?token=…` (docs/api.md).

The server sends `{"type": "ready", "input_sample_rate": 16000, "output_sample_rate": N}`
first; the client then streams binary PCM16LE mono 16 kHz frames (up to 100 ms each) and the
server answers with binary PCM16LE mono audio at N Hz and JSON messages (`transcript`,
`node`, `clear`, `end`, `error`). `{"type": "hangup"}` ends the call. A bad frame gets an
`error` and the call goes on; audio faster than real time (sustained) closes with 1008; an
unknown, ended or non-WebSocket-voice session, or a wrong token, closes with 4404. A client that
goes away leaves the call `abandoned`, every turn kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect

from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.engine.events import End, Outcome
from voxflow.sessions import service
from voxflow.sessions.models import Call
from voxflow.voice.audio_transport import AudioRateGuard, PacedAudioOutput, PushAudioInput
from voxflow.voice.call import run_call
from voxflow.voice.offline import HIBARI_SAMPLE_RATE, shared_models
from voxflow.voice.whisper import STT_SAMPLE_RATE

log = structlog.get_logger("voxflow.voice")
router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

INPUT_SAMPLE_RATE = STT_SAMPLE_RATE
OUTPUT_SAMPLE_RATE = HIBARI_SAMPLE_RATE
MAX_AUDIO_FRAME_BYTES = INPUT_SAMPLE_RATE * 2 // 10  # 100 ms
MAX_TEXT_FRAME_BYTES = 4096
CLOSE_NOT_FOUND, CLOSE_POLICY, CLOSE_INTERNAL = 4404, 1008, 1011


@router.websocket("/{session_id}/audio")
async def audio(
    websocket: WebSocket,
    session_id: Annotated[str, Path(max_length=64)],
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> None:
    context: AppContext = websocket.app.state.context
    await websocket.accept()
    call = await service.stream_call(context, session_id, token) if token else None
    if call is None or call.outcome is not None or call.transport != "websocket":
        await websocket.close(CLOSE_NOT_FOUND, "no such live voice session")
        return
    await AudioSession(context, websocket, call).run()


class AudioSession:
    """One audio WebSocket: a reader feeding the call's audio input, the call, the close."""

    def __init__(self, context: AppContext, websocket: WebSocket, call: Call) -> None:
        self.context = context
        self.websocket = websocket
        self.call = call
        self.connected = True
        self.audio_in = PushAudioInput(INPUT_SAMPLE_RATE)
        settings = context.settings
        self.guard = AudioRateGuard(
            sample_rate=INPUT_SAMPLE_RATE,
            max_ratio=settings.voice_max_audio_ratio,
            window_s=settings.voice_rate_window_s,
        )
        self.stop = asyncio.Event()
        # Why the call is ending from this side: its outcome, reason and close code.
        self.ending: tuple[Outcome, str, int] = ("abandoned", "client left", 1000)
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        try:
            models = await shared_models(self.context.settings)
        except Exception:
            log.exception("voice_models_failed")
            await self._send({"type": "error", "code": "voice_unavailable", "message": "…"})
            await self._close(CLOSE_INTERNAL, "voice models unavailable")
            return
        output = PacedAudioOutput(
            self._send_bytes,
            sample_rate=OUTPUT_SAMPLE_RATE,
            on_clear=lambda: self._send({"type": "clear"}),
        )
        output.start()
        await self._send(
            {
                "type": "ready",
                "input_sample_rate": INPUT_SAMPLE_RATE,
                "output_sample_rate": OUTPUT_SAMPLE_RATE,
            }
        )
        the_call = asyncio.create_task(
            run_call(
                self.context,
                self.call,
                audio_input=self.audio_in,
                audio_output=output,
                send=self._send,
                stop=self.stop,
                models=models,
            )
        )
        reader = asyncio.create_task(self._read())
        watchdog = asyncio.create_task(self._watch_time_limit())
        outcome: Outcome | None = None
        try:
            await asyncio.wait({the_call, reader, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            self.stop.set()
            try:
                outcome = await the_call
            except Exception:
                log.exception("voice_call_failed", call_id=self.call.id)
                await self._send({"type": "error", "code": "internal", "message": "Call failed."})
        finally:
            for task in (reader, watchdog):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await output.aclose()
            self.audio_in.close()
            if outcome is None:
                await self._end_from_here()
            else:
                await self._close(1000)

    async def _end_from_here(self) -> None:
        outcome, reason, code = self.ending
        events = await service.end_call(
            self.context, self.call.org_id, self.call.id, outcome, reason
        )
        ended = [event.outcome for event in events if isinstance(event, End)]
        if ended:
            await self._send({"type": "end", "outcome": ended[-1]})
        await self._close(code, reason if code != 1000 else "")

    async def _read(self) -> None:
        while self.connected:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self.connected = False
                return
            data = message.get("bytes")
            if data is not None:
                if not await self._on_audio(data):
                    return
            elif not await self._on_text(message.get("text") or ""):
                return

    async def _on_audio(self, data: bytes) -> bool:
        if len(data) % 2:
            await self._error("bad_audio", "Audio frames are PCM16LE: an even number of bytes.")
            return True
        if len(data) > MAX_AUDIO_FRAME_BYTES:
            await self._error("frame_too_large", "Audio frames are limited to 100 ms (3200 B).")
            return True
        if not self.guard.add(len(data)):
            await self._error("too_much_audio", "Audio is arriving faster than real time.")
            self.ending = ("abandoned", "audio faster than real time", CLOSE_POLICY)
            return False
        self.audio_in.push_pcm16(data)
        return True

    async def _on_text(self, text: str) -> bool:
        try:
            if len(text) > MAX_TEXT_FRAME_BYTES:
                raise ValueError("too long")
            data: Any = json.loads(text)
            kind = data.get("type") if isinstance(data, dict) else None
        except ValueError:
            kind = None
        if kind == "hangup":
            self.ending = ("abandoned", "caller hung up", 1000)
            return False
        await self._error(
            "bad_message", 'Send binary PCM16 audio frames, or {"type": "hangup"} to end the call.'
        )
        return True

    async def _watch_time_limit(self) -> None:
        deadline = await service.overdue_at(self.context, self.call)
        await asyncio.sleep(max((deadline - utcnow()).total_seconds(), 0.0))
        self.ending = ("timeout", "max_duration_s", 1000)

    async def _send(self, message: dict[str, Any]) -> None:
        await self._transmit(json.dumps(message))

    async def _send_bytes(self, data: bytes) -> None:
        await self._transmit(data)

    async def _transmit(self, payload: str | bytes) -> None:
        if not self.connected:
            return
        async with self._send_lock:
            try:
                if isinstance(payload, bytes):
                    await self.websocket.send_bytes(payload)
                else:
                    await self.websocket.send_text(payload)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.connected = False

    async def _error(self, code: str, message: str) -> None:
        await self._send({"type": "error", "code": code, "message": message})

    async def _close(self, code: int, reason: str = "") -> None:
        if self.connected:
            self.connected = False
            with contextlib.suppress(RuntimeError, OSError):
                await self.websocket.close(code, reason)
