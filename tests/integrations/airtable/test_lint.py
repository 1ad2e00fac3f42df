"""Publish-time Airtable checks: connections, tables and formulas of `airtable.*` actions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from voxflow.dsl import Finding, WorkflowDocument, load_document
from voxflow.dsl.lint import lint
from voxflow.integrations.airtable.lint import airtable_findings
from voxflow.tools import ToolRegistry, default_registry

BASE = "appAAAAAAAAAAAAAA"
EXAMPLE = Path(__file__).parents[3] / "examples" / "lead_capture.yaml"


class FakeLookup:
    """An org with some Airtable connections, and the tables their bases hold."""

    def __init__(
        self,
        statuses: dict[str, str],
        tables: dict[tuple[str, str], list[str] | None] | None = None,
    ) -> None:
        self.statuses = statuses
        self.tables = tables or {}
        self.asked_status: list[str] = []
        self.asked_tables: list[tuple[str, str]] = []

    async def connection_status(self, name: str) -> str | None:
        self.asked_status.append(name)
        return self.statuses.get(name)

    async def table_names(self, connection: str, base: str) -> list[str] | None:
        self.asked_tables.append((connection, base))
        return self.tables.get((connection, base))


CRM = FakeLookup({"CRM": "active"}, {("CRM", BASE): ["Leads", "tblLEADSAAAAAAAAA"]})


def workflow(*actions: dict[str, Any]) -> WorkflowDocument:
    """A workflow calling each action in turn, then ending."""
    ids = [f"a{index}" for index in range(len(actions))]
    nodes: list[dict[str, Any]] = [
        {"id": node_id, "type": "action", "next": following, **action}
        for node_id, following, action in zip(ids, [*ids[1:], "bye"], actions, strict=True)
    ]
    nodes.append({"id": "bye", "type": "end"})
    return WorkflowDocument.model_validate(
        {"schema": "voxflow/v1", "name": "t", "start": ids[0], "nodes": nodes}
    )


def find(**args: Any) -> dict[str, Any]:
    defaults = {"connection": "CRM", "base": BASE, "table": "Leads"}
    return {"tool": "airtable.find_records", "args": {**defaults, **args}}


def codes(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(finding.severity, finding.code, finding.pointer) for finding in findings]


async def test_known_connection_and_table_have_no_findings() -> None:
    document = workflow(find(), find(table="tblLEADSAAAAAAAAA"))
    assert await airtable_findings(document, CRM) == []


async def test_an_unknown_connection_is_an_error() -> None:
    found = await airtable_findings(workflow(find(connection="Sales")), CRM)
    assert codes(found) == [("error", "unknown_connection", "/nodes/0/args/connection")]
    assert "no Airtable connection named 'Sales'" in found[0].message


async def test_a_connection_needing_reauth_is_a_warning_and_tables_are_not_asked() -> None:
    lookup = FakeLookup({"CRM": "needs_reauth"})
    found = await airtable_findings(workflow(find()), lookup)
    assert codes(found) == [("warning", "connection_needs_reauth", "/nodes/0/args/connection")]
    assert "reconnected" in found[0].message
    assert lookup.asked_tables == []


async def test_an_unknown_table_is_an_error_listing_the_tables() -> None:
    found = await airtable_findings(workflow(find(), find(table="Laeds")), CRM)
    assert codes(found) == [("error", "unknown_table", "/nodes/1/args/table")]
    assert found[0].message == (
        f"base {BASE} has no table 'Laeds' (tables: 'Leads', 'tblLEADSAAAAAAAAA')"
    )


async def test_tables_that_cannot_be_listed_are_not_reported() -> None:
    lookup = FakeLookup({"CRM": "active"}, {("CRM", BASE): None})
    assert await airtable_findings(workflow(find(table="Anything")), lookup) == []


async def test_a_templated_formula_is_an_error() -> None:
    document = workflow(find(formula="{Email} = '{{ email }}'"), find(formula="{Done} = 1"))
    found = await airtable_findings(document, CRM)
    assert codes(found) == [("error", "templated_formula", "/nodes/0/args/formula")]
    assert "put caller values in `match`, which escapes them" in found[0].message


async def test_templated_values_are_not_looked_up() -> None:
    lookup = FakeLookup({})
    document = workflow(find(connection="{{ which }}", table="{% if x %}A{% endif %}"))
    assert await airtable_findings(document, lookup) == []
    assert lookup.asked_status == []
    assert lookup.asked_tables == []


async def test_each_connection_and_base_is_asked_about_once() -> None:
    lookup = FakeLookup({"CRM": "active"}, {("CRM", BASE): ["Leads"]})
    create = {
        "tool": "airtable.create_record",
        "args": {"connection": "CRM", "base": BASE, "table": "Leads", "fields": {}},
    }
    await airtable_findings(workflow(find(), create, find()), lookup)
    assert (lookup.asked_status, lookup.asked_tables) == (["CRM"], [("CRM", BASE)])


async def test_other_tools_are_left_alone() -> None:
    lookup = FakeLookup({})
    http = {"tool": "http.request", "args": {"url": "https://x.example", "connection": "CRM"}}
    assert await airtable_findings(workflow(http), lookup) == []
    assert lookup.asked_status == []


@pytest.fixture
async def registry() -> AsyncIterator[ToolRegistry]:
    tools = default_registry()
    yield tools
    await tools.aclose()


async def test_the_lead_capture_example_lints_clean(registry: ToolRegistry) -> None:
    document = load_document(EXAMPLE.read_bytes(), "application/yaml")
    lookup = FakeLookup(
        {"Sales CRM": "active"}, {("Sales CRM", "appVoxflowLeads01"): ["Leads", "Deals"]}
    )
    assert lint(document, registry) == []
    assert await airtable_findings(document, lookup) == []
