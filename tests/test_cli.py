"""The `voxflow` command line, run for real in subprocesses, against SQLite and PostgreSQL.

Each subprocess costs a couple of seconds (imports), so tests share what they can: one org
made by `orgs create` per backend, one export per backend for the round-trip tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from support import OrgHandle, make_settings, new_org
from voxflow.api.app import create_app
from voxflow.core.context import AppContext
from voxflow.core.migrations import upgrade
from voxflow.orgs.models import Organization
from voxflow.workflows.models import Workflow, WorkflowVersion

VOXFLOW = Path(sys.executable).with_name("voxflow")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT_S = 120


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def voxflow(cwd: Path, database_url: str, *args: str, stdin: str | None = None, **env: str) -> Ran:
    """Run the installed `voxflow` script with only our database in its environment."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("VOXFLOW_") and k != "FORCE_COLOR"
    }
    environment.update(VOXFLOW_DATABASE_URL=database_url, **env)
    done = subprocess.run(
        [str(VOXFLOW), *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def ok(ran: Ran) -> Ran:
    assert ran.code == 0, f"exit {ran.code}\nstdout:\n{ran.stdout}\nstderr:\n{ran.stderr}"
    return ran


# --- databases ---------------------------------------------------------------------------


def _pg_admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_execute(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_pg_admin_dsn(url), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


FreshDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def fresh_database(database_url: str, tmp_path: Path) -> AsyncIterator[FreshDatabase]:
    """Makes empty (unmigrated) databases of the same backend as `database_url`."""
    made: list[str] = []

    async def make() -> str:
        if database_url.startswith("sqlite"):
            url = f"sqlite+aiosqlite:///{tmp_path / f'fresh-{len(made)}.db'}"
        else:
            name = f"voxflow_cli_{uuid.uuid4().hex[:12]}"
            await _pg_execute(database_url, f'CREATE DATABASE "{name}"')
            url = database_url.rsplit("/", 1)[0] + f"/{name}"
        made.append(url)
        return url

    yield make
    for url in made:
        if url.startswith("postgresql"):
            name = url.rsplit("/", 1)[1]
            await _pg_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrated(fresh_database: FreshDatabase) -> str:
    url = await fresh_database()
    # Alembic's env runs its own event loop: keep it off the test's loop.
    await asyncio.to_thread(upgrade, url)
    return url


class Api:
    """The app built on one database, called in-process (no server)."""

    def __init__(self, database_url: str) -> None:
        self.app: FastAPI = create_app(make_settings(database_url))
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    @property
    def context(self) -> AppContext:
        context: AppContext = self.app.state.context
        return context

    async def close(self) -> None:
        await self.client.aclose()
        await self.context.close()


@pytest.fixture
async def api_for() -> AsyncIterator[Callable[[str], Api]]:
    opened: list[Api] = []

    def open_api(database_url: str) -> Api:
        opened.append(Api(database_url))
        return opened[-1]

    yield open_api
    for api in opened:
        await api.close()


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


def grab(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text`, which must be there."""
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"{pattern!r} not in:\n{text}"
    return found.group(1)


def new_email() -> str:
    return f"person-{uuid.uuid4().hex[:10]}@example.com"


# --- help, migrations ----------------------------------------------------------------------


def test_help_lists_every_command(tmp_path: Path) -> None:
    ran = ok(voxflow(tmp_path, "sqlite+aiosqlite:///unused.db", "--help"))
    # Command names sit one space after the panel border; descriptions are indented further.
    listed = set(re.findall(r"^\W (\w+) ", ran.stdout, re.MULTILINE))
    assert {"serve", "db", "orgs", "users", "export", "import", "demo"} <= listed, ran.stdout


@pytest.mark.slow
async def test_db_upgrade_then_current_is_at_head(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    url = await fresh_database()
    ok(voxflow(tmp_path, url, "db", "upgrade"))
    current = ok(voxflow(tmp_path, url, "db", "current")).stdout
    assert "(at head)" in current, current
    assert "(empty)" not in current


# --- orgs and users ------------------------------------------------------------------------


@dataclass(frozen=True)
class CliOrg:
    id: str
    api_key: str
    stdout: str


@pytest.fixture(scope="module")
def cli_org(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> CliOrg:
    """One org made by `voxflow orgs create --json`, with FORCE_COLOR set as some CIs do."""
    cwd = tmp_path_factory.mktemp("cli")
    ran = ok(voxflow(cwd, database_url, "orgs", "create", "acme", "--json", FORCE_COLOR="1"))
    lines = ran.stdout.splitlines()
    assert len(lines) == 1, ran.stdout
    created = json.loads(lines[0])
    assert set(created) == {"org_id", "api_key"}
    return CliOrg(id=created["org_id"], api_key=created["api_key"], stdout=ran.stdout)


async def test_orgs_create_json_prints_one_line_whose_key_works(
    cli_org: CliOrg, client: httpx.AsyncClient
) -> None:
    assert cli_org.stdout.count(cli_org.api_key) == 1
    me = await client.get("/v1/me", headers=bearer(cli_org.api_key))
    assert me.status_code == 200, me.text
    assert me.json()["org_id"] == cli_org.id
    assert me.json()["role"] == "owner"


async def test_users_create_with_password_on_stdin_can_log_in(
    cli_org: CliOrg, database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    email, password = new_email(), f"pw-{uuid.uuid4().hex}"
    ran = ok(
        voxflow(
            tmp_path,
            database_url,
            *("users", "create", email, "--org", cli_org.id, "--role", "admin"),
            "--password-stdin",
            stdin=password + "\n",
        )
    )
    assert password not in ran.output
    assert (await login(client, email, "wrong password")).status_code == 401
    me = await login(client, email, password)
    assert me.status_code == 200, me.text
    assert me.json()["org_id"] == cli_org.id
    assert me.json()["role"] == "admin"


async def test_users_create_without_tty_generates_a_password_shown_once(
    cli_org: CliOrg, database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    email = new_email()
    ran = ok(voxflow(tmp_path, database_url, "users", "create", email, "--org", cli_org.id))
    password = grab(r"^password: (\S+)$", ran.stdout)
    assert len(password) >= 12
    assert ran.output.count(password) == 1
    me = await login(client, email, password)
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "member"


def test_users_create_refuses_an_unknown_org(database_url: str, tmp_path: Path) -> None:
    ran = voxflow(
        tmp_path,
        database_url,
        *("users", "create", new_email(), "--org", "org_nope", "--password-stdin"),
        stdin="a password\n",
    )
    assert ran.code == 1
    assert "No organization org_nope" in ran.stderr


# --- demo ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_demo_runs_once_and_keeps_its_data(
    fresh_database: FreshDatabase, api_for: Callable[[str], Api], tmp_path: Path
) -> None:
    url = await migrated(fresh_database)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    first = ok(voxflow(tmp_path, url, "demo"))
    password = grab(r"password\s+(\S+)", first.stdout)
    api_key = grab(r"api key\s+(vf_\S+)", first.stdout)
    email = grab(r"login\s+(\S+@\S+)", first.stdout)
    for secret in (password, api_key):
        assert first.output.count(secret) == 1

    second = ok(voxflow(tmp_path, url, "demo"))
    assert second.stdout.strip() == ""
    assert password not in second.output
    assert api_key not in second.output

    api = api_for(url)
    async with api.context.sessionmaker() as session:
        orgs = (await session.execute(select(Organization.name))).scalars().all()
    assert orgs == ["demo"]
    headers = bearer(api_key)
    agents = (await api.client.get("/v1/agents", headers=headers)).json()["items"]
    assert [a["name"] for a in agents] == ["luigis"]
    workflow_id = agents[0]["workflow_id"]
    versions = await api.client.get(f"/v1/workflows/{workflow_id}/versions", headers=headers)
    assert [v["number"] for v in versions.json()["items"]] == [1]
    assert (await login(api.client, email, password)).status_code == 200


# --- export and import ---------------------------------------------------------------------


def _document(name: str, greeting: str) -> dict[str, Any]:
    return {
        "schema": "voxflow/v1",
        "name": name,
        "description": "Ünïcode and “quotes” survive the round trip — 🍝",
        "variables": {"party_size": {"type": "integer"}},
        "start": "greet",
        "nodes": [
            {"id": "greet", "type": "say", "text": greeting, "next": "ask"},
            {
                "id": "ask",
                "type": "collect",
                "variable": "party_size",
                "prompt": "For how many people?",
                "validate": "party_size >= 1",
                "next": "bye",
            },
            {"id": "bye", "type": "end", "text": "Ciao!"},
        ],
    }


@dataclass(frozen=True)
class Exported:
    org: OrgHandle
    path: Path
    data: dict[str, Any]


async def _publish_versions(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, versions: int
) -> str:
    created = await client.post("/v1/workflows", json=_document(name, "Hello v1"), headers=headers)
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["id"]
    etag = created.headers["etag"]
    for number in range(1, versions + 1):
        if number > 1:
            changed = _document(name, f"Hello v{number}")
            put = await client.put(
                f"/v1/workflows/{workflow_id}",
                json=changed,
                headers={**headers, "If-Match": etag},
            )
            assert put.status_code == 200, put.text
            etag = put.headers["etag"]
        published = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=headers)
        assert published.status_code == 201, published.text
    return workflow_id


@pytest.fixture(scope="module")
async def exported(
    database_url: str, app: FastAPI, tmp_path_factory: pytest.TempPathFactory
) -> Exported:
    """An org with workflows of several versions, one archived, one unpublished, exported."""
    org = await new_org(app.state.context, "export me")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        three = await _publish_versions(client, org.headers, "Three versions", 3)
        # A draft edited after the last publish must come back as the draft, not a version.
        got = await client.get(f"/v1/workflows/{three}", headers=org.headers)
        put = await client.put(
            f"/v1/workflows/{three}",
            json=_document("Three versions", "Unpublished edit"),
            headers={**org.headers, "If-Match": got.headers["etag"]},
        )
        assert put.status_code == 200, put.text
        archived = await _publish_versions(client, org.headers, "Archived", 2)
        deleted = await client.delete(f"/v1/workflows/{archived}", headers=org.headers)
        assert deleted.status_code == 204, deleted.text
        await _publish_versions(client, org.headers, "Never published", 0)

    cwd = tmp_path_factory.mktemp("export")
    path = cwd / "a.json"
    ok(voxflow(cwd, database_url, "export", str(path), "--org", org.id))
    data = json.loads(path.read_text(encoding="utf-8"))
    [exported_org] = data["orgs"]
    workflows = exported_org["workflows"]
    assert [len(w["versions"]) for w in workflows] == [3, 2, 0]
    assert [w["archived_at"] is not None for w in workflows] == [False, True, False]
    return Exported(org=org, path=path, data=data)


async def _counts(api: Api, org_id: str) -> tuple[int, int, int]:
    async with api.context.sessionmaker() as session:
        orgs = await session.scalar(
            select(func.count()).select_from(Organization).where(Organization.id == org_id)
        )
        workflows = await session.scalar(select(func.count()).select_from(Workflow))
        versions = await session.scalar(select(func.count()).select_from(WorkflowVersion))
    return orgs or 0, workflows or 0, versions or 0


@pytest.mark.slow
async def test_export_import_round_trips_byte_for_byte(
    exported: Exported,
    fresh_database: FreshDatabase,
    api_for: Callable[[str], Api],
    tmp_path: Path,
) -> None:
    url = await migrated(fresh_database)
    ran = ok(voxflow(tmp_path, url, "import", str(exported.path)))
    assert "imported 3 workflows and 5 versions" in ran.stderr
    ok(voxflow(tmp_path, url, "export", "b.json"))
    original = exported.path.read_bytes()
    assert (tmp_path / "b.json").read_bytes() == original

    # Importing the same file again changes nothing.
    again = ok(voxflow(tmp_path, url, "import", str(exported.path)))
    assert "imported 0 workflows and 0 versions" in again.stderr
    api = api_for(url)
    assert await _counts(api, exported.org.id) == (1, 3, 5)


@pytest.mark.slow
async def test_import_refuses_a_damaged_file_and_imports_nothing(
    exported: Exported,
    fresh_database: FreshDatabase,
    api_for: Callable[[str], Api],
    tmp_path: Path,
) -> None:
    url = await migrated(fresh_database)
    data = json.loads(json.dumps(exported.data))
    # Damage the last version of the second workflow: the first would import fine on its own.
    damaged_version = data["orgs"][0]["workflows"][1]["versions"][-1]
    damaged_version["document"]["nodes"][0]["text"] = "Tampered"
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")

    ran = voxflow(tmp_path, url, "import", str(damaged))
    assert ran.code != 0
    workflow_id = data["orgs"][0]["workflows"][1]["id"]
    assert f"Workflow {workflow_id} version 2 is damaged" in ran.stderr, ran.output
    assert "Traceback" not in ran.output

    api = api_for(url)
    assert await _counts(api, exported.org.id) == (0, 0, 0)
