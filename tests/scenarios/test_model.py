"""The scenario file format: what loads, and how problems are reported (file + JSON pointer)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from voxflow.scenarios.model import (
    DEFAULT_CLOCK,
    ScenarioFileInvalid,
    is_scenario_file,
    load_scenario_file,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str, name: str = "a.scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioFileInvalid) as caught:
        load_scenario_file(path)
    assert caught.value.path == path
    return [(finding.pointer, finding.message) for finding in caught.value.findings]


def test_a_single_scenario_file_loads_with_its_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
workflow: ../luigis.yaml
name: books a table
steps:
  - expect: {say: "book a table"}
  - user: four of us
    tools: {http.request: {result: {status: 200}}}
    expect: {vars: {party_size: 4}, node: ask_day, within_ms: 200, judge: "asks the day"}
""",
    )
    loaded = load_scenario_file(path)
    assert loaded.workflow == (tmp_path.parent / "luigis.yaml").resolve()
    [scenario] = loaded.scenarios
    assert scenario.name == "books a table"
    assert scenario.clock == DEFAULT_CLOCK
    assert scenario.variables == {}
    assert scenario.llm is None
    first, second = scenario.steps
    assert first.user is None
    assert first.expect.say == "book a table"
    assert second.tools["http.request"].result == {"status": 200}
    assert second.tools["http.request"].error is None
    assert second.expect.vars == {"party_size": 4}
    assert second.expect.within_ms == 200
    assert second.expect.judge == "asks the day"


def test_a_file_of_several_scenarios_shares_the_workflow(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
workflow: flow.yaml
scenarios:
  - name: one
    clock: "2026-11-26T15:00:00+01:00"
    llm: ["plain text reply", {call: go_book, when_user: "table"}]
    steps: [{user: hi}]
  - name: two
    variables: {caller: "+34600000000"}
    steps: [{user: hello, tools: {http.request: {error: rate limited}}}]
""",
    )
    loaded = load_scenario_file(path)
    assert loaded.workflow == (tmp_path / "flow.yaml").resolve()
    one, two = loaded.scenarios
    assert one.clock == datetime.fromisoformat("2026-11-26T15:00:00+01:00")
    assert one.llm is not None
    assert [reply.text for reply in one.llm] == ["plain text reply", None]
    assert one.llm[1].call == "go_book"
    assert two.variables == {"caller": "+34600000000"}
    assert two.steps[0].tools["http.request"].error == "rate limited"


def test_the_workflow_may_be_inlined(tmp_path: Path) -> None:
    path = write(tmp_path, "workflow: {schema: voxflow/v1, name: x}\nsteps: [{user: hi}]\n")
    assert load_scenario_file(path).workflow == {"schema": "voxflow/v1", "name": "x"}


def test_the_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "workflow: w.yaml\nsteps: [{user: hi}]\n", "greets.scenario.yaml")
    assert load_scenario_file(path).scenarios[0].name == "greets.scenario"


def test_yaml_is_read_with_the_core_schema(tmp_path: Path) -> None:
    """Callers say yes and no; times and dates are what the variables hold, as text."""
    path = write(
        tmp_path,
        """
workflow: w.yaml
steps:
  - user: yes
  - user: no
  - user: 4
    expect: {vars: {time: 19:30, day: 2026-11-27, party: 4, confirmed: true, price: 9.5}}
""",
    )
    steps = load_scenario_file(path).scenarios[0].steps
    assert [step.user for step in steps] == ["yes", "no", "4"]
    assert steps[2].expect.vars == {
        "time": "19:30",
        "day": "2026-11-27",
        "party": 4,
        "confirmed": True,
        "price": 9.5,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "workflow: w.yaml\nsteps: [{user: hi, expect: {sya: x}}]\n",
            ("/steps/0/expect/sya", "unknown key 'sya' (expected one of: say, node, vars"),
        ),
        (
            "workflow: w.yaml\nsteps: [{user: hi, within_ms: 20}]\n",
            ("/steps/0/within_ms", "unknown key 'within_ms': it belongs inside `expect`"),
        ),
        (
            "workflow: w.yaml\nsteps: [{user: hi, tools: {http.request: {result: 1, error: x}}}]\n",
            ("/steps/0/tools/http.request", "exactly one of `result` and `error`"),
        ),
        (
            "workflow: w.yaml\nsteps: [{user: hi, tools: {http.request: {}}}]\n",
            ("/steps/0/tools/http.request", "exactly one of `result` and `error`"),
        ),
        (
            "workflow: w.yaml\nsteps: [{user: hi, expect: {end: finished}}]\n",
            ("/steps/0/expect/end", "'completed', 'transferred', 'failed', 'timeout'"),
        ),
        (
            "workflow: w.yaml\nsteps: [{user: hi, expect: {within_ms: 0}}]\n",
            ("/steps/0/expect/within_ms", "greater than 0"),
        ),
        ("workflow: w.yaml\nsteps: []\n", ("/steps", "at least 1 item")),
        ("steps: [{user: hi}]\n", ("/workflow", "required key is missing")),
        (
            "workflow: w.yaml\nclock: 2026-11-26T15:00:00\nsteps: [{user: hi}]\n",
            ("/clock", "timezone"),
        ),
        (
            "workflow: w.yaml\nsteps: [{user: true}]\n",
            ("/steps/0/user", "true/false is a boolean in YAML: quote it"),
        ),
        (
            "workflow: w.yaml\nllm: [{call: go, whenuser: x}]\nsteps: [{user: hi}]\n",
            ("/llm/0/whenuser", "unknown key 'whenuser' (expected one of: text, call"),
        ),
        (
            "workflow: w.yaml\nllm: [{arguments: {a: 1}}]\nsteps: [{user: hi}]\n",
            ("/llm/0", "needs `text`, `call` or both"),
        ),
        (
            "workflow: w.yaml\nscenarios: [{name: a, steps: [{user: hi}]}]\nname: x\n",
            ("/name", "unknown key 'name' (expected one of: workflow, scenarios)"),
        ),
        (
            "workflow: w.yaml\nscenarios: [{name: a, steps: [{user: hi, expect: {nod: x}}]}]\n",
            ("/scenarios/0/steps/0/expect/nod", "unknown key 'nod'"),
        ),
    ],
)
def test_invalid_files_point_at_the_offending_value(
    tmp_path: Path, text: str, expected: tuple[str, str]
) -> None:
    found = problems(write(tmp_path, text))
    pointer, message = expected
    assert any(p == pointer and message in m for p, m in found), found


def test_only_the_first_step_may_leave_out_the_user(tmp_path: Path) -> None:
    path = write(tmp_path, "workflow: w.yaml\nsteps: [{user: hi}, {expect: {node: x}}]\n")
    assert problems(path) == [
        ("/steps/1/user", "only the first step may leave out `user` (it checks the greeting)")
    ]


def test_scenario_names_are_unique_in_a_file(tmp_path: Path) -> None:
    text = "workflow: w.yaml\nscenarios:\n  - {name: a, steps: [{user: x}]}\n"
    path = write(tmp_path, text + "  - {name: a, steps: [{user: y}]}\n")
    assert problems(path) == [("/scenarios/1/name", "another scenario in this file is named 'a'")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workflow: [unclosed\n", "expected ',' or ']'"),
        ("workflow: a\nworkflow: b\nsteps: []\n", "duplicate key 'workflow' at line 2"),
        ("- just a list\n", "a scenario file must be a mapping, found list"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, text: str, message: str) -> None:
    [(pointer, found)] = problems(write(tmp_path, text))
    assert pointer == ""
    assert message in found


def test_the_error_message_names_the_file_and_pointer(tmp_path: Path) -> None:
    path = write(tmp_path, "workflow: w.yaml\nsteps: [{user: hi, expect: {sya: x}}]\n")
    with pytest.raises(ScenarioFileInvalid) as caught:
        load_scenario_file(path)
    assert str(caught.value).startswith(f"{path}: /steps/0/expect/sya: unknown key 'sya'")


def test_a_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    [(pointer, message)] = problems(tmp_path / "gone.scenario.yaml")
    assert pointer == ""
    assert "No such file" in message


def test_every_example_scenario_file_loads() -> None:
    files = sorted((EXAMPLES / "scenarios").glob("*.scenario.yaml"))
    assert len(files) >= 10
    for path in files:
        assert is_scenario_file(path)
        loaded = load_scenario_file(path)
        assert isinstance(loaded.workflow, Path)
        assert loaded.workflow.exists(), path
