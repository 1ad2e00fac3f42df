"""The airtable.* workflow tools: tokens from the org's connection, escaped matches, results."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from voxflow.integrations.airtable.client import AirtableClient
from voxflow.integrations.airtable.tools import airtable_tools
from voxflow.tools import ToolContext, ToolError, ToolRegistry, default_registry

API = "https://airtable.test"
BASE = "appAAAAAAAAAAAAAA"
LEADS = f"/v0/{BASE}/Leads"
RECORD_ID = "rec00000000000042"
CONNECTION = "Sales CRM"
CREATED = "2026-03-02T10:00:00.000Z"


class FakeConnections:
    """The org's connections as tools see them: one token, and a fresh one after a refusal."""

    def __init__(self, *, known: bool = True) -> None:
        self.known = known
        self.asked: list[tuple[str, str]] = []
        self.rejected: list[str] = []

    async def access_token(self, connection: str, *, provider: str) -> str:
        self.asked.append((connection, provider))
        if not self.known:
            raise ToolError(f"no {provider} connection named {connection!r}")
        return "token-1"

    async def refresh_rejected(self, connection: str, *, provider: str, rejected: str) -> str:
        self.rejected.append(rejected)
        return f"token-{len(self.rejected) + 1}"


@pytest.fixture
async def registry() -> AsyncIterator[ToolRegistry]:
    async def no_wait(seconds: float) -> None:
        pass

    tools = ToolRegistry()
    for tool in airtable_tools(AirtableClient(base_url=API, sleep=no_wait)):
        tools.register(tool)
    yield tools
    await tools.aclose()  # each tool closes the shared client: closing twice is harmless


@pytest.fixture
def airtable() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


@pytest.fixture
def connections() -> FakeConnections:
    return FakeConnections()


@pytest.fixture
def context(connections: FakeConnections) -> ToolContext:
    return ToolContext(org_id="org_1", call_id="call_1", connections=connections)


def lead(**fields: object) -> dict[str, object]:
    return {"id": RECORD_ID, "createdTime": CREATED, "fields": fields}


def find_args(**extra: object) -> dict[str, object]:
    return {"connection": CONNECTION, "base": BASE, "table": "Leads", **extra}


async def test_the_default_registry_has_the_airtable_tools() -> None:
    tools = default_registry()
    try:
        names = set(tools.names())
    finally:
        await tools.aclose()
    assert {"airtable.find_records", "airtable.create_record", "airtable.update_record"} <= names


async def test_find_records_escapes_match_values_into_the_formula(
    registry: ToolRegistry,
    airtable: respx.MockRouter,
    context: ToolContext,
    connections: FakeConnections,
) -> None:
    route = airtable.get(LEADS).respond(json={"records": [lead(Name="Ana")]})
    result = await registry.call(
        "airtable.find_records",
        find_args(
            match={"Email": 'ana"), TRUE(), ("@x.com', "Guests": 4, "VIP": True},
            formula="{Status} != 'closed'",
            fields=["Name"],
            max_records=3,
            sort=[{"field": "Name"}],
        ),
        context,
    )
    assert result == {
        "records": [{"id": RECORD_ID, "fields": {"Name": "Ana"}, "created_time": CREATED}],
        "count": 1,
    }
    request = route.calls.last.request
    assert request.url.params["filterByFormula"] == (
        'AND({Email} = "ana\\"), TRUE(), (\\"@x.com", {Guests} = 4, {VIP} = TRUE(), '
        "{Status} != 'closed')"
    )
    assert request.url.params.get_list("fields[]") == ["Name"]
    assert request.url.params["maxRecords"] == "3"
    assert request.url.params["sort[0][direction]"] == "asc"
    assert request.headers["authorization"] == "Bearer token-1"
    assert connections.asked == [(CONNECTION, "airtable")]


async def test_find_records_without_conditions_sends_no_formula(
    registry: ToolRegistry, airtable: respx.MockRouter, context: ToolContext
) -> None:
    route = airtable.get(LEADS).respond(json={"records": []})
    result = await registry.call("airtable.find_records", find_args(), context)
    assert result == {"records": [], "count": 0}
    assert "filterByFormula" not in route.calls.last.request.url.params
    assert route.calls.last.request.url.params["maxRecords"] == "10"


async def test_create_record_posts_the_fields_and_returns_the_record(
    registry: ToolRegistry, airtable: respx.MockRouter, context: ToolContext
) -> None:
    route = airtable.post(LEADS).respond(json={"records": [lead(Name="Ana", Interest="demo")]})
    result = await registry.call(
        "airtable.create_record",
        find_args(fields={"Name": "Ana", "Interest": "demo"}, typecast=True),
        context,
    )
    assert result == {
        "id": RECORD_ID,
        "fields": {"Name": "Ana", "Interest": "demo"},
        "created_time": CREATED,
    }
    assert json.loads(route.calls.last.request.content) == {
        "records": [{"fields": {"Name": "Ana", "Interest": "demo"}}],
        "typecast": True,
    }


async def test_update_record_patches_only_the_given_fields(
    registry: ToolRegistry, airtable: respx.MockRouter, context: ToolContext
) -> None:
    route = airtable.patch(LEADS).respond(json={"records": [lead(Name="Ana", Status="called")]})
    result = await registry.call(
        "airtable.update_record",
        find_args(record_id=RECORD_ID, fields={"Status": "called"}),
        context,
    )
    assert isinstance(result, dict)
    assert result["fields"] == {"Name": "Ana", "Status": "called"}
    assert json.loads(route.calls.last.request.content) == {
        "records": [{"id": RECORD_ID, "fields": {"Status": "called"}}],
        "typecast": False,
    }


async def test_a_refused_token_is_refreshed_once_and_the_call_repeated(
    registry: ToolRegistry,
    airtable: respx.MockRouter,
    context: ToolContext,
    connections: FakeConnections,
) -> None:
    route = airtable.post(LEADS).mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json={"records": [lead()]})]
    )
    result = await registry.call("airtable.create_record", find_args(fields={}), context)
    assert isinstance(result, dict)
    assert result["id"] == RECORD_ID
    assert connections.rejected == ["token-1"]
    sent = [call.request.headers["authorization"] for call in route.calls]
    assert sent == ["Bearer token-1", "Bearer token-2"]


async def test_a_token_refused_twice_asks_for_reconnecting(
    registry: ToolRegistry,
    airtable: respx.MockRouter,
    context: ToolContext,
    connections: FakeConnections,
) -> None:
    route = airtable.get(LEADS).respond(401)
    with pytest.raises(ToolError) as caught:
        await registry.call("airtable.find_records", find_args(), context)
    assert caught.value.message == (
        "Airtable refused the connection's token; reconnect Airtable (connection 'Sales CRM')"
    )
    assert route.call_count == 2
    assert connections.rejected == ["token-1"]


async def test_without_connections_the_tools_refuse(
    registry: ToolRegistry, airtable: respx.MockRouter
) -> None:
    route = airtable.get(LEADS).respond(json={"records": []})
    with pytest.raises(ToolError) as caught:
        await registry.call("airtable.find_records", find_args(), ToolContext(org_id="org_1"))
    assert caught.value.message == (
        "Airtable tools need a connection: none is available to this call"
    )
    assert route.call_count == 0


async def test_an_unknown_connection_fails_before_any_request(
    registry: ToolRegistry, airtable: respx.MockRouter
) -> None:
    route = airtable.get(LEADS).respond(json={"records": []})
    context = ToolContext(connections=FakeConnections(known=False))
    with pytest.raises(ToolError, match="no airtable connection named 'Sales CRM'"):
        await registry.call("airtable.find_records", find_args(), context)
    assert route.call_count == 0


async def test_airtable_refusals_reach_the_workflow_as_tool_errors(
    registry: ToolRegistry, airtable: respx.MockRouter, context: ToolContext
) -> None:
    airtable.post(LEADS).respond(
        422,
        json={"error": {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "Emial"'}},
    )
    with pytest.raises(ToolError, match=r"table 'Leads'.*Unknown field name: \"Emial\""):
        await registry.call(
            "airtable.create_record", find_args(fields={"Emial": "ana@x.com"}), context
        )


@pytest.mark.parametrize(
    ("tool", "args", "problem"),
    [
        ("airtable.find_records", find_args(base="appShort"), "/base: an Airtable base id"),
        ("airtable.find_records", find_args(match={}), "/match: Dictionary should have"),
        ("airtable.find_records", find_args(max_records=101), "/max_records"),
        ("airtable.find_records", find_args(match={"A": [1]}), "/match/A"),
        ("airtable.find_records", find_args(sort=[{"field": "A", "direction": "up"}]), "/sort"),
        ("airtable.create_record", find_args(), "/fields: required argument is missing"),
        (
            "airtable.update_record",
            find_args(record_id="rec-1", fields={}),
            "/record_id: an Airtable record id",
        ),
        ("airtable.create_record", find_args(fields={}, base_id=BASE), "/base_id: unknown"),
    ],
)
async def test_invalid_arguments_are_refused_before_any_request(
    registry: ToolRegistry,
    airtable: respx.MockRouter,
    context: ToolContext,
    tool: str,
    args: dict[str, object],
    problem: str,
) -> None:
    with pytest.raises(ToolError, match="invalid arguments") as caught:
        await registry.call(tool, args, context)
    assert problem in caught.value.message
    assert not airtable.calls
