"""Voice capacity: concurrent audio-WebSocket calls on one server process, vs bare livekit.

    .venv/bin/python bench/voice_capacity.py      (--quick; --postgres URL; --no-offline)

In one run:

1. a throwaway database (temporary SQLite, or a new database on `--postgres`), an org and the
   bench loop workflow's agent, created through the API (bench/_voice_support.py);
2. one server process, what `voxflow serve --workers 1` runs, with a task on its event loop
   that records how late a 5 ms sleep wakes up, and the instant fake providers injected into
   the audio WebSocket's calls (bench/_voice_server.py: the route has no hook for them);
3. 1, 10, then 40 calls open at once (POST /v1/sessions in voice mode, then the audio
   WebSocket), each streaming 20 ms PCM16 frames in real time as a browser does, and saying
   something once a second (a marked frame the fake STT turns into a final transcript): the
   server's loop lag, the client's time from that frame to the first agent audio, the server's
   PSS (memory per extra call = PSS growth from 1 to 40 calls / 39), the server idle;
4. the baseline, in its own process: bare livekit sessions with the same fakes, audio frames
   and turns (bench/_voice_bare.py, after shared/baselines/livekit/bench_looplag.py);
5. (not with --quick or --no-offline) the server again with the offline models (Whisper,
   hibari, silero), loaded once and shared: idle memory, and 1/10/40 calls streaming silence.

Targets (issue 6): at 40 calls, server lag p99 < 10 ms and ≤ 1.2x bare; memory per extra call
≤ 1 MB PSS with fakes. Prints tables, writes bench/results/voice_capacity.json; exit code 0
(`--strict`: 1 when a target is missed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "voice_capacity.json"
sys.path.insert(0, str(BENCH))
from _support import cpu_jiffies, read_lag, summary  # noqa: E402
from _voice_fakes import transcript_frame  # noqa: E402
from _voice_support import ANSWERS, VoiceBench, voice_bench  # noqa: E402
from control_plane import (  # noqa: E402
    Server,
    free_ports,
    interruptible,
    start_server,
    stop_server,
    tree_cpu_seconds,
    verdict,
    wait_ready,
)
from voice_overhead import machine_note  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 120)
TARGET_LAG_P99_MS = 10.0
TARGET_LAG_RATIO = 1.2
TARGET_MB_PER_CALL = 1.0
OPEN_LIMIT_S = 120.0  # the first offline call loads the models


class Caller:
    """One browser-like client of the audio WebSocket."""

    def __init__(self, url: str, index: int, session_id: str) -> None:
        self.url, self.index, self.session_id = url, index, session_id
        self.ws: ClientConnection | None = None
        self.ready = asyncio.Event()
        self.greeted = asyncio.Event()
        self.said_at: float | None = None
        self.latencies: list[float] = []
        self.nodes = 0
        self.errors: list[dict[str, Any]] = []
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.closing = False

    async def open(self, frame_s: float) -> None:
        self.ws = await connect(self.url, max_size=2**22, open_timeout=30)
        self._tasks.append(asyncio.create_task(self._read()))
        await asyncio.wait_for(self.ready.wait(), OPEN_LIMIT_S)
        self._tasks.append(asyncio.create_task(self._stream(frame_s)))
        await asyncio.wait_for(self.greeted.wait(), 30)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self.greeted.set()
                    if self.said_at is not None:
                        self.latencies.append((time.perf_counter() - self.said_at) * 1000)
                        self.said_at = None
                    continue
                message = json.loads(frame)
                if message["type"] == "ready":
                    self.ready.set()
                elif message["type"] == "node":
                    self.nodes += 1
                elif message["type"] in ("error", "end"):
                    self.errors.append(message)
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                code, reason = self.ws.close_code, self.ws.close_reason
                self.errors.append({"type": "closed", "code": code, "reason": reason})

    async def _send(self, data: bytes | str) -> None:
        assert self.ws is not None
        async with self._send_lock:
            await self.ws.send(data)

    async def _stream(self, frame_s: float) -> None:
        """The microphone: silence in real time."""
        silence = b"\x00\x00" * int(16000 * frame_s)
        started, index = time.monotonic(), 0
        with suppress(ConnectionClosed):
            while True:
                await self._send(silence)
                index += 1
                await asyncio.sleep(max(0.0, started + index * frame_s - time.monotonic()))

    async def talk(self, first: float, stop: float) -> int:
        """Say an answer at `first`, then once a second until `stop`; how many were said."""
        at, said = first, 0
        with suppress(ConnectionClosed):  # the server ended the call: reported by _read
            while at < stop:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                self.said_at = time.perf_counter()
                await self._send(transcript_frame(ANSWERS[(self.index + said) % len(ANSWERS)]))
                said += 1
                at += 1.0
        return said

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with suppress(ConnectionClosed, OSError, TimeoutError):
                await self._send(json.dumps({"type": "hangup"}))
                async with asyncio.timeout(5):
                    await self.ws.wait_closed()
            await self.ws.close()
        for task in self._tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


def server_pss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return math.nan


async def open_callers(
    http: httpx.AsyncClient, bench: VoiceBench, callers: list[Caller], count: int, frame_s: float
) -> None:
    """Add callers (8 connecting at a time) until `count` are in their calls."""
    gate = asyncio.Semaphore(8)

    async def one(index: int) -> Caller:
        async with gate:
            response = await http.post(
                "/v1/sessions",
                json={"agent_id": bench.agent_id, "mode": "voice"},
                headers=bench.headers,
            )
            response.raise_for_status()
            started = response.json()
            url = started["audio_url"].replace("http://", "ws://", 1)
            caller = Caller(url, index, started["session_id"])
            await caller.open(frame_s)
            return caller

    callers += await asyncio.gather(*(one(i) for i in range(len(callers), count)))


async def why_calls_ended(
    http: httpx.AsyncClient, bench: VoiceBench, callers: list[Caller]
) -> list[dict[str, Any]]:
    """The issues the engine recorded in calls that ended on their own (none should)."""
    found: list[dict[str, Any]] = []
    for caller in callers:
        if not any(e["type"] == "end" for e in caller.errors):
            continue
        response = await http.get(f"/v1/calls/{caller.session_id}", headers=bench.headers)
        record = response.json()
        issues = [
            event
            for turn in record.get("transcript", [])
            for event in turn.get("events") or []
            if event.get("type") in ("issue", "end")
        ]
        found.append({"call": caller.session_id, "outcome": record.get("outcome"), "why": issues})
    return found


async def phase(
    server: Server, lag_file: Path, callers: list[Caller], seconds: float, talk: bool
) -> dict[str, Any]:
    for caller in callers:
        caller.latencies.clear()
    await asyncio.sleep(1.0)  # the calls just opened settle
    nodes_before = sum(c.nodes for c in callers)
    machine_before = cpu_jiffies()
    cpu_before, start = tree_cpu_seconds(server.process.pid), time.monotonic()
    stop = start + seconds
    said: list[int] = []
    if talk and callers:
        count = len(callers)
        talking = asyncio.gather(*(c.talk(start + k / count, stop) for k, c in enumerate(callers)))
        said, _ = await asyncio.gather(talking, asyncio.sleep(seconds))
    else:
        await asyncio.sleep(seconds)
    end = time.monotonic()
    cpu = (tree_cpu_seconds(server.process.pid) - cpu_before) / (end - start)
    machine = cpu_jiffies()
    # Of all cores, busy (anyone: PostgreSQL, this client, other users) and stolen by the host.
    jiffies = max(machine[1] - machine_before[1], 1)
    machine_busy = (machine[0] - machine_before[0]) / jiffies
    machine_stolen = (machine[2] - machine_before[2]) / jiffies
    await asyncio.sleep(0.7)  # the server writes its lag samples every 0.5 s
    latencies = [ms for caller in callers for ms in caller.latencies]
    return {
        "sessions": len(callers),
        "said": sum(said),
        "replies": len(latencies),
        "nodes": sum(c.nodes for c in callers) - nodes_before,
        "errors": [e for c in callers for e in c.errors],
        "server_lag_ms": summary(read_lag(lag_file, start, end)),
        "first_audio_ms": summary(latencies),
        "server_cpu_share": round(cpu, 3),
        "machine_busy": round(machine_busy, 3),
        "machine_stolen": round(machine_stolen, 3),
        "pss_mb": round(server_pss_mb(server.process.pid), 2),
    }


async def measure_server(
    bench: VoiceBench, counts: list[int], seconds: float, frame_s: float, offline: bool
) -> dict[str, Any]:
    """The server (fakes, or offline models), idle then with 1/10/40 calls."""
    scratch = Path(tempfile.mkdtemp(prefix="voxflow-bench-voice-"))
    (port,) = free_ports(1)
    base_url = f"http://127.0.0.1:{port}"
    lag_file = scratch / "lag.txt"
    command = [sys.executable, str(BENCH / "_voice_server.py"), str(port), str(lag_file)]
    command += ["--offline"] if offline else []
    server = start_server("voxflow", command, bench.server_env(base_url), port, scratch)
    callers: list[Caller] = []
    try:
        await asyncio.to_thread(wait_ready, server)
        idle = await phase(server, lag_file, [], min(seconds, 3.0), talk=False)
        phases = []
        async with httpx.AsyncClient(base_url=base_url, timeout=OPEN_LIMIT_S) as http:
            for count in counts:
                with console.status(f"{count} calls" + (" (offline models)" if offline else "")):
                    await open_callers(http, bench, callers, count, frame_s)
                    result = await phase(server, lag_file, callers, seconds, talk=not offline)
                    result["ended_calls"] = await why_calls_ended(http, bench, callers)
                phases.append(result)
                console.print(
                    f"{'offline' if offline else 'fakes'}, {count} calls: server lag p99"
                    f" {result['server_lag_ms']['p99']:.1f} ms, PSS {result['pss_mb']:.0f} MB,"
                    f" {result['replies']}/{result['said']} replies"
                    + (f", [red]errors: {result['errors'][:3]}[/]" if result["errors"] else "")
                )
        return {"idle": idle, "phases": phases, "server_log_tail": server.log_tail(60)}
    except Exception:
        console.print(f"[red]server log (tail):[/]\n{server.log_tail()}", markup=True)
        raise
    finally:
        await asyncio.gather(*(caller.close() for caller in callers))
        await asyncio.to_thread(stop_server, server)
        await asyncio.to_thread(shutil.rmtree, scratch, True)


def run_bare(counts: list[int], seconds: float, frame_ms: float) -> dict[str, Any]:
    command = [sys.executable, str(BENCH / "_voice_bare.py")]
    command += ["--sessions", ",".join(map(str, counts)), "--duration", str(seconds)]
    command += ["--frame-ms", str(frame_ms)]
    with console.status("bare livekit sessions"):
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"_voice_bare.py failed:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def per_extra_call_mb(phases: list[dict[str, Any]]) -> float:
    first, last = phases[0], phases[-1]
    extra = last["sessions"] - first["sessions"]
    return (last["pss_mb"] - first["pss_mb"]) / extra if extra else math.nan


def ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f}"


def report(results: dict[str, Any]) -> bool:
    fakes, bare = results["fakes"], results["bare"]
    table = Table(
        title=f"Voice calls on one server process, fake providers ({results['database']})"
    )
    columns = (
        "calls",
        "replies/said",
        "first audio p50/p99",
        "server lag p50/p99/max",
        "bare lag p50/p99/max",
        "server CPU / machine busy",
        "PSS MB",
        "bare PSS MB",
    )
    for column in columns:
        table.add_column(column, justify="right")
    bare_by_count = {p["sessions"]: p for p in bare["phases"]}
    for run in fakes["phases"]:
        lag, first = run["server_lag_ms"], run["first_audio_ms"]
        base = bare_by_count.get(run["sessions"], {})
        base_lag = base.get("lag_ms", {})
        table.add_row(
            str(run["sessions"])
            + (f" [red]({len(run['errors'])} errors)[/]" if run["errors"] else ""),
            f"{run['replies']}/{run['said']}",
            f"{ms(first.get('p50'))}/{ms(first.get('p99'))}",
            "/".join(ms(lag.get(k)) for k in ("p50", "p99", "max")),
            "/".join(ms(base_lag.get(k)) for k in ("p50", "p99", "max")),
            f"{run['server_cpu_share']:.0%} / {run['machine_busy']:.0%}",
            f"{run['pss_mb']:.1f}",
            f"{base.get('pss_mb', math.nan):.1f}",
        )
    console.print(table)
    console.print(
        "times in ms; first audio: the client's time from its marked frame to the first agent"
        " audio; lag: how late a 5 ms sleep wakes up on the process's event loop; server CPU:"
        " of one core; machine busy: of all cores (anyone's)"
    )

    top = fakes["phases"][-1]
    top_bare = bare_by_count.get(top["sessions"], {})
    lag_p99 = top["server_lag_ms"]["p99"]
    bare_p99 = top_bare.get("lag_ms", {}).get("p99", math.nan)
    lag_ratio = lag_p99 / bare_p99 if bare_p99 else math.nan
    per_call = per_extra_call_mb(fakes["phases"])
    bare_per_call = per_extra_call_mb(
        [{"sessions": p["sessions"], "pss_mb": p["pss_mb"]} for p in bare["phases"]]
    )
    checks = {
        "lag_p99": bool(lag_p99 < TARGET_LAG_P99_MS and not top["errors"]),
        "lag_ratio": bool(lag_ratio <= TARGET_LAG_RATIO),
        "memory": bool(per_call <= TARGET_MB_PER_CALL),
    }
    results["summary"] = {
        "calls": top["sessions"],
        "lag_p99_ms": lag_p99,
        "bare_lag_p99_ms": bare_p99,
        "lag_ratio": round(lag_ratio, 2),
        "mb_per_extra_call": round(per_call, 3),
        "bare_mb_per_extra_session": round(bare_per_call, 3),
        "idle_server_pss_mb": fakes["idle"]["pss_mb"],
        "checks": checks,
    }
    targets = Table(title="Targets")
    for column in ("what", "target", "Voxflow", "bare", ""):
        targets.add_column(column)
    calls = top["sessions"]
    targets.add_row(
        f"{calls} calls x 1 turn/s: server lag p99",
        f"< {TARGET_LAG_P99_MS:g} ms",
        f"{lag_p99:.1f} ms",
        f"{bare_p99:.1f} ms",
        verdict(checks["lag_p99"]),
    )
    targets.add_row(
        f"{calls} calls: lag p99 / bare",
        f"≤ {TARGET_LAG_RATIO}x",
        f"{lag_ratio:.2f}x",
        "",
        verdict(checks["lag_ratio"]),
    )
    targets.add_row(
        "PSS per extra call (fakes)",
        f"≤ {TARGET_MB_PER_CALL:g} MB",
        f"{per_call:.3f} MB",
        f"{bare_per_call:.3f} MB",
        verdict(checks["memory"]),
    )
    targets.add_row(
        "server idle PSS (fakes; bare: livekit imported)",
        "(info)",
        f"{fakes['idle']['pss_mb']:.0f} MB",
        f"{bare['idle_pss_mb']:.0f} MB",
        "",
    )
    offline = results.get("offline")
    if offline:
        offline_per_call = per_extra_call_mb(offline["phases"])
        results["summary"]["offline_mb_per_extra_call"] = round(offline_per_call, 3)
        results["summary"]["offline_pss_mb"] = [p["pss_mb"] for p in offline["phases"]]
        targets.add_row(
            "PSS per extra call, offline models shared",
            "(info)",
            f"{offline_per_call:.2f} MB",
            "",
            "",
        )
        pss = ", ".join(f"{p['sessions']}: {p['pss_mb']:.0f}" for p in offline["phases"])
        targets.add_row("server PSS with offline models, by calls", "(info)", f"{pss} MB", "", "")
        lags = ", ".join(
            f"{p['sessions']}: {p['server_lag_ms']['p99']:.1f}" for p in offline["phases"]
        )
        targets.add_row("offline, silence only: server lag p99", "(info)", f"{lags} ms", "", "")
    console.print(targets)
    return all(checks.values())


async def measure(args: argparse.Namespace, counts: list[int]) -> dict[str, Any]:
    frame_s = args.frame_ms / 1000
    async with voice_bench(args.postgres) as bench:
        fakes = await measure_server(bench, counts, args.duration, frame_s, offline=False)
        offline = None
        if args.offline:
            offline_seconds = min(args.duration, 3.0)
            offline = await measure_server(bench, counts, offline_seconds, frame_s, offline=True)
        backend = bench.backend
    return {"database": backend, "fakes": fakes, "offline": offline}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL admin URL (default: temporary SQLite)")
    parser.add_argument("--sessions", default="1,10,40", help="call counts, in order")
    parser.add_argument("--duration", type=float, default=10.0, help="s of turns per count")
    parser.add_argument("--frame-ms", type=float, default=20.0, help="client audio frames")
    parser.add_argument("--no-offline", dest="offline", action="store_false")
    parser.add_argument("--quick", action="store_true", help="5 s per count, no offline models")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.offline = 5.0, False
    counts = [int(n) for n in args.sessions.split(",")]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_note(),
        "settings": {k: v for k, v in vars(args).items() if k != "postgres"},
    }
    with interruptible():
        results |= asyncio.run(measure(args, counts))
        results["bare"] = run_bare(counts, args.duration, args.frame_ms)
    passed = report(results)
    for part in ("fakes", "offline"):
        tail = (results.get(part) or {}).get("server_log_tail")
        if tail:
            console.print(f"[yellow]the server ({part}) logged:[/]\n{tail}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results in {RESULTS.relative_to(BENCH.parent)}")
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
