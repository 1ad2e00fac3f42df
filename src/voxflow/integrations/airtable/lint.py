"""Publish-time checks of a workflow's Airtable actions against the org's real connections.

`voxflow.dsl.lint` checks arguments against the tools' schemas without looking anything up;
these checks ask the org (through `AirtableLookup`) whether the named connection exists and
works and whether its base has the named table. Templated values are known only at run time
and are not checked, except a templated `formula`, which is refused: caller values in a
formula could rewrite it, while `match` escapes them.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from voxflow.dsl.findings import Finding, json_pointer
from voxflow.dsl.schema import ActionNode, WorkflowDocument
from voxflow.tools.registry import is_template

TOOL_PREFIX = "airtable."
MAX_TABLES_LISTED = 10


class AirtableLookup(Protocol):
    """What the Airtable checks need to know about one org."""

    async def connection_status(self, name: str) -> str | None:
        """The status ("active", "needs_reauth", …) of the org's Airtable connection `name`;
        None when the org has no Airtable connection of that name."""
        ...

    async def table_names(self, connection: str, base: str) -> list[str] | None:
        """Names and ids of the tables of `base` as `connection` sees them; None when that
        cannot be known now (Airtable unreachable, token refused)."""
        ...


async def airtable_findings(document: WorkflowDocument, lookup: AirtableLookup) -> list[Finding]:
    """Findings for every `airtable.*` action node, in document order."""
    checker = _Checker(lookup)
    findings: list[Finding] = []
    for index, node in enumerate(document.nodes):
        if isinstance(node, ActionNode) and node.tool.startswith(TOOL_PREFIX):
            findings += await checker.node(index, node)
    return findings


class _Checker:
    """Asks about each connection and each base once, however many nodes use them."""

    def __init__(self, lookup: AirtableLookup) -> None:
        self._lookup = lookup
        self._statuses: dict[str, str | None] = {}
        self._tables: dict[tuple[str, str], list[str] | None] = {}

    async def node(self, index: int, node: ActionNode) -> list[Finding]:
        found: list[Finding] = []
        connection = _fixed_string(node.args.get("connection"))
        status = None if connection is None else await self._status(connection)
        if connection is not None and status is None:
            found.append(
                _finding(
                    "error",
                    "unknown_connection",
                    f"the org has no Airtable connection named {connection!r}; connect "
                    "Airtable under Integrations or fix the name",
                    index,
                    "connection",
                )
            )
        elif connection is not None and status == "needs_reauth":
            found.append(
                _finding(
                    "warning",
                    "connection_needs_reauth",
                    f"the Airtable connection {connection!r} must be reconnected before calls "
                    "can use it",
                    index,
                    "connection",
                )
            )
        base = _fixed_string(node.args.get("base"))
        table = _fixed_string(node.args.get("table"))
        # Tables are listed with the connection's token: only a working one can tell.
        if connection is not None and status == "active" and base and table:
            tables = await self._table_names(connection, base)
            if tables is not None and table not in tables:
                found.append(
                    _finding(
                        "error",
                        "unknown_table",
                        f"base {base} has no table {table!r} ({_listed(tables)})",
                        index,
                        "table",
                    )
                )
        if is_template(node.args.get("formula")):
            found.append(
                _finding(
                    "error",
                    "templated_formula",
                    "a formula cannot hold templates, since a caller's words would become "
                    "part of it; put caller values in `match`, which escapes them",
                    index,
                    "formula",
                )
            )
        return found

    async def _status(self, connection: str) -> str | None:
        if connection not in self._statuses:
            self._statuses[connection] = await self._lookup.connection_status(connection)
        return self._statuses[connection]

    async def _table_names(self, connection: str, base: str) -> list[str] | None:
        key = (connection, base)
        if key not in self._tables:
            self._tables[key] = await self._lookup.table_names(connection, base)
        return self._tables[key]


def _fixed_string(value: Any) -> str | None:
    """The value when it is a string known now (no template), else None."""
    return value if isinstance(value, str) and not is_template(value) else None


def _listed(tables: list[str]) -> str:
    if not tables:
        return "it has no tables"
    shown = ", ".join(repr(name) for name in tables[:MAX_TABLES_LISTED])
    more = len(tables) - MAX_TABLES_LISTED
    return f"tables: {shown}" + (f" and {more} more" if more > 0 else "")


def _finding(
    severity: Literal["error", "warning"], code: str, message: str, index: int, argument: str
) -> Finding:
    return Finding(
        severity=severity,
        code=code,
        message=message,
        pointer=json_pointer("nodes", index, "args", argument),
    )
