"""The Airtable tools of workflow `action` nodes: find, create and update records.

They act as the org's Airtable connection named in their `connection` argument: the token
comes from `ToolContext.connections`, and a token Airtable refuses is refreshed once, never
in a loop. Caller values reach a filter only through `match`, which escapes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from voxflow.integrations.airtable.client import AirtableClient, RecordUpdate, SortField
from voxflow.integrations.airtable.errors import AirtableUnauthorized
from voxflow.integrations.airtable.formula import all_of, match_conditions
from voxflow.tools.registry import Tool, ToolContext, ToolError, ToolSpec

PROVIDER = "airtable"
MAX_FORMULA_LENGTH = 4000
MAX_FIELDS = 200
# Filters travel in the URL, which Airtable caps at 16,000 characters; no answer a caller
# gives is longer than this.
MAX_MATCH_VALUE_LENGTH = 1000

_T = TypeVar("_T")


def _airtable_id(prefix: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) != 17 or not value.startswith(prefix) or not value.isascii():
            raise ValueError(f"an Airtable {what} id looks like {prefix}XXXXXXXXXXXXXX")
        if not value.isalnum():
            raise ValueError(f"an Airtable {what} id holds only letters and digits")
        return value

    return check


ConnectionName = Annotated[
    str, Field(min_length=1, max_length=200, description="Name of the org's Airtable connection.")
]
BaseId = Annotated[
    str,
    Field(description="Airtable base id (appXXXXXXXXXXXXXX, as in the base's URL)."),
    AfterValidator(_airtable_id("app", "base")),
]
RecordId = Annotated[
    str,
    Field(description="Airtable record id (recXXXXXXXXXXXXXX)."),
    AfterValidator(_airtable_id("rec", "record")),
]
TableName = Annotated[
    str, Field(min_length=1, max_length=255, description="Table name, or table id (tbl…).")
]
FieldName = Annotated[str, Field(min_length=1, max_length=255)]
MatchValue = Annotated[
    Annotated[str, Field(max_length=MAX_MATCH_VALUE_LENGTH)]
    | bool
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
    | None,
    Field(description="A value the field must equal; null matches an empty field."),
]


class _TableArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: ConnectionName
    base: BaseId
    table: TableName


class SortOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: FieldName
    direction: Literal["asc", "desc"] = "asc"


class FindRecordsArgs(_TableArgs):
    match: dict[FieldName, MatchValue] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FIELDS,
        description="Field → value the records must have (all of them); values are escaped, "
        "so caller answers belong here.",
    )
    formula: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_FORMULA_LENGTH,
        description="A fixed Airtable formula records must satisfy too; no templates.",
    )
    fields: list[FieldName] | None = Field(
        None, max_length=MAX_FIELDS, description="Fields to return (default: all)."
    )
    max_records: int = Field(10, ge=1, le=100, description="At most this many records.")
    sort: list[SortOrder] | None = Field(None, max_length=10, description="Order of records.")


class CreateRecordArgs(_TableArgs):
    fields: dict[FieldName, JsonValue] = Field(
        max_length=MAX_FIELDS, description="Field name → value of the new record."
    )
    typecast: bool = Field(
        False, description="Let Airtable convert values (text to dates, new select options)."
    )


class UpdateRecordArgs(_TableArgs):
    record_id: RecordId
    fields: dict[FieldName, JsonValue] = Field(
        max_length=MAX_FIELDS, description="Fields to change; the others keep their values."
    )
    typecast: bool = Field(
        False, description="Let Airtable convert values (text to dates, new select options)."
    )


FIND_RECORDS_SPEC = ToolSpec(
    name="airtable.find_records",
    description=(
        "Find records in an Airtable table. The result is {records: [{id, fields, "
        "created_time}], count}; no match is an empty list, not an error."
    ),
    args_model=FindRecordsArgs,
)
CREATE_RECORD_SPEC = ToolSpec(
    name="airtable.create_record",
    description="Add a record to an Airtable table. The result is {id, fields, created_time}.",
    args_model=CreateRecordArgs,
)
UPDATE_RECORD_SPEC = ToolSpec(
    name="airtable.update_record",
    description=(
        "Change some fields of an Airtable record. The result is the whole record, "
        "{id, fields, created_time}."
    ),
    args_model=UpdateRecordArgs,
)


class _AirtableTool:
    def __init__(self, client: AirtableClient) -> None:
        self._client = client

    async def aclose(self) -> None:
        await self._client.aclose()


class FindRecordsTool(_AirtableTool):
    spec: ToolSpec = FIND_RECORDS_SPEC

    async def call(self, args: FindRecordsArgs, context: ToolContext) -> JsonValue:
        conditions = match_conditions(args.match or {})
        if args.formula:
            conditions.append(args.formula)
        formula = all_of(*conditions) if conditions else None
        sort = [SortField(order.field, order.direction) for order in args.sort or ()]
        found = await as_connection(
            context,
            args.connection,
            lambda token: self._client.find_records(
                token,
                args.base,
                args.table,
                formula=formula,
                fields=args.fields,
                sort=sort,
                max_records=args.max_records,
            ),
        )
        records: list[JsonValue] = [record.as_json() for record in found]
        return {"records": records, "count": len(records)}


class CreateRecordTool(_AirtableTool):
    spec: ToolSpec = CREATE_RECORD_SPEC

    async def call(self, args: CreateRecordArgs, context: ToolContext) -> JsonValue:
        created = await as_connection(
            context,
            args.connection,
            lambda token: self._client.create_records(
                token, args.base, args.table, [args.fields], typecast=args.typecast
            ),
        )
        if not created:
            raise ToolError("Airtable did not return the record it created")
        return created[0].as_json()


class UpdateRecordTool(_AirtableTool):
    spec: ToolSpec = UPDATE_RECORD_SPEC

    async def call(self, args: UpdateRecordArgs, context: ToolContext) -> JsonValue:
        update = RecordUpdate(args.record_id, args.fields)
        updated = await as_connection(
            context,
            args.connection,
            lambda token: self._client.update_records(
                token, args.base, args.table, [update], typecast=args.typecast
            ),
        )
        if not updated:
            raise ToolError("Airtable did not return the record it updated")
        return updated[0].as_json()


def airtable_tools(client: AirtableClient | None = None) -> list[Tool[Any]]:
    """The three Airtable tools, sharing `client` (by default a new one for api.airtable.com)."""
    shared = client if client is not None else AirtableClient()
    return [FindRecordsTool(shared), CreateRecordTool(shared), UpdateRecordTool(shared)]


async def as_connection(
    context: ToolContext, connection: str, operation: Callable[[str], Awaitable[_T]]
) -> _T:
    """`operation(token)` with the connection's token; on a 401, once more with a fresh one."""
    tokens = context.connections
    if tokens is None:
        raise ToolError("Airtable tools need a connection: none is available to this call")
    token = await tokens.access_token(connection, provider=PROVIDER)
    try:
        return await operation(token)
    except AirtableUnauthorized:
        pass  # refreshed below, outside the handler, so a second failure is not chained to it
    fresh = await tokens.refresh_rejected(connection, provider=PROVIDER, rejected=token)
    try:
        return await operation(fresh)
    except AirtableUnauthorized:
        raise ToolError(
            f"Airtable refused the connection's token; reconnect Airtable "
            f"(connection {connection!r})"
        ) from None
