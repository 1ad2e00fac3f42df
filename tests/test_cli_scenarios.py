"""`voxflow test` and `voxflow chat`: run for real (subprocess) where the exit code, piping and
the installed script matter, in-process (CliRunner) for the rest, which is much faster."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from typer.testing import CliRunner

from support import OrgHandle, publish
from voxflow.cli import app

VOXFLOW = Path(sys.executable).with_name("voxflow")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

FAILING = """
workflow: {workflow}
name: expects the wrong node
steps:
  - expect: {{say: "book a table"}}
  - user: yes please
    expect: {{node: ask_day, vars: {{party_size: 4}}}}
"""


def voxflow(
    *args: str, cwd: Path = ROOT, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The installed script, with no VOXFLOW_* settings but ours (and no .env: cwd is ours)."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("VOXFLOW_") and k != "FORCE_COLOR"
    }
    environment.update(env)
    return subprocess.run(
        [str(VOXFLOW), *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """In-process runs in an empty folder (no .env) without VOXFLOW_* from the environment."""
    for name in list(os.environ):
        if name.startswith("VOXFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def flat(text: str) -> str:
    """Output with runs of spaces (column padding, rich's wrapping and boxes) squeezed."""
    return " ".join(text.replace("│", " ").split())


def failing_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "wrong.scenario.yaml"
    path.write_text(FAILING.format(workflow=EXAMPLES / "luigis.yaml"), encoding="utf-8")
    return path


# --- voxflow test ----------------------------------------------------------------------------


def test_the_examples_pass_offline() -> None:
    ran = voxflow("test", "examples/")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.strip().splitlines()
    results = [line for line in lines if line.split(" ")[0] in ("PASSED", "FAILED", "SKIPPED")]
    assert len(results) >= 15
    assert all(line.startswith("PASSED examples/scenarios/") for line in results), ran.stdout
    assert "PASSED examples/scenarios/luigis_happy.scenario.yaml::books a table for four" in (
        ran.stdout
    )
    assert lines[-1] == f"{len(results)} passed, 0 failed"


def test_a_failing_scenario_exits_1_with_a_diff(cli: CliRunner, tmp_path: Path) -> None:
    path = failing_scenario(tmp_path)
    ran = cli.invoke(app, ["test", str(tmp_path)])
    assert ran.exit_code == 1, ran.output
    lines = ran.stdout.strip().splitlines()
    assert lines[0].startswith("FAILED wrong.scenario.yaml::expects the wrong node  ")
    shown = flat(ran.stdout)
    assert "step 2: node, vars not as expected" in shown
    assert "caller said 'yes please'" in shown
    assert "node expected ask_day got still going, waiting at node ask_party" in shown
    assert "vars.party_size expected 4 got null" in shown
    assert "agent said 'For how many people?'" in shown
    assert "events → node ask_party" in shown
    assert lines[-1] == "0 passed, 1 failed"
    assert path.exists()


def test_junit_xml_is_written(cli: CliRunner, tmp_path: Path) -> None:
    failing_scenario(tmp_path)
    report = tmp_path / "reports" / "junit.xml"  # the folder is made
    hours = EXAMPLES / "scenarios" / "luigis_hours.scenario.yaml"
    ran = cli.invoke(app, ["test", str(tmp_path), str(hours), "--junit", str(report)])
    assert ran.exit_code == 1, ran.output
    assert ran.stdout.strip().splitlines()[-1] == "1 passed, 1 failed"
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.attrib["tests"], suite.attrib["failures"]) == ("2", "1")
    cases = {case.attrib["name"]: case for case in suite.iter("testcase")}
    assert set(cases) == {"expects the wrong node", "tells the opening hours"}
    failure = cases["expects the wrong node"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "step 2: node, vars not as expected"
    assert "expected  ask_day" in (failure.text or "")
    assert cases["tells the opening hours"].find("failure") is None


def test_a_missing_path_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    ran = cli.invoke(app, ["test", str(tmp_path / "nope")])
    assert ran.exit_code == 2
    assert "does not exist" in flat(ran.output)


def test_a_folder_without_scenarios_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    ran = cli.invoke(app, ["test", str(tmp_path)])
    assert ran.exit_code == 2
    assert "no *.scenario.yaml files in" in ran.output


def test_llm_without_a_model_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    failing_scenario(tmp_path)
    ran = cli.invoke(app, ["test", str(tmp_path), "--llm"])
    assert ran.exit_code == 2
    assert "--llm needs a model: set VOXFLOW_LLM_MODEL" in ran.output


def test_an_invalid_scenario_file_fails_with_its_pointer(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "bad.scenario.yaml").write_text("workflow: x.yaml\nsteps: [{user: hi, sya: x}]\n")
    ran = cli.invoke(app, ["test", str(tmp_path)])
    assert ran.exit_code == 1
    assert "FAILED bad.scenario.yaml  " in ran.stdout
    assert "/steps/0/sya: unknown key 'sya'" in ran.stdout
    assert ran.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


# --- voxflow chat ----------------------------------------------------------------------------


def test_chat_reads_piped_lines_and_ends_at_end_of_input() -> None:
    ran = voxflow("chat", "examples/luigis.yaml", stdin="yes\nfour\n")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == [
        "  → node greet",
        "agent: Hi, this is Luigi's. Would you like to book a table?",
        "  → node intent",
        "you: yes",
        "  → node ask_party",
        "agent: For how many people?",
        "you: four",
        "  set party_size = 4",
        "  → node size_check",
        "  → node ask_day",
        "agent: Which day?",
        "call ended: abandoned (the caller hung up)",
    ]


def test_chat_stops_when_the_workflow_ends_the_call(cli: CliRunner) -> None:
    ran = cli.invoke(
        app, ["chat", str(EXAMPLES / "luigis.yaml")], input="when are you open\nhello?\n"
    )
    assert ran.exit_code == 0, ran.output
    assert "agent: We're open 5 to 11 pm every day." in ran.stdout
    assert ran.stdout.strip().splitlines()[-1] == "call ended: completed"
    assert "hello?" not in ran.stdout


def test_chat_shows_tool_calls(cli: CliRunner, tmp_path: Path) -> None:
    """The real registry: a private address is refused, and the workflow takes `on_error`."""
    workflow = (EXAMPLES / "order_status.yaml").read_text()
    local = tmp_path / "local.yaml"
    local.write_text(workflow.replace("https://shop.example.com", "http://127.0.0.1:9"))
    ran = cli.invoke(app, ["chat", str(local)], input="4417\n")
    assert ran.exit_code == 0, ran.output
    assert "  tool http.request(" in ran.stdout
    assert "refused to connect to 127.0.0.1" in ran.stdout
    assert (
        ran.stdout.strip().splitlines()[-1]
        == "call ended: transferred (transferred to sip:support@shop.example)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either a workflow FILE or --agent NAME"),
        ([str(EXAMPLES / "luigis.yaml"), "--agent", "x"], "give either a workflow FILE"),
        ([str(EXAMPLES / "luigis.yaml"), "--var", "novalue"], "--var 'novalue': write NAME=VALUE"),
        ([str(EXAMPLES / "luigis.yaml"), "--var", "nope=1"], "undeclared variables: nope"),
        ([str(EXAMPLES / "luigis.yaml"), "--llm"], "--llm needs a model"),
    ],
)
def test_chat_usage_errors(cli: CliRunner, args: list[str], message: str) -> None:
    ran = cli.invoke(app, ["chat", *args], input="")
    assert ran.exit_code == 2, ran.output
    assert message in ran.output


def test_chat_refuses_a_workflow_with_lint_errors(cli: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((EXAMPLES / "luigis.yaml").read_text().replace("next: ask_name", "next: x"))
    ran = cli.invoke(app, ["chat", str(broken)], input="")
    assert ran.exit_code == 1
    assert "lint error" in ran.output


async def test_chat_with_a_deployed_agent(
    database_url: str, client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes
) -> None:
    response = await client.post(
        "/v1/workflows",
        content=luigis_yaml,
        headers={**org.headers, "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    await publish(client, org, workflow_id)
    name = f"chat-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/v1/agents",
        json={"name": name, "workflow_id": workflow_id, "version": "latest"},
        headers=org.headers,
    )
    assert created.status_code == 201, created.text

    ran = voxflow(
        "chat", "--agent", name, stdin="opening hours\n", VOXFLOW_DATABASE_URL=database_url
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"agent {name}, version 1" in ran.stderr
    assert "agent: We're open 5 to 11 pm every day." in ran.stdout
    assert ran.stdout.strip().splitlines()[-1] == "call ended: completed"

    missing = voxflow("chat", "--agent", "no-such-agent", VOXFLOW_DATABASE_URL=database_url)
    assert missing.returncode == 1
    assert "no agent no-such-agent" in missing.stderr
