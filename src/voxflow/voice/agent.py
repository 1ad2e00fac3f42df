"""The voice agent of one call: the Voxflow engine decides every reply, LiveKit voices it.

`WorkflowAgent` speaks the greeting the session computed when it was created (the stored agent
turn 0; the engine does not start twice), then takes each final transcript of the caller as a
turn of its `LiveCall` and voices the engine's lines as the engine decides them: one livekit
speech per turn whose text streams in (a transition line plays while the next node still runs;
a conversation node's model reply plays while the model writes it). livekit's own LLM is not
used: the engine calls its configured model itself. The agent reports what happens as JSON
messages through `send` (`node`, `transcript`, `end`, `error`; docs/api.md) and resolves
`finished` with the outcome once the last line has played.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from livekit.agents import Agent, StopResponse, llm
from livekit.agents.voice import SpeechHandle

from voxflow.core.errors import VoxflowError
from voxflow.engine.events import Outcome, Transfer
from voxflow.sessions.live import LiveCall

log = structlog.get_logger("voxflow.voice")

APOLOGY = "Sorry, I didn't catch that. Could you say it again?"
# Ends each line in a turn's text stream. livekit's sentence splitter holds a text's last
# sentence until more text comes, but ends one at a newline: a finished transition line is
# voiced at once even while the next node still works (a tool call).
LINE_END = "\n"

SendJson = Callable[[dict[str, Any]], Awaitable[None]]
# Carries out a workflow's transfer once its line has played (a SIP transfer, or a message to
# the client: `run_call` chooses).
TransferCall = Callable[[Transfer], Awaitable[None]]


class TurnTimer:
    """Times one voice turn from the end of the caller's speech; `on_done` gets the timings.

    All figures are ms after the caller stopped speaking, except `engine_ms` (the engine's time
    from the final transcript to its first line): `transcript_ms` (final transcript),
    `first_llm_token_ms` (a conversation node's model started answering), `first_tts_byte_ms`
    (the TTS's first audio), `first_audio_ms` (the first agent audio frame sent to the caller).
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

    def note(self, name: str, value: float) -> None:
        if self._anchor is not None and name not in self._timings:
            self._timings[name] = value

    def llm_first_token(self) -> None:
        if self._anchor is not None and "first_llm_token_ms" not in self._timings:
            self._timings["first_llm_token_ms"] = self._since()

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


class TurnSpeech:
    """The speech of one turn: a single livekit speech whose text arrives as it is decided.

    It opens on the first line (a turn that says nothing speaks nothing) and ends with `close`.
    Lines are sent to the caller as `transcript` messages; a model's reply piece by piece
    (`final: false`), then whole.
    """

    def __init__(self, agent: WorkflowAgent) -> None:
        self.agent = agent
        self.handle: SpeechHandle | None = None
        self._started = time.perf_counter()
        self._texts: asyncio.Queue[str | None] = asyncio.Queue()
        self._partial: list[str] = []
        self._closed = False

    def entered(self, node_id: str) -> None:
        self.agent.spawn(self.agent.send({"type": "node", "id": node_id}))

    def say(self, text: str) -> None:
        self._open()
        self._texts.put_nowait(text + LINE_END)
        self._transcript(text, final=True)

    def say_partial(self, text: str) -> None:
        if not self._partial and self.agent.timer is not None:
            self.agent.timer.llm_first_token()
        self._open()
        self._texts.put_nowait(text)
        self._partial.append(text)
        self._transcript("".join(self._partial), final=False)

    def end_partial(self) -> None:
        self._texts.put_nowait(LINE_END)
        self._transcript("".join(self._partial).strip(), final=True)
        self._partial = []

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._texts.put_nowait(None)

    def _open(self) -> None:
        if self.handle is None:
            if self.agent.timer is not None:  # the engine's time to its first line
                elapsed = (time.perf_counter() - self._started) * 1000
                self.agent.timer.note("engine_ms", round(elapsed, 1))
            self.handle = self.agent.session.say(
                self._stream(), allow_interruptions=self.agent.interruptible
            )

    async def _stream(self) -> AsyncIterator[str]:
        while (text := await self._texts.get()) is not None:
            yield text

    def _transcript(self, text: str, *, final: bool) -> None:
        message = {"type": "transcript", "role": "agent", "text": text, "final": final}
        self.agent.spawn(self.agent.send(message))


class WorkflowAgent(Agent):
    def __init__(
        self,
        live: LiveCall,
        *,
        send: SendJson,
        greeting: str,
        allow_interruptions: bool = True,
        timer: TurnTimer | None = None,
        transfer: TransferCall | None = None,
    ) -> None:
        super().__init__(
            instructions="Voxflow workflow agent: the workflow engine decides every reply."
        )
        self.live = live
        self.send = send
        self.greeting = greeting
        self.interruptible = allow_interruptions
        self.timer = timer
        self.transfer = transfer
        self.finished: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending = False

    async def on_enter(self) -> None:
        handle = self._speak(self.greeting) if self.greeting else None
        if self.live.call.outcome is not None:  # the workflow ended as it started
            self._finish_after(handle, self.live.call.outcome)  # type: ignore[arg-type]

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        text = (new_message.text_content or "").strip()
        if not text or self.finished.done() or self._ending:
            raise StopResponse()
        stopped = new_message.metrics.get("stopped_speaking_at") or time.time()
        timings: dict[str, float] = {}
        if (delay := new_message.metrics.get("transcription_delay")) is not None:
            timings["transcript_ms"] = round(delay * 1000, 1)
        if self.timer is not None:
            # Turn n's caller line is stored as seq 2n-1, the reply as 2n.
            self.timer.begin(self.live.last_agent_seq + 2, stopped, timings)
        speech = TurnSpeech(self)
        try:
            result = await self.live.take_turn(text, speech)
        except VoxflowError as exc:
            self.spawn(self.send({"type": "error", "code": exc.slug, "message": exc.detail}))
            raise StopResponse() from None
        except Exception:
            log.exception("voice_turn_failed", call_id=self.live.call.id)
            message = "The turn failed; it is logged."
            self.spawn(self.send({"type": "error", "code": "internal", "message": message}))
            raise StopResponse() from None
        finally:
            speech.close()
            if speech.handle is None and self.timer is not None:
                self.timer.cancel()
        if result.outcome is not None:
            handover = next((e for e in result.events if isinstance(e, Transfer)), None)
            self._finish_after(speech.handle, result.outcome, handover)
        raise StopResponse()

    def apologize(self) -> None:
        """The caller's words were lost (the STT failed): ask them again."""
        if not self._ending and not self.finished.done():
            self._speak(APOLOGY)

    def _speak(self, text: str) -> SpeechHandle:
        self.spawn(self.send({"type": "transcript", "role": "agent", "text": text, "final": True}))
        return self.session.say(text, allow_interruptions=self.interruptible)

    def _finish_after(
        self, handle: SpeechHandle | None, outcome: Outcome, handover: Transfer | None = None
    ) -> None:
        self._ending = True

        async def finish() -> None:
            if handle is not None:
                try:
                    await handle.wait_for_playout()
                except Exception:  # the session closed under it: the call ended anyway
                    log.debug("voice_final_line_not_played", call_id=self.live.call.id)
            if handover is not None:
                await self._hand_over(handover)
            await self.send({"type": "end", "outcome": outcome})
            if not self.finished.done():
                self.finished.set_result(outcome)

        self.spawn(finish())

    async def _hand_over(self, handover: Transfer) -> None:
        if self.transfer is None:
            return
        try:
            await self.transfer(handover)
        except Exception as exc:  # the call still ends; the caller's side learns why
            log.warning("voice_transfer_failed", call_id=self.live.call.id, error=repr(exc))
            message = f"The transfer to {handover.target} failed."
            await self.send({"type": "error", "code": "transfer_failed", "message": message})
            seq = self.live.last_agent_seq
            await self.live.record_issue(seq, "transfer_failed", str(exc)[:300])

    def spawn(self, coroutine: Awaitable[None]) -> None:
        """Run `coroutine` beside the conversation (its failure is logged, never raised)."""

        async def run() -> None:
            try:
                await coroutine
            except Exception:
                log.exception("voice_background_failed", call_id=self.live.call.id)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
