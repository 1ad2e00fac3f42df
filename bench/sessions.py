"""Sessions benchmark: concurrent text sessions over WebSocket against a running server.

    .venv/bin/python bench/sessions.py            (--quick: a short smoke run)

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust; or `--database sqlite`). In one run:

1. a throwaway database, `voxflow db upgrade`, `voxflow orgs create bench --json`;
2. one server process, what `voxflow serve --workers 1` runs, with a task on its event loop that
   records how late a 5 ms sleep wakes up (the loop lag; bench/_support.py, LAG_SERVER);
3. over HTTP: Luigi's (examples/luigis.yaml) and a bench workflow (BENCH_WORKFLOW below)
   created, published, each behind an agent; one Luigi's booking over WebSocket, as a check;
4. phases, each with new sessions (POST /v1/sessions, then the stream), turns on a fixed
   timetable per session, staggered; a turn's latency is from the send to the reply's last
   message: (a) 1 session at 1 turn/s for --duration s, (b) --sessions sessions at 1 turn/s
   each (the target: server lag p99 < 10 ms), (c) a ramp: --sessions sessions at 2, 4, 8 …
   turns/s each, --step-duration s per step, until the server's lag p99 passes 50 ms (or it
   falls behind the timetable), then --refine steps between the last pass and the first fail.

Prints tables, writes bench/results/sessions.json, exits 1 when phase (b) misses its target.
The server is stopped and the database dropped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "sessions.json"
sys.path.insert(0, str(BENCH))
from _support import (  # noqa: E402
    CpuUsage,
    LoopLag,
    StreamClient,
    close_sessions,
    deploy,
    drive,
    open_sessions,
    phase_table,
    read_lag,
    scripted_call,
    server_env,
    start_lag_server,
    summary,
    waits_at,
)
from control_plane import (  # noqa: E402
    Server,
    database_url,
    free_ports,
    interruptible,
    machine,
    pg_execute,
    run_cli,
    stop_server,
    verdict,
    wait_ready,
)

TARGET_LAG_P99_MS = 10.0
RAMP_LAG_LIMIT_MS = 50.0
TURN_P99_INFO_MS = 50.0  # reported: the highest rate whose turns stay this quick
KEEPING_UP = 0.97  # a ramp step fails below this share of the turns its timetable asked for

# Sessions that live as long as the bench wants: every answer is taken (integer + CEL validate),
# a branch picks a line (template), and the call is back at `ask`. "goodbye" ends it.
BENCH_WORKFLOW = """\
schema: voxflow/v1
name: Session bench loop
settings:
  language: en
  max_duration_s: 3600
  global_routes: [{to: bye, intent: goodbye, examples: ["goodbye", "that is all, bye"]}]
variables:
  party_size: {type: integer}
start: greet
nodes:
  - {id: greet, type: say, text: "Hi, this is the bench line.", next: ask}
  - id: ask
    type: collect
    variable: party_size
    prompt: For how many people?
    validate: "party_size >= 1 && party_size <= 12"
    invalid: We seat between 1 and 12 people. How many of you?
    next: check
    on_fail: ask
  - {id: check, type: branch, branches: [{when: "party_size > 8", to: large}], else: noted}
  - {id: noted, type: say, text: "A table for {{ party_size }}, noted.", next: ask}
  - {id: large, type: say, text: "{{ party_size }} is a large group, noted.", next: ask}
  - {id: bye, type: end, text: "Goodbye!"}
"""
TURNS = ("four", "2", "six", "10", "3", "eight")


def turns(k: int) -> tuple[str, ...]:
    """Session k's answers: the same six, each session starting at another one."""
    return TURNS[k % len(TURNS) :] + TURNS[: k % len(TURNS)]


BACK_AT_ASK = waits_at("ask")
LUIGIS_TURNS = (
    ("yes please", waits_at("ask_party")),
    ("four", waits_at("ask_day")),
    ("tomorrow", waits_at("ask_name")),
    ("Ana", waits_at(None)),
)

console = Console(width=None if sys.stdout.isatty() else 120)
Result = dict[str, Any]


@dataclass
class Target:
    base_url: str
    api_key: str
    agents: dict[str, str]
    server: Server
    lag_file: Path


async def run_phase(
    http: httpx.AsyncClient, target: Target, label: str, sessions: int, rate: float, seconds: float
) -> Result:
    agent = target.agents["bench"]
    clients = await open_sessions(
        http, target.base_url, target.api_key, agent, sessions, BACK_AT_ASK
    )
    await asyncio.sleep(0.5)
    interval = 1.0 / rate
    latencies: list[float] = []
    client_lag = LoopLag()
    load = os.getloadavg()[0]
    client_lag.start()
    usage = CpuUsage(target.server.process.pid)
    start = time.monotonic()
    stop = start + seconds
    outcomes = await asyncio.gather(
        *(
            drive(
                c, turns(k), BACK_AT_ASK, start + interval * k / sessions, interval, stop, latencies
            )
            for k, c in enumerate(clients)
        ),
        asyncio.sleep(seconds),  # the phase lasts `seconds` even without a session
        return_exceptions=True,
    )
    end = time.monotonic()
    cpu = usage.shares()
    client_samples = await client_lag.stop()
    errors = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    await close_sessions(clients)
    await asyncio.sleep(0.7)  # the server writes its lag samples every 0.5 s
    lag = read_lag(target.lag_file, start, end)
    wall = end - start
    result: Result = {
        "label": label,
        "sessions": sessions,
        "rate_per_session": rate,
        "asked_turns_per_s": sessions * rate,
        "turns": len(latencies),
        "turns_per_s": len(latencies) / wall,
        "seconds": wall,
        "turn_ms": summary(latencies),
        "server_lag_ms": summary(lag),
        "client_lag_ms": summary(client_samples),
        **cpu,
        "server_cpu_ms_per_turn": cpu["server_cpu_share"] * wall * 1000 / max(len(latencies), 1),
        "load_before": load,
        "errors": errors,
    }
    console.print(
        f"{label}: {result['turns_per_s']:.0f} turns/s, turn p50 "
        f"{result['turn_ms']['p50']:.1f} ms, server lag p99 {result['server_lag_ms']['p99']:.1f}"
        f" ms, server CPU {result['server_cpu_share']:.0%}"
        f" ({result['server_cpu_ms_per_turn']:.1f} ms per turn)"
        + (f", [red]{len(errors)} errors[/]" if errors else "")
    )
    return result


def ramp_ok(step: dict[str, Any]) -> bool:
    return bool(
        not step["errors"]
        and step["server_lag_ms"]["p99"] <= RAMP_LAG_LIMIT_MS
        and step["turns_per_s"] >= KEEPING_UP * step["asked_turns_per_s"]
    )


async def ramp(
    http: httpx.AsyncClient, target: Target, args: argparse.Namespace, passing: Result | None
) -> tuple[list[Result], Result | None, Result | None]:
    """Double the rate until a step fails, then try geometric midpoints `args.refine` times."""
    steps: list[Result] = []
    failing: Result | None = None
    rate, doublings, refinements = args.ramp_start, args.max_steps, args.refine
    while True:
        label = f"{args.sessions} x {rate:.3g}"
        step = await run_phase(http, target, label, args.sessions, rate, args.step_duration)
        steps.append(step)
        if ramp_ok(step):
            passing = step
        else:
            failing = step
        if failing is None:
            doublings -= 1
            if doublings <= 0:
                return steps, passing, failing
            rate *= 2
        else:
            if passing is None or refinements <= 0:
                return steps, passing, failing
            refinements -= 1
            rate = math.sqrt(failing["rate_per_session"] * passing["rate_per_session"])


async def measure(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=target.base_url, timeout=60) as http:
        luigis = (ROOT / "examples" / "luigis.yaml").read_bytes()
        for name, source in (("luigis", luigis), ("bench", BENCH_WORKFLOW.encode())):
            target.agents[name] = await deploy(http, target.api_key, name, source)
        check = await scripted_call(
            http,
            StreamClient(target.base_url, target.api_key, target.agents["luigis"]),
            waits_at("intent", speaks=False),
            LUIGIS_TURNS,
            {"type": "end", "outcome": "completed"},
        )
        await run_phase(http, target, "warm-up", args.sessions, 1.0, 3.0)
        # No session: what the server costs idle (its lag sampler included).
        idle = await run_phase(http, target, "idle", 0, 1.0, min(args.duration, 5.0))
        single = await run_phase(http, target, "1 x 1", 1, 1.0, args.duration)
        many = await run_phase(
            http, target, f"{args.sessions} x 1", args.sessions, 1.0, args.duration
        )
        steps, passing, failing = await ramp(http, target, args, many if ramp_ok(many) else None)
    return {
        "luigis_check": check,
        "idle": idle,
        "single": single,
        "many": many,
        "ramp": steps,
        "last_passing": passing,
        "first_failing": failing,
    }


def report(results: dict[str, Any]) -> bool:
    runs = [results["idle"], results["single"], results["many"], *results["ramp"]]
    title = f"Text sessions over WebSocket, 1 server worker ({results['database']})"
    console.print(phase_table(title, runs))
    console.print(
        "times in ms; lag: how late a 5 ms sleep wakes up on the server's event loop (client"
        " lag: on this process's); CPU: share of one core (all: of every core of the machine)"
    )

    single, many, passing = results["single"], results["many"], results["last_passing"]
    lag_ok = bool(many["server_lag_ms"]["p99"] < TARGET_LAG_P99_MS and not many["errors"])
    ratios = {
        key: many[kind][quantile] / single[kind][quantile]
        for key, kind, quantile in (
            ("turn_p50", "turn_ms", "p50"),
            ("turn_p99", "turn_ms", "p99"),
            ("lag_p99", "server_lag_ms", "p99"),
        )
    }
    results["ratios"] = ratios
    targets = Table(title="Targets")
    for column in ("what", "target", "measured", ""):
        targets.add_column(column)
    targets.add_row(
        f"{many['sessions']} sessions x 1 turn/s: server lag p99",
        f"< {TARGET_LAG_P99_MS:g} ms",
        f"{many['server_lag_ms']['p99']:.1f} ms",
        verdict(lag_ok),
    )
    for key, text in (
        ("turn_p50", "turn p50"),
        ("turn_p99", "turn p99"),
        ("lag_p99", "server lag p99"),
    ):
        targets.add_row(
            f"{text}, {many['sessions']} sessions / 1 session", "(info)", f"{ratios[key]:.2f}x", ""
        )
    if passing is not None:
        targets.add_row(
            f"highest rate with server lag p99 ≤ {RAMP_LAG_LIMIT_MS:g} ms, keeping up",
            "(info)",
            f"{passing['turns_per_s']:.0f} turns/s on 1 worker "
            f"(server CPU {passing['server_cpu_share']:.0%})",
            "",
        )
    quick = [r for r in runs if r["turn_ms"]["p99"] <= TURN_P99_INFO_MS and ramp_ok(r)]
    if quick:
        best = max(quick, key=lambda r: r["turns_per_s"])
        targets.add_row(
            f"highest rate with turn p99 ≤ {TURN_P99_INFO_MS:g} ms too",
            "(info)",
            f"{best['turns_per_s']:.0f} turns/s ({best['label']})",
            "",
        )
    failing = results["first_failing"]
    if failing is not None:
        why = [f"{len(failing['errors'])} errors"] if failing["errors"] else []
        if failing["server_lag_ms"]["p99"] > RAMP_LAG_LIMIT_MS:
            why.append(f"server lag p99 {failing['server_lag_ms']['p99']:.0f} ms")
        if failing["turns_per_s"] < KEEPING_UP * failing["asked_turns_per_s"]:
            why.append(
                f"behind: {failing['turns_per_s']:.0f} of {failing['asked_turns_per_s']:.0f}/s"
            )
        targets.add_row("first failing step", "(info)", f"{failing['label']}: {', '.join(why)}", "")
    console.print(targets)
    results["passed"] = lag_ok
    return lag_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--redis", help="VOXFLOW_REDIS_URL for the server (default: none)")
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--duration", type=float, default=20.0, help="s of phases (a) and (b)")
    parser.add_argument("--step-duration", type=float, default=10.0, help="s per ramp step")
    parser.add_argument("--ramp-start", type=float, default=2.0, help="turns/s per session")
    parser.add_argument("--max-steps", type=int, default=8, help="doublings of the ramp")
    parser.add_argument("--refine", type=int, default=2, help="steps between pass and fail")
    parser.add_argument("--quick", action="store_true", help="5 s phases, a 3-step ramp")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.step_duration, args.max_steps, args.refine = 5.0, 3.0, 3, 0

    load_at_start = os.getloadavg()[0]
    console.print(f"load average at start: {load_at_start:.2f} on {os.cpu_count()} CPUs")
    scratch = Path(tempfile.mkdtemp(prefix="voxflow-bench-sessions-"))
    created: str | None = None
    server: Server | None = None
    try:
        with interruptible():
            if args.database == "postgresql":
                created = f"voxflow_bench_sessions_{uuid.uuid4().hex[:8]}"
                pg_execute(args.postgres, f'CREATE DATABASE "{created}"')
                url = database_url(args.postgres, created)
            else:
                url = f"sqlite+aiosqlite:///{scratch / 'voxflow.db'}"
            (port,) = free_ports(1)
            env = server_env(url, port, args.redis)
            run_cli("db", "upgrade", env=env)
            org = json.loads(run_cli("orgs", "create", "bench", "--json", env=env))
            server, lag_file = start_lag_server(env, port, scratch)
            wait_ready(server)
            target = Target(server.base_url, org["api_key"], {}, server, lag_file)
            measured = asyncio.run(measure(args, target))
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {**machine(), "load_at_start": load_at_start},
            "database": args.database,
            "settings": {k: v for k, v in vars(args).items() if k != "postgres"},
            # At log level warning the server's log stays empty unless something went wrong.
            "server_log_tail": server.log_tail(20),
            **measured,
        }
        passed = report(results)
        if results["server_log_tail"]:
            console.print(f"[yellow]the server logged:[/]\n{results['server_log_tail']}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results in {RESULTS.relative_to(ROOT)}")
        return 0 if passed else 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: cleaning up[/]")
        return 130
    except Exception:
        if server is not None:
            console.print(f"[red]server log (tail):[/]\n{server.log_tail()}")
        raise
    finally:
        with console.status("cleaning up"):
            if server is not None:
                stop_server(server)
            if created is not None:
                with suppress(Exception):
                    pg_execute(args.postgres, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
