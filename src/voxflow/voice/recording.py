"""Call recording: a stereo WAV (caller left, agent right, 16 kHz) written while the call runs.

    recorder = await CallRecorder.open(recording_file(settings, call.recording_path))
    audio_input = RecordingAudioInput(audio_input, recorder)
    audio_output = RecordingAudioOutput(audio_output, recorder)
    ...
    await recorder.aclose()

Both channels are placed on one wall clock from `start`: a side nobody speaks on is silence.
The caller's frames arrive in real time; the agent's arrive faster than real time (the TTS runs
ahead of playback), so they are queued after each other from the moment the first one arrives,
as the output plays them, and a barge-in (`clear_buffer`) drops the part not yet played. Only
the last `hold_s` (plus the agent's queued reply) stays in memory: every `flush_interval_s` the
settled audio is appended to the file in a worker thread and the header's sizes are rewritten,
so a process that dies mid-call leaves a WAV that plays up to its last flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import structlog
from livekit import rtc
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities

log = structlog.get_logger("voxflow.voice")

RECORDING_SAMPLE_RATE = 16000
CHANNELS = 2  # caller left, agent right
SAMPLE_BYTES = 2
HEADER_BYTES = 44

Samples = np.ndarray[tuple[int], np.dtype[np.int16]]


def _wav_header(data_bytes: int) -> bytes:
    byte_rate = RECORDING_SAMPLE_RATE * CHANNELS * SAMPLE_BYTES
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        HEADER_BYTES - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        CHANNELS,
        RECORDING_SAMPLE_RATE,
        byte_rate,
        CHANNELS * SAMPLE_BYTES,
        SAMPLE_BYTES * 8,
        b"data",
        data_bytes,
    )


class _WavFile:
    """The file side, used from a worker thread only (one call at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data_bytes = 0
        self._file: BinaryIO | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        self._file.write(_wav_header(0))
        self._file.flush()

    def append(self, interleaved: bytes) -> None:
        if self._file is None:
            return
        self._file.write(interleaved)
        self.data_bytes += len(interleaved)
        # Sizes rewritten after every append: a crash leaves a header that matches the data.
        self._file.seek(0)
        self._file.write(_wav_header(self.data_bytes))
        self._file.seek(0, 2)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Channel:
    """One side's samples not yet written; `start` is where they begin on the file's clock."""

    def __init__(self) -> None:
        self.start = 0
        self.pending: list[Samples] = []
        self.length = 0
        self._resamplers: dict[int, rtc.AudioResampler] = {}

    @property
    def end(self) -> int:
        return self.start + self.length

    def to_mono_16k(self, frame: rtc.AudioFrame) -> Samples:
        frames = [frame]
        if frame.sample_rate != RECORDING_SAMPLE_RATE:
            resampler = self._resamplers.get(frame.sample_rate)
            if resampler is None:
                resampler = rtc.AudioResampler(
                    frame.sample_rate, RECORDING_SAMPLE_RATE, num_channels=frame.num_channels
                )
                self._resamplers[frame.sample_rate] = resampler
            frames = resampler.push(frame)
        parts = [np.frombuffer(f.data, dtype=np.int16)[:: f.num_channels].copy() for f in frames]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def place(self, samples: Samples, at: int, tolerance: int) -> None:
        """Append, after silence when the side was quiet since `end` (beyond the tolerance)."""
        if at - self.end > tolerance:
            self.append(np.zeros(at - self.end, np.int16))
        self.append(samples)

    def append(self, samples: Samples) -> None:
        if len(samples):
            self.pending.append(samples)
            self.length += len(samples)

    def truncate(self, at: int) -> None:
        """Drop what lies after `at` (audio queued for playback that never played)."""
        keep = max(0, at - self.start)
        if keep >= self.length:
            return
        joined = np.concatenate(self.pending) if self.pending else np.zeros(0, np.int16)
        self.pending = [joined[:keep]] if keep else []
        self.length = keep

    def take(self, upto: int) -> Samples:
        """Samples from `start` to `upto` (silence where there are none); `start` moves there."""
        count = max(0, upto - self.start)
        joined = np.concatenate(self.pending) if self.pending else np.zeros(0, np.int16)
        taken, rest = joined[:count], joined[count:]
        if len(taken) < count:
            taken = np.concatenate([taken, np.zeros(count - len(taken), np.int16)])
        self.pending = [rest] if len(rest) else []
        self.length = len(rest)
        self.start = upto
        return taken


class CallRecorder:
    """Writes one call's stereo WAV incrementally; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        flush_interval_s: float = 1.0,
        hold_s: float = 0.5,
        gap_tolerance_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.flush_interval_s = flush_interval_s
        self._hold = int(hold_s * RECORDING_SAMPLE_RATE)
        self._tolerance = int(gap_tolerance_s * RECORDING_SAMPLE_RATE)
        self._clock = clock
        self._t0: float | None = None
        self._file = _WavFile(path)
        self._caller = _Channel()
        self._agent = _Channel()
        self._write_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failed = False
        self.closed = False

    @classmethod
    async def open(cls, path: Path) -> CallRecorder | None:
        """A started recorder, or None (logged) when the file cannot be created: a call is
        never refused for want of its recording."""
        recorder = cls(path)
        try:
            await recorder.start()
        except OSError:
            log.exception("voice_recording_unavailable", path=str(path))
            await recorder.aclose()
            return None
        return recorder

    @property
    def recording(self) -> bool:
        return self._t0 is not None and not self.closed and not self._failed

    @property
    def written_s(self) -> float:
        """Audio on disk so far, in seconds."""
        return self._file.data_bytes / (CHANNELS * SAMPLE_BYTES * RECORDING_SAMPLE_RATE)

    async def start(self) -> None:
        """Create the file and start the clock (the caller's first frame is heard from now)."""
        await asyncio.to_thread(self._file.open)
        self._t0 = self._clock()
        self._task = asyncio.create_task(self._run(), name="voxflow-call-recorder")

    def add_caller(self, frame: rtc.AudioFrame) -> None:
        """A frame the caller said, just received (it ends now)."""
        if not self.recording:
            return
        samples = self._caller.to_mono_16k(frame)
        self._caller.place(samples, self._now() - len(samples), self._tolerance)

    def add_agent(self, frame: rtc.AudioFrame) -> None:
        """A frame queued for playback: it plays after the queued ones, or now if none are."""
        if not self.recording:
            return
        self._agent.place(self._agent.to_mono_16k(frame), self._now(), 0)

    def agent_cleared(self) -> None:
        """Playback stopped (barge-in): the agent's queued audio after now never played."""
        if self.recording:
            self._agent.truncate(max(self._now(), self._agent.start))

    async def flush(self, *, final: bool = False) -> None:
        """Append what is settled (all of it when `final`) to the file, off the event loop."""
        async with self._write_lock:
            now = self._now()
            upto = now - self._hold
            if final:
                upto = max(now, self._caller.end)  # the agent's unplayed rest never played
            upto = max(upto, self._caller.start)
            if upto <= self._caller.start:
                return
            block = np.empty((upto - self._caller.start) * CHANNELS, np.int16)
            block[0::2] = self._caller.take(upto)
            block[1::2] = self._agent.take(upto)
            await asyncio.to_thread(self._file.append, block.tobytes())

    async def aclose(self) -> None:
        """Write the rest and close the file; safe to call twice or after a failed start.
        Never raises: the call's end must not fail for its recording."""
        if self.closed:
            return
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            if self.recording:
                await self.flush(final=True)
        except Exception:
            log.exception("voice_recording_failed", path=str(self.path))
        finally:
            self.closed = True
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._file.close)

    def _now(self) -> int:
        assert self._t0 is not None
        return round((self._clock() - self._t0) * RECORDING_SAMPLE_RATE)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.flush_interval_s)
            if self._stopping.is_set():
                return
            try:
                await self.flush()
            except Exception:  # a full disk must not end the call: stop recording instead
                log.exception("voice_recording_failed", path=str(self.path))
                self._failed = True
                return


class RecordingAudioInput(AudioInput):
    """The caller's audio, passed through unchanged and copied to the recorder."""

    def __init__(self, source: AudioInput, recorder: CallRecorder) -> None:
        super().__init__(label="voxflow-recording-input", source=source)
        self._recorder = recorder

    async def __anext__(self) -> rtc.AudioFrame:
        assert self.source is not None
        frame = await self.source.__anext__()
        self._recorder.add_caller(frame)
        return frame


class RecordingAudioOutput(AudioOutput):
    """The agent's audio, passed on unchanged to `sink` and copied to the recorder."""

    def __init__(self, sink: AudioOutput, recorder: CallRecorder) -> None:
        super().__init__(
            label="voxflow-recording-output",
            capabilities=AudioOutputCapabilities(pause=False),
            next_in_chain=sink,
            sample_rate=sink.sample_rate,
        )
        self._recorder = recorder

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self._recorder.add_agent(frame)
        assert self.next_in_chain is not None
        await self.next_in_chain.capture_frame(frame)

    def flush(self) -> None:
        super().flush()
        assert self.next_in_chain is not None
        self.next_in_chain.flush()

    def clear_buffer(self) -> None:
        self._recorder.agent_cleared()
        assert self.next_in_chain is not None
        self.next_in_chain.clear_buffer()
