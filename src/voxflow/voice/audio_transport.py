"""AgentSession audio I/O over any byte pipe (the audio WebSocket, a test, a bridge).

`PushAudioInput` takes the caller's PCM16 frames as they arrive. `PacedAudioOutput` sends the
agent's audio as PCM16 chunks paced at real time (a little ahead, so the client's buffer never
runs dry), which keeps what the session believes has played close to what the caller heard:
a barge-in then stops the agent within `lead_s`, and `clear` tells the client to drop the audio
it still buffers. `AudioRateGuard` refuses a client that sends audio faster than real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from livekit import rtc
from livekit.agents import utils
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities

SendBytes = Callable[[bytes], Awaitable[None]]


class PushAudioInput(AudioInput):
    """The caller's audio: `push_pcm16` frames in, the session reads them in order."""

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__(label="voxflow-push-input")
        self.sample_rate = sample_rate
        self._ch = utils.aio.Chan[rtc.AudioFrame]()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._ch.__anext__()

    def push_pcm16(self, data: bytes) -> None:
        """Queue mono PCM16LE audio (an even number of bytes) at the input's sample rate."""
        samples = len(data) // 2
        if samples and not self._ch.closed:
            frame = rtc.AudioFrame(data, self.sample_rate, 1, samples)
            self._ch.send_nowait(frame)

    def close(self) -> None:
        self._ch.close()


class PacedAudioOutput(AudioOutput):
    """The agent's audio, sent as PCM16 bytes in real time; `on_clear` runs on a barge-in."""

    def __init__(
        self,
        send: SendBytes,
        *,
        sample_rate: int,
        on_clear: Callable[[], Coroutine[Any, Any, None]] | None = None,
        lead_s: float = 0.25,
    ) -> None:
        super().__init__(
            label="voxflow-paced-output",
            capabilities=AudioOutputCapabilities(pause=False),
            sample_rate=sample_rate,
        )
        self._send = send
        self._rate = sample_rate
        self.on_clear = on_clear
        self.lead_s = lead_s
        # Frames of the agent's audio; None ends a segment (one flush of the session).
        self._items: deque[bytes | None] = deque()
        self._wake = asyncio.Event()
        self._capturing = False
        self._open_segments = 0  # captured, not yet reported finished
        self._generation = 0  # bumped by clear_buffer: what the sender holds is stale
        self._segment_start: float | None = None
        self._sent_s = 0.0
        self.frames_sent = 0
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voxflow-paced-output")

    async def aclose(self) -> None:
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._capturing:
            self._capturing = True
            self._open_segments += 1
        self._items.append(bytes(frame.data))
        self._wake.set()

    def flush(self) -> None:
        super().flush()
        if self._capturing:
            self._capturing = False
            self._items.append(None)
            self._wake.set()

    def clear_buffer(self) -> None:
        self._items.clear()
        self._capturing = False
        self._generation += 1
        played = self._played_s()
        open_segments, self._open_segments = self._open_segments, 0
        self._segment_start, self._sent_s = None, 0.0
        for index in range(open_segments):
            self.on_playback_finished(
                playback_position=played if index == 0 else 0.0, interrupted=True
            )
        if open_segments and self.on_clear is not None:
            task = asyncio.create_task(self.on_clear())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _played_s(self) -> float:
        if self._segment_start is None:
            return 0.0
        return max(0.0, min(time.monotonic() - self._segment_start, self._sent_s))

    async def _run(self) -> None:
        while True:
            while not self._items:
                self._wake.clear()
                await self._wake.wait()
            item = self._items.popleft()
            generation = self._generation
            if item is None:  # the segment is all sent: report it played once it has
                if self._segment_start is not None:
                    await asyncio.sleep(self._segment_start + self._sent_s - time.monotonic())
                if generation != self._generation:
                    continue
                position, self._segment_start, self._sent_s = self._sent_s, None, 0.0
                if self._open_segments:
                    self._open_segments -= 1
                    self.on_playback_finished(playback_position=position, interrupted=False)
                continue
            if self._segment_start is None:
                self._segment_start = time.monotonic()
                self.on_playback_started(created_at=time.time())
            ahead = self._segment_start + self._sent_s - self.lead_s - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            if generation != self._generation:
                continue  # cleared while waiting
            self._sent_s += len(item) / 2 / self._rate
            self.frames_sent += 1
            with contextlib.suppress(Exception):
                await self._send(item)


class AudioRateGuard:
    """Tracks audio received per wall-clock second over a sliding window."""

    def __init__(self, *, sample_rate: int, max_ratio: float, window_s: float) -> None:
        self.sample_rate = sample_rate
        self.window_s = window_s
        # Some jitter is fine: a client may send a burst after a network hiccup.
        self.limit_s = max_ratio * window_s + 0.5
        self._frames: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def add(self, n_bytes: int, now: float | None = None) -> bool:
        """Record a frame; False when the window holds more audio than allowed."""
        now = time.monotonic() if now is None else now
        duration = n_bytes / 2 / self.sample_rate
        self._frames.append((now, duration))
        self._total += duration
        while self._frames and self._frames[0][0] < now - self.window_s:
            self._total -= self._frames.popleft()[1]
        return self._total <= self.limit_s
