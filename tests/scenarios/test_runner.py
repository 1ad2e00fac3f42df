"""Running scenarios against the engine: passes, every kind of failure and its diff, stubbed
tools, reply budgets, judges, and the console and JUnit reports made of the results."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from voxflow.engine.interpreter import Engine
from voxflow.providers.llm import ScriptedLLM
from voxflow.scenarios.report import failure_lines, result_line, summary_line
from voxflow.scenarios.results import ScenarioResult
from voxflow.scenarios.runner import RunOptions, ScenarioRunner, collect_files
from voxflow.tools import default_registry

SHOP = """
schema: voxflow/v1
name: Test shop
variables:
  order_id: {type: integer}
  order: {type: object}
start: greet
nodes:
  - {id: greet, type: say, text: "Hi, this is the shop.", next: ask}
  - {id: ask, type: collect, variable: order_id, prompt: "Your order number?", next: lookup,
     on_fail: human}
  - id: lookup
    type: action
    tool: http.request
    args: {method: GET, url: "https://shop.example.com/orders/{{ order_id }}"}
    result: order
    next: done
    on_error: human
  - {id: done, type: end, text: "Order {{ order_id }} is {{ order.body.state }}."}
  - {id: human, type: transfer, text: "Let me get a colleague.", to: "sip:desk@shop.example"}
"""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHIPPED = "{http.request: {result: {status: 200, headers: {}, body: {state: shipped}}}}"


def scenario_file(tmp_path: Path, steps: str, *, header: str = "", workflow: str = SHOP) -> Path:
    (tmp_path / "shop.yaml").write_text(workflow, encoding="utf-8")
    path = tmp_path / "shop.scenario.yaml"
    text = f"workflow: shop.yaml\nname: looks up an order\n{header}steps:\n{steps}"
    path.write_text(text, encoding="utf-8")
    return path


async def run(path: Path, **options: object) -> list[ScenarioResult]:
    registry = default_registry()
    try:
        runner = ScenarioRunner(RunOptions(catalog=registry, **options))  # type: ignore[arg-type]
        return await runner.run_file(path)
    finally:
        await registry.aclose()


async def run_one(path: Path, **options: object) -> ScenarioResult:
    [result] = await run(path, **options)
    return result


def diff(result: ScenarioResult) -> str:
    return "\n".join(failure_lines(result))


# --- passing ---------------------------------------------------------------------------------


async def test_a_scenario_whose_expectations_hold_passes(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        f"""
  - expect: {{say: "this is the SHOP", node: ask}}
  - user: it's 4417
    tools: {SHIPPED}
    expect: {{tool: http.request, vars: {{order_id: 4417}}, end: completed}}
""",
    )
    result = await run_one(path)
    assert result.status == "passed", diff(result)
    assert result.name == "looks up an order"
    assert result.failure is None
    assert result.duration_ms > 0


async def test_vars_match_a_subset_and_say_ignores_case_and_spacing(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        f"""
  - user: "4417"
    tools: {SHIPPED}
    expect: {{say: "order   4417 IS shipped", end: completed, vars: {{order_id: 4417}}}}
""",
    )
    result = await run_one(path)
    assert result.status == "passed", diff(result)


async def test_the_example_scenarios_all_pass() -> None:
    registry = default_registry()
    runner = ScenarioRunner(RunOptions(catalog=registry))
    results = [result async for result in runner.run_files(collect_files([EXAMPLES]))]
    await registry.aclose()
    failed = [diff(result) for result in results if result.status != "passed"]
    assert not failed, "\n\n".join(failed)
    assert len(results) >= 15


# --- failures and their diffs ----------------------------------------------------------------


async def test_a_wrong_node_and_reply_show_expected_got_and_the_whole_reply(
    tmp_path: Path,
) -> None:
    path = scenario_file(
        tmp_path,
        """
  - expect: {node: ask}
  - user: no idea
    expect: {node: lookup, say: "thank you"}
""",
    )
    result = await run_one(path)
    assert result.status == "failed"
    assert result.failure is not None
    assert result.failure.summary == "step 2: say, node not as expected"
    text = diff(result)
    assert "caller said  'no idea'" in text
    assert "expected  lookup" in text
    assert "got       still going, waiting at node ask" in text
    assert "expected  a reply containing 'thank you'" in text
    # The whole reply is shown once, as what `say` got.
    assert 'got       "Sorry, I didn\'t catch that. Your order number?"' in text
    assert "agent said" not in text


async def test_wrong_variables_and_outcome_are_listed_one_by_one(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        f"""
  - user: "4417"
    tools: {SHIPPED}
    expect: {{vars: {{order_id: 4418}}, end: transferred}}
""",
    )
    result = await run_one(path)
    assert result.failure is not None
    assert result.failure.step is not None
    keys = [(m.key, m.expected, m.got) for m in result.failure.step.mismatches]
    assert keys == [
        ("vars.order_id", "4418", "4417"),
        ("end", "transferred", "call ended: completed"),
    ]
    text = diff(result)
    assert "→ node lookup" in text
    assert 'tool http.request({"method": "GET"' in text
    assert "call ended: completed" in text


async def test_true_never_equals_one(tmp_path: Path) -> None:
    steps = f"  - user: '1'\n    tools: {SHIPPED}\n    expect: {{vars: {{order_id: true}}}}\n"
    result = await run_one(scenario_file(tmp_path, steps))
    assert result.failure is not None
    assert result.failure.step is not None
    [mismatch] = result.failure.step.mismatches
    assert (mismatch.key, mismatch.expected, mismatch.got) == ("vars.order_id", "true", "1")


async def test_a_step_after_the_call_ended_fails(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        f"""
  - user: "4417"
    tools: {SHIPPED}
    expect: {{end: completed}}
  - user: hello?
""",
    )
    result = await run_one(path)
    assert result.failure is not None
    assert result.failure.summary == "step 2: the call had already ended"
    assert "got       ended (completed) earlier" in diff(result)


async def test_an_expected_tool_that_was_not_called_fails(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "  - user: hmm\n    expect: {tool: http.request}\n")
    result = await run_one(path)
    assert result.failure is not None
    assert result.failure.step is not None
    [mismatch] = result.failure.step.mismatches
    assert (mismatch.key, mismatch.got) == ("tool", "none")


# --- stubbed tools ---------------------------------------------------------------------------


async def test_a_stubbed_error_takes_the_on_error_path(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        """
  - user: "4417"
    tools: {http.request: {error: rate limited}}
    expect: {tool: http.request, say: "get a colleague", end: transferred}
""",
    )
    result = await run_one(path)
    assert result.status == "passed", diff(result)


async def test_an_unstubbed_tool_call_fails_the_scenario_by_name(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "  - user: '4417'\n")
    result = await run_one(path)
    assert result.status == "failed"
    assert result.failure is not None
    assert result.failure.summary == "step 1: tools not as expected"
    text = diff(result)
    assert "unstubbed tool call http.request with " in text
    assert '"url": "https://shop.example.com/orders/4417"' in text
    assert "a stub for http.request in the step's `tools:`" in text


async def test_a_stub_no_call_used_fails(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, f"  - user: not a number\n    tools: {SHIPPED}\n")
    result = await run_one(path)
    assert result.status == "failed"
    assert "a call to http.request (it is stubbed)" in diff(result)
    assert "no call in this step" in diff(result)


async def test_arguments_are_checked_against_the_real_tool(tmp_path: Path) -> None:
    """A call whose rendered arguments the real tool refuses fails in a scenario as it would
    in production (to `on_error`), even though a stub would have answered."""
    workflow = SHOP.replace(
        'url: "https://shop.example.com/orders/{{ order_id }}"', 'url: "{{ order_id }}"'
    )
    steps = f"  - user: '4417'\n    tools: {SHIPPED}\n    expect: {{end: completed}}\n"
    result = await run_one(scenario_file(tmp_path, steps, workflow=workflow))
    assert result.failure is not None
    assert result.failure.step is not None
    [mismatch] = result.failure.step.mismatches
    assert (mismatch.key, mismatch.got) == ("end", "call ended: transferred")
    assert "failed: invalid arguments for http.request: /url: " in diff(result)


async def test_a_slow_reply_exceeds_its_budget(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        """
  - user: "4417"
    tools: {http.request: {result: {status: 200, body: {state: lost}}, delay_ms: 120}}
    expect: {end: completed, within_ms: 50}
""",
    )
    result = await run_one(path)
    assert result.status == "failed"
    assert result.failure is not None
    assert result.failure.step is not None
    [mismatch] = result.failure.step.mismatches
    assert mismatch.key == "within_ms"
    assert mismatch.expected == "<= 50 ms"
    assert int(mismatch.got.removesuffix(" ms")) >= 120
    [timing] = result.timings
    assert (timing.step, timing.budget_ms) == (1, 50)
    assert timing.took_ms >= 120


async def test_a_reply_within_budget_is_reported(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "  - expect: {node: ask, within_ms: 1000}\n")
    result = await run_one(path)
    assert result.status == "passed", diff(result)
    assert "(reply budgets: step 1 " in result_line(result)
    assert " of 1000 ms)" in result_line(result)


# --- judges ----------------------------------------------------------------------------------


JUDGED = "  - expect: {node: ask, judge: The agent asks for the order number}\n"


async def test_without_a_judge_model_the_claim_is_skipped_not_passed(tmp_path: Path) -> None:
    result = await run_one(scenario_file(tmp_path, JUDGED))
    assert result.status == "skipped"
    assert result.skip_reason is not None
    assert result.skip_reason.startswith("1 judge claim not checked: no LLM configured")
    assert result_line(result).endswith("every other expectation held[/]")
    assert summary_line([result]) == "0 passed, 0 failed, 1 skipped"


async def test_a_judge_model_checks_the_claim(tmp_path: Path) -> None:
    judge = ScriptedLLM.from_data(
        [{"call": "verdict", "arguments": {"holds": True, "reason": "it asks"}}]
    )
    result = await run_one(scenario_file(tmp_path, JUDGED), judge=judge)
    assert result.status == "passed", diff(result)
    [request] = judge.requests
    assert request.function_names == ("verdict",)
    question = request.messages[-1].content or ""
    assert "agent: Hi, this is the shop. Your order number?" in question
    assert question.endswith("Claim: The agent asks for the order number")


async def test_a_claim_the_judge_rejects_fails_with_its_reason(tmp_path: Path) -> None:
    judge = ScriptedLLM.from_data(["No, the agent greets but asks nothing about a date."])
    result = await run_one(scenario_file(tmp_path, JUDGED), judge=judge)
    assert result.status == "failed"
    assert result.failure is not None
    assert result.failure.step is not None
    [mismatch] = result.failure.step.mismatches
    assert mismatch.key == "judge"
    assert mismatch.got == "does not hold: the agent greets but asks nothing about a date."


async def test_a_failing_judge_model_fails_the_claim(tmp_path: Path) -> None:
    judge = ScriptedLLM.from_data([{"text": "x", "when_user": "never matches this"}])
    result = await run_one(scenario_file(tmp_path, JUDGED), judge=judge)
    assert result.status == "failed"
    assert "the judge model failed: script exhausted" in diff(result)


# --- the model paths, scripted ---------------------------------------------------------------

INTENTS = """
schema: voxflow/v1
name: Intents
start: hello
nodes:
  - {id: hello, type: say, text: "Hello!", next: talk}
  - id: talk
    type: conversation
    prompt: Find out what the caller wants.
    routes:
      - {to: bye, intent: goodbye, examples: ["bye"]}
  - {id: bye, type: end, text: "Goodbye!"}
"""


async def test_a_scripted_llm_drives_the_conversation(tmp_path: Path) -> None:
    header = "llm:\n  - {call: go_goodbye, when_user: leave}\n"
    path = scenario_file(
        tmp_path,
        "  - user: I want to leave now\n    expect: {end: completed, say: Goodbye}\n",
        header=header,
        workflow=INTENTS,
    )
    result = await run_one(path)
    assert result.status == "passed", diff(result)


async def test_unused_scripted_replies_fail_the_scenario(tmp_path: Path) -> None:
    header = "llm:\n  - {call: go_goodbye}\n  - never said\n"
    path = scenario_file(tmp_path, "  - user: bye\n", header=header, workflow=INTENTS)
    result = await run_one(path)
    assert result.status == "failed"
    assert result.failure is not None
    assert result.failure.summary == "1 scripted LLM reply(s) never used"
    assert '"text":"never said"' in diff(result)


# --- files and workflows that cannot run -----------------------------------------------------


async def test_lint_errors_fail_every_scenario_of_the_file(tmp_path: Path) -> None:
    broken = SHOP.replace("next: done\n", "next: nowhere\n")
    path = scenario_file(tmp_path, "  - user: hi\n", workflow=broken)
    result = await run_one(path)
    assert result.status == "failed"
    assert result.failure is not None
    assert "lint error" in result.failure.summary
    assert "/nodes/2/next" in diff(result)


async def test_a_missing_workflow_fails_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "x.scenario.yaml"
    path.write_text("workflow: nope.yaml\nsteps: [{user: hi}]\n")
    result = await run_one(path)
    assert result.failure is not None
    missing = tmp_path / "nope.yaml"
    assert result.failure.summary == f"workflow {missing} cannot be read: No such file or directory"


async def test_a_workflow_can_be_inlined_as_replays_of_logged_calls_do(tmp_path: Path) -> None:
    """`yaml.safe_dump` output (YAML 1.1 quoting) with the document under `workflow:`."""
    scenario = {
        "workflow": yaml.safe_load(SHOP),
        "name": "replay of call c_1",
        "variables": {},
        "steps": [
            {"expect": {"say": "Hi, this is the shop. Your order number?", "node": "ask"}},
            {
                "user": "yes",
                "expect": {"say": "Sorry, I didn't catch that. Your order number?"},
            },
            {
                "user": "4417",
                "tools": {"http.request": {"result": {"status": 200, "body": {"state": "on"}}}},
                "expect": {"vars": {"order_id": 4417}, "end": "completed", "say": "is on."},
            },
        ],
    }
    path = tmp_path / "replay.scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    result = await run_one(path)
    assert result.status == "passed", diff(result)

    del scenario["workflow"]["start"]  # type: ignore[attr-defined]
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    result = await run_one(path)
    assert result.failure is not None
    assert result.failure.summary == "workflow is invalid"
    assert result.failure.details == ("/workflow/start: Field required",)


async def test_an_invalid_scenario_file_is_one_failure_with_pointers(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "  - user: hi\n    expect: {sya: x}\n")
    result = await run_one(path)
    assert result.status == "failed"
    assert result.name is None
    assert result.failure is not None
    assert result.failure.summary == "invalid scenario file (1 problem(s))"
    assert "/steps/0/expect/sya: unknown key 'sya'" in diff(result)


async def test_names_the_workflow_does_not_know_are_reported_before_running(
    tmp_path: Path,
) -> None:
    path = scenario_file(
        tmp_path,
        "  - user: hi\n    tools: {http.fetch: {result: 1}}\n"
        "    expect: {node: asc, vars: {orderid: 1}, tool: http.fetch}\n",
        header="variables: {caller: x}\n",
    )
    result = await run_one(path)
    assert result.failure is not None
    assert result.failure.summary == "the scenario does not fit its workflow"
    assert result.failure.details == (
        "/variables/caller: the workflow declares no variable 'caller'",
        "/steps/0/expect/node: the workflow has no node 'asc'",
        "/steps/0/expect/vars/orderid: the workflow declares no 'orderid'",
        "/steps/0/tools/http.fetch: there is no tool 'http.fetch'",
        "/steps/0/expect/tool: there is no tool 'http.fetch'",
    )


async def test_an_engine_crash_fails_the_scenario_with_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(self: Engine, *args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Engine, "handle_user_turn", crash)
    result = await run_one(scenario_file(tmp_path, "  - user: hi\n"))
    assert result.failure is not None
    assert result.failure.summary == "step 1: the engine raised RuntimeError: boom"
    assert "Traceback" in diff(result)


async def test_secrets_in_arguments_read_as_placeholders_never_the_vault(tmp_path: Path) -> None:
    workflow = SHOP.replace(
        "args: {method: GET,",
        "args: {method: GET, headers: {Authorization: 'Bearer {{ secrets.SHOP_TOKEN }}'},",
    )
    path = scenario_file(tmp_path, "  - user: '4417'\n", workflow=workflow)
    result = await run_one(path)
    assert result.failure is not None
    assert '"Authorization": "Bearer [secret SHOP_TOKEN]"' in diff(result)
