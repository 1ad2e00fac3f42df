"""A fake of LiveKit's server API (Twirp) on 127.0.0.1, answering as LiveKit does.

livekit-api POSTs protobuf (`Content-Type: application/protobuf`) to
`/twirp/livekit.<Service>/<Method>` with `Authorization: Bearer <JWT>` signed (HS256) with the
API secret, issuer the API key; answers are protobuf, errors JSON `{"code", "msg"}`. The fake
checks the signature and the grants each method needs, as the server does, and records every
request it accepted or refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from google.protobuf.message import Message
from livekit import api

# Method → (request type, response type, the video grant it needs).
METHODS: dict[str, tuple[type[Message], type[Message], str]] = {
    "RoomService/CreateRoom": (api.CreateRoomRequest, api.Room, "roomCreate"),
    "RoomService/DeleteRoom": (api.DeleteRoomRequest, api.DeleteRoomResponse, "roomCreate"),
    "AgentDispatchService/CreateDispatch": (
        api.CreateAgentDispatchRequest,
        api.AgentDispatch,
        "roomAdmin",
    ),
    "SIP/TransferSIPParticipant": (
        api.TransferSIPParticipantRequest,
        api.TransferSIPParticipantResponse,
        "roomAdmin",
    ),
}


@dataclass
class Recorded:
    method: str
    claims: dict[str, Any]
    request: Any  # the decoded protobuf message
    refused: str | None = None  # the Twirp error code it was answered with


@dataclass
class Failure:
    status: int
    code: str
    msg: str


@dataclass
class FakeLiveKit:
    api_key: str
    api_secret: str
    requests: list[Recorded] = field(default_factory=list)
    # Method → the error to answer it with.
    failures: dict[str, Failure] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.refused is None]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/twirp/livekit.{service}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = f"{request.match_info['service']}/{request.match_info['method']}"
        if method not in METHODS:
            return _error(404, "bad_route", f"no handler for {method}")
        if request.content_type != "application/protobuf":
            return _error(400, "malformed", "this fake speaks protobuf, as livekit-api does")
        request_type, _, grant = METHODS[method]
        message = request_type.FromString(await request.read())
        try:
            claims = jwt.decode(
                request.headers.get("Authorization", "").removeprefix("Bearer "),
                self.api_secret,
                algorithms=["HS256"],
                issuer=self.api_key,
                options={"require": ["exp", "iss"]},
            )
        except jwt.InvalidTokenError as exc:
            self.requests.append(Recorded(method, {}, message, "unauthenticated"))
            return _error(401, "unauthenticated", f"invalid token: {exc}")
        video = claims.get("video", {})
        room = getattr(message, "room", None) or getattr(message, "room_name", None)
        if not video.get(grant) or (grant == "roomAdmin" and video.get("room") != room):
            self.requests.append(Recorded(method, claims, message, "permission_denied"))
            return _error(403, "permission_denied", "permissions denied")
        failure = self.failures.get(method)
        if failure is not None:
            self.requests.append(Recorded(method, claims, message, failure.code))
            return _error(failure.status, failure.code, failure.msg)
        self.requests.append(Recorded(method, claims, message))
        return web.Response(
            body=_answer(message).SerializeToString(), content_type="application/protobuf"
        )


def _answer(message: Message) -> Message:
    if isinstance(message, api.CreateRoomRequest):
        return api.Room(
            sid="RM_fake",
            name=message.name,
            empty_timeout=message.empty_timeout,
            departure_timeout=message.departure_timeout,
            max_participants=message.max_participants,
            metadata=message.metadata,
        )
    if isinstance(message, api.CreateAgentDispatchRequest):
        return api.AgentDispatch(
            id="AD_fake",
            agent_name=message.agent_name,
            room=message.room,
            metadata=message.metadata,
        )
    if isinstance(message, api.TransferSIPParticipantRequest):
        return api.TransferSIPParticipantResponse()
    return api.DeleteRoomResponse()


def _error(status: int, code: str, msg: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"code": code, "msg": msg}), content_type="application/json"
    )
