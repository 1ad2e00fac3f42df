"""Voice turn overhead: Voxflow's WorkflowAgent vs a bare livekit Agent, same fakes, one run.

    .venv/bin/python bench/voice_overhead.py      (--quick; --postgres URL; --profile)

Both sides run a roomless livekit `AgentSession` with the same instant fakes (bench/
_voice_fakes.py): a streaming STT whose final transcripts the bench emits, a VAD that hears
nothing (so the final transcript alone ends the caller's turn, with livekit's endpointing
min_delay 0 as Voxflow sets it), a streaming TTS that answers the first text with audio, and an
audio output that plays instantly.

- Voxflow: `voice.call.run_call(...)` on a call started through the API (POST /v1/sessions,
  mode voice) on a throwaway database (SQLite, or a new database on `--postgres`), the bench
  loop workflow (collect + CEL validation + branch + template; bench/_voice_support.py).
  Each turn: the engine runs, the turn is stored, the reply is spoken.
- Bare: `AgentSession` with an instant LLM and `Agent(instructions=...)`, the same turn options.

Per turn, from the final transcript: to the first audio frame, and to the reply played out
("turn": the whole reply, as `session.run` waits for). `session.run(user_input=...)` cannot drive
WorkflowAgent (livekit sends typed input straight to the LLM node), so the bare text turn of
shared/baselines (`session.run`, no audio) is measured as a reference row only. Rounds
alternate the two sides so the machine's noise falls on both. Target (issue 6): both p50
ratios ≤ 1.1x. Prints the table, writes bench/results/voice_overhead.json; exit code 0
(`--strict`: 1 when a target is missed).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import math
import os
import platform
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "voice_overhead.json"
sys.path.insert(0, str(BENCH))
from _voice_fakes import (  # noqa: E402
    BARE_TURN_HANDLING,
    InstantAudioOutput,
    InstantLLM,
    InstantStreamingTTS,
    MarkerSTT,
    SilentVAD,
    fake_models,
)
from _voice_support import ANSWERS, VoiceBench, voice_bench  # noqa: E402
from control_plane import percentile, verdict  # noqa: E402
from livekit.agents import Agent, AgentSession  # noqa: E402

from voxflow.voice.audio_transport import PushAudioInput  # noqa: E402
from voxflow.voice.call import run_call  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 120)
TARGET_RATIO = 1.1
TURN_LIMIT_S = 10.0


class Probe:
    """The fakes of one session, and the times of its replies' first frame and end."""

    def __init__(self) -> None:
        self.stt = MarkerSTT()
        self.tts = InstantStreamingTTS()
        self.audio_in = PushAudioInput()
        self.output = InstantAudioOutput(
            on_first_frame=self._first_frame, on_reply_played=self._reply_played
        )
        loop = asyncio.get_running_loop()
        self.first_frame: asyncio.Future[float] = loop.create_future()
        self.played: asyncio.Future[float] = loop.create_future()

    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.first_frame, self.played = loop.create_future(), loop.create_future()

    def _first_frame(self, at: float) -> None:
        if not self.first_frame.done():
            self.first_frame.set_result(at)

    def _reply_played(self, at: float) -> None:
        if not self.played.done():
            self.played.set_result(at)

    async def turn(self, text: str) -> tuple[float, float]:
        """The caller says `text`: (ms to the reply's first audio frame, ms to its end)."""
        self.arm()
        started = time.perf_counter()
        self.stt.emit_final(text)
        first = await asyncio.wait_for(self.first_frame, TURN_LIMIT_S)
        played = await asyncio.wait_for(self.played, TURN_LIMIT_S)
        return (first - started) * 1000, (played - started) * 1000


class Side:
    """One side of the comparison: its probe, a way to stop it, its samples."""

    def __init__(self, name: str, probe: Probe, close: Callable[[], Awaitable[None]]) -> None:
        self.name, self.probe, self.close = name, probe, close
        self.first_ms: list[float] = []
        self.turn_ms: list[float] = []
        self.call_id = ""

    async def run_turns(self, count: int, gap_s: float, offset: int) -> None:
        for index in range(count):
            first, turn = await self.probe.turn(ANSWERS[(offset + index) % len(ANSWERS)])
            self.first_ms.append(first)
            self.turn_ms.append(turn)
            # Turns are seconds apart in a call: let the work a turn leaves behind (stored
            # timings, sent messages) finish before the next one, as it would.
            await asyncio.sleep(gap_s)


async def voxflow_side(bench: VoiceBench, sent: list[dict[str, Any]]) -> Side:
    """run_call on a new voice call, its greeting played."""
    started = await bench.start_call()
    call = await bench.call(started["session_id"])
    probe, stop = Probe(), asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    running = asyncio.create_task(
        run_call(
            bench.context,
            call,
            audio_input=probe.audio_in,
            audio_output=probe.output,
            send=send,
            stop=stop,
            models=fake_models(),
            stt_override=probe.stt,
            tts_override=probe.tts,
        )
    )
    # The greeting played, or the call failed (its exception, not a timeout).
    greeting_or_failure: list[asyncio.Future[Any]] = [probe.played, running]
    await asyncio.wait(greeting_or_failure, timeout=TURN_LIMIT_S, return_when="FIRST_COMPLETED")
    if running.done():
        running.result()
        raise RuntimeError("run_call returned before its greeting played")
    if not probe.played.done():
        raise TimeoutError("the greeting did not play")
    await asyncio.wait_for(probe.stt.opened.wait(), TURN_LIMIT_S)

    async def close() -> None:
        stop.set()
        await running

    side = Side("Voxflow WorkflowAgent", probe, close)
    side.call_id = call.id
    return side


async def path_breakdown(bench: VoiceBench, call_id: str) -> dict[str, float]:
    """The call's own figures, as stored with its turns (p50 over the agent turns)."""
    response = await bench.http.get(f"/v1/calls/{call_id}", headers=bench.headers)
    response.raise_for_status()
    turns = [t for t in response.json()["transcript"] if t["role"] == "agent" and t["timings"]]
    engine = [t["timings"]["engine_ms"] for t in turns if "engine_ms" in t["timings"]]
    latency = [t["latency_ms"] for t in turns if t["latency_ms"] is not None]
    return {
        "engine_ms_p50": round(percentile(engine, 0.5), 3) if engine else math.nan,
        "latency_ms_p50": round(percentile(latency, 0.5), 3) if latency else math.nan,
        "turns": len(turns),
    }


async def bare_side() -> Side:
    probe = Probe()
    session: AgentSession[None] = AgentSession(
        llm=InstantLLM(),
        stt=probe.stt,
        tts=probe.tts,
        vad=SilentVAD(),
        turn_handling=BARE_TURN_HANDLING,
        user_away_timeout=None,
        aec_warmup_duration=None,
    )
    session.input.audio = probe.audio_in
    session.output.audio = probe.output
    await session.start(Agent(instructions="You are a helpful agent."), record=False)
    await asyncio.wait_for(probe.stt.opened.wait(), TURN_LIMIT_S)
    return Side("bare livekit Agent", probe, session.aclose)


async def bare_text_turns(count: int) -> list[float]:
    """shared/baselines/livekit/bench_text_turn.py: session.run(user_input), no audio."""
    session: AgentSession[None] = AgentSession(
        llm=InstantLLM(), vad=None, turn_handling={"turn_detection": "manual"}
    )
    await session.start(Agent(instructions="You are a helpful agent."), record=False)
    samples: list[float] = []
    try:
        for index in range(count + 10):
            started = time.perf_counter()
            await session.run(user_input=f"hello number {index}, a table for four please")
            if index >= 10:  # warm-up
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        await session.aclose()
    return samples


class WarningCounter(logging.Filter):
    """Counts livekit's warnings and keeps them off the console (they are still created)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            key = record.getMessage()[:90]
            self.counts[key] = self.counts.get(key, 0) + 1
            return False
        return True


def figures(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.50), 3),
        "p95_ms": round(percentile(samples, 0.95), 3),
    }


async def profile_voxflow(bench: VoiceBench, turns: int) -> str:
    """cProfile of `turns` Voxflow turns: the functions that cost the most, own time first."""
    side = await voxflow_side(bench, [])
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        await side.run_turns(turns, 0.02, 0)
        profiler.disable()
    finally:
        await side.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"voxflow|sqlalchemy|aiosqlite|asyncpg", 30)
    return out.getvalue()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    warnings = WarningCounter()
    logging.getLogger("livekit.agents").addFilter(warnings)
    async with voice_bench(args.postgres) as bench:
        sent: list[dict[str, Any]] = []
        ours, bare = await voxflow_side(bench, sent), await bare_side()
        try:
            for side in (ours, bare):  # warm-up, not kept
                await side.run_turns(10, args.gap, 0)
                side.first_ms.clear()
                side.turn_ms.clear()
            per_round = max(args.turns // args.rounds, 1)
            with console.status(f"{args.rounds} rounds of {per_round} turns per side"):
                for round_ in range(args.rounds):
                    order = (ours, bare) if round_ % 2 == 0 else (bare, ours)
                    for side in order:
                        await side.run_turns(per_round, args.gap, round_ * per_round)
        finally:
            await ours.close()
            await bare.close()
        errors = [m for m in sent if m["type"] == "error"]
        if errors or not any(m["type"] == "node" for m in sent):
            raise RuntimeError(f"the Voxflow call did not run its workflow: {errors or sent}")
        breakdown = await path_breakdown(bench, ours.call_id)
        text = await bare_text_turns(args.turns)
        profile = await profile_voxflow(bench, args.profile) if args.profile else None
        backend = bench.backend
    return {
        "database": backend,
        "voxflow": {"first_frame": figures(ours.first_ms), "turn": figures(ours.turn_ms)},
        "bare": {"first_frame": figures(bare.first_ms), "turn": figures(bare.turn_ms)},
        "bare_text_turn_session_run": figures(text),
        "voxflow_path": breakdown,
        "livekit_warnings": warnings.counts,
        "profile": profile,
    }


def machine_note() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_at_start": round(os.getloadavg()[0], 2),
    }


def report(results: dict[str, Any]) -> bool:
    ours, bare = results["voxflow"], results["bare"]
    table = Table(title=f"Voice turn overhead, instant fakes ({results['database']})")
    for column in ("from the final transcript to", "Voxflow p50 / p95", "bare p50 / p95"):
        table.add_column(column, justify="left" if column.startswith("from") else "right")
    for column in ("p50 ratio", "target", ""):
        table.add_column(column, justify="right")
    passed = True
    ratios: dict[str, float] = {}
    for key, label in (("first_frame", "the first audio frame"), ("turn", "the reply played")):
        ratio = ours[key]["p50_ms"] / bare[key]["p50_ms"]
        ratios[key] = round(ratio, 2)
        ok = ratio <= TARGET_RATIO
        passed = passed and ok
        table.add_row(
            label,
            f"{ours[key]['p50_ms']:.2f} / {ours[key]['p95_ms']:.2f} ms",
            f"{bare[key]['p50_ms']:.2f} / {bare[key]['p95_ms']:.2f} ms",
            f"{ratio:.2f}x",
            f"≤ {TARGET_RATIO}x",
            verdict(ok),
        )
    text = results["bare_text_turn_session_run"]
    table.add_row(
        "(reference) bare session.run(user_input), no audio",
        "-",
        f"{text['p50_ms']:.2f} / {text['p95_ms']:.2f} ms",
        "",
        "",
        "",
    )
    results["ratios"] = ratios
    console.print(table)
    console.print(
        f"{ours['turn']['n']} turns per side; ms from the STT's final transcript; audio output"
        " plays instantly, so 'the reply played' is the whole turn"
    )
    path = results["voxflow_path"]
    console.print(
        f"Voxflow's stored turn timings, p50: engine_ms {path['engine_ms_p50']:.2f} ms,"
        f" the agent turns' latency_ms {path['latency_ms_p50']:.2f} ms"
        " (what each means: voice/agent.py TurnTimer, sessions/service.py)"
    )
    for message, count in results["livekit_warnings"].items():
        console.print(f"[yellow]livekit warned {count} times:[/] {message}…")
    if results["profile"]:
        console.print(results["profile"], markup=False, highlight=False)
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL admin URL (default: temporary SQLite)")
    parser.add_argument("--turns", type=int, default=300, help="measured turns per side")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--gap", type=float, default=0.02, help="s between a side's turns")
    parser.add_argument("--profile", type=int, default=0, help="then profile N Voxflow turns")
    parser.add_argument("--quick", action="store_true", help="100 turns per side")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.turns, args.rounds = 100, 4
    started = datetime.now(UTC).isoformat(timespec="seconds")
    note = machine_note()
    results = {"date": started, "machine": note, **asyncio.run(measure(args))}
    results["settings"] = {k: v for k, v in vars(args).items() if k != "postgres"}
    passed = report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results in {RESULTS.relative_to(BENCH.parent)}")
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
