from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from voxflow.core.deps import NO_NUL
from voxflow.tools.network import check_http_url

EventType = Literal["call.started", "call.ended"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
DeliveryStatus = Literal["pending", "delivered", "failed"]
MAX_URL_LENGTH = 2048


def _distinct(events: list[EventType]) -> list[EventType]:
    return list(dict.fromkeys(events))


WebhookURL = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        pattern=NO_NUL,
        description="Where events are POSTed: an http(s) URL on a public address",
    ),
    AfterValidator(check_http_url),
]
EventList = Annotated[
    list[EventType],
    Field(min_length=1, max_length=10, description="Events to send: `call.started`, `call.ended`"),
    AfterValidator(_distinct),
]
Description = Annotated[str, Field(max_length=500, pattern=NO_NUL)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookURL
    events: EventList
    description: Description = ""


class WebhookUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookURL | None = None
    events: EventList | None = None
    description: Description | None = None


class WebhookOut(BaseModel):
    """An endpoint; its signing secret is never returned after creation (or rotation)."""

    id: str
    url: str
    events: list[EventType]
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="The signing secret (`whsec_…`), per the Standard Webhooks spec; shown "
        "only now: store it where your endpoint verifies signatures"
    )


class WebhookCreated(WebhookOut, WebhookSecret):
    pass


class DeliveryOut(BaseModel):
    """One event sent (or being sent) to the endpoint; `id` is its `webhook-id` header."""

    id: str
    event_type: EventType
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
