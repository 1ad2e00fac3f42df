"""The tools a workflow's `action` nodes may call, with their argument schemas.

The engine checks `action` arguments at lint time (`check_args`) and calls tools at run time
(`call`). Every failure a workflow can meet at run time is a `ToolError`, whose message is safe
to show the workflow author and to log; the engine routes it to the node's `on_error`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import structlog
from pydantic import BaseModel, JsonValue, ValidationError
from pydantic_core import ErrorDetails

from voxflow.dsl import json_pointer
from voxflow.tools.network import IPNetwork

_log = structlog.get_logger(__name__)

ArgsT = TypeVar("ArgsT", bound=BaseModel, contravariant=True)

TEMPLATE_MARKERS = ("{{", "{%")

# Errors kept even when the input is a template: a template renders to a string, so it can
# stand for a string or a scalar parsed from one, never for an object or a list; and an
# unknown argument is wrong whatever its value.
_STRUCTURE_ERRORS = frozenset(
    {
        "extra_forbidden",
        "dict_type",
        "list_type",
        "tuple_type",
        "set_type",
        "frozen_set_type",
        "iterable_type",
        "mapping_type",
        "model_type",
        "model_attributes_type",
        "dataclass_type",
    }
)
_FRIENDLY_MESSAGES = {
    "missing": "required argument is missing",
    "extra_forbidden": "unknown argument",
}


class ToolError(Exception):
    """A failed tool call. The message is safe to show and log (no secrets, no internals)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class ToolSpec:
    name: str  # dotted, e.g. "http.request"
    description: str
    args_model: type[BaseModel]  # extra="forbid", so a misspelt argument is a lint finding

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of the arguments, for lint messages, the editor and LLM function specs."""
        return self.args_model.model_json_schema()


class ConnectionTokens(Protocol):
    """Access tokens of the org's OAuth connections (`voxflow.integrations`), for tools."""

    async def access_token(self, connection: str, *, provider: str) -> str:
        """A usable access token of connection `connection` (by name), refreshed first if it
        is about to expire; raises ToolError naming what to do (unknown, needs reconnecting)."""
        ...

    async def refresh_rejected(self, connection: str, *, provider: str, rejected: str) -> str:
        """The provider answered 401 to `rejected`: a new token, refreshed at most once per
        rejected token; raises ToolError when refreshing cannot help (so a tool never loops)."""
        ...


@dataclass(frozen=True)
class ToolContext:
    """Whom a tool call runs for: the org and the call, and what it may use on their behalf."""

    org_id: str | None = None
    call_id: str | None = None
    connections: ConnectionTokens | None = None


NO_CONTEXT = ToolContext()


class Tool(Protocol[ArgsT]):
    """A callable tool. `call` receives its arguments already validated by `spec.args_model`."""

    spec: ToolSpec

    async def call(self, args: ArgsT, context: ToolContext) -> JsonValue: ...


@dataclass(frozen=True)
class ArgProblem:
    pointer: str  # RFC 6901, relative to the args object: "/headers/X-Key"; "" is the object
    message: str


def is_template(value: object) -> bool:
    return isinstance(value, str) and any(marker in value for marker in TEMPLATE_MARKERS)


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool[Any]] = {}

    def register(self, tool: Tool[Any]) -> None:
        name = tool.spec.name
        if name in self._tools:
            raise ValueError(f"a tool named {name!r} is already registered")
        self._tools[name] = tool

    def get(self, name: str) -> Tool[Any] | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def check_args(
        self, name: str, args: Mapping[str, Any], *, templated: bool = False
    ) -> list[ArgProblem]:
        """Problems with `args` for tool `name`; raises KeyError for an unknown tool.

        With `templated`, a string holding a Jinja2 template ("{{ order_id }}") is accepted
        wherever a string or scalar goes, since its value is only known at run time; the
        structure (required, unknown and non-templated arguments) is still checked.
        """
        tool = self._tools.get(name)
        if tool is None:
            raise KeyError(f"unknown tool {name!r}")
        try:
            tool.spec.args_model.model_validate(_plain(args))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if templated:
                errors = [error for error in errors if not _stands_for_template(error)]
            return [_problem(error, args) for error in errors]
        return []

    async def call(
        self, name: str, args: Mapping[str, Any], context: ToolContext = NO_CONTEXT
    ) -> JsonValue:
        """Validate `args` (all templates rendered by now) and call the tool."""
        tool = self._tools.get(name)
        if tool is None:
            raise ToolError(f"unknown tool {name!r}")
        try:
            validated = tool.spec.args_model.model_validate(_plain(args))
        except ValidationError as exc:
            problems = [_problem(error, args) for error in exc.errors(include_url=False)]
            listed = "; ".join(
                f"{problem.pointer or '/'}: {problem.message}" for problem in problems
            )
            raise ToolError(f"invalid arguments for {name}: {listed}") from None
        try:
            return await tool.call(validated, context)
        except ToolError:
            raise
        except Exception as exc:
            # A bug in a tool must not take the call down with it; the workflow gets a neutral
            # message and the details go to the log.
            _log.exception("tool_failed", tool=name)
            raise ToolError(f"{name} failed unexpectedly") from exc

    async def aclose(self) -> None:
        """Release what the tools hold (HTTP connection pools)."""
        for tool in self._tools.values():
            aclose = getattr(tool, "aclose", None)
            if aclose is not None:
                await aclose()

    def bind(self, context: ToolContext) -> BoundTools:
        """The registry as one call's engine uses it: every call runs for `context`."""
        return BoundTools(self, context)


class BoundTools:
    """A registry bound to one call's `ToolContext` (what `Engine(tools=…)` takes)."""

    def __init__(self, registry: ToolRegistry, context: ToolContext) -> None:
        self.registry = registry
        self.context = context

    def names(self) -> list[str]:
        return self.registry.names()

    async def call(self, name: str, args: Mapping[str, Any]) -> JsonValue:
        return await self.registry.call(name, args, self.context)


def default_registry(
    *, allow_private_networks: bool = False, allowed_networks: Sequence[IPNetwork] = ()
) -> ToolRegistry:
    """A registry with the builtin tools (http.request, airtable.*).

    `allow_private_networks` lifts the SSRF guard of http.request entirely (on-prem
    deployments, tests); `allowed_networks` lifts it for the listed networks only. The
    Airtable tools only ever call api.airtable.com, so the guard does not concern them.
    """
    # Imported here: the builtins import this module for ToolError and ToolSpec.
    from voxflow.integrations.airtable.tools import airtable_tools
    from voxflow.tools.http import HttpRequestTool

    registry = ToolRegistry()
    registry.register(
        HttpRequestTool(
            allow_private_networks=allow_private_networks, allowed_networks=allowed_networks
        )
    )
    for tool in airtable_tools():
        registry.register(tool)
    return registry


def _plain(args: Mapping[str, Any]) -> Any:
    # pydantic validates models from dicts; a YAML document may hand us another Mapping.
    return dict(args) if isinstance(args, Mapping) else args


def _stands_for_template(error: ErrorDetails) -> bool:
    return is_template(error["input"]) and error["type"] not in _STRUCTURE_ERRORS


def _problem(error: ErrorDetails, args: Any) -> ArgProblem:
    message = _FRIENDLY_MESSAGES.get(error["type"], error["msg"])
    if error["type"] == "value_error":  # our validators' own words, without pydantic's prefix
        message = message.removeprefix("Value error, ")
    return ArgProblem(pointer=_pointer(error, args), message=message)


def _pointer(error: ErrorDetails, args: Any) -> str:
    """A JSON pointer into `args` from a pydantic error location.

    pydantic's locations mix real keys with names of union branches ("str", "function-after[…]")
    and markers ("[key]" for a bad dict key), so follow the location through the data and keep
    only the steps that exist there — plus the last step of a missing field.
    """
    location = error["loc"]
    parts: list[str | int] = []
    current = args
    for index, step in enumerate(location):
        if _holds(current, step):
            current = current[step]
        elif not (error["type"] == "missing" and index == len(location) - 1):
            continue
        parts.append(step)
    return json_pointer(*parts)


def _holds(container: Any, step: str | int) -> bool:
    if isinstance(container, Mapping):
        return step in container
    return isinstance(container, list) and isinstance(step, int) and 0 <= step < len(container)
