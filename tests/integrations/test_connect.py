"""Connecting an account, from `POST …/connect` to the provider's callback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select, text, update
from structlog.testing import capture_logs

from integrations.oauth_support import (
    ACME_TOKEN_URL,
    AIRTABLE_TOKEN_URL,
    OAUTH_SETTINGS,
    REDIRECT_URI,
    Person,
    come_back,
    form,
    query,
    signed_in,
    start,
    token_response,
    unique,
)
from support import OrgHandle, any_in_files, client_for, configured_app
from voxflow.audit.models import AuditEvent
from voxflow.core.context import AppContext
from voxflow.core.db import Base, utcnow
from voxflow.integrations.models import Connection, OAuthState
from voxflow.integrations.oauth import TokenSet
from voxflow.integrations.pkce import s256_challenge, state_id
from voxflow.integrations.tokens import OrgConnections
from voxflow.tools.registry import ToolError
from voxflow.vault.models import Secret
from voxflow.vault.vault import get_vault

CALLBACK = "/v1/integrations/oauth/callback"


async def connections_named(context: AppContext, org_id: str, name: str) -> list[Connection]:
    async with context.read_sessionmaker() as session:
        rows = await session.scalars(
            select(Connection).where(Connection.org_id == org_id, Connection.name == name)
        )
        return list(rows)


async def secrets_of(context: AppContext, org_id: str) -> int:
    async with context.read_sessionmaker() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM secrets WHERE org_id = :org"), {"org": org_id}
        )
    return int(count or 0)


async def everything_stored(context: AppContext) -> str:
    """Every row of every table, as text."""
    dump = []
    async with context.read_sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            dump.append(repr(rows))
    return "\n".join(dump)


def sqlite_files(database_url: str) -> list[Path]:
    if not database_url.startswith("sqlite"):
        return []
    path = Path(database_url.split(":///", 1)[1])
    return [p for p in (path, Path(f"{path}-wal")) if p.exists()]


class TestProviders:
    async def test_configured_providers_are_listed_with_their_scopes(
        self, web: httpx.AsyncClient, admin: Person
    ) -> None:
        response = await web.get("/v1/integrations/providers", headers=admin.org.headers)

        assert response.status_code == 200
        listed = {provider["name"]: provider for provider in response.json()}
        assert listed["airtable"] == {
            "name": "airtable",
            "title": "Airtable",
            "configured": True,
            "scopes": [
                "data.records:read",
                "data.records:write",
                "schema.bases:read",
                "user.email:read",
            ],
        }
        assert listed["generic"]["title"] == "Acme CRM"
        assert listed["generic"]["configured"] is True

    async def test_without_a_client_id_airtable_is_listed_but_cannot_connect(
        self, client: httpx.AsyncClient, context: AppContext, org: OrgHandle
    ) -> None:
        person = await signed_in(context, client, org)

        listed = await client.get("/v1/integrations/providers", headers=org.headers)
        response = await client.post(
            "/v1/integrations/airtable/connect", json={"name": "CRM"}, headers=person.headers
        )

        assert [p["configured"] for p in listed.json() if p["name"] == "airtable"] == [False]
        assert "generic" not in {p["name"] for p in listed.json()}
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert "VOXFLOW_AIRTABLE_CLIENT_ID" in response.json()["detail"]
        assert response.json()["detail"].startswith("Airtable is not configured")


class TestConnectRefusals:
    async def test_an_api_key_cannot_connect(self, web: httpx.AsyncClient, admin: Person) -> None:
        response = await web.post(
            "/v1/integrations/airtable/connect", json={"name": "CRM"}, headers=admin.org.headers
        )

        assert response.status_code == 403
        assert "API key has no browser" in response.json()["detail"]

    async def test_a_member_cannot_connect(
        self, web: httpx.AsyncClient, oauth_context: AppContext, admin: Person
    ) -> None:
        member = await signed_in(oauth_context, web, admin.org, role="member")

        response = await web.post(
            "/v1/integrations/airtable/connect", json={"name": "CRM"}, headers=member.headers
        )

        assert response.status_code == 403

    async def test_an_unknown_provider_is_404(self, web: httpx.AsyncClient, admin: Person) -> None:
        response = await web.post(
            "/v1/integrations/dropbox/connect", json={"name": "CRM"}, headers=admin.headers
        )

        assert response.status_code == 404
        assert "airtable" in response.json()["detail"]

    async def test_a_name_already_used_in_the_org_is_409(
        self, web: httpx.AsyncClient, admin: Person, network: respx.MockRouter
    ) -> None:
        network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        name = unique("CRM")
        params = await start(web, admin, name=name)
        await come_back(web, admin, code="c", state=params["state"])

        response = await web.post(
            "/v1/integrations/generic/connect", json={"name": name}, headers=admin.headers
        )

        assert response.status_code == 409
        assert name in response.json()["detail"]

    @pytest.mark.parametrize(
        "body",
        [{}, {"name": ""}, {"name": "   "}, {"name": "a\nb"}, {"name": "x" * 101}],
    )
    async def test_a_bad_name_is_422_pointing_at_it(
        self, web: httpx.AsyncClient, admin: Person, body: dict[str, Any]
    ) -> None:
        response = await web.post(
            "/v1/integrations/airtable/connect", json=body, headers=admin.headers
        )

        assert response.status_code == 422
        assert [error["pointer"] for error in response.json()["errors"]] == ["/name"]


class TestHappyPath:
    async def test_connect_then_callback_stores_the_tokens_in_the_vault_only(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
        database_url: str,
    ) -> None:
        tokens = token_response()
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=tokens)
        name = unique("Sales CRM")

        params = await start(web, admin, name=name, return_to="/settings/integrations?tab=a")

        async with oauth_context.read_sessionmaker() as session:
            state = await session.get(OAuthState, state_id(params["state"]))
        assert state is not None
        assert state.user_id == admin.user.id
        assert state.org_id == admin.org_id
        assert state.provider == "airtable"
        assert params == {
            "response_type": "code",
            "client_id": "airtable-client",
            "redirect_uri": REDIRECT_URI,
            "scope": "data.records:read data.records:write schema.bases:read user.email:read",
            "state": params["state"],
            "code_challenge": s256_challenge(state.code_verifier),
            "code_challenge_method": "S256",
        }
        assert params["state"] not in await everything_stored(oauth_context)

        with capture_logs() as logs:
            response = await come_back(web, admin, code="the-code", state=params["state"])

        assert response.status_code == 303, response.text
        assert response.headers["cache-control"] == "no-store"
        location = response.headers["location"]
        assert location.startswith("/settings/integrations?tab=a&connection=con_")
        sent = form(exchange.calls.last.request)
        assert sent == {
            "grant_type": "authorization_code",
            "code": "the-code",
            "redirect_uri": REDIRECT_URI,
            "code_verifier": state.code_verifier,
        }
        assert exchange.calls.last.request.headers["authorization"].startswith("Basic ")

        connection_id = query(location)["connection"]
        listed = await web.get(
            f"/v1/integrations/connections/{connection_id}", headers=admin.headers
        )
        assert listed.status_code == 200
        assert listed.json()["name"] == name
        assert listed.json()["status"] == "active"
        assert listed.json()["scopes"] == tokens["scope"].split()
        assert listed.json()["created_by"] == admin.user.id

        secrets = [tokens["access_token"], tokens["refresh_token"], "the-code", state.code_verifier]
        assert not any(secret in listed.text for secret in secrets)
        assert not any(secret in repr(logs) for secret in [*secrets, params["state"]])
        stored = await everything_stored(oauth_context)
        assert not any(secret in stored for secret in secrets)
        # (The verifier was stored until the callback, and SQLite's log may keep old pages.)
        assert not await any_in_files(sqlite_files(database_url), secrets[:3])

        async with oauth_context.read_sessionmaker() as session:
            connection = await session.get(Connection, connection_id)
            assert connection is not None
            secret = await session.get(Secret, connection.secret_id)
        assert secret is not None
        assert secret.kind == "connection"
        assert secret.name == f"connection:{connection_id}"
        opened = TokenSet.from_bytes((await get_vault(oauth_context)).open_row(secret))
        assert opened.access_token == tokens["access_token"]
        assert opened.refresh_token == tokens["refresh_token"]

    async def test_a_public_client_sends_its_id_and_no_secret(
        self,
        admin: Person,
        network: respx.MockRouter,
        database_url: str,
    ) -> None:
        settings = {**OAUTH_SETTINGS, "airtable_client_secret": None}
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        async with configured_app(database_url, **settings) as app, client_for(app) as client:
            params = await start(client, admin, name=unique("public"))
            response = await come_back(client, admin, code="c", state=params["state"])

        assert response.status_code == 303
        assert "connection=" in response.headers["location"]
        assert "authorization" not in exchange.calls.last.request.headers
        assert form(exchange.calls.last.request)["client_id"] == "airtable-client"


class TestProviderAndTokenEndpointErrors:
    async def test_a_refusal_at_the_provider_returns_with_its_reason(
        self, web: httpx.AsyncClient, oauth_context: AppContext, admin: Person
    ) -> None:
        name = unique("CRM")
        params = await start(web, admin, name=name)

        response = await come_back(
            web,
            admin,
            state=params["state"],
            error="access_denied",
            error_description="The user denied access",
        )

        assert response.status_code == 303
        assert query(response.headers["location"]) == {
            "error": "access_denied",
            "error_description": "The user denied access",
        }
        assert await connections_named(oauth_context, admin.org_id, name) == []

    @pytest.mark.parametrize(
        ("answer", "reason"),
        [
            (httpx.Response(200, text="<html>busy</html>"), "JSON"),
            (httpx.Response(200, json=token_response(access_token=None)), "access_token"),
            (httpx.Response(200, json=token_response(token_type="mac")), "Bearer"),
            (httpx.Response(200, json=token_response(token_type=None)), "Bearer"),
            (httpx.Response(200, json=["not", "an", "object"]), "JSON"),
            (httpx.Response(500, json={"error": "server_error"}), "HTTP 500"),
            (httpx.Response(502, text="Bad gateway"), "HTTP 502"),
            (httpx.Response(400, json={"error": "invalid_grant"}), "invalid_grant"),
        ],
    )
    async def test_a_bad_token_answer_stores_nothing(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
        answer: httpx.Response,
        reason: str,
    ) -> None:
        network.post(ACME_TOKEN_URL).mock(return_value=answer)
        name = unique("CRM")
        params = await start(web, admin, provider="generic", name=name)
        secrets_before = await secrets_of(oauth_context, admin.org_id)

        response = await come_back(web, admin, code="c", state=params["state"])

        assert response.status_code == 303
        outcome = query(response.headers["location"])
        assert outcome["error"] == "token_exchange_failed"
        assert outcome["error_description"].startswith("Acme CRM: ")
        assert reason in outcome["error_description"]
        assert await connections_named(oauth_context, admin.org_id, name) == []
        assert await secrets_of(oauth_context, admin.org_id) == secrets_before


class TestReconnect:
    async def test_a_connection_needing_reauth_is_connected_again_under_its_name(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        network.post(AIRTABLE_TOKEN_URL).mock(
            side_effect=[
                httpx.Response(200, json=token_response()),
                httpx.Response(400, json={"error": "invalid_grant"}),
                httpx.Response(200, json=(again := token_response())),
            ]
        )
        name = unique("CRM")
        first = await come_back(
            web, admin, code="c1", state=(await start(web, admin, name=name))["state"]
        )
        connection_id = query(first.headers["location"])["connection"]
        connections = OrgConnections(oauth_context, admin.org_id)
        async with oauth_context.sessionmaker() as session:
            await session.execute(
                update(Connection)
                .where(Connection.id == connection_id)
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
            await session.commit()
        with pytest.raises(ToolError, match="needs to be reconnected"):
            await connections.access_token(name, provider="airtable")

        params = await start(web, admin, name=name)
        second = await come_back(web, admin, code="c2", state=params["state"])

        assert query(second.headers["location"])["connection"] == connection_id
        shown = await web.get(
            f"/v1/integrations/connections/{connection_id}", headers=admin.headers
        )
        assert shown.json()["status"] == "active"
        assert shown.json()["last_error"] is None
        assert await connections.access_token(name, provider="airtable") == again["access_token"]
        async with oauth_context.read_sessionmaker() as session:
            actions = list(
                await session.scalars(
                    select(AuditEvent.action)
                    .where(AuditEvent.target_id == connection_id)
                    .order_by(AuditEvent.id)
                )
            )
        assert actions == [
            "connection.created",
            "connection.needs_reauth",
            "connection.reconnected",
        ]
