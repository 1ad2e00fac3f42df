"""Checks of a workflow against what its org has connected (for validate and publish).

The DSL's linter knows the tools' argument schemas; only the org knows whether the Airtable
connection an action names exists and whether its base has the table. Lookups of tables are
kept a minute per org and base, and bounded in time: an unreachable Airtable makes the check
say "could not check", it never holds up a save.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from voxflow.core.context import AppContext
from voxflow.dsl.findings import Finding
from voxflow.dsl.schema import WorkflowDocument
from voxflow.integrations.airtable.client import AirtableClient
from voxflow.integrations.airtable.lint import airtable_findings
from voxflow.integrations.airtable.tools import PROVIDER as AIRTABLE
from voxflow.integrations.repository import ConnectionRepository
from voxflow.integrations.tokens import OrgConnections
from voxflow.tools.registry import ToolError

DocumentChecks = Callable[[WorkflowDocument], Awaitable[list[Finding]]]

_TABLES_TTL_S = 60.0
_LOOKUP_TIMEOUT_S = 5.0


def org_checks(context: AppContext, org_id: str) -> DocumentChecks:
    """The org-specific checks `voxflow.workflows.service.validate/publish` run."""

    async def check(document: WorkflowDocument) -> list[Finding]:
        return await airtable_findings(document, _AirtableLookup(context, org_id))

    return check


class _AirtableLookup:
    def __init__(self, context: AppContext, org_id: str) -> None:
        self.context = context
        self.org_id = org_id

    async def connection_status(self, name: str) -> str | None:
        async with self.context.read_sessionmaker() as session:
            row = await ConnectionRepository(session).get_by_name(self.org_id, name)
        return row.status if row is not None and row.provider == AIRTABLE else None

    async def table_names(self, connection: str, base: str) -> list[str] | None:
        tables: dict[tuple[str, str, str], tuple[float, list[str]]]
        tables = self.context.extras.setdefault("airtable_tables", {})
        key = (self.org_id, connection, base)
        cached = tables.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            async with asyncio.timeout(_LOOKUP_TIMEOUT_S):
                token = await OrgConnections(self.context, self.org_id).access_token(
                    connection, provider=AIRTABLE
                )
                found = await _client(self.context).list_tables(token, base)
        except (ToolError, TimeoutError):
            return None
        names = [table.name for table in found] + [table.id for table in found]
        if len(tables) > 1000:
            tables.clear()
        tables[key] = (time.monotonic() + _TABLES_TTL_S, names)
        return names


def _client(context: AppContext) -> AirtableClient:
    client: AirtableClient | None = context.extras.get("airtable_lint_client")
    if client is None:
        client = AirtableClient(max_attempts=1)
        context.extras["airtable_lint_client"] = client
    return client
