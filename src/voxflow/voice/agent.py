"""The voice agent of one call: the Voxflow engine decides every reply, LiveKit voices it.

`WorkflowAgent` speaks the greeting the session computed when it was created (the stored agent
turn 0; the engine does not start twice), then takes each final transcript of the caller as a
turn (`sessions.service.take_turn`: the caller's words are stored before the engine runs, the
reply after) and says the engine's lines. No language model is involved: the engine routes by
examples offline, or calls its configured model itself. The agent reports what happens as
JSON messages through `send` (`node`, `transcript`, `end`, `error`; docs/api.md) and resolves
`finished` with the outcome once the last line has played.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from livekit.agents import Agent, StopResponse, llm
from livekit.agents.voice import SpeechHandle

from voxflow.core.context import AppContext
from voxflow.core.errors import VoxflowError
from voxflow.engine.events import EnterNode, Outcome, spoken_text
from voxflow.orgs.auth import AuthSubject
from voxflow.orgs.models import Role
from voxflow.sessions import service
from voxflow.sessions.models import Call

log = structlog.get_logger("voxflow.voice")

APOLOGY = "Sorry, I didn't catch that. Could you say it again?"

SendJson = Callable[[dict[str, Any]], Awaitable[None]]


class TurnTimer:
    """Times one voice turn from the end of the caller's speech; `on_done` gets the timings.

    All figures are ms after the caller stopped speaking (`engine_ms` is the engine's turn,
    storing included): `transcript_ms` (final transcript), `first_tts_byte_ms` (the TTS's first
    audio), `first_audio_ms` (the first agent audio frame sent to the caller).
    """

    def __init__(self, on_done: Callable[[int, dict[str, float]], None]) -> None:
        self.on_done = on_done
        self._anchor: float | None = None
        self._seq = 0
        self._timings: dict[str, float] = {}

    def begin(self, seq: int, stopped_speaking_at: float, timings: dict[str, float]) -> None:
        """Time the reply stored as agent turn `seq`."""
        self._seq, self._anchor, self._timings = seq, stopped_speaking_at, dict(timings)

    def _since(self) -> float:
        assert self._anchor is not None
        return round((time.time() - self._anchor) * 1000, 1)

    def tts_first_byte(self) -> None:
        if self._anchor is not None and "first_tts_byte_ms" not in self._timings:
            self._timings["first_tts_byte_ms"] = self._since()

    def frame_sent(self) -> None:
        if self._anchor is None:
            return
        self._timings["first_audio_ms"] = self._since()
        timings, self._anchor, self._timings = self._timings, None, {}
        self.on_done(self._seq, timings)

    def cancel(self) -> None:
        self._anchor, self._timings = None, {}


class WorkflowAgent(Agent):
    def __init__(
        self,
        context: AppContext,
        call: Call,
        *,
        send: SendJson,
        greeting: str,
        allow_interruptions: bool = True,
        timer: TurnTimer | None = None,
    ) -> None:
        super().__init__(
            instructions="Voxflow workflow agent: the workflow engine decides every reply."
        )
        self.context = context
        self.call = call
        self.auth = AuthSubject(org_id=call.org_id, role=Role.member)
        self.send = send
        self.greeting = greeting
        self.interruptible = allow_interruptions
        self.timer = timer
        self.finished: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending = False
        self._turn_count = call.turn_count

    async def on_enter(self) -> None:
        handle = self._speak(self.greeting) if self.greeting else None
        if self.call.outcome is not None:  # the workflow ended as it started
            self._finish_after(handle, self.call.outcome)  # type: ignore[arg-type]

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        text = (new_message.text_content or "").strip()
        if not text or self.finished.done() or self._ending:
            raise StopResponse()
        now = time.time()
        stopped = new_message.metrics.get("stopped_speaking_at") or now
        timings: dict[str, float] = {}
        if (delay := new_message.metrics.get("transcription_delay")) is not None:
            timings["transcript_ms"] = round(delay * 1000, 1)
        started = time.perf_counter()
        try:
            result = await service.take_turn(self.context, self.auth, self.call.id, text)
        except VoxflowError as exc:
            await self.send({"type": "error", "code": exc.slug, "message": exc.detail})
            raise StopResponse() from None
        except Exception:
            log.exception("voice_turn_failed", call_id=self.call.id)
            await self.send(
                {"type": "error", "code": "internal", "message": "The turn failed; it is logged."}
            )
            raise StopResponse() from None
        timings["engine_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self._turn_count += 1
        for event in result.events:
            if isinstance(event, EnterNode):
                await self.send({"type": "node", "id": event.id})
        reply = spoken_text(result.events)
        if self.timer is not None:
            if reply:
                # Turn n's caller line is stored as seq 2n-1, the reply as 2n.
                self.timer.begin(self._turn_count * 2, stopped, timings)
            else:
                self.timer.cancel()
        handle = self._speak(reply) if reply else None
        if result.outcome is not None:
            self._finish_after(handle, result.outcome)
        raise StopResponse()

    def apologize(self) -> None:
        """The caller's words were lost (the STT failed): ask them again."""
        if not self._ending and not self.finished.done():
            self._speak(APOLOGY)

    def _speak(self, text: str) -> SpeechHandle:
        self._spawn(self.send({"type": "transcript", "role": "agent", "text": text, "final": True}))
        return self.session.say(text, allow_interruptions=self.interruptible)

    def _finish_after(self, handle: SpeechHandle | None, outcome: Outcome) -> None:
        self._ending = True

        async def finish() -> None:
            if handle is not None:
                try:
                    await handle.wait_for_playout()
                except Exception:  # the session closed under it: the call ended anyway
                    log.debug("voice_final_line_not_played", call_id=self.call.id)
            await self.send({"type": "end", "outcome": outcome})
            if not self.finished.done():
                self.finished.set_result(outcome)

        self._spawn(finish())

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def run() -> None:
            await coroutine

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
