"""The callback accepts a state once, from the person who started, for its own provider."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import respx
from sqlalchemy import func, select, update

from integrations.oauth_support import (
    ACME_TOKEN_URL,
    AIRTABLE_TOKEN_URL,
    OAUTH_SETTINGS,
    Person,
    come_back,
    form,
    query,
    signed_in,
    start,
    token_response,
    unique,
)
from support import client_for, configured_app, new_org
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.integrations.models import Connection, OAuthState
from voxflow.integrations.pkce import new_code_verifier, new_state, state_id

PROBLEM = "application/problem+json"


async def connection_count(context: AppContext) -> int:
    async with context.read_sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Connection)) or 0)


def refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/oauth-state-refused"
    assert reason in response.json()["detail"]
    assert "location" not in response.headers


class TestRefusedStates:
    async def test_a_forged_state(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        before = await connection_count(oauth_context)

        response = await come_back(web, admin, code="c", state=new_state())

        refused(response, "Unknown state")
        assert not exchange.called
        assert await connection_count(oauth_context) == before

    async def test_no_state_at_all(self, web: httpx.AsyncClient, admin: Person) -> None:
        refused(await come_back(web, admin, code="c"), "no state")

    async def test_a_replayed_state(
        self, web: httpx.AsyncClient, admin: Person, network: respx.MockRouter
    ) -> None:
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        params = await start(web, admin, name=unique("CRM"))
        first = await come_back(web, admin, code="c", state=params["state"])

        again = await come_back(web, admin, code="c", state=params["state"])

        assert first.status_code == 303
        assert "connection=" in first.headers["location"]
        refused(again, "already completed")
        assert exchange.call_count == 1

    async def test_two_callbacks_racing_with_one_state_let_one_through(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        params = await start(web, admin, name=unique("CRM"))
        before = await connection_count(oauth_context)

        responses = await asyncio.gather(
            *(come_back(web, admin, code="c", state=params["state"]) for _ in range(5))
        )

        assert sorted(r.status_code for r in responses) == [303, 400, 400, 400, 400]
        assert exchange.call_count == 1
        assert await connection_count(oauth_context) == before + 1

    async def test_an_expired_state(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        params = await start(web, admin, name=unique("CRM"))
        async with oauth_context.sessionmaker() as session:
            await session.execute(
                update(OAuthState)
                .where(OAuthState.id == state_id(params["state"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()

        refused(await come_back(web, admin, code="c", state=params["state"]), "expired")
        assert not exchange.called

    async def test_a_state_started_by_another_person_of_the_org(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        colleague = await signed_in(oauth_context, web, admin.org)
        params = await start(web, admin, name=unique("CRM"))

        response = await come_back(web, colleague, code="c", state=params["state"])

        refused(response, "someone else")
        assert not exchange.called
        # Still the starter's to finish: a refusal does not spend it.
        assert (await come_back(web, admin, code="c", state=params["state"])).status_code == 303

    async def test_a_state_bound_to_an_org_the_person_is_not_admin_of(
        self,
        web: httpx.AsyncClient,
        oauth_context: AppContext,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        exchange = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        elsewhere = await new_org(oauth_context, "elsewhere")
        state = new_state()
        now = utcnow()
        async with oauth_context.sessionmaker() as session:
            session.add(
                OAuthState(
                    id=state_id(state),
                    org_id=elsewhere.id,
                    user_id=admin.user.id,
                    provider="airtable",
                    connection_name="Hijack",
                    return_to="/",
                    redirect_uri="https://voxflow.example.com/v1/integrations/oauth/callback",
                    code_verifier=new_code_verifier(),
                    created_at=now,
                    expires_at=now + timedelta(minutes=10),
                )
            )
            await session.commit()
        before = await connection_count(oauth_context)

        response = await come_back(web, admin, code="c", state=state)

        refused(response, "no longer an admin")
        assert not exchange.called
        assert await connection_count(oauth_context) == before

    async def test_a_signed_in_session_is_needed(
        self, web: httpx.AsyncClient, admin: Person
    ) -> None:
        params = await start(web, admin, name=unique("CRM"))

        anonymous = await web.get(
            "/v1/integrations/oauth/callback", params={"code": "c", "state": params["state"]}
        )
        with_a_key = await web.get(
            "/v1/integrations/oauth/callback",
            params={"code": "c", "state": params["state"]},
            headers=admin.org.headers,
        )

        assert anonymous.status_code == 401
        assert with_a_key.status_code == 403


class TestStateIsBoundToItsProvider:
    async def test_the_code_goes_to_the_provider_the_state_was_made_for(
        self,
        web: httpx.AsyncClient,
        admin: Person,
        network: respx.MockRouter,
    ) -> None:
        airtable = network.post(AIRTABLE_TOKEN_URL).respond(json=token_response())
        acme = network.post(ACME_TOKEN_URL).respond(json=token_response(scope="contacts.read"))
        airtable_state = (await start(web, admin, name=unique("A")))["state"]
        acme_state = (await start(web, admin, provider="generic", name=unique("B")))["state"]

        # The callback URL names no provider, and a provider name in it changes nothing.
        response = await web.get(
            "/v1/integrations/oauth/callback",
            params={"code": "acme-code", "state": acme_state, "provider": "airtable"},
            headers=admin.headers,
        )

        assert response.status_code == 303
        assert not airtable.called
        sent = form(acme.calls.last.request)
        assert sent["code"] == "acme-code"
        assert sent["client_id"] == "acme-client"
        assert sent["client_secret"] == "acme-secret"
        connection_id = query(response.headers["location"])["connection"]
        shown = await web.get(
            f"/v1/integrations/connections/{connection_id}", headers=admin.headers
        )
        assert shown.json()["provider"] == "generic"
        assert airtable_state != acme_state

    async def test_a_state_whose_provider_is_gone_is_refused(
        self,
        admin: Person,
        network: respx.MockRouter,
        web: httpx.AsyncClient,
        database_url: str,
    ) -> None:
        exchange_anywhere = network.post(url__regex=r".*").respond(json=token_response())
        params = await start(web, admin, provider="generic", name=unique("CRM"))
        # The same database served by a server where "generic" now points elsewhere.
        without_generic = {
            key: value for key, value in OAUTH_SETTINGS.items() if not key.startswith("generic")
        }
        async with (
            configured_app(database_url, **without_generic) as app,
            client_for(app) as client,
        ):
            response = await come_back(client, admin, code="c", state=params["state"])

        refused(response, "no longer configured")
        assert not exchange_anywhere.called
