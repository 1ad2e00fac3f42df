"""How scenario results read: pytest-like console lines with a diff on failure, JUnit XML.

PASSED examples/scenarios/luigis_happy.scenario.yaml::books a table for four  3 ms
FAILED examples/scenarios/clinic.scenario.yaml::books a check-up  2 ms
    step 3: node, vars not as expected
      caller said  'tomorrow at ten'
      node         expected  ask_time
                   got       still going, waiting at node ask_date
      agent said   'Sorry, I didn't catch that. Which day suits you?'
      events       → node ask_date
1 passed, 1 failed
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

from pydantic import JsonValue
from rich.markup import escape

from voxflow.engine.events import (
    End,
    EnterNode,
    Event,
    RuntimeIssue,
    Say,
    SetVariable,
    ToolCall,
    Transfer,
)
from voxflow.scenarios.results import ScenarioResult

_STYLES = {"passed": "green", "failed": "red", "skipped": "yellow"}
_VALUE_LIMIT = 160
# Characters XML 1.0 cannot hold at all, even escaped: an agent's reply could contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def display_path(path: Path, cwd: Path | None = None) -> str:
    """`path` relative to the working folder when it lies inside it, as pytest shows files."""
    base = (cwd or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return str(path)


def result_id(result: ScenarioResult, cwd: Path | None = None) -> str:
    shown = display_path(result.file, cwd)
    return shown if result.name is None else f"{shown}::{result.name}"


def result_line(result: ScenarioResult, cwd: Path | None = None) -> str:
    """One line of rich markup: status, file::name, time and, when set, reply budgets."""
    style = _STYLES[result.status]
    line = f"[{style}]{result.status.upper()}[/] {escape(result_id(result, cwd))}"
    line += f"  {_ms(result.duration_ms)}"
    if result.timings:
        budgets = ", ".join(
            f"step {t.step} {_ms(t.took_ms)} of {t.budget_ms:g} ms" for t in result.timings
        )
        line += f"  [dim](reply budgets: {budgets})[/]"
    if result.skip_reason:
        line += f"  [yellow]{escape(result.skip_reason)}[/]"
    return line


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def failure_lines(result: ScenarioResult) -> list[str]:
    """Plain text under a FAILED line: which step, the caller's words, expected vs got, the
    agent's whole reply and what else happened in the step."""
    failure = result.failure
    if failure is None:
        return []
    lines = [failure.summary]
    step = failure.step
    if step is not None:
        rows: list[tuple[str, str]] = []
        rows.append(("caller said", repr(step.user) if step.user is not None else "(the start)"))
        for mismatch in step.mismatches:
            rows.append((mismatch.key, f"expected  {mismatch.expected}"))
            rows.append(("", f"got       {mismatch.got}"))
        if not any(mismatch.key == "say" for mismatch in step.mismatches):  # shown there
            rows.append(("agent said", repr(step.reply) if step.reply else "(nothing)"))
        happened = [text for text in map(describe_event, step.events) if text]
        for index, text in enumerate(happened):
            rows.append(("events" if index == 0 else "", text))
        width = max(len(label) for label, _ in rows) + 2
        lines += [f"  {label.ljust(width)}{text}" for label, text in rows]
    lines += [f"  {detail}" for detail in _detail_lines(failure.details)]
    return lines


def _detail_lines(details: Sequence[str]) -> list[str]:
    return [line for detail in details for line in detail.rstrip("\n").splitlines()]


def summary_line(results: Sequence[ScenarioResult]) -> str:
    counts = {status: 0 for status in _STYLES}
    for result in results:
        counts[result.status] += 1
    line = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    return line


def describe_event(event: Event) -> str | None:
    """One line for anything but speech (which callers show as the agent's reply)."""
    match event:
        case EnterNode():
            return f"→ node {event.id}"
        case SetVariable():
            return f"set {event.name} = {short_json(event.value)}"
        case ToolCall() if event.error is not None:
            return f"tool {event.name}({short_json(event.args)}) failed: {event.error}"
        case ToolCall():
            result = short_json(event.result)
            return (
                f"tool {event.name}({short_json(event.args)}) → {result}  {_ms(event.duration_ms)}"
            )
        case Transfer():
            return f"transfer → {event.target} ({event.mode})"
        case End():
            return f"call ended: {event.outcome}" + (f" ({event.reason})" if event.reason else "")
        case RuntimeIssue():
            return f"issue at {event.node_id}: {event.code}: {event.message}"
        case Say():
            return None


def short_json(value: JsonValue) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"


def junit_xml(results: Sequence[ScenarioResult], cwd: Path | None = None) -> str:
    """A JUnit XML report: one testsuite, a testcase per scenario, failure/skipped children."""
    failed = sum(result.status == "failed" for result in results)
    skipped = sum(result.status == "skipped" for result in results)
    seconds = f"{sum(result.duration_ms for result in results) / 1000:.3f}"
    counts = {
        "tests": str(len(results)),
        "failures": str(failed),
        "errors": "0",
        "skipped": str(skipped),
        "time": seconds,
    }
    root = ElementTree.Element("testsuites", {"name": "voxflow", **counts})
    suite = ElementTree.SubElement(root, "testsuite", {"name": "voxflow scenarios", **counts})
    for result in results:
        shown = display_path(result.file, cwd)
        case = ElementTree.SubElement(
            suite,
            "testcase",
            {
                # Dotted like a module path, since CI tools split classnames on dots.
                "classname": _classname(shown),
                "name": _xml_text(result.name or "(scenario file)"),
                "file": _xml_text(shown),
                "time": f"{result.duration_ms / 1000:.3f}",
            },
        )
        if result.status == "failed" and result.failure is not None:
            element = ElementTree.SubElement(
                case, "failure", {"message": _xml_text(result.failure.summary)}
            )
            element.text = _xml_text("\n".join(failure_lines(result)))
        elif result.status == "skipped":
            ElementTree.SubElement(
                case, "skipped", {"message": _xml_text(result.skip_reason or "")}
            )
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'


def _classname(shown: str) -> str:
    stem = re.sub(r"\.scenario\.ya?ml$", "", shown)
    return _xml_text(stem.replace("/", ".").strip("."))


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
