"""Run scenarios against the engine: offline, deterministic, every tool call stubbed.

    runner = ScenarioRunner(RunOptions(catalog=default_registry()))
    async for result in runner.run_files(paths):
        ...

Each file's workflow is loaded, linted (errors fail every scenario of the file, with the
findings) and compiled once; files sharing a workflow share the compiled version. A scenario
stops at its first failing step: later steps would only report the consequences.

Skip semantics: a `judge:` claim without a judge model is not checked. A scenario whose other
expectations all held but which has unchecked claims is SKIPPED, never PASSED, so a passed
scenario always means everything in it was verified.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from voxflow.dsl import (
    DocumentInvalid,
    Finding,
    WorkflowDocument,
    document_sha256,
    dump_canonical,
    load_document,
    parse_document,
)
from voxflow.dsl.compile import CompiledVersion, CompileError, compile_version
from voxflow.dsl.lint import ToolCatalog, lint
from voxflow.engine.events import Event, ToolCall, spoken_text
from voxflow.engine.interpreter import Engine
from voxflow.engine.state import State
from voxflow.providers.llm.base import LLM, LLMError
from voxflow.providers.llm.scripted import ScriptedLLM
from voxflow.scenarios.judge import judge_claim
from voxflow.scenarios.model import (
    Expect,
    Scenario,
    ScenarioFileInvalid,
    Step,
    describe,
    load_scenario_file,
)
from voxflow.scenarios.results import (
    Failure,
    Mismatch,
    ScenarioResult,
    StepReport,
    Timing,
)
from voxflow.scenarios.stubs import StubSecrets, StubTools


@dataclass
class RunOptions:
    llm: LLM | None = None
    """When set, every conversation uses this model and scenario `llm:` scripts are ignored."""
    judge: LLM | None = None
    """Checks `judge:` claims; without one they are skipped."""
    catalog: ToolCatalog | None = None
    """Tool schemas: lint checks actions against them, stubs check the arguments they get."""


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and `*.scenario.yaml` found recursively in folders; sorted, unique."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for suffix in ("*.scenario.yaml", "*.scenario.yml"):
                found.update(dict.fromkeys(sorted(path.rglob(suffix))))
        else:
            found[path] = None
    return sorted(found)


class WorkflowUnusable(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.summary)
        self.failure = failure


class ScenarioRunner:
    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        # By path, or by the JSON of an inline document.
        self._workflows: dict[Path | str, CompiledVersion | WorkflowUnusable] = {}

    async def run_files(self, files: Iterable[Path]) -> AsyncIterator[ScenarioResult]:
        for path in files:
            for result in await self.run_file(path):
                yield result

    async def run_file(self, path: Path) -> list[ScenarioResult]:
        started = time.perf_counter()
        try:
            loaded = load_scenario_file(path)
        except ScenarioFileInvalid as exc:
            failure = Failure(
                f"invalid scenario file ({len(exc.findings)} problem(s))",
                tuple(describe(finding) for finding in exc.findings),
            )
            return [ScenarioResult(path, None, "failed", _ms_since(started), failure)]
        try:
            version = self.workflow(loaded.workflow)
        except WorkflowUnusable as exc:
            return [
                ScenarioResult(path, scenario.name, "failed", 0.0, exc.failure)
                for scenario in loaded.scenarios
            ]
        return [await self.run_scenario(path, version, s) for s in loaded.scenarios]

    def workflow(self, source: Path | dict[str, Any]) -> CompiledVersion:
        """The compiled workflow; raises WorkflowUnusable with what is wrong."""
        key = source if isinstance(source, Path) else json.dumps(source, sort_keys=True)
        if key not in self._workflows:
            try:
                self._workflows[key] = prepare_workflow(source, self.options.catalog)
            except WorkflowUnusable as exc:
                self._workflows[key] = exc
        prepared = self._workflows[key]
        if isinstance(prepared, WorkflowUnusable):
            raise prepared
        return prepared

    async def run_scenario(
        self, path: Path, version: CompiledVersion, scenario: Scenario
    ) -> ScenarioResult:
        started = time.perf_counter()
        misfits = _misfits(scenario, version, self.options.catalog)
        if misfits:
            misfit = Failure("the scenario does not fit its workflow", tuple(misfits))
            return ScenarioResult(path, scenario.name, "failed", _ms_since(started), misfit)
        call = _Call(self.options, version, scenario)
        failure = await call.play()
        duration = _ms_since(started)
        timings = tuple(call.timings)
        if failure is not None:
            return ScenarioResult(path, scenario.name, "failed", duration, failure, None, timings)
        if call.unchecked_claims:
            count = call.unchecked_claims
            reason = (
                f"{count} judge claim{'s' if count > 1 else ''} not checked: no LLM configured"
                " (set VOXFLOW_LLM_MODEL); every other expectation held"
            )
            return ScenarioResult(path, scenario.name, "skipped", duration, None, reason, timings)
        return ScenarioResult(path, scenario.name, "passed", duration, None, None, timings)


def prepare_workflow(source: Path | dict[str, Any], catalog: ToolCatalog | None) -> CompiledVersion:
    """Load, lint and compile a workflow file (or an inline document); raises WorkflowUnusable
    saying what is wrong."""
    name, prefix = (
        (f"workflow {source}", "") if isinstance(source, Path) else ("workflow", "/workflow")
    )

    def unusable(problem: str, findings: Sequence[Finding] = ()) -> WorkflowUnusable:
        details = tuple(f"{prefix}{describe(finding)}" for finding in findings)
        return WorkflowUnusable(Failure(f"{name} {problem}", details))

    try:
        document = _document(source)
    except OSError as exc:
        raise unusable(f"cannot be read: {exc.strerror}") from None
    except DocumentInvalid as exc:
        raise unusable("is invalid", exc.findings) from None
    errors = [finding for finding in lint(document, catalog) if finding.severity == "error"]
    if errors:
        raise unusable(f"has {len(errors)} lint error(s)", errors)
    version_id = "file-" + document_sha256(dump_canonical(document))[:12]
    try:
        return compile_version(document, version_id)
    except CompileError as exc:
        raise unusable("does not compile", exc.findings) from None


def _document(source: Path | dict[str, Any]) -> WorkflowDocument:
    if isinstance(source, dict):
        return parse_document(source)
    media_type = "application/json" if source.suffix == ".json" else "application/yaml"
    return load_document(source.read_bytes(), media_type)


def _misfits(
    scenario: Scenario, version: CompiledVersion, catalog: ToolCatalog | None
) -> list[str]:
    """Names the scenario uses that its workflow (or the tool catalog) does not know."""
    declared = version.document.variables
    tools = set(catalog.names()) if catalog is not None else None
    problems = [
        f"/variables/{name}: the workflow declares no variable {name!r}"
        for name in scenario.variables
        if name not in declared
    ]
    for index, step in enumerate(scenario.steps):
        at, expect = f"/steps/{index}", step.expect
        if expect.node is not None and expect.node not in version.nodes:
            problems.append(f"{at}/expect/node: the workflow has no node {expect.node!r}")
        for name in expect.vars or {}:
            if name not in declared:
                problems.append(f"{at}/expect/vars/{name}: the workflow declares no {name!r}")
        named = [(f"{at}/tools/{name}", name) for name in step.tools]
        if expect.tool is not None:
            named.append((f"{at}/expect/tool", expect.tool))
        for pointer, name in named:
            if tools is not None and name not in tools:
                problems.append(f"{pointer}: there is no tool {name!r}")
    return problems


class _Call:
    """One scenario played turn by turn against a fresh engine."""

    def __init__(self, options: RunOptions, version: CompiledVersion, scenario: Scenario) -> None:
        self.options = options
        self.scenario = scenario
        self.script = (
            ScriptedLLM(scenario.llm) if options.llm is None and scenario.llm is not None else None
        )
        self.tools = StubTools(options.catalog)
        clock = scenario.clock
        self.engine = Engine(
            version,
            llm=options.llm or self.script,
            tools=self.tools,
            secrets=StubSecrets(),
            clock=lambda: clock,
        )
        self.state: State | None = None
        self.transcript: list[tuple[str, str]] = []
        self.timings: list[Timing] = []
        self.unchecked_claims = 0

    async def play(self) -> Failure | None:
        for number, step in enumerate(self.scenario.steps, start=1):
            failure = await self._step(number, step)
            if failure is not None:
                return failure
        if self.script is not None and self.script.unused_replies:
            unused = self.script.unused_replies
            details = tuple(reply.model_dump_json(exclude_defaults=True) for reply in unused)
            return Failure(f"{len(unused)} scripted LLM reply(s) never used", details)
        return None

    async def _step(self, number: int, step: Step) -> Failure | None:
        if self.state is not None and self.state.ended:
            ended = Mismatch("call", "still going", f"ended ({self.state.outcome}) earlier")
            report = StepReport(number, step.user, (ended,), "")
            return Failure(f"step {number}: the call had already ended", step=report)
        self.tools.arm(step.tools)
        started = time.perf_counter()
        try:
            events = await self._turn(step.user)
        except Exception as exc:  # an engine bug must not hide the other scenarios' results
            summary = f"step {number}: the engine raised {type(exc).__name__}: {exc}"
            return Failure(summary, tuple(traceback.format_exception(exc)))
        took_ms = _ms_since(started)
        assert self.state is not None
        reply = spoken_text(events)
        if step.user is not None:
            self.transcript.append(("caller", step.user))
        self.transcript.append(("agent", reply))
        if step.expect.within_ms is not None:
            self.timings.append(Timing(number, took_ms, step.expect.within_ms))
        mismatches = _compare(step.expect, self.state, events, reply, took_ms)
        mismatches += self.tools.mismatches()
        if not mismatches and step.expect.judge is not None:
            mismatches += await self._judge(step.expect.judge)
        if not mismatches:
            return None
        report = StepReport(number, step.user, tuple(mismatches), reply, tuple(events))
        keys = ", ".join(dict.fromkeys(m.key.split(".")[0] for m in mismatches))
        return Failure(f"step {number}: {keys} not as expected", step=report)

    async def _turn(self, user: str | None) -> list[Event]:
        if self.state is None:
            self.state, events = await self.engine.start(dict(self.scenario.variables))
            if user is not None and not self.state.ended:
                events += await self.engine.handle_user_turn(self.state, user)
            return events
        assert user is not None  # the model allows a step without `user` only first
        return await self.engine.handle_user_turn(self.state, user)

    async def _judge(self, claim: str) -> list[Mismatch]:
        if self.options.judge is None:
            self.unchecked_claims += 1
            return []
        try:
            verdict = await judge_claim(self.options.judge, claim, self.transcript)
        except LLMError as exc:
            return [Mismatch("judge", claim, f"the judge model failed: {exc.message}")]
        return (
            [] if verdict.holds else [Mismatch("judge", claim, f"does not hold: {verdict.reason}")]
        )


def _compare(
    expect: Expect, state: State, events: list[Event], reply: str, took_ms: float
) -> list[Mismatch]:
    found: list[Mismatch] = []
    if expect.say is not None and _normal(expect.say) not in _normal(reply):
        found.append(Mismatch("say", f"a reply containing {expect.say!r}", repr(reply)))
    if expect.node is not None and state.node_id != expect.node:
        found.append(Mismatch("node", expect.node, _where(state)))
    for name, wanted in (expect.vars or {}).items():
        value = state.variables.get(name)
        if not _same(value, wanted):
            found.append(Mismatch(f"vars.{name}", _json(wanted), _json(value)))
    if expect.end is not None and state.outcome != expect.end:
        found.append(Mismatch("end", expect.end, _where(state)))
    if expect.tool is not None:
        called = [event.name for event in events if isinstance(event, ToolCall)]
        if expect.tool not in called:
            found.append(Mismatch("tool", f"a call to {expect.tool}", ", ".join(called) or "none"))
    if expect.within_ms is not None and took_ms > expect.within_ms:
        found.append(Mismatch("within_ms", f"<= {expect.within_ms:g} ms", f"{took_ms:.0f} ms"))
    return found


def _where(state: State) -> str:
    if state.ended:
        return f"call ended: {state.outcome}"
    return f"still going, waiting at node {state.node_id}"


def _normal(text: str) -> str:
    # Curly apostrophes are what editors and models produce; the author typed a straight one.
    return " ".join(text.replace("\u2019", "'").casefold().split())


def _same(actual: JsonValue, expected: JsonValue) -> bool:
    """Equality as JSON sees it: 4 equals 4.0, but true never equals 1."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _same(actual[key], expected[key]) for key in actual
        )
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            _same(a, e) for a, e in zip(actual, expected, strict=True)
        )
    numbers = isinstance(actual, int | float) and isinstance(expected, int | float)
    return (numbers or type(actual) is type(expected)) and actual == expected


def _json(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=False)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


__all__ = [
    "Failure",
    "Mismatch",
    "RunOptions",
    "ScenarioResult",
    "ScenarioRunner",
    "StepReport",
    "Timing",
    "WorkflowUnusable",
    "collect_files",
    "prepare_workflow",
]
