"""Bare livekit capacity, the baseline of bench/voice_capacity.py (run as its own process).

    python bench/_voice_bare.py --sessions 1,10,40 --duration 10 --frame-ms 20

After shared/baselines/livekit/bench_looplag.py and bench_mem.py, with the work a Voxflow
session does minus Voxflow: roomless `AgentSession`s with the instant fakes (bench/
_voice_fakes.py: LLM, streaming STT and TTS, silent VAD, instant output, the same turn options
as Voxflow), each fed 20 ms audio frames in real time and given a final transcript once a
second. For each count: event-loop lag (how late a 5 ms sleep wakes up), final transcript →
first audio frame, and the process's PSS. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _voice_fakes import (
    BARE_TURN_HANDLING,
    InstantAudioOutput,
    InstantLLM,
    InstantStreamingTTS,
    MarkerSTT,
    SilentVAD,
    pss_mb,
)
from control_plane import percentile
from livekit.agents import Agent, AgentSession

from voxflow.voice.audio_transport import PushAudioInput


class BareCall:
    def __init__(self) -> None:
        self.stt = MarkerSTT()
        self.audio_in = PushAudioInput()
        self.output = InstantAudioOutput(on_first_frame=self._first_frame)
        self.session: AgentSession[None] = AgentSession(
            llm=InstantLLM(),
            stt=self.stt,
            tts=InstantStreamingTTS(),
            vad=SilentVAD(),
            turn_handling=BARE_TURN_HANDLING,
            user_away_timeout=None,
            aec_warmup_duration=None,
        )
        self.session.input.audio = self.audio_in
        self.session.output.audio = self.output
        self.said_at: float | None = None
        self.latencies: list[float] = []

    def _first_frame(self, at: float) -> None:
        if self.said_at is not None:
            self.latencies.append((at - self.said_at) * 1000)
            self.said_at = None

    async def start(self) -> None:
        await self.session.start(Agent(instructions="You are a helpful agent."), record=False)
        await asyncio.wait_for(self.stt.opened.wait(), 10)

    async def stream_audio(self, frame_s: float) -> None:
        """The caller's microphone: silence in real time, as the WebSocket clients send."""
        silence = b"\x00\x00" * int(16000 * frame_s)
        started, index = time.monotonic(), 0
        while True:
            self.audio_in.push_pcm16(silence)
            index += 1
            await asyncio.sleep(max(0.0, started + index * frame_s - time.monotonic()))

    async def talk(self, first: float, stop: float) -> None:
        """A final transcript at `first`, then once a second until `stop`."""
        at = first
        while at < stop:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            self.said_at = time.perf_counter()
            self.stt.emit_final("four")
            at += 1.0


async def sample_lag(samples: list[float], period: float = 0.005) -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(period)
        samples.append((time.monotonic() - before - period) * 1000)


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0}
    return {
        "count": len(samples),
        "p50": round(percentile(samples, 0.5), 3),
        "p99": round(percentile(samples, 0.99), 3),
        "max": round(max(samples), 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", default="1,10,40")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--frame-ms", type=float, default=20.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    gc.collect()
    await asyncio.sleep(0.5)
    results: dict[str, Any] = {"idle_pss_mb": round(pss_mb(), 2), "phases": []}
    calls: list[BareCall] = []
    feeders: list[asyncio.Task[None]] = []
    try:
        for count in (int(n) for n in args.sessions.split(",")):
            while len(calls) < count:
                call = BareCall()
                await call.start()
                calls.append(call)
                feeders.append(asyncio.create_task(call.stream_audio(args.frame_ms / 1000)))
            for call in calls:
                call.latencies.clear()
            await asyncio.sleep(1.0)
            lag: list[float] = []
            sampler = asyncio.create_task(sample_lag(lag))
            start = time.monotonic()
            stop = start + args.duration
            await asyncio.gather(
                *(call.talk(start + k / count, stop) for k, call in enumerate(calls)),
                asyncio.sleep(args.duration),
            )
            await asyncio.sleep(0.3)  # the last replies
            sampler.cancel()
            gc.collect()
            latencies = [ms for call in calls for ms in call.latencies]
            results["phases"].append(
                {
                    "sessions": count,
                    "lag_ms": summary(lag),
                    "first_frame_ms": summary(latencies),
                    "turns": len(latencies),
                    "pss_mb": round(pss_mb(), 2),
                }
            )
    finally:
        for feeder in feeders:
            feeder.cancel()
            with suppress(asyncio.CancelledError):
                await feeder
        for call in calls:
            await call.session.aclose()
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
