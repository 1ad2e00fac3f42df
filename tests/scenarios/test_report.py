"""The console lines and JUnit XML made of scenario results, and finding scenario files."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from voxflow.engine.events import EnterNode, SetVariable, ToolCall
from voxflow.scenarios.report import (
    describe_event,
    failure_lines,
    junit_xml,
    result_line,
    summary_line,
)
from voxflow.scenarios.results import Failure, Mismatch, ScenarioResult, StepReport, Timing
from voxflow.scenarios.runner import collect_files

STEP = StepReport(
    number=2,
    user="four of us",
    mismatches=(Mismatch("node", "ask_name", "still going, waiting at node ask_day"),),
    reply="Which day?",
    events=(SetVariable(name="party_size", value=4), EnterNode(id="ask_day")),
)


def results(folder: Path) -> list[ScenarioResult]:
    path = folder / "flows" / "luigis.scenario.yaml"
    return [
        ScenarioResult(path, "books", "passed", 3.2, timings=(Timing(2, 1.5, 200),)),
        ScenarioResult(path, "wrong", "failed", 12.0, Failure("step 2: node", step=STEP)),
        ScenarioResult(path, "judged", "skipped", 0.5, skip_reason="1 judge claim not checked"),
        ScenarioResult(
            folder / "bad.scenario.yaml", None, "failed", 0.1, Failure("invalid", ("/x: no",))
        ),
    ]


def test_result_lines_read_like_pytest(tmp_path: Path) -> None:
    passed, failed, skipped, broken = results(tmp_path)
    assert result_line(passed, tmp_path) == (
        "[green]PASSED[/] flows/luigis.scenario.yaml::books  3.2 ms"
        "  [dim](reply budgets: step 2 1.5 ms of 200 ms)[/]"
    )
    assert (
        result_line(failed, tmp_path) == "[red]FAILED[/] flows/luigis.scenario.yaml::wrong  12 ms"
    )
    assert result_line(skipped, tmp_path).endswith("0.5 ms  [yellow]1 judge claim not checked[/]")
    assert result_line(broken, tmp_path) == "[red]FAILED[/] bad.scenario.yaml  0.1 ms"


def test_a_path_outside_the_working_folder_is_shown_as_given(tmp_path: Path) -> None:
    elsewhere = ScenarioResult(Path("/elsewhere/a.scenario.yaml"), "x", "passed", 1.0)
    assert "/elsewhere/a.scenario.yaml::x" in result_line(elsewhere, tmp_path)


def test_the_failure_diff_aligns_expected_and_got(tmp_path: Path) -> None:
    _, failed, _, broken = results(tmp_path)
    assert failure_lines(failed) == [
        "step 2: node",
        "  caller said  'four of us'",
        "  node         expected  ask_name",
        "               got       still going, waiting at node ask_day",
        "  agent said   'Which day?'",
        "  events       set party_size = 4",
        "               → node ask_day",
    ]
    assert failure_lines(broken) == ["invalid", "  /x: no"]


def test_the_summary_counts_skips_only_when_there_are_some(tmp_path: Path) -> None:
    everything = results(tmp_path)
    assert summary_line(everything) == "1 passed, 2 failed, 1 skipped"
    assert summary_line(everything[:1]) == "1 passed, 0 failed"
    assert summary_line([]) == "0 passed, 0 failed"


def test_tool_calls_are_described_with_their_arguments_and_outcome() -> None:
    ok = ToolCall(node_id="n", name="http.request", args={"url": "u"}, result={"status": 200})
    failed = ToolCall(node_id="n", name="http.request", args={}, error="rate limited")
    assert describe_event(ok) == 'tool http.request({"url": "u"}) → {"status": 200}  0.0 ms'
    assert describe_event(failed) == "tool http.request({}) failed: rate limited"
    long = SetVariable(name="order", value={"items": ["x" * 50] * 10})
    described = describe_event(long)
    assert described is not None
    assert described.endswith("…")
    assert len(described) < 200


def test_junit_xml_has_a_testcase_per_scenario(tmp_path: Path) -> None:
    root = ElementTree.fromstring(junit_xml(results(tmp_path), cwd=tmp_path))
    assert root.tag == "testsuites"
    [suite] = root
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["skipped"]) == (
        "4",
        "2",
        "1",
    )
    assert suite.attrib["time"] == "0.016"
    cases = suite.findall("testcase")
    assert [case.attrib["classname"] for case in cases] == ["flows.luigis"] * 3 + ["bad"]
    assert [case.attrib["name"] for case in cases] == [
        "books",
        "wrong",
        "judged",
        "(scenario file)",
    ]
    assert cases[0].attrib["file"] == "flows/luigis.scenario.yaml"
    assert cases[0].find("failure") is None
    assert cases[0].find("skipped") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "step 2: node"
    assert "expected  ask_name" in (failure.text or "")
    skipped = cases[2].find("skipped")
    assert skipped is not None
    assert skipped.attrib["message"] == "1 judge claim not checked"


def test_junit_xml_survives_characters_xml_cannot_hold(tmp_path: Path) -> None:
    step = StepReport(1, "\x00hi\x1b", (Mismatch("say", "x", "'\x07'"),), "\x07")
    result = ScenarioResult(
        tmp_path / "a.scenario.yaml", "n\x01", "failed", 1.0, Failure("s", step=step)
    )
    case = ElementTree.fromstring(junit_xml([result], cwd=tmp_path)).find("testsuite/testcase")
    assert case is not None
    assert case.attrib["name"] == "n\ufffd"


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_collect_files_finds_scenarios_recursively_once(tmp_path: Path) -> None:
    for name in ("b/one.scenario.yaml", "a/deep/two.scenario.yml", "a/not-a-scenario.yaml"):
        _mk((tmp_path / name).parent)
        (tmp_path / name).write_text("x")
    explicit = tmp_path / "b" / "one.scenario.yaml"
    found = collect_files([tmp_path, explicit])
    assert found == [tmp_path / "a/deep/two.scenario.yml", explicit]
