"""What Airtable answers, checked on arrival, and the records, bases and tables it describes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from voxflow.tools.registry import ToolError


@dataclass(frozen=True)
class AirtableBase:
    id: str
    name: str
    permission_level: str


@dataclass(frozen=True)
class AirtableTable:
    id: str
    name: str


@dataclass(frozen=True)
class AirtableRecord:
    id: str
    fields: dict[str, JsonValue]
    created_time: str

    def as_json(self) -> dict[str, JsonValue]:
        return {"id": self.id, "fields": self.fields, "created_time": self.created_time}


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RecordPayload(Payload):
    id: str
    created_time: str = Field(alias="createdTime")
    fields: dict[str, JsonValue] = {}

    def as_record(self) -> AirtableRecord:
        return AirtableRecord(self.id, self.fields, self.created_time)


class RecordsPage(Payload):
    records: list[RecordPayload]
    offset: str | None = None


class BasePayload(Payload):
    id: str
    name: str
    permission_level: str = Field("", alias="permissionLevel")


class BasesPage(Payload):
    bases: list[BasePayload]
    offset: str | None = None


class TablePayload(Payload):
    id: str
    name: str


class TablesPage(Payload):
    tables: list[TablePayload]


_PageT = TypeVar("_PageT", bound=Payload)


def parse_payload(model: type[_PageT], payload: Any) -> _PageT:
    try:
        return model.model_validate(payload)
    except ValidationError:
        raise ToolError("Airtable sent a response Voxflow does not understand") from None
