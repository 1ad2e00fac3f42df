"""Rooms for voice calls over LiveKit: create the room, dispatch the agent, mint the caller's token.

A call over LiveKit gets its own room, `voxflow-<call id>`. The agent joins it through an
explicit dispatch to the worker registered as `agent_name="voxflow"` (`voxflow worker`), whose
job metadata (`DispatchMetadata`) names the call; the caller joins with a short-lived token that
grants that one room and nothing else. LiveKit's server API (Twirp over HTTP) is reached with
`livekit-api`; its failures become one error, `LiveKitUnavailable` (502, or 503 when LiveKit
cannot be reached at all).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import aiohttp
import structlog
from livekit import api
from pydantic import BaseModel, ConfigDict

from voxflow.core.errors import Conflict, VoxflowError
from voxflow.core.settings import Settings

log = structlog.get_logger("voxflow.voice.livekit")
T = TypeVar("T")

AGENT_NAME = "voxflow"
ROOM_PREFIX = "voxflow-"
# Per request. At 5 s or more livekit-api retries a LiveKit Cloud host in other regions (up to
# 3 attempts); below that it would try once.
API_TIMEOUT_S = 5.0
# Seconds a new room waits for its first participant, and stays after the last one left.
ROOM_EMPTY_TIMEOUT_S = 120
ROOM_DEPARTURE_TIMEOUT_S = 20
# The caller and the agent, plus one: a participant that rejoins may briefly count twice.
ROOM_MAX_PARTICIPANTS = 3
NOT_CONFIGURED = "LiveKit is not configured: set LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET."


class LiveKitNotConfigured(Conflict):
    slug = "livekit-not-configured"

    def __init__(self) -> None:
        super().__init__(NOT_CONFIGURED)


class LiveKitUnavailable(VoxflowError):
    """LiveKit refused or failed a request (502), or could not be reached (503)."""

    status, slug = 502, "livekit-unavailable"

    def __init__(self, detail: str, *, status: int = 502) -> None:
        super().__init__(detail, headers={"Retry-After": "5"} if status == 503 else None)
        self.status = status


@dataclass(frozen=True)
class LiveKitConfig:
    url: str
    api_key: str
    api_secret: str
    token_ttl: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveKitConfig | None:
        """The configuration, or None unless URL, key and secret are all set."""
        secret = (
            settings.livekit_api_secret.get_secret_value() if settings.livekit_api_secret else ""
        )
        if not (settings.livekit_url and settings.livekit_api_key and secret):
            return None
        return cls(
            url=settings.livekit_url,
            api_key=settings.livekit_api_key,
            api_secret=secret,
            token_ttl=timedelta(seconds=settings.livekit_token_ttl_s),
        )

    @property
    def client_url(self) -> str:
        """The URL a participant connects to (WebSocket scheme)."""
        if self.url.startswith("http"):
            return "ws" + self.url.removeprefix("http")
        return self.url


def require_config(settings: Settings) -> LiveKitConfig:
    """The configuration; raises `LiveKitNotConfigured` (409) when it is incomplete."""
    config = LiveKitConfig.from_settings(settings)
    if config is None:
        raise LiveKitNotConfigured()
    return config


class DispatchMetadata(BaseModel):
    """What the agent worker is told about the call it is dispatched to (the job's metadata)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: str
    org_id: str
    agent_id: str
    version: int


@dataclass(frozen=True)
class CallRoom:
    """What the caller needs to join: the server, the room and its token."""

    url: str
    room: str
    token: str


def room_name(call_id: str) -> str:
    return f"{ROOM_PREFIX}{call_id}"


def caller_identity(call_id: str) -> str:
    return f"caller-{call_id}"


def caller_token(config: LiveKitConfig, room: str, identity: str) -> str:
    """A token that lets one participant join `room` (and no other), publish only a microphone,
    subscribe and send data; it cannot create, list or administer rooms."""
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_publish_sources=["microphone"],
        can_subscribe=True,
        can_publish_data=True,
    )
    return (
        api.AccessToken(config.api_key, config.api_secret)
        .with_identity(identity)
        .with_name("Caller")
        .with_kind("standard")
        .with_grants(grants)
        .with_ttl(config.token_ttl)
        .to_jwt()
    )


async def open_call_room(config: LiveKitConfig, metadata: DispatchMetadata) -> CallRoom:
    """Create the call's room and dispatch the agent to it; the caller's way in.

    Raises `LiveKitUnavailable`. A room created before the dispatch failed is deleted again.
    """
    room = room_name(metadata.session_id)
    async with _server_api(config) as lk:
        await _call(
            "create the room",
            config,
            lk.room.create_room(
                api.CreateRoomRequest(
                    name=room,
                    empty_timeout=ROOM_EMPTY_TIMEOUT_S,
                    departure_timeout=ROOM_DEPARTURE_TIMEOUT_S,
                    max_participants=ROOM_MAX_PARTICIPANTS,
                )
            ),
        )
        try:
            await _call(
                "dispatch the agent",
                config,
                lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=AGENT_NAME, room=room, metadata=metadata.model_dump_json()
                    )
                ),
            )
        except LiveKitUnavailable:
            await _delete_room(lk, room)
            raise
    log.info("livekit_room_opened", room=room, call_id=metadata.session_id)
    return CallRoom(
        url=config.client_url,
        room=room,
        token=caller_token(config, room, caller_identity(metadata.session_id)),
    )


async def transfer_sip_caller(config: LiveKitConfig, room: str, identity: str, target: str) -> None:
    """Hand the phone caller `identity` of `room` over to `target` (a SIP URI or tel: number).

    LiveKit sends the caller's SIP trunk a REFER; the caller leaves the room. Raises
    `LiveKitUnavailable` when LiveKit refuses or cannot be reached.
    """
    async with _server_api(config) as lk:
        await _call(
            "transfer the caller",
            config,
            lk.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=room, participant_identity=identity, transfer_to=target
                )
            ),
        )
    log.info("livekit_caller_transferred", room=room, target=target)


def _server_api(config: LiveKitConfig) -> api.LiveKitAPI:
    timeout = aiohttp.ClientTimeout(total=API_TIMEOUT_S)
    return api.LiveKitAPI(config.url, config.api_key, config.api_secret, timeout=timeout)


async def _call(what: str, config: LiveKitConfig, request: Awaitable[T]) -> T:
    try:
        return await request
    except api.ServerError as exc:
        log.warning("livekit_refused", action=what, code=exc.code, status=exc.status)
        hint = "; check LIVEKIT_API_KEY and LIVEKIT_API_SECRET" if exc.status in (401, 403) else ""
        said = f": {exc.message}" if exc.message else ""
        raise LiveKitUnavailable(
            f"LiveKit could not {what} (HTTP {exc.status}, {exc.code}{said}){hint}."
        ) from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("livekit_unreachable", action=what, error=type(exc).__name__)
        raise LiveKitUnavailable(
            f"LiveKit at {config.url} could not be reached to {what}; try again shortly.",
            status=503,
        ) from exc


async def _delete_room(lk: api.LiveKitAPI, room: str) -> None:
    with contextlib.suppress(api.ServerError, aiohttp.ClientError, TimeoutError, OSError):
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
