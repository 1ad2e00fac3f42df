"""Tokens as tools get them (`OrgConnections`): refreshed when due, once, never in a loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select
from structlog.testing import capture_logs

from integrations.oauth_support import (
    ACME_TOKEN_URL,
    AIRTABLE_TOKEN_URL,
    Person,
    form,
    issued_an_hour_ago,
    stored_connection,
    token_response,
    unique,
)
from voxflow.audit.models import AuditEvent
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.integrations.models import Connection
from voxflow.integrations.oauth import TokenSet
from voxflow.integrations.tokens import OrgConnections
from voxflow.tools.registry import ToolError
from voxflow.vault.models import Secret
from voxflow.vault.vault import get_vault


def tokens(expires_in: timedelta, **values: Any) -> TokenSet:
    return TokenSet(
        access_token=values.get("access_token", unique("access")),
        refresh_token=values.get("refresh_token", unique("refresh")),
        token_type="Bearer",
        expires_at=(utcnow() + expires_in).replace(microsecond=0),
        scope="data.records:read",
    )


async def vaulted(context: AppContext, connection_id: str) -> tuple[Connection, TokenSet]:
    async with context.read_sessionmaker() as session:
        connection = await session.get(Connection, connection_id)
        assert connection is not None
        secret = await session.get(Secret, connection.secret_id)
        assert secret is not None
    return connection, TokenSet.from_bytes((await get_vault(context)).open_row(secret))


async def audit_actions(context: AppContext, connection_id: str) -> list[tuple[str, str, str]]:
    async with context.read_sessionmaker() as session:
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.target_id == connection_id).order_by(AuditEvent.id)
        )
        return [(e.action, e.actor_type, e.actor_id) for e in events]


EXPIRED = timedelta(minutes=-5)
ALMOST = timedelta(seconds=30)  # inside the 60 s margin
FRESH = timedelta(minutes=50)


class TestAccessToken:
    async def test_a_current_token_is_returned_without_asking_the_provider(
        self, oauth_context: AppContext, admin: Person, network: respx.MockRouter
    ) -> None:
        stored = tokens(FRESH)
        connection = await stored_connection(oauth_context, admin.org_id, tokens=stored)

        token = await OrgConnections(oauth_context, admin.org_id).access_token(
            connection.name, provider="airtable"
        )

        assert token == stored.access_token
        assert not network.calls

    @pytest.mark.parametrize("expires_in", [EXPIRED, ALMOST])
    async def test_a_due_token_is_refreshed_and_the_rotated_refresh_token_saved(
        self,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
        expires_in: timedelta,
    ) -> None:
        stored = tokens(expires_in)
        answer = token_response(expires_in=3600)
        refresh = network.post(AIRTABLE_TOKEN_URL).respond(json=answer)
        connection = await stored_connection(oauth_context, admin.org_id, tokens=stored)

        token = await OrgConnections(oauth_context, admin.org_id, "call_1").access_token(
            connection.name, provider="airtable"
        )

        assert token == answer["access_token"]
        assert form(refresh.calls.last.request) == {
            "grant_type": "refresh_token",
            "refresh_token": stored.refresh_token,
        }
        assert refresh.calls.last.request.headers["authorization"].startswith("Basic ")
        row, saved = await vaulted(oauth_context, connection.id)
        assert saved.access_token == answer["access_token"]
        assert saved.refresh_token == answer["refresh_token"]
        assert row.expires_at is not None
        assert row.expires_at > utcnow() + timedelta(minutes=55)
        assert row.last_refreshed_at is not None
        assert row.last_error is None
        assert ("connection.refreshed", "call", "call_1") in await audit_actions(
            oauth_context, connection.id
        )

    async def test_an_answer_without_refresh_token_keeps_the_old_one(
        self, oauth_context: AppContext, admin: Person, network: respx.MockRouter
    ) -> None:
        stored = tokens(EXPIRED)
        network.post(AIRTABLE_TOKEN_URL).respond(json=token_response(refresh_token=None))
        connection = await stored_connection(oauth_context, admin.org_id, tokens=stored)

        await OrgConnections(oauth_context, admin.org_id).access_token(
            connection.name, provider="airtable"
        )

        _row, saved = await vaulted(oauth_context, connection.id)
        assert saved.refresh_token == stored.refresh_token
        assert saved.access_token != stored.access_token

    async def test_twenty_lookups_of_an_expired_token_make_one_refresh(
        self, oauth_context: AppContext, admin: Person, network: respx.MockRouter
    ) -> None:
        answer = token_response()

        async def slow_provider(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.05)  # long enough for every lookup to be waiting
            return httpx.Response(200, json=answer)

        refresh = network.post(AIRTABLE_TOKEN_URL).mock(side_effect=slow_provider)
        connection = await stored_connection(oauth_context, admin.org_id, tokens=tokens(EXPIRED))
        connections = OrgConnections(oauth_context, admin.org_id)

        got = await asyncio.gather(
            *(connections.access_token(connection.name, provider="airtable") for _ in range(20))
        )

        assert refresh.call_count == 1
        assert set(got) == {answer["access_token"]}

    async def test_unknown_names_and_other_providers_are_clear_errors(
        self, oauth_context: AppContext, admin: Person
    ) -> None:
        connection = await stored_connection(
            oauth_context, admin.org_id, provider="generic", tokens=tokens(FRESH)
        )
        connections = OrgConnections(oauth_context, admin.org_id)

        with pytest.raises(ToolError, match="no Airtable connection named 'Nope'"):
            await connections.access_token("Nope", provider="airtable")
        with pytest.raises(ToolError, match="is a Acme CRM connection, not Airtable"):
            await connections.access_token(connection.name, provider="airtable")


class TestRefreshFailures:
    async def test_invalid_grant_marks_the_connection_for_reconnection(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        refresh = network.post(AIRTABLE_TOKEN_URL).respond(
            400, json={"error": "invalid_grant", "error_description": "refresh token expired"}
        )
        connection = await stored_connection(oauth_context, admin.org_id, tokens=tokens(EXPIRED))
        connections = OrgConnections(oauth_context, admin.org_id, "call_7")

        with capture_logs() as logs, pytest.raises(ToolError) as first:
            await connections.access_token(connection.name, provider="airtable")
        with pytest.raises(ToolError) as second:
            await connections.access_token(connection.name, provider="airtable")

        assert first.value.message == (
            f"Airtable connection '{connection.name}' needs to be reconnected: the provider "
            "refused the refresh token (invalid_grant) (Settings → Integrations)"
        )
        assert not first.value.retryable
        assert second.value.message == first.value.message
        assert refresh.call_count == 1
        shown = await web.get(
            f"/v1/integrations/connections/{connection.id}", headers=admin.headers
        )
        assert shown.json()["status"] == "needs_reauth"
        assert "invalid_grant" in shown.json()["last_error"]
        assert ("connection.needs_reauth", "call", "call_7") in await audit_actions(
            oauth_context, connection.id
        )
        assert [e["event"] for e in logs if e["event"] == "connection_needs_reauth"] == [
            "connection_needs_reauth"
        ]

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(500, text="oops"),
            httpx.Response(200, text="<html>"),
            httpx.Response(200, json=token_response(token_type="MAC")),
            httpx.Response(200, json=token_response(access_token=None)),
        ],
    )
    async def test_other_failures_keep_the_tokens_and_can_be_retried(
        self,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
        answer: httpx.Response,
    ) -> None:
        stored = tokens(EXPIRED)
        network.post(AIRTABLE_TOKEN_URL).mock(return_value=answer)
        connection = await stored_connection(oauth_context, admin.org_id, tokens=stored)

        with pytest.raises(ToolError, match="could not be refreshed") as raised:
            await OrgConnections(oauth_context, admin.org_id).access_token(
                connection.name, provider="airtable"
            )

        assert raised.value.retryable
        row, saved = await vaulted(oauth_context, connection.id)
        assert saved == stored
        assert row.status == "active"
        assert row.last_error is not None
        assert row.last_error.startswith("refresh failed")
        assert stored.access_token not in raised.value.message
        assert stored.refresh_token not in row.last_error  # type: ignore[operator]


class TestRefreshRejected:
    async def test_a_token_refreshed_meanwhile_is_returned_as_is(
        self, oauth_context: AppContext, admin: Person, network: respx.MockRouter
    ) -> None:
        stored = tokens(FRESH)
        connection = await stored_connection(oauth_context, admin.org_id, tokens=stored)

        token = await OrgConnections(oauth_context, admin.org_id).refresh_rejected(
            connection.name, provider="airtable", rejected="an-older-token"
        )

        assert token == stored.access_token
        assert not network.calls

    async def test_a_rejected_token_is_refreshed_once_and_never_in_a_loop(
        self, oauth_context: AppContext, admin: Person, network: respx.MockRouter
    ) -> None:
        stored = tokens(FRESH)
        answer = token_response()
        refresh = network.post(ACME_TOKEN_URL).respond(json=answer)
        connection = await stored_connection(
            oauth_context, admin.org_id, provider="generic", tokens=stored
        )
        await issued_an_hour_ago(oauth_context, connection.id)
        connections = OrgConnections(oauth_context, admin.org_id)

        new = await connections.refresh_rejected(
            connection.name, provider="generic", rejected=stored.access_token
        )
        # The provider refuses the new token too: refreshing again cannot help.
        with pytest.raises(ToolError, match="issued moments ago"):
            await connections.refresh_rejected(connection.name, provider="generic", rejected=new)

        assert new == answer["access_token"]
        assert refresh.call_count == 1
        assert form(refresh.calls.last.request)["client_secret"] == "acme-secret"

    async def test_a_401_right_after_a_refresh_does_not_refresh_again(
        self, oauth_context: AppContext, admin: Person, network: respx.MockRouter
    ) -> None:
        refresh = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        connection = await stored_connection(oauth_context, admin.org_id, tokens=tokens(EXPIRED))
        connections = OrgConnections(oauth_context, admin.org_id)
        token = await connections.access_token(connection.name, provider="airtable")

        with pytest.raises(ToolError, match="issued moments ago"):
            await connections.refresh_rejected(connection.name, provider="airtable", rejected=token)

        assert refresh.call_count == 1
