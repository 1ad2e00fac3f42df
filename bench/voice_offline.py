"""Offline voice latency: end of the caller's speech → first agent audio frame, stage by stage.

    .venv/bin/python bench/voice_offline.py     (--turns N, --rounds N, --whisper base, ...)

Two chains in one process with the same model objects (Whisper, hibari, silero), each a
roomless livekit `AgentSession` fed a real espeak-ng utterance as paced 20 ms frames, with
silence between turns and each reply played out in real time before the next turn:

- bare: bench/voice_bare.py (a copy of shared/baselines/voice/agent_session_pipeline.py):
  whisper over the whole segment after silero's end of speech, a fixed reply;
- ours: `voice.call.build_session` (streaming offline STT ending turns itself, early end of
  turn through `engine.completeness`) and a real engine step at Luigi's party-size question.

Both speak the same first sentence. Stages, from the last speech sample pushed: `vad_end`
(the session's VAD end of speech), `transcript` (final transcript), `turn` (the turn reached
the agent), `engine` (the engine step, ours only), `tts_first` (the reply's first TTS chunk,
from the agent's `say`), `first_audio` (the first reply frame at the audio output). The first
turn of each session warms up and is not counted; chains alternate in rounds. Prints p50/p95
per stage, the ratio ours/bare, PASS/FAIL against issue 6's targets (p50 ≤ 1.0 s and ≤ 0.75x
bare) and writes bench/results/voice_offline.json; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "voice_offline.json"
sys.path.insert(0, str(BENCH))
from control_plane import machine, percentile, verdict  # noqa: E402
from voice_bare import (  # noqa: E402
    REPLY,
    CaptureAudioOutput,
    FixedReplyAgent,
    QueueAudioInput,
    bare_session,
)

from voxflow.core.settings import Settings  # noqa: E402
from voxflow.dsl import WorkflowDocument  # noqa: E402
from voxflow.dsl.compile import CompiledVersion, compile_version  # noqa: E402
from voxflow.engine.completeness import answer_completes  # noqa: E402
from voxflow.engine.events import Say  # noqa: E402
from voxflow.engine.interpreter import Engine  # noqa: E402
from voxflow.engine.state import State  # noqa: E402
from voxflow.voice.call import build_session  # noqa: E402
from voxflow.voice.offline import VoiceModels, shared_models  # noqa: E402
from voxflow.voice.whisper import StreamTuning, WhisperSTT  # noqa: E402

UTTERANCE = "I would like to book a table for four people tomorrow"
TARGET_P50_S = 1.0
TARGET_RATIO = 0.75
STAGES = ("vad_end", "transcript", "turn", "engine", "tts_first", "first_audio")
FRAME_S = 0.02
console = Console(width=None if sys.stdout.isatty() else 120)


def speech_audio(text: str, folder: Path) -> tuple[np.ndarray[Any, np.dtype[np.int16]], int]:
    """espeak-ng's `text` as 16 kHz mono PCM16, and the index of its last loud sample."""
    raw, wav = folder / "raw.wav", folder / "utterance.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "175", "-w", str(raw), text], check=True)
    sox = ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer"]
    subprocess.run([*sox, str(wav)], check=True)
    with wave.open(str(wav)) as source:
        pcm = np.frombuffer(source.readframes(source.getnframes()), np.int16)
    loud = np.nonzero(np.abs(pcm.astype(np.int32)) > 0.02 * 32768)[0]
    return pcm, int(loud[-1])


def luigis_for_bench() -> CompiledVersion:
    """Luigi's, whose answer to the party size starts with the bare chain's reply sentence."""
    document = yaml.safe_load((ROOT / "examples" / "luigis.yaml").read_text())
    for node in document["nodes"]:
        if node["id"] == "ask_day":
            node["prompt"] = f"{REPLY} Which day would you like?"
    return compile_version(WorkflowDocument.model_validate(document), "ver_bench")


@dataclass
class Marks:
    """Event times (perf_counter) of one chain's session; turns are matched by speech end."""

    speech_ends: list[float] = field(default_factory=list)
    vad_end: list[float] = field(default_factory=list)
    transcript: list[float] = field(default_factory=list)
    turn: list[float] = field(default_factory=list)
    engine: list[float] = field(default_factory=list)  # durations
    say: list[float] = field(default_factory=list)
    tts_first: list[float] = field(default_factory=list)
    first_audio: list[float] = field(default_factory=list)
    warm_ups: list[int] = field(default_factory=list)  # each session's first turn
    texts: list[str] = field(default_factory=list)
    early_ends: int = 0


class WorkflowBenchAgent(FixedReplyAgent):
    """One engine step from the party-size checkpoint per turn, then its reply."""

    def __init__(self, engine: Engine, checkpoint: str, marks: Marks) -> None:
        super().__init__(on_turn=lambda _text: None)
        self.engine, self.checkpoint, self.marks = engine, checkpoint, marks

    async def on_user_turn_completed(self, turn_ctx: Any, new_message: Any) -> None:
        from livekit.agents import StopResponse

        text = new_message.text_content or ""
        self.marks.turn.append(time.perf_counter())
        self.marks.texts.append(text)
        state = State.model_validate_json(self.checkpoint)
        started = time.perf_counter()
        events = await self.engine.handle_user_turn(state, text)
        self.marks.engine.append(time.perf_counter() - started)
        reply = " ".join(event.text for event in events if isinstance(event, Say))
        self.marks.say.append(time.perf_counter())
        self.session.say(reply or REPLY)
        raise StopResponse()


async def run_chain(
    session: Any,
    agent: Any,
    marks: Marks,
    pcm: np.ndarray[Any, np.dtype[np.int16]],
    last_loud: int,
    turns: int,
) -> None:
    """Speak `turns` times into the session, each time after the previous reply played."""
    audio_in, audio_out = QueueAudioInput(), CaptureAudioOutput()
    session.input.audio, session.output.audio = audio_in, audio_out

    def user_state(event: Any) -> None:
        if event.new_state == "listening":
            marks.vad_end.append(time.perf_counter())

    def transcribed(event: Any) -> None:
        if event.is_final and event.transcript.strip():
            marks.transcript.append(time.perf_counter())

    session.on("user_state_changed", user_state)
    session.on("user_input_transcribed", transcribed)
    await session.start(agent, record=False)
    per_frame = int(16000 * FRAME_S)
    speak, stop = asyncio.Event(), False

    async def feed() -> None:
        """Real-time 20 ms frames: silence, or the utterance when `speak` is set."""
        started, sent = time.perf_counter(), 0

        async def push(chunk: np.ndarray[Any, np.dtype[np.int16]]) -> None:
            nonlocal sent
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * FRAME_S - time.perf_counter()))
            frame = _frame(np.pad(chunk, (0, per_frame - len(chunk))), per_frame)
            audio_in.queue.put_nowait(frame)

        while not stop:
            if speak.is_set():
                speak.clear()
                for at in range(0, len(pcm), per_frame):
                    await push(pcm[at : at + per_frame])
                    if at <= last_loud < at + per_frame:
                        marks.speech_ends.append(time.perf_counter())
            await push(np.zeros(per_frame, np.int16))

    marks.warm_ups.append(len(marks.speech_ends))
    feeder = asyncio.create_task(feed())
    await asyncio.sleep(1.0)
    for _ in range(turns):
        audio_out.started.clear()
        speak.set()
        await asyncio.wait_for(audio_out.started.wait(), timeout=20)
        await asyncio.wait_for(audio_out.played.wait(), timeout=20)
        await asyncio.sleep(0.8)
    stop = True
    await feeder
    await session.aclose()
    marks.first_audio.extend(audio_out.first_frames)


def _frame(chunk: np.ndarray[Any, np.dtype[np.int16]], samples: int) -> Any:
    from livekit import rtc

    return rtc.AudioFrame(chunk.tobytes(), 16000, 1, samples)


def turn_stages(marks: Marks) -> list[dict[str, float]]:
    """Per counted turn, each stage in seconds from the end of speech (engine: its duration)."""
    rows = []
    for index, ended in enumerate(marks.speech_ends):
        if index in marks.warm_ups:
            continue
        until = marks.speech_ends[index + 1] if index + 1 < len(marks.speech_ends) else 1e18

        def after(times: list[float], ended: float = ended, until: float = until) -> float:
            found = [t - ended for t in times if ended <= t < until]
            return found[0] if found else float("nan")

        says = [t for t in marks.say if ended <= t < until]
        firsts = [t for t in marks.tts_first if says and says[0] <= t < until]
        row = {
            "vad_end": after(marks.vad_end),
            "transcript": after(marks.transcript),
            "turn": after(marks.turn),
            "tts_first": firsts[0] - says[0] if firsts else float("nan"),
            "first_audio": after(marks.first_audio),
        }
        turn_index = [i for i, t in enumerate(marks.turn) if ended <= t < until]
        row["engine"] = marks.engine[turn_index[0]] if turn_index and marks.engine else 0.0
        rows.append(row)
    return rows


def summary(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    result = {}
    for stage in STAGES:
        values = [row[stage] for row in rows if not np.isnan(row[stage])]
        result[stage] = {
            "p50": round(percentile(values, 0.5), 3) if values else float("nan"),
            "p95": round(percentile(values, 0.95), 3) if values else float("nan"),
            "n": len(values),
        }
    return result


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(stt="local", tts="local", whisper_model=args.whisper)
    loaded = time.perf_counter()
    models = await shared_models(settings)
    load_s = time.perf_counter() - loaded
    version = luigis_for_bench()
    clock = fixed_clock("2026-11-26T12:00:00+00:00")
    engine = Engine(version, llm=None, clock=clock)
    state, _ = await engine.start({})
    await engine.handle_user_turn(state, "yes")
    assert state.node_id == "ask_party", state.node_id
    checkpoint = state.model_dump_json()
    tuning = StreamTuning(
        pause_s=args.pause,
        interim_every_s=args.interim_every or None,
        final_window_s=args.final_window or None,
    )
    with tempfile.TemporaryDirectory() as folder:
        pcm, last_loud = speech_audio(UTTERANCE, Path(folder))
    bare, ours = Marks(), Marks()
    for _ in range(args.rounds):
        session = bare_session(
            models.whisper, models.hibari, models.vad, lambda: bare.tts_first.append(now())
        )
        await run_chain(session, _bare_agent(bare), bare, pcm, last_loud, args.turns)
        await run_chain(
            _our_session(settings, models, ours, version, checkpoint, clock, tuning, args),
            WorkflowBenchAgent(engine, checkpoint, ours),
            ours,
            pcm,
            last_loud,
            args.turns,
        )
    chains = {"bare": turn_stages(bare), "ours": turn_stages(ours)}
    return {
        "machine": machine(),
        "loadavg": os.getloadavg(),
        "settings": {
            "whisper": args.whisper,
            "turns_per_round": args.turns,
            "rounds": args.rounds,
            "vad_min_silence_s": settings.voice_min_silence_s,
            "pause_s": tuning.pause_s,
            "interim_every_s": tuning.interim_every_s,
            "final_window_s": tuning.final_window_s,
            "early_end": not args.no_early_end,
            "utterance": UTTERANCE,
        },
        "model_load_s": round(load_s, 2),
        "texts": {"bare": sorted(set(bare.texts)), "ours": sorted(set(ours.texts))},
        "early_ends": ours.early_ends,
        "summary": {name: summary(rows) for name, rows in chains.items()},
        "turns": chains,
    }


def fixed_clock(at: str) -> Callable[[], datetime]:
    moment = datetime.fromisoformat(at)
    return lambda: moment


def now() -> float:
    return time.perf_counter()


def _bare_agent(marks: Marks) -> FixedReplyAgent:
    """The bare agent says its fixed reply as soon as the turn arrives (its `say` time)."""

    def arrived(text: str) -> None:
        marks.turn.append(now())
        marks.texts.append(text)
        marks.engine.append(0.0)
        marks.say.append(now())

    return FixedReplyAgent(arrived)


def _our_session(
    settings: Settings,
    models: VoiceModels,
    marks: Marks,
    version: CompiledVersion,
    checkpoint: str,
    clock: Callable[[], datetime],
    tuning: StreamTuning,
    args: argparse.Namespace,
) -> Any:
    def early_end(text: str) -> bool:
        state = State.model_validate_json(checkpoint)
        complete = answer_completes(version, state, text, now=clock())
        marks.early_ends += complete
        return bool(complete)

    session = build_session(
        settings,
        models,
        on_tts_first_byte=lambda: marks.tts_first.append(now()),
        early_end=None if args.no_early_end else early_end,
    )
    if isinstance(session.stt, WhisperSTT):
        session.stt.tuning = tuning
    return session


def report(results: dict[str, Any]) -> bool:
    bare, ours = results["summary"]["bare"], results["summary"]["ours"]
    table = Table(title=f"End of speech → stage (s), Whisper {results['settings']['whisper']}")
    for column in ("stage", "bare p50", "bare p95", "ours p50", "ours p95", "ours/bare p50"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in STAGES:
        ratio = ours[stage]["p50"] / bare[stage]["p50"] if bare[stage]["p50"] else float("nan")
        table.add_row(
            stage,
            f"{bare[stage]['p50']:.3f}",
            f"{bare[stage]['p95']:.3f}",
            f"{ours[stage]['p50']:.3f}",
            f"{ours[stage]['p95']:.3f}",
            f"{ratio:.2f}" if stage != "engine" else "",
        )
    console.print(table)
    total, base = ours["first_audio"]["p50"], bare["first_audio"]["p50"]
    ratio = total / base
    ok_total, ok_ratio = total <= TARGET_P50_S, ratio <= TARGET_RATIO
    console.print(f"ours p50 {total:.3f} s ≤ {TARGET_P50_S} s: {verdict(ok_total)}")
    console.print(f"ours/bare p50 {ratio:.2f} ≤ {TARGET_RATIO}: {verdict(ok_ratio)}")
    console.print(f"early ends (pauses judged complete): {results['early_ends']}")
    console.print(f"transcripts: {results['texts']}")
    results["pass"] = {"p50": ok_total, "ratio": ok_ratio, "ratio_value": round(ratio, 3)}
    return bool(ok_total and ok_ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5, help="turns per session (1st: warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="bare then ours, this many times")
    parser.add_argument("--whisper", choices=("tiny.en", "base"), default="tiny.en")
    parser.add_argument("--pause", type=float, default=StreamTuning().pause_s)
    parser.add_argument(
        "--interim-every", type=float, default=StreamTuning().interim_every_s or 0.0
    )
    parser.add_argument("--final-window", type=float, default=0.0, help="s; 0: Whisper's 30")
    parser.add_argument("--no-early-end", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = asyncio.run(bench(args))
    ok = report(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
