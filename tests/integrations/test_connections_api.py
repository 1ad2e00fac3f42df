"""Connections once made: listed, tested, deleted; another org's ids are 404."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import respx
from sqlalchemy import select

from integrations.oauth_support import (
    ACME_REVOKE_URL,
    ACME_TEST_URL,
    ACME_TOKEN_URL,
    AIRTABLE_TOKEN_URL,
    AIRTABLE_WHOAMI,
    Person,
    form,
    issued_an_hour_ago,
    signed_in,
    stored_connection,
    token_response,
    unique,
)
from support import new_org
from voxflow.audit.models import AuditEvent
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.locks import distributed_lock
from voxflow.integrations import service
from voxflow.integrations.models import Connection
from voxflow.integrations.oauth import TokenSet
from voxflow.integrations.tokens import OrgConnections
from voxflow.tools.registry import ToolError
from voxflow.vault.models import Secret


def tokens(expires_in: timedelta = timedelta(minutes=50)) -> TokenSet:
    return TokenSet(
        access_token=unique("access"),
        refresh_token=unique("refresh"),
        token_type="Bearer",
        expires_at=utcnow() + expires_in,
        scope="contacts.read",
    )


class TestReading:
    async def test_the_list_shows_the_orgs_connections_and_no_tokens(
        self, web: httpx.AsyncClient, oauth_context: AppContext
    ) -> None:
        org = await new_org(oauth_context)
        other = await new_org(oauth_context, "other")
        mine = [tokens(), tokens()]
        for name, stored in zip(("A", "B"), mine, strict=True):
            await stored_connection(oauth_context, org.id, name=name, tokens=stored)
        await stored_connection(oauth_context, other.id, name="theirs", tokens=tokens())

        response = await web.get("/v1/integrations/connections?limit=1", headers=org.headers)
        rest = await web.get(
            f"/v1/integrations/connections?cursor={response.json()['next_cursor']}",
            headers=org.headers,
        )

        assert response.status_code == 200
        items = response.json()["items"] + rest.json()["items"]
        assert [item["name"] for item in items] == ["A", "B"]
        assert set(items[0]) == {
            "id",
            "name",
            "provider",
            "status",
            "scopes",
            "expires_at",
            "created_at",
            "created_by",
            "last_refreshed_at",
            "last_error",
        }
        assert rest.json()["next_cursor"] is None
        text = response.text + rest.text
        assert not any(t.access_token in text or str(t.refresh_token) in text for t in mine)

    async def test_a_member_can_read(
        self, web: httpx.AsyncClient, oauth_context: AppContext, admin: Person
    ) -> None:
        member = await signed_in(oauth_context, web, admin.org, role="member")
        connection = await stored_connection(oauth_context, admin.org_id, tokens=tokens())

        response = await web.get(
            f"/v1/integrations/connections/{connection.id}", headers=member.headers
        )
        deleting = await web.delete(
            f"/v1/integrations/connections/{connection.id}", headers=member.headers
        )

        assert response.status_code == 200
        assert deleting.status_code == 403


class TestAnotherOrgsConnection:
    @pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("DELETE", ""), ("POST", "/test")])
    async def test_is_404_like_a_missing_one_and_left_alone(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
        method: str,
        suffix: str,
    ) -> None:
        connection = await stored_connection(oauth_context, admin.org_id, tokens=tokens())
        stranger = await new_org(oauth_context, "stranger")

        theirs = await web.request(
            method,
            f"/v1/integrations/connections/{connection.id}{suffix}",
            headers=stranger.headers,
        )
        missing = await web.request(
            method, f"/v1/integrations/connections/con_missing{suffix}", headers=stranger.headers
        )

        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["detail"].replace(connection.id, "X") == missing.json()[
            "detail"
        ].replace("con_missing", "X")
        assert not network.calls
        kept = await web.get(f"/v1/integrations/connections/{connection.id}", headers=admin.headers)
        assert kept.status_code == 200


class TestDelete:
    async def test_revokes_at_the_provider_then_erases_the_tokens(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        revoke = network.post(ACME_REVOKE_URL).respond(200)
        stored = tokens()
        connection = await stored_connection(
            oauth_context, admin.org_id, provider="generic", tokens=stored
        )

        response = await web.delete(
            f"/v1/integrations/connections/{connection.id}", headers=admin.headers
        )

        assert response.status_code == 204
        assert form(revoke.calls.last.request) == {
            "token": stored.refresh_token,
            "token_type_hint": "refresh_token",
            "client_id": "acme-client",
            "client_secret": "acme-secret",
        }
        async with oauth_context.read_sessionmaker() as session:
            assert await session.get(Connection, connection.id) is None
            assert await session.get(Secret, connection.secret_id) is None
            event = await session.scalar(
                select(AuditEvent).where(
                    AuditEvent.target_id == connection.id,
                    AuditEvent.action == "connection.deleted",
                )
            )
        assert event is not None
        assert event.actor_id == admin.user.id
        assert '"revoked_at_provider":true' in event.detail
        with pytest.raises(ToolError, match="no Acme CRM connection"):
            await OrgConnections(oauth_context, admin.org_id).access_token(
                connection.name, provider="generic"
            )

    async def test_a_failed_revocation_does_not_keep_the_connection(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        network.post(ACME_REVOKE_URL).respond(503)
        connection = await stored_connection(
            oauth_context, admin.org_id, provider="generic", tokens=tokens()
        )

        response = await web.delete(
            f"/v1/integrations/connections/{connection.id}", headers=admin.headers
        )

        assert response.status_code == 204
        gone = await web.get(f"/v1/integrations/connections/{connection.id}", headers=admin.headers)
        assert gone.status_code == 404

    async def test_a_provider_without_revocation_is_only_forgotten(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        connection = await stored_connection(oauth_context, admin.org_id, tokens=tokens())

        response = await web.delete(
            f"/v1/integrations/connections/{connection.id}", headers=admin.headers
        )

        assert response.status_code == 204
        assert not network.calls


class TestTest:
    async def test_calls_the_test_url_with_the_token(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        whoami = network.get(AIRTABLE_WHOAMI).respond(json={"id": "usr1"})
        stored = tokens()
        connection = await stored_connection(oauth_context, admin.org_id, tokens=stored)

        response = await web.post(
            f"/v1/integrations/connections/{connection.id}/test", headers=admin.headers
        )

        assert response.status_code == 200
        assert response.json() == {
            "ok": True,
            "status": 200,
            "detail": "Airtable accepted the token.",
        }
        assert whoami.calls.last.request.headers["authorization"] == f"Bearer {stored.access_token}"

    async def test_a_401_to_an_older_token_refreshes_once_and_tries_again(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        fresh = token_response()
        refresh = network.post(ACME_TOKEN_URL).respond(json=fresh)
        probe = network.get(ACME_TEST_URL).mock(
            side_effect=[httpx.Response(401), httpx.Response(200)]
        )
        connection = await stored_connection(
            oauth_context, admin.org_id, provider="generic", tokens=tokens()
        )
        await issued_an_hour_ago(oauth_context, connection.id)

        response = await web.post(
            f"/v1/integrations/connections/{connection.id}/test", headers=admin.headers
        )

        assert response.json() == {
            "ok": True,
            "status": 200,
            "detail": "Acme CRM accepted the token.",
        }
        assert refresh.call_count == 1
        assert probe.calls[1].request.headers["authorization"] == f"Bearer {fresh['access_token']}"

    async def test_a_due_token_is_refreshed_first_and_a_401_then_is_not_retried(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        first = token_response()
        refresh = network.post(ACME_TOKEN_URL).respond(json=first)
        probe = network.get(ACME_TEST_URL).respond(401)
        connection = await stored_connection(
            oauth_context, admin.org_id, provider="generic", tokens=tokens(timedelta(0))
        )

        response = await web.post(
            f"/v1/integrations/connections/{connection.id}/test", headers=admin.headers
        )

        # The 401 came right after a refresh: another refresh would not help, so none is made.
        assert response.json()["ok"] is False
        assert "issued moments ago" in response.json()["detail"]
        assert refresh.call_count == 1
        assert probe.call_count == 1
        assert probe.calls[0].request.headers["authorization"] == f"Bearer {first['access_token']}"

    async def test_a_connection_needing_reauth_reports_it(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        network.post(AIRTABLE_TOKEN_URL).respond(400, json={"error": "invalid_grant"})
        connection = await stored_connection(
            oauth_context, admin.org_id, tokens=tokens(timedelta(minutes=-1))
        )

        response = await web.post(
            f"/v1/integrations/connections/{connection.id}/test", headers=admin.headers
        )

        assert response.status_code == 200
        assert response.json()["ok"] is False
        assert "needs to be reconnected" in response.json()["detail"]
        shown = await web.get(
            f"/v1/integrations/connections/{connection.id}", headers=admin.headers
        )
        assert shown.json()["status"] == "needs_reauth"


async def test_a_delete_during_a_long_refresh_is_a_409(
    web: httpx.AsyncClient,
    oauth_context: AppContext,
    admin: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "LOCK_WAIT_SECONDS", 0.2)
    connection = await stored_connection(oauth_context, admin.org_id, tokens=tokens())

    async with distributed_lock(oauth_context, f"connection:{connection.id}", wait_seconds=1):
        response = await web.delete(
            f"/v1/integrations/connections/{connection.id}", headers=admin.headers
        )

    assert response.status_code == 409
    assert "being refreshed" in response.json()["detail"]
