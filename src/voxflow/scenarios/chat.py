"""The body of `voxflow chat`: talk to a workflow in the terminal, turn by turn.

The agent's lines are printed as they come, with the engine's other events dimmed under them
(node changes, variables set, tool calls), so an author sees why the agent said what it said.
Lines are read from standard input, interactively or piped; the call ends when the workflow
ends it, or as `abandoned` at end of input (the caller hung up).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import JsonValue
from rich.console import Console
from rich.markup import escape
from sqlalchemy import or_, select

from voxflow.core.settings import Settings
from voxflow.dsl.compile import CompiledVersion
from voxflow.dsl.lint import ToolCatalog
from voxflow.engine.events import End, Event, RuntimeIssue, Say
from voxflow.engine.interpreter import Engine, Tools
from voxflow.providers.llm.base import LLM
from voxflow.scenarios.report import describe_event
from voxflow.scenarios.runner import WorkflowUnusable, prepare_workflow

if TYPE_CHECKING:
    from voxflow.runtime import LoadedAgent

# Returns the caller's next line, or None at the end of input.
ReadLine = Callable[[], str | None]

# Everything else the engine reports is dimmed: the agent's lines stand out.
_STYLES: dict[type[Event], str] = {End: "bold", RuntimeIssue: "yellow"}


class ChatProblem(Exception):
    """The chat cannot start; the message is one line for `fail()`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def compile_file(path: Path, catalog: ToolCatalog) -> CompiledVersion:
    """A workflow file, linted as `voxflow test` does, compiled."""
    try:
        return prepare_workflow(path, catalog)
    except WorkflowUnusable as exc:
        first = exc.failure.details[0] if exc.failure.details else ""
        more = len(exc.failure.details) - 1
        suffix = f" (and {more} more)" if more > 0 else ""
        raise ChatProblem(f"{exc.failure.summary}: {first}{suffix}".rstrip(": ")) from None


def load_agent(settings: Settings, name: str, org_id: str | None) -> LoadedAgent:
    """What a new session of the agent (by name or id) runs, as the runtime loader resolves it:
    pinned, latest or canary version, with the agent's overrides. Raises ChatProblem, and
    VoxflowError / database errors for the caller to report."""
    return asyncio.run(_load_agent(settings, name, org_id))


async def _load_agent(settings: Settings, name: str, org_id: str | None) -> LoadedAgent:
    from voxflow.agents.models import Agent
    from voxflow.core.context import AppContext
    from voxflow.runtime import RuntimeLoader

    context = AppContext.create(settings)
    try:
        query = select(Agent.org_id, Agent.id).where(
            Agent.deleted_at.is_(None), or_(Agent.id == name, Agent.name == name)
        )
        if org_id is not None:
            query = query.where(Agent.org_id == org_id)
        async with context.read_sessionmaker() as session:
            found = (await session.execute(query)).all()
        if not found:
            raise ChatProblem(f"no agent {name}" + (f" in org {org_id}" if org_id else ""))
        if len(found) > 1:
            orgs = ", ".join(sorted(row.org_id for row in found))
            raise ChatProblem(f"agents named {name} exist in several orgs ({orgs}): add --org", 2)
        loader = RuntimeLoader(context)
        try:
            # A fresh session key: like a new caller, the chat may land on the agent's canary.
            return await loader.load_agent(found[0].org_id, found[0].id, uuid.uuid4().hex)
        finally:
            await loader.close()
    finally:
        await context.close()


def parse_variables(pairs: list[str]) -> dict[str, JsonValue]:
    """`NAME=VALUE` pairs; a VALUE that is JSON (4, true, "x", {...}) is taken as such."""
    values: dict[str, JsonValue] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ChatProblem(f"--var {pair!r}: write NAME=VALUE", 2)
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values


def stdin_reader(console: Console) -> ReadLine:
    """Prompt on a terminal; when piped, read quietly and echo each line into the transcript."""
    interactive = sys.stdin.isatty()

    def read() -> str | None:
        if interactive:
            try:
                return console.input("[bold]you:[/] ")
            except EOFError:
                return None
        line = sys.stdin.readline()
        if not line:
            return None
        console.print(f"[bold]you:[/] {escape(line.rstrip())}", highlight=False, soft_wrap=True)
        return line

    return read


def run_chat(
    version: CompiledVersion,
    variables: Mapping[str, JsonValue],
    *,
    llm: LLM | None,
    tools: Tools,
    out: Console,
    read_line: ReadLine,
) -> str:
    """Talk until the call ends or input does; returns the call's outcome. Closes `tools`
    and `llm` at the end (they hold connection pools bound to this chat's event loop)."""
    engine = Engine(version, llm=llm, tools=tools)
    with asyncio.Runner() as runner:
        try:
            try:
                state, events = runner.run(engine.start(dict(variables)))
            except ValueError as exc:
                raise ChatProblem(str(exc), 2) from None
            _show(out, events)
            while not state.ended:
                try:
                    line = read_line()
                    if line is not None and line.strip():
                        _show(out, runner.run(engine.handle_user_turn(state, line)))
                except KeyboardInterrupt:
                    line = None
                if line is None:
                    _show(out, engine.end(state, "abandoned", "the caller hung up"))
        finally:
            runner.run(_close(tools, llm))
    return state.outcome or "abandoned"


def _show(out: Console, events: list[Event]) -> None:
    for event in events:
        if isinstance(event, Say):
            out.print(f"[bold cyan]agent:[/] {escape(event.text)}", highlight=False, soft_wrap=True)
            continue
        text = describe_event(event)
        if text is None:
            continue
        style = _STYLES.get(type(event), "dim")
        indent = "" if isinstance(event, End) else "  "
        out.print(f"[{style}]{indent}{escape(text)}[/]", highlight=False, soft_wrap=True)


async def _close(*resources: object) -> None:
    """Release what the tools and the model hold (HTTP pools), on the loop that opened them."""
    for resource in resources:
        aclose = getattr(resource, "aclose", None)
        if aclose is not None:
            await aclose()
