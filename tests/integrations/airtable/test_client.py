"""AirtableClient against Airtable's API as respx plays it: retries, errors, batches, pages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from voxflow.integrations.airtable.client import AirtableClient, RecordUpdate, SortField
from voxflow.integrations.airtable.errors import AirtableUnauthorized
from voxflow.tools import ToolError

API = "https://airtable.test"
BASE = "appAAAAAAAAAAAAAA"
OTHER_BASE = "appBBBBBBBBBBBBBB"
TOKEN = "tok-1"
LEADS = f"/v0/{BASE}/Leads"


class RecordedSleeps:
    """Stands in for asyncio.sleep: notes how long the client wanted to wait, waits not."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
async def client(sleeps: RecordedSleeps) -> AsyncIterator[AirtableClient]:
    airtable = AirtableClient(base_url=API, sleep=sleeps, timeout_s=0.5)
    yield airtable
    await airtable.aclose()


@pytest.fixture
def airtable() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


def record(number: int, **fields: object) -> dict[str, object]:
    return {
        "id": f"rec{number:014d}",
        "createdTime": "2026-03-02T10:00:00.000Z",
        "fields": fields or {"Name": f"Lead {number}"},
    }


def echo_records(request: httpx.Request) -> httpx.Response:
    """Airtable's answer to a create or update: the records, with ids and times."""
    sent = json.loads(request.content)["records"]
    return httpx.Response(
        200,
        json={
            "records": [
                {
                    "id": item.get("id", f"rec{index:014d}"),
                    "createdTime": "2026-03-02T10:00:00.000Z",
                    "fields": item["fields"],
                }
                for index, item in enumerate(sent)
            ]
        },
    )


def airtable_error(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


# --- waiting and retrying ------------------------------------------------------------------


async def test_429_waits_as_retry_after_asks_then_succeeds(
    client: AirtableClient, airtable: respx.MockRouter, sleeps: RecordedSleeps
) -> None:
    route = airtable.get(LEADS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json={"records": [record(1)]}),
        ]
    )
    found = await client.find_records(TOKEN, BASE, "Leads")
    assert [found_record.id for found_record in found] == ["rec00000000000001"]
    assert route.call_count == 2
    assert sleeps.waits == [7.0]


async def test_429_without_retry_after_waits_30_seconds(
    client: AirtableClient, airtable: respx.MockRouter, sleeps: RecordedSleeps
) -> None:
    airtable.post(LEADS).mock(side_effect=[httpx.Response(429), echo_records])
    created = await client.create_records(TOKEN, BASE, "Leads", [{"Name": "Ana"}])
    assert created[0].fields == {"Name": "Ana"}
    assert sleeps.waits == [30.0]


async def test_429_gives_up_after_three_attempts(
    client: AirtableClient, airtable: respx.MockRouter, sleeps: RecordedSleeps
) -> None:
    route = airtable.get(LEADS).respond(429)
    with pytest.raises(ToolError, match="rate limiting requests to table 'Leads'") as caught:
        await client.find_records(TOKEN, BASE, "Leads")
    assert caught.value.retryable
    assert route.call_count == 3
    assert sleeps.waits == [30.0, 30.0]


async def test_server_errors_are_retried_with_growing_waits(
    client: AirtableClient, airtable: respx.MockRouter, sleeps: RecordedSleeps
) -> None:
    route = airtable.get(LEADS).mock(
        side_effect=[
            httpx.Response(502),
            httpx.Response(500),
            httpx.Response(200, json={"records": []}),
        ]
    )
    assert await client.find_records(TOKEN, BASE, "Leads") == []
    assert route.call_count == 3
    assert len(sleeps.waits) == 2
    assert 0 < sleeps.waits[0] < sleeps.waits[1] <= 4


async def test_server_errors_give_up_with_a_retryable_error(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.patch(LEADS).respond(500)
    update = RecordUpdate("rec00000000000001", {"Status": "called"})
    with pytest.raises(ToolError, match=r"Airtable failed \(500\)") as caught:
        await client.update_records(TOKEN, BASE, "Leads", [update])
    assert caught.value.retryable
    assert route.call_count == 3


async def test_network_failures_are_retried(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.get(LEADS).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={"records": []})]
    )
    assert await client.find_records(TOKEN, BASE, "Leads") == []
    assert route.call_count == 2


async def test_a_slow_answer_times_out_and_is_retried(airtable: respx.MockRouter) -> None:
    started: list[httpx.Request] = []

    async def never_answers(request: httpx.Request) -> httpx.Response:
        started.append(request)
        await asyncio.sleep(60)
        raise AssertionError("the timeout should have cut this short")

    impatient = AirtableClient(base_url=API, sleep=RecordedSleeps(), timeout_s=0.01)
    airtable.get(LEADS).mock(side_effect=never_answers)
    with pytest.raises(ToolError, match=r"did not answer within 0\.01 s") as caught:
        await impatient.find_records(TOKEN, BASE, "Leads")
    assert caught.value.retryable
    assert len(started) == 3
    await impatient.aclose()


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500), httpx.Response(504), httpx.ReadTimeout("slow"), httpx.ReadError("x")],
)
async def test_a_create_that_may_have_happened_is_not_repeated(
    client: AirtableClient, airtable: respx.MockRouter, failure: httpx.Response | Exception
) -> None:
    route = airtable.post(LEADS).mock(side_effect=[failure, echo_records])
    with pytest.raises(ToolError) as caught:
        await client.create_records(TOKEN, BASE, "Leads", [{"Name": "Ana"}])
    assert not caught.value.retryable
    assert route.call_count == 1


@pytest.mark.parametrize("failure", [httpx.Response(503), httpx.ConnectError("refused")])
async def test_a_create_that_cannot_have_happened_is_repeated(
    client: AirtableClient, airtable: respx.MockRouter, failure: httpx.Response | Exception
) -> None:
    route = airtable.post(LEADS).mock(side_effect=[failure, echo_records])
    created = await client.create_records(TOKEN, BASE, "Leads", [{"Name": "Ana"}])
    assert [item.fields for item in created] == [{"Name": "Ana"}]
    assert route.call_count == 2


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            422,
            {"error": {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "Emial"'}},
            "table 'Leads' of base appAAAAAAAAAAAAAA: no such field: Unknown field name: \"Emial\"",
        ),
        (
            422,
            {
                "error": {
                    "type": "INVALID_VALUE_FOR_COLUMN",
                    "message": 'Field "Guests" cannot accept the provided value',
                }
            },
            "table 'Leads' of base appAAAAAAAAAAAAAA: a value does not fit its field: "
            'Field "Guests" cannot accept the provided value',
        ),
        (
            403,
            {"error": {"type": "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "message": "..."}},
            "Airtable found no table 'Leads' of base appAAAAAAAAAAAAAA, or the connection may "
            "not use it",
        ),
        (404, {"error": "NOT_FOUND"}, "Airtable found no table 'Leads'"),
        (400, {"error": {"type": "WEIRD"}}, r"Leads' of base appAAAAAAAAAAAAAA: request refused"),
        (400, "not json", r"request refused \(400\)"),
    ],
)
async def test_refusals_say_what_is_wrong_where(
    client: AirtableClient,
    airtable: respx.MockRouter,
    status: int,
    body: object,
    expected: str,
) -> None:
    route = airtable.post(LEADS).respond(status, json=body)
    with pytest.raises(ToolError, match=expected) as caught:
        await client.create_records(TOKEN, BASE, "Leads", [{"Emial": "ana@example.com"}])
    assert not caught.value.retryable
    assert route.call_count == 1


async def test_401_is_its_own_error_and_not_retried(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.get(LEADS).respond(401, json={"error": {"type": "AUTHENTICATION_REQUIRED"}})
    with pytest.raises(AirtableUnauthorized):
        await client.find_records(TOKEN, BASE, "Leads")
    assert route.call_count == 1


async def test_an_unexpected_answer_is_an_error(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    airtable.get(LEADS).respond(json={"rows": []})
    with pytest.raises(ToolError, match="does not understand"):
        await client.find_records(TOKEN, BASE, "Leads")


# --- batches and pages ---------------------------------------------------------------------


async def test_23_new_records_go_out_in_batches_of_10_10_and_3(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.post(LEADS).mock(side_effect=echo_records)
    new = [{"Name": f"Lead {number}"} for number in range(23)]
    created = await client.create_records(TOKEN, BASE, "Leads", new, typecast=True)
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert [len(body["records"]) for body in bodies] == [10, 10, 3]
    assert all(body["typecast"] is True for body in bodies)
    assert [item for body in bodies for item in body["records"]] == [
        {"fields": fields} for fields in new
    ]
    assert [item.fields for item in created] == new


async def test_23_updates_go_out_in_batches_of_10_10_and_3(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.patch(LEADS).mock(side_effect=echo_records)
    updates = [RecordUpdate(f"rec{n:014d}", {"Status": "called"}) for n in range(23)]
    updated = await client.update_records(TOKEN, BASE, "Leads", updates)
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert [len(body["records"]) for body in bodies] == [10, 10, 3]
    assert bodies[2] == {
        "records": [{"id": f"rec{n:014d}", "fields": {"Status": "called"}} for n in range(20, 23)],
        "typecast": False,
    }
    assert [item.id for item in updated] == [update.id for update in updates]


async def test_a_failed_batch_says_how_many_were_saved_before_it(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    invalid = {"error": {"type": "INVALID_VALUE_FOR_COLUMN", "message": "bad"}}
    airtable.post(LEADS).mock(side_effect=[echo_records, airtable_error(422, invalid)])
    new = [{"Name": f"Lead {number}"} for number in range(15)]
    with pytest.raises(ToolError, match=r"\(10 of 15 records were saved first\)"):
        await client.create_records(TOKEN, BASE, "Leads", new)


async def test_pages_are_followed_until_airtable_has_no_more(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.get(LEADS).mock(
        side_effect=[
            httpx.Response(200, json={"records": [record(1), record(2)], "offset": "page2"}),
            httpx.Response(200, json={"records": [record(3)], "offset": "page3"}),
            httpx.Response(200, json={"records": [record(4)]}),
        ]
    )
    found = await client.find_records(TOKEN, BASE, "Leads", max_records=50)
    assert [item.id[-1] for item in found] == ["1", "2", "3", "4"]
    offsets = [call.request.url.params.get("offset") for call in route.calls]
    assert offsets == [None, "page2", "page3"]


async def test_paging_stops_at_max_records(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.get(LEADS).respond(json={"records": [record(1), record(2)], "offset": "more"})
    found = await client.find_records(TOKEN, BASE, "Leads", max_records=2)
    assert len(found) == 2
    assert route.call_count == 1


async def test_the_query_carries_formula_fields_sort_and_limits(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.get(LEADS).respond(json={"records": []})
    await client.find_records(
        TOKEN,
        BASE,
        "Leads",
        formula='{Email} = "ana@example.com"',
        fields=["Name", "Email"],
        sort=[SortField("Created", "desc"), SortField("Name")],
        max_records=5,
    )
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert list(request.url.params.multi_items()) == [
        ("maxRecords", "5"),
        ("pageSize", "5"),
        ("filterByFormula", '{Email} = "ana@example.com"'),
        ("fields[]", "Name"),
        ("fields[]", "Email"),
        ("sort[0][field]", "Created"),
        ("sort[0][direction]", "desc"),
        ("sort[1][field]", "Name"),
        ("sort[1][direction]", "asc"),
    ]


async def test_table_names_stay_one_path_segment(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    route = airtable.get(url__regex=r".*").respond(json={"records": []})
    await client.find_records(TOKEN, BASE, "Leads/2026 & co?#1")
    assert route.calls.last.request.url.raw_path == (
        f"/v0/{BASE}/Leads%2F2026%20%26%20co%3F%231?maxRecords=100&pageSize=100".encode()
    )


async def test_bases_and_tables_are_listed(
    client: AirtableClient, airtable: respx.MockRouter
) -> None:
    airtable.get("/v0/meta/bases").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "bases": [{"id": BASE, "name": "CRM", "permissionLevel": "create"}],
                    "offset": "next",
                },
            ),
            httpx.Response(200, json={"bases": [{"id": OTHER_BASE, "name": "Ops"}]}),
        ]
    )
    airtable.get(f"/v0/meta/bases/{BASE}/tables").respond(
        json={"tables": [{"id": "tblAAAAAAAAAAAAAA", "name": "Leads", "fields": []}]}
    )
    bases = await client.list_bases(TOKEN)
    tables = await client.list_tables(TOKEN, BASE)
    assert [(base.id, base.name, base.permission_level) for base in bases] == [
        (BASE, "CRM", "create"),
        (OTHER_BASE, "Ops", ""),
    ]
    assert [(table.id, table.name) for table in tables] == [("tblAAAAAAAAAAAAAA", "Leads")]
