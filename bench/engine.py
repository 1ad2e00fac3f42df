"""Engine benchmark: one step of the interpreter on deterministic nodes, and a cold first turn.

    .venv/bin/python bench/engine.py            (--iterations N, --cold N)

No database, no server, no model: the engine offline (llm=None), a fixed clock, in this process.

1. Warm steps. Luigi's (examples/luigis.yaml) and the clinic (examples/clinic.yaml) are compiled
   once; for each kind of turn a checkpoint is taken at the node that waits for it (the state's
   JSON, as the server stores it after every turn). Each timed call starts from a fresh copy of
   that checkpoint (`State.model_validate_json`, not timed) and times `handle_user_turn` alone,
   or `start()` for the greeting. Kinds are interleaved round-robin, after a warm-up, so the
   machine's noise falls on all of them alike.
2. Cold first turn: a generated 50-node workflow (bench/control_plane.py's generator, a new
   seed each run) is parsed from YAML, compiled, started, and given its first turn. The
   template and condition caches (`compile_template`, `compile_condition`, lru_cached by
   source) are cleared before each run, so every text and condition is compiled for real.

Prints p50/p95/p99 per kind and overall with PASS/FAIL against DESIGN.md's target (p50 ≤ 1 ms,
p99 ≤ 5 ms), writes bench/results/engine.json and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "engine.json"
sys.path.insert(0, str(BENCH))
from control_plane import machine, make_document, percentile, verdict  # noqa: E402

from voxflow.dsl import WorkflowDocument, dump_canonical, load_document  # noqa: E402
from voxflow.dsl.compile import CompiledVersion, compile_version  # noqa: E402
from voxflow.engine.interpreter import Engine  # noqa: E402
from voxflow.engine.state import State  # noqa: E402

TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0

console = Console(width=None if sys.stdout.isatty() else 120)


class NoTools:
    """Neither example calls a tool; a call would be a bug in the bench."""

    async def call(self, name: str, args: Mapping[str, Any]) -> Any:
        raise RuntimeError(f"unexpected tool call {name}")


def fixed_clock(at: str) -> Any:
    moment = datetime.fromisoformat(at)
    return lambda: moment


@dataclass
class Kind:
    """One kind of step: `text` said at the node the turns before it lead to (None: start)."""

    workflow: str
    label: str
    before: tuple[str, ...]
    text: str | None
    expect_node: str | None  # where the call waits afterwards (None: it ended)
    samples: list[float] = field(default_factory=list)  # ms
    checkpoint: str = ""
    engine: Engine | None = None


def kinds() -> list[Kind]:
    luigi, clinic = "luigis", "clinic"
    booked = ("Tuesday please", "half past ten in the morning", "it's 202 555 0143")
    return [
        Kind(luigi, "start(): greet (say) → intent", (), None, "intent"),
        Kind(luigi, '"yes please": conversation, example match', (), "yes please", "ask_party"),
        Kind(luigi, '"four": integer + CEL validate + branch', ("yes",), "four", "ask_day"),
        Kind(luigi, '"tomorrow": date', ("yes", "four"), "tomorrow", "ask_name"),
        Kind(luigi, '"Ana": string + end (template)', ("yes", "four", "friday"), "Ana", None),
        Kind(luigi, '"talk to a person": global route, transfer', (), "talk to a person", None),
        Kind(clinic, "start(): greet → collect date", (), None, "ask_day"),
        Kind(clinic, '"Tuesday please": date (time zone)', (), "Tuesday please", "ask_time"),
        Kind(clinic, '"half past ten …": time + CEL', booked[:1], booked[1], "ask_phone"),
        Kind(clinic, '"it\'s 202 555 0143": phone, read back', booked[:2], booked[2], "ask_phone"),
        Kind(clinic, '"yes": confirmation', booked, "yes", "confirm"),
        Kind(
            clinic, '"yes book it": boolean + branch + end', (*booked, "yes"), "yes book it", None
        ),
    ]


CLOCKS = {"luigis": "2026-11-26T12:00:00+00:00", "clinic": "2026-03-02T09:00:00-05:00"}


async def prepare(all_kinds: list[Kind]) -> None:
    compiled: dict[str, CompiledVersion] = {}
    for name in CLOCKS:
        document = load_document(
            (ROOT / "examples" / f"{name}.yaml").read_bytes(), "application/yaml"
        )
        compiled[name] = compile_version(document, f"ver_{name}")
    for kind in all_kinds:
        engine = Engine(
            compiled[kind.workflow],
            llm=None,
            tools=NoTools(),
            clock=fixed_clock(CLOCKS[kind.workflow]),
        )
        kind.engine = engine
        state, _ = await engine.start({})
        for text in kind.before:
            await engine.handle_user_turn(state, text)
        kind.checkpoint = state.model_dump_json()
        # One untimed run: the step must do what the label says.
        if kind.text is None:
            state, _ = await engine.start({})
        else:
            await engine.handle_user_turn(state, kind.text)
        if state.node_id != kind.expect_node:
            raise RuntimeError(f"{kind.label}: waits at {state.node_id}, not {kind.expect_node}")


async def step(kind: Kind) -> int:
    """One timed step from a fresh copy of the checkpoint; nanoseconds."""
    engine = kind.engine
    assert engine is not None
    clock = time.perf_counter_ns
    if kind.text is None:
        started = clock()
        await engine.start({})
        return clock() - started
    state = State.model_validate_json(kind.checkpoint)
    started = clock()
    await engine.handle_user_turn(state, kind.text)
    return clock() - started


async def warm(all_kinds: list[Kind], iterations: int, warmup: int) -> dict[str, Any]:
    await prepare(all_kinds)
    for _ in range(warmup):
        for kind in all_kinds:
            await step(kind)
    gc.collect()
    gc.freeze()  # as the server does after start-up
    for _ in range(iterations):
        for kind in all_kinds:
            kind.samples.append(await step(kind) / 1e6)
    # What the server adds around a step: the checkpoint read and written back.
    checkpoint = all_kinds[2].checkpoint
    round_trips: list[float] = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        State.model_validate_json(checkpoint).model_dump_json()
        round_trips.append((time.perf_counter_ns() - started) / 1e6)
    return {
        "kinds": [
            {"workflow": k.workflow, "label": k.label, **summary(k.samples)} for k in all_kinds
        ],
        "overall": summary([s for k in all_kinds for s in k.samples]),
        "checkpoint_round_trip": summary(round_trips),
    }


def unique_yaml(seed: int) -> bytes:
    """The generated 50-node workflow with every text marked by the seed."""
    document = make_document(seed)
    for node in document["nodes"]:
        for key in ("text", "prompt", "invalid"):
            if key in node:
                node[key] = f"{node[key]} (run {seed})"
    return yaml.safe_dump(document, sort_keys=False).encode()


async def cold(repeats: int) -> dict[str, Any]:
    from voxflow.dsl.expressions import compile_condition
    from voxflow.dsl.lint import lint
    from voxflow.dsl.templates import compile_template

    first = load_document(unique_yaml(10_000), "application/yaml")
    errors = [f for f in lint(first, None) if f.severity == "error"]
    if errors:
        raise RuntimeError(f"the generated workflow does not lint: {errors[:3]}")
    phases: dict[str, list[float]] = {
        "parse": [],
        "compile": [],
        "start": [],
        "turn": [],
        "total": [],
        "parse_json": [],
    }
    clock = time.perf_counter_ns
    size = 0
    for run in range(repeats):
        source = unique_yaml(10_001 + run)
        canonical = dump_canonical(load_document(source, "application/yaml"))
        size = len(source)
        compile_template.cache_clear()
        compile_condition.cache_clear()
        t0 = clock()
        WorkflowDocument.model_validate_json(canonical)
        phases["parse_json"].append((clock() - t0) / 1e6)
        t0 = clock()
        document: WorkflowDocument = load_document(source, "application/yaml")
        t1 = clock()
        compiled = compile_version(document, f"ver_cold_{run}")
        t2 = clock()
        engine = Engine(compiled, llm=None, tools=NoTools(), clock=fixed_clock(CLOCKS["luigis"]))
        state, _ = await engine.start({})
        t3 = clock()
        await engine.handle_user_turn(state, "3")
        t4 = clock()
        if state.node_id in ("n1", None):  # the answer was taken and the call goes on
            raise RuntimeError(f"cold run {run}: waits at {state.node_id}")
        for name, ns in zip(
            ("parse", "compile", "start", "turn", "total"),
            (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0),
            strict=True,
        ):
            phases[name].append(ns / 1e6)
    return {
        "nodes": len(document.nodes),
        "yaml_bytes": size,
        "phases": {name: summary(samples) for name, samples in phases.items()},
    }


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "count": len(samples),
        "p50_ms": percentile(samples, 0.50),
        "p95_ms": percentile(samples, 0.95),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": max(samples),
    }


def passes(figures: dict[str, Any]) -> bool:
    return bool(figures["p50_ms"] <= TARGET_P50_MS and figures["p99_ms"] <= TARGET_P99_MS)


def report(results: dict[str, Any]) -> bool:
    steps = results["warm"]
    table = Table(title=f"Engine step, offline, {steps['overall']['count']:,} calls in all")
    for column in ("step", "calls", "p50 µs", "p95 µs", "p99 µs", "max µs", ""):
        table.add_column(column, justify="left" if column in ("step", "") else "right")

    def row(label: str, figures: dict[str, Any], judged: bool = True) -> bool:
        ok = passes(figures)
        table.add_row(
            label,
            f"{figures['count']:,}",
            *(f"{figures[key] * 1000:,.0f}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            verdict(ok) if judged else "",
        )
        return ok or not judged

    passed = True
    for kind in steps["kinds"]:
        passed = row(f"{kind['workflow']}: {kind['label']}", kind) and passed
    table.add_section()
    passed = row("[bold]all steps[/]", steps["overall"]) and passed
    row("checkpoint round trip (JSON → State → JSON), info", steps["checkpoint_round_trip"], False)
    console.print(table)
    console.print(f"target: p50 ≤ {TARGET_P50_MS:g} ms and p99 ≤ {TARGET_P99_MS:g} ms per row")

    cold_run = results["cold"]
    table = Table(
        title=f"Cold first turn, {cold_run['nodes']}-node workflow "
        f"({cold_run['yaml_bytes']:,} B of YAML), {cold_run['phases']['total']['count']} runs"
    )
    for column in ("phase", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    labels = {
        "parse": "parse (YAML → WorkflowDocument)",
        "compile": "compile_version (every template + condition)",
        "start": "Engine(...) + start()",
        "turn": "first handle_user_turn",
        "total": "[bold]total[/]",
        "parse_json": "(info) parse of canonical JSON instead, as the runtime loader does",
    }
    for name, figures in cold_run["phases"].items():
        table.add_row(
            labels[name],
            *(f"{figures[key]:.2f}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
        )
    console.print(table)
    results["passed"] = passed
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000, help="timed calls per kind")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls per kind first")
    parser.add_argument("--cold", type=int, default=30, help="cold first turns")
    args = parser.parse_args()

    load_before = os.getloadavg()
    console.print(f"load average at start: {load_before[0]:.2f} on {os.cpu_count()} CPUs")
    started = time.monotonic()
    warm_results = asyncio.run(warm(kinds(), args.iterations, args.warmup))
    cold_results = asyncio.run(cold(args.cold))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "settings": {"iterations": args.iterations, "warmup": args.warmup, "cold": args.cold},
        "seconds": round(time.monotonic() - started, 1),
        "warm": warm_results,
        "cold": cold_results,
    }
    passed = report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    info = results["machine"]
    console.print(
        f"{info['cpus']} x {info['cpu_model']}, load average {load_before[0]:.2f} → "
        f"{info['load_average_after'][0]:.2f}; results in {RESULTS.relative_to(ROOT)}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
