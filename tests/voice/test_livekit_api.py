"""Voice sessions over LiveKit: the room, the agent's dispatch and the caller's token.

LiveKit's server API is a fake on 127.0.0.1 (`livekit_fake.py`) that checks the JWTs
livekit-api signs, as LiveKit does.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from livekit import api

from support import Deployed, client_for, configured_app, deploy, new_org
from voice.livekit_fake import Failure, FakeLiveKit
from voxflow.core.settings import Settings
from voxflow.voice import livekit_api

API_KEY = "APIfakekey"
API_SECRET = "fake-secret-" + "x" * 32
TTL_S = 300


@pytest.fixture
async def livekit() -> AsyncIterator[FakeLiveKit]:
    fake = FakeLiveKit(API_KEY, API_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Voxflow:
    """A Voxflow process configured for LiveKit (or not), with Luigi's deployed behind an agent."""

    def __init__(self, client: httpx.AsyncClient, deployed: Deployed) -> None:
        self.client = client
        self.deployed = deployed

    async def start(self, **body: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/sessions",
            json={"agent_id": self.deployed.agent_id, "mode": "voice", **body},
            headers=self.deployed.org.headers,
        )

    async def calls(self) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/calls", headers=self.deployed.org.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


VoxflowFactory = Callable[..., AbstractAsyncContextManager[Voxflow]]


@pytest.fixture
def voxflow(database_url: str, luigis_yaml: bytes) -> VoxflowFactory:
    @asynccontextmanager
    async def make(
        url: str | None, key: str | None = API_KEY, secret: str | None = API_SECRET
    ) -> AsyncIterator[Voxflow]:
        async with configured_app(
            database_url,
            livekit_url=url,
            livekit_api_key=key,
            livekit_api_secret=secret,
            livekit_token_ttl_s=TTL_S,
        ) as app:
            org = await new_org(app.state.context)
            async with client_for(app) as client:
                yield Voxflow(client, await deploy(client, org, luigis_yaml))

    return make


class TestStartOverLiveKit:
    async def test_the_room_is_created_and_the_agent_dispatched_with_the_call(
        self, voxflow: VoxflowFactory, livekit: FakeLiveKit
    ) -> None:
        async with voxflow(livekit.url) as vf:
            response = await vf.start(transport="livekit")

            assert response.status_code == 201, response.text
            started = response.json()
            call_id = started["session_id"]
            assert started["room"] == f"voxflow-{call_id}"
            assert started["livekit_url"] == livekit.url.replace("http", "ws", 1)
            assert started["audio_url"] is None
            assert started["ended"] is False
            assert [r.method for r in livekit.requests] == [
                "RoomService/CreateRoom",
                "AgentDispatchService/CreateDispatch",
            ]
            (created,) = livekit.calls("RoomService/CreateRoom")
            assert created.request.name == started["room"]
            assert 0 < created.request.empty_timeout <= 300
            assert created.request.max_participants == 3
            assert created.claims["video"]["roomCreate"] is True
            (dispatch,) = livekit.calls("AgentDispatchService/CreateDispatch")
            assert dispatch.request.agent_name == "voxflow"
            assert dispatch.request.room == started["room"]
            assert json.loads(dispatch.request.metadata) == {
                "session_id": call_id,
                "org_id": vf.deployed.org.id,
                "agent_id": vf.deployed.agent_id,
                "version": 1,
            }
            assert dispatch.claims["video"]["roomAdmin"] is True
            assert dispatch.claims["video"]["room"] == started["room"]
            (call,) = await vf.calls()
            assert call["id"] == call_id
            assert call["outcome"] is None

    async def test_the_token_joins_that_room_only_and_expires_soon(
        self, voxflow: VoxflowFactory, livekit: FakeLiveKit
    ) -> None:
        async with voxflow(livekit.url) as vf:
            started = (await vf.start(transport="livekit")).json()

        grants = api.TokenVerifier(API_KEY, API_SECRET).verify(started["token"])
        assert grants.identity == f"caller-{started['session_id']}"
        assert grants.video is not None
        assert grants.video.room_join is True
        assert grants.video.room == started["room"]
        assert grants.video.can_publish is True
        assert grants.video.can_subscribe is True
        for power in ("room_create", "room_admin", "room_list", "room_record", "agent"):
            assert not getattr(grants.video, power), power
        assert grants.video.destination_room is None
        claims = jwt.decode(started["token"], API_SECRET, algorithms=["HS256"], issuer=API_KEY)
        assert set(claims) <= {"sub", "iss", "nbf", "exp", "name", "kind", "video"}
        assert 0 < claims["exp"] - time.time() <= TTL_S + 1
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(started["token"], "another-secret-" + "y" * 32, algorithms=["HS256"])

    async def test_livekit_unreachable_is_503_and_the_call_ends_failed(
        self, voxflow: VoxflowFactory
    ) -> None:
        async with voxflow(f"http://127.0.0.1:{closed_port()}") as vf:
            response = await vf.start(transport="livekit")

            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert "could not be reached" in response.json()["detail"]
            (call,) = await vf.calls()
            assert call["outcome"] == "failed"

    async def test_a_refused_dispatch_is_502_and_the_room_is_deleted(
        self, voxflow: VoxflowFactory, livekit: FakeLiveKit
    ) -> None:
        livekit.failures["AgentDispatchService/CreateDispatch"] = Failure(
            400, "invalid_argument", "no such agent"
        )
        async with voxflow(livekit.url) as vf:
            response = await vf.start(transport="livekit")

            assert response.status_code == 502, response.text
            assert "no such agent" in response.json()["detail"]
            (created,) = livekit.calls("RoomService/CreateRoom")
            (deleted,) = livekit.calls("RoomService/DeleteRoom")
            assert deleted.request.room == created.request.name
            (call,) = await vf.calls()
            assert call["outcome"] == "failed"

    async def test_a_wrong_secret_is_502_naming_the_variables(
        self, voxflow: VoxflowFactory, livekit: FakeLiveKit
    ) -> None:
        async with voxflow(livekit.url, secret="not-the-secret-" + "z" * 32) as vf:
            response = await vf.start(transport="livekit")

            assert response.status_code == 502, response.text
            assert "LIVEKIT_API_SECRET" in response.json()["detail"]
            assert [r.refused for r in livekit.requests] == ["unauthenticated"]
            (call,) = await vf.calls()
            assert call["outcome"] == "failed"

    @pytest.mark.parametrize("missing", ["url", "key", "secret"])
    async def test_without_livekit_it_is_409_and_no_call_is_left(
        self, voxflow: VoxflowFactory, livekit: FakeLiveKit, missing: str
    ) -> None:
        config: dict[str, str | None] = {"url": livekit.url, "key": API_KEY, "secret": API_SECRET}
        config[missing] = None
        async with voxflow(**config) as vf:
            response = await vf.start(transport="livekit")

            assert response.status_code == 409, response.text
            assert response.json()["detail"] == (
                "LiveKit is not configured: set LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET."
            )
            assert await vf.calls() == []
            assert livekit.requests == []

    async def test_voice_over_websocket_and_text_never_touch_livekit(
        self, voxflow: VoxflowFactory, livekit: FakeLiveKit
    ) -> None:
        async with voxflow(livekit.url) as vf:
            over_websocket = await vf.start()
            text = await vf.start(mode="text")

            assert over_websocket.status_code == 201, over_websocket.text
            assert over_websocket.json()["room"] is None
            assert text.status_code == 201, text.text
            assert text.json()["token"] is None
            assert livekit.requests == []

    async def test_text_with_a_transport_is_422(
        self, voxflow: VoxflowFactory, livekit: FakeLiveKit
    ) -> None:
        async with voxflow(livekit.url) as vf:
            response = await vf.start(mode="text", transport="livekit")

            assert response.status_code == 422
            assert response.json()["errors"][0]["pointer"] == "/transport"
            assert livekit.requests == []


class TestSettings:
    def test_livekit_names_are_read_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LIVEKIT_URL", "wss://example.livekit.cloud/")
        monkeypatch.setenv("LIVEKIT_API_KEY", "APIkey")
        monkeypatch.setenv("VOXFLOW_LIVEKIT_API_SECRET", "secret")

        config = livekit_api.LiveKitConfig.from_settings(Settings())

        assert config is not None
        assert config.url == "wss://example.livekit.cloud"
        assert (config.api_key, config.api_secret) == ("APIkey", "secret")
        assert config.token_ttl.total_seconds() == 600

    def test_an_http_url_is_given_to_callers_as_ws(self) -> None:
        settings = Settings.model_validate(
            {
                "livekit_url": "https://lk.example.com",
                "livekit_api_key": "k",
                "livekit_api_secret": "s",
            }
        )

        config = livekit_api.require_config(settings)

        assert config.client_url == "wss://lk.example.com"

    def test_a_url_of_another_scheme_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from voxflow.core.settings import SettingsError, load_settings

        monkeypatch.setenv("LIVEKIT_URL", "ftp://lk.example.com")

        with pytest.raises(SettingsError, match=r"^LIVEKIT_URL: must be"):
            load_settings()


class TestTransfers:
    """A workflow's transfer in a LiveKit room: SIP callers are transferred by LiveKit."""

    @staticmethod
    def room(*participants: tuple[str, int]) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(
            name="call-room",
            remote_participants={
                identity: SimpleNamespace(identity=identity, kind=kind)
                for identity, kind in participants
            },
        )

    @staticmethod
    def config(livekit: FakeLiveKit) -> livekit_api.LiveKitConfig:
        settings = Settings(
            livekit_url=livekit.url, livekit_api_key=API_KEY, livekit_api_secret=API_SECRET
        )
        return livekit_api.require_config(settings)

    async def test_a_phone_caller_is_transferred_by_livekit_to_the_target(
        self, livekit: FakeLiveKit
    ) -> None:
        from livekit import rtc

        from voxflow.engine.events import Transfer
        from voxflow.voice.worker import sip_transfer

        told: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            told.append(message)

        room = self.room(
            ("agent", rtc.ParticipantKind.PARTICIPANT_KIND_AGENT),
            ("sip_+34600000000", rtc.ParticipantKind.PARTICIPANT_KIND_SIP),
        )
        transfer = sip_transfer(self.config(livekit), room, send)

        await transfer(Transfer(target="sip:desk@luigis.example"))

        [call] = livekit.calls("SIP/TransferSIPParticipant")
        assert (call.request.room_name, call.request.participant_identity) == (
            "call-room",
            "sip_+34600000000",
        )
        assert call.request.transfer_to == "sip:desk@luigis.example"
        assert call.claims["video"]["roomAdmin"] is True
        assert call.claims["video"]["room"] == "call-room"
        assert call.claims["sip"]["call"] is True
        assert told == []

    async def test_a_caller_in_an_app_is_told_where_to_go(self, livekit: FakeLiveKit) -> None:
        from livekit import rtc

        from voxflow.engine.events import Transfer
        from voxflow.voice.worker import sip_transfer

        told: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            told.append(message)

        room = self.room(("caller", rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD))

        await sip_transfer(self.config(livekit), room, send)(Transfer(target="tel:+3491000"))

        assert told == [{"type": "transfer", "target": "tel:+3491000", "mode": "cold"}]
        assert livekit.requests == []

    async def test_a_refused_transfer_is_an_error_naming_livekit(
        self, livekit: FakeLiveKit
    ) -> None:
        livekit.failures["SIP/TransferSIPParticipant"] = Failure(
            400, "invalid_argument", "transfer_to is not a valid SIP URI"
        )

        with pytest.raises(livekit_api.LiveKitUnavailable, match="could not transfer the caller"):
            await livekit_api.transfer_sip_caller(
                self.config(livekit), "call-room", "sip_1", "sip:nowhere"
            )
