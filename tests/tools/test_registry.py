"""The tool registry: registration, lint-time argument checks with pointers, and calls."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, JsonValue

from voxflow.tools import (
    ArgProblem,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolSpec,
    default_registry,
)


class EchoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    times: int = 1
    loud: bool = False
    tags: list[str] = []
    options: dict[str, int] = {}


class EchoTool:
    spec = ToolSpec(name="test.echo", description="Repeats text.", args_model=EchoArgs)

    async def call(self, args: EchoArgs, context: ToolContext) -> JsonValue:
        text = args.text.upper() if args.loud else args.text
        return {"echo": [text] * args.times}


class BrokenTool:
    spec = ToolSpec(name="test.broken", description="Has a bug.", args_model=EchoArgs)

    async def call(self, args: EchoArgs, context: ToolContext) -> JsonValue:
        raise RuntimeError("database password is hunter2")


@pytest.fixture
def registry() -> ToolRegistry:
    tools = ToolRegistry()
    tools.register(EchoTool())
    tools.register(BrokenTool())
    return tools


def test_register_get_and_names(registry: ToolRegistry) -> None:
    assert registry.names() == ["test.broken", "test.echo"]
    tool = registry.get("test.echo")
    assert tool is not None
    assert tool.spec.name == "test.echo"
    assert registry.get("test.nope") is None


def test_duplicate_names_are_refused(registry: ToolRegistry) -> None:
    with pytest.raises(ValueError, match=r"'test\.echo' is already registered"):
        registry.register(EchoTool())


def test_default_registry_has_http_request() -> None:
    tools = default_registry()
    assert tools.names() == [
        "airtable.create_record",
        "airtable.find_records",
        "airtable.update_record",
        "http.request",
    ]
    tool = tools.get("http.request")
    assert tool is not None
    schema = tool.spec.json_schema()
    assert schema["required"] == ["url"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"method", "url", "headers", "json", "timeout_s"}


def test_valid_args_have_no_problems(registry: ToolRegistry) -> None:
    assert registry.check_args("test.echo", {"text": "hi", "times": 2, "tags": ["a"]}) == []


def test_check_args_points_at_each_problem(registry: ToolRegistry) -> None:
    problems = registry.check_args(
        "test.echo",
        {"times": "often", "tags": ["a", 3], "options": {"x/y": "z"}, "colour": "red"},
    )
    assert problems == [
        ArgProblem("/text", "required argument is missing"),
        ArgProblem(
            "/times", "Input should be a valid integer, unable to parse string as an integer"
        ),
        ArgProblem("/tags/1", "Input should be a valid string"),
        ArgProblem(
            "/options/x~1y", "Input should be a valid integer, unable to parse string as an integer"
        ),
        ArgProblem("/colour", "unknown argument"),
    ]


def test_check_args_of_an_unknown_tool_is_a_key_error(registry: ToolRegistry) -> None:
    with pytest.raises(KeyError, match=r"test\.nope"):
        registry.check_args("test.nope", {})


TEMPLATED = {
    "text": "{{ caller_name }}",
    "times": "{{ count }}",
    "loud": "{% if vip %}true{% else %}false{% endif %}",
    "tags": ["{{ tag }}"],
    "options": {"size": "{{ size }}"},
}


def test_templates_stand_in_for_strings_and_scalars_when_templated(
    registry: ToolRegistry,
) -> None:
    assert registry.check_args("test.echo", TEMPLATED, templated=True) == []


def test_templates_are_checked_as_values_without_the_flag(registry: ToolRegistry) -> None:
    pointers = [problem.pointer for problem in registry.check_args("test.echo", TEMPLATED)]
    assert pointers == ["/times", "/loud", "/options/size"]


def test_templated_checks_still_check_structure(registry: ToolRegistry) -> None:
    problems = registry.check_args(
        "test.echo",
        {"times": "{{ n }}", "tags": "{{ tags }}", "loud": "yes please", "extra": "{{ x }}"},
        templated=True,
    )
    assert problems == [
        ArgProblem("/text", "required argument is missing"),
        # A template renders to a string, never to a list.
        ArgProblem("/loud", "Input should be a valid boolean, unable to interpret input"),
        ArgProblem("/tags", "Input should be a valid list"),
        ArgProblem("/extra", "unknown argument"),
    ]


def test_http_request_arguments_are_linted() -> None:
    tools = default_registry()
    problems = tools.check_args(
        "http.request",
        {
            "method": "FETCH",
            "url": "file:///etc/passwd",
            "headers": {"X Key": "a", "Host": "evil", "X-Ok": "line\r\nbreak", "X-Num": 5},
            "timeout_s": 60,
        },
    )
    assert problems == [
        ArgProblem("/method", "Input should be 'GET', 'POST', 'PUT', 'PATCH' or 'DELETE'"),
        ArgProblem("/url", "only http and https URLs are allowed"),
        ArgProblem("/headers/X Key", "not a valid header name"),
        ArgProblem("/headers/Host", "the Host header is set by the HTTP client"),
        ArgProblem("/headers/X-Ok", "header values may only hold printable ASCII characters"),
        ArgProblem("/headers/X-Num", "Input should be a valid string"),
        ArgProblem("/timeout_s", "Input should be less than or equal to 10"),
    ]


@pytest.mark.parametrize(
    ("args", "pointer", "message"),
    [
        ({}, "/url", "required argument is missing"),
        (
            {"url": "https://x.test/" + "a" * 2048},
            "/url",
            "String should have at most 2048 characters",
        ),
        ({"url": "/relative"}, "/url", "only http and https URLs are allowed"),
        (
            {"url": "https://x.test/", "json": {"a": 1}},
            "/json",
            "a GET request cannot have a JSON body",
        ),
        (
            {"url": "https://x.test/", "timeout_s": 0},
            "/timeout_s",
            "Input should be greater than 0",
        ),
        (
            {"url": "https://x.test/", "headers": {f"X-{i}": "v" for i in range(51)}},
            "/headers",
            "Dictionary should have at most 50 items after validation, not more",
        ),
    ],
)
def test_http_request_limits(args: dict[str, Any], pointer: str, message: str) -> None:
    assert default_registry().check_args("http.request", args) == [ArgProblem(pointer, message)]


def test_http_request_accepts_templates_when_templated() -> None:
    args = {
        "method": "{{ verb }}",
        "url": "{{ api_base }}/orders/{{ order_id }}",
        "headers": {"Authorization": "Bearer {{ secrets.token }}"},
        "json": {"id": "{{ order_id }}"},
        "timeout_s": "{{ timeout }}",
    }
    tools = default_registry()
    assert tools.check_args("http.request", args, templated=True) == []
    assert [problem.pointer for problem in tools.check_args("http.request", args)] == [
        "/method",
        "/url",
        "/timeout_s",
    ]


async def test_call_validates_then_calls(registry: ToolRegistry) -> None:
    result = await registry.call("test.echo", {"text": "hi", "times": "2", "loud": True})
    assert result == {"echo": ["HI", "HI"]}


async def test_call_with_invalid_args_is_a_tool_error(registry: ToolRegistry) -> None:
    with pytest.raises(ToolError) as caught:
        await registry.call("test.echo", {"times": "x", "secret": "hunter2"})
    assert caught.value.message == (
        "invalid arguments for test.echo: /text: required argument is missing; "
        "/times: Input should be a valid integer, unable to parse string as an integer; "
        "/secret: unknown argument"
    )
    assert "hunter2" not in caught.value.message
    assert not caught.value.retryable


async def test_call_of_an_unknown_tool_is_a_tool_error(registry: ToolRegistry) -> None:
    with pytest.raises(ToolError, match=r"unknown tool 'test\.nope'"):
        await registry.call("test.nope", {})


async def test_an_unexpected_failure_becomes_a_neutral_tool_error(registry: ToolRegistry) -> None:
    with pytest.raises(ToolError) as caught:
        await registry.call("test.broken", {"text": "hi"})
    assert caught.value.message == "test.broken failed unexpectedly"
    assert isinstance(caught.value.__cause__, RuntimeError)
