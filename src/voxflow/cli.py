"""The `voxflow` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import JsonValue
from rich.console import Console
from rich.markup import escape
from sqlalchemy import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.core.context import AppContext
from voxflow.core.errors import VoxflowError
from voxflow.core.settings import Settings, SettingsError, load_settings
from voxflow.vault.cli import secrets_app

if TYPE_CHECKING:
    from voxflow.runtime import LoadedAgent

app = typer.Typer(
    help="Voxflow: voice AI agents as versioned workflows.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
users_app = typer.Typer(help="People who log in.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(users_app, name="users")
app.add_typer(secrets_app, name="secrets")

console = Console(stderr=True)
out = Console()
T = TypeVar("T")


class RoleChoice(StrEnum):
    owner = "owner"
    admin = "admin"
    member = "member"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one unwrapped error line (values may contain rich markup) and return the exit."""
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work in a transaction against the configured database."""

    async def main() -> T:
        context = AppContext.create(_settings())
        try:
            async with context.sessionmaker() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await context.close()

    try:
        return asyncio.run(main())
    except VoxflowError as exc:
        raise fail(exc.detail) from None
    except DB_UNREACHABLE as exc:
        raise _unreachable(exc) from None


# What a driver raises when the server is down, refuses us or the file cannot be opened.
DB_UNREACHABLE = (OperationalError, InterfaceError, OSError)


def _unreachable(exc: Exception) -> typer.Exit:
    url = make_url(_settings().database_url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return fail(f"cannot use the database at {url}: {reason}")


def _require_migrated(settings: Settings) -> None:
    from voxflow.core.db import create_engine
    from voxflow.core.migrations import is_at_head

    async def check() -> bool:
        engine = create_engine(settings.database_url)
        try:
            return await is_at_head(engine)
        finally:
            await engine.dispose()

    try:
        at_head = asyncio.run(check())
    except DB_UNREACHABLE as exc:
        raise _unreachable(exc) from None
    if not at_head:
        raise fail("the database is behind the code; run: voxflow db upgrade")


def _require_vault(settings: Settings) -> None:
    """Refuse to start without the key to the stored secrets (one line, no traceback)."""
    from voxflow.vault.vault import VaultUnavailable, open_vault

    async def check() -> None:
        context = AppContext.create(settings)
        try:
            await open_vault(context)
        finally:
            await context.close()

    try:
        asyncio.run(check())
    except VaultUnavailable as exc:
        raise fail(f"cannot open the vault: {exc}") from None
    except DB_UNREACHABLE as exc:
        raise _unreachable(exc) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Serve the API (and, later, the UI and local voice) on http://HOST:PORT."""
    import uvicorn

    settings = _settings()
    _require_migrated(settings)
    _require_vault(settings)
    console.print(f"Voxflow on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "voxflow.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=None if reload else workers,
        log_config=None,
        # Our middleware logs every request; uvicorn's access log would only repeat it.
        access_log=False,
        proxy_headers=True,
        # Session streams take small JSON messages; refuse bigger frames before reading them.
        ws_max_size=64 * 1024,
    )


@app.command()
def worker(
    capacity: Annotated[
        int, typer.Option(min=1, help="Calls at once; LiveKit sends no more beyond")
    ] = 4,
    drain_timeout: Annotated[
        int, typer.Option(min=0, help="Seconds to let calls finish after SIGTERM")
    ] = 900,
    health_port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Port of the worker's health check (0: any free)"),
    ] = 8081,
) -> None:
    """Serve voice calls over LiveKit (explicit dispatch to agent "voxflow")."""
    from voxflow.voice.livekit_api import NOT_CONFIGURED, LiveKitConfig
    from voxflow.voice.worker import build_server, run_worker

    settings = _settings()
    config = LiveKitConfig.from_settings(settings)
    if config is None:
        raise fail(NOT_CONFIGURED, 2)
    _require_migrated(settings)
    _require_vault(settings)
    console.print(f"Voxflow worker for {config.url}  (up to {capacity} calls)")
    server = build_server(
        settings, config, capacity=capacity, drain_timeout=drain_timeout, health_port=health_port
    )
    run_worker(server)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from voxflow.core.migrations import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    console.print("database is up to date")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision and the code's head."""
    from voxflow.core.db import create_engine
    from voxflow.core.migrations import current_revision, head_revision

    settings = _settings()

    async def current() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    revision, head = asyncio.run(current()), head_revision()
    state = "at head" if revision == head else "behind: run voxflow db upgrade"
    out.print(f"current: {revision or '(empty)'}  head: {head}  ({state})")


@orgs_app.command("create")
def orgs_create(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line for scripts")] = False,
) -> None:
    """Create an organization and print its id and a first API key (shown once)."""
    from voxflow.orgs.service import create_org

    async def work(session: AsyncSession) -> tuple[str, str]:
        new = await create_org(session, name)
        return new.org.id, new.api_key.key

    org_id, key = _run(work)
    if as_json:
        # Plain text, never rich: FORCE_COLOR would put ANSI codes into a line scripts parse.
        sys.stdout.write(json.dumps({"org_id": org_id, "api_key": key}) + "\n")
        return
    out.print(f"org id:  {org_id}\napi key: {key}")
    console.print("The API key is shown only now: store it.")


def _read_password(password_stdin: bool) -> tuple[str, bool]:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise fail("no password on standard input", 2)
        return password, False
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True), False
    from voxflow.orgs.tokens import generate_password

    return generate_password(), True


@users_app.command("create")
def users_create(
    email: str,
    org: Annotated[str, typer.Option("--org", help="Organization id")],
    role: Annotated[RoleChoice, typer.Option(help="Role in the org")] = RoleChoice.member,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add a person to an org (created if new). Without a password one is generated and shown."""
    from email_validator import EmailNotValidError, validate_email

    from voxflow.orgs.models import Role
    from voxflow.orgs.service import create_user

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise fail(f"EMAIL: {exc}", 2) from None
    password, generated = _read_password(password_stdin)

    async def work(session: AsyncSession) -> str:
        user = await create_user(session, email, password, org_id=org, role=Role(role.value))
        return user.id

    user_id = _run(work)
    out.print(f"user id: {user_id}")
    if generated:
        out.print(f"password: {password}")
        console.print("The password is shown only now.")


@app.command("export")
def export_cmd(
    file: Annotated[Path, typer.Argument(help="Where to write the JSON export ('-' for stdout)")],
    org: Annotated[str | None, typer.Option("--org", help="Only this org")] = None,
) -> None:
    """Export workflows with all their versions."""
    from voxflow.workflows.transfer import export_orgs

    data = _run(lambda session: export_orgs(session, org))
    text = data.model_dump_json(indent=2) + "\n"
    if str(file) == "-":
        sys.stdout.write(text)
    else:
        file.write_text(text, encoding="utf-8")
        count = sum(len(o.workflows) for o in data.orgs)
        console.print(f"exported {count} workflows to {file}")


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A file written by voxflow export")],
) -> None:
    """Import workflows with their versions (creates the orgs they belong to if missing)."""
    from pydantic import ValidationError

    from voxflow.workflows.transfer import ExportFile, import_orgs

    try:
        data = ExportFile.model_validate_json(file.read_bytes())
    except (OSError, ValidationError) as exc:
        raise fail(f"{file}: {str(exc).splitlines()[0]}", 2) from None
    workflows, versions = _run(lambda session: import_orgs(session, data))
    console.print(f"imported {workflows} workflows and {versions} versions")


@app.command()
def demo(
    example: Annotated[Path, typer.Option(help="Workflow to publish")] = Path(
        "examples/luigis.yaml"
    ),
) -> None:
    """Load the demo org, owner, API key and Luigi's agent, once. Prints secrets only then."""
    from voxflow.demo import load_demo

    example_yaml = example.read_bytes()
    created = _run(lambda session: load_demo(session, example_yaml))
    if created is None:
        return
    out.print(
        "\n[bold]Demo content created[/] (shown once, store it):\n"
        f"  org id    {created.org_id}\n"
        f"  login     {created.email}\n"
        f"  password  {created.password}\n"
        f"  api key   {created.api_key}\n"
        f"  agent     luigis ({created.agent_id})\n"
        f"  workflow  {created.workflow_id}\n"
    )


@app.command("test")
def scenarios_test(
    paths: Annotated[
        list[Path],
        typer.Argument(exists=True, metavar="PATH", help="Scenario files, or folders to search"),
    ],
    junit: Annotated[Path | None, typer.Option(help="Also write a JUnit XML report")] = None,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Conversations use the configured model")
    ] = False,
) -> None:
    """Run *.scenario.yaml files against their workflows; exit 1 if any failed."""
    from voxflow.scenarios.cli import UsageProblem, run_tests

    try:
        code = run_tests(paths, junit=junit, use_llm=llm, settings=_settings(), out=out)
    except UsageProblem as exc:
        raise fail(str(exc), 2) from None
    raise typer.Exit(code)


@app.command()
def chat(
    file: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, metavar="FILE", help="Workflow YAML or JSON"),
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Agent name or id, from the database")] = None,
    org: Annotated[str | None, typer.Option(help="The agent's org id, if names clash")] = None,
    var: Annotated[list[str] | None, typer.Option(help="Initial variable NAME=VALUE")] = None,
    llm: Annotated[bool, typer.Option("--llm/--no-llm", help="Use the configured model")] = False,
) -> None:
    """Talk to a workflow FILE or a deployed --agent in the terminal (offline unless --llm)."""
    from voxflow.scenarios import chat as chats
    from voxflow.scenarios.cli import configured_llm
    from voxflow.tools import default_registry

    settings = _settings()
    if (file is None) == (agent is None):
        raise fail("give either a workflow FILE or --agent NAME", 2)
    if llm and settings.llm_model is None:
        raise fail("--llm needs a model: set VOXFLOW_LLM_MODEL (and VOXFLOW_LLM_BASE_URL)", 2)
    tools = default_registry(allow_private_networks=settings.tools_allow_private_networks)
    variables: dict[str, JsonValue] = {}
    try:
        if file is not None:
            version = chats.compile_file(file, tools)
        else:
            loaded = _load_agent(settings, agent or "", org)
            version, variables = loaded.compiled, loaded.variables
            console.print(f"[dim]agent {escape(loaded.name)}, version {loaded.version_number}[/]")
        variables.update(chats.parse_variables(var or []))
        model = configured_llm(settings) if llm else None
        reader = chats.stdin_reader(out)
        chats.run_chat(version, variables, llm=model, tools=tools, out=out, read_line=reader)
    except chats.ChatProblem as exc:
        raise fail(str(exc), exc.code) from None


def _load_agent(settings: Settings, agent: str, org: str | None) -> LoadedAgent:
    from voxflow.scenarios.chat import load_agent

    try:
        return load_agent(settings, agent, org)
    except VoxflowError as exc:
        raise fail(exc.detail) from None
    except DB_UNREACHABLE as exc:
        raise _unreachable(exc) from None


def main() -> None:
    app()
