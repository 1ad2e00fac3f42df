"""Password login, the session cookie, logout, /v1/me and picking an org with Voxflow-Org."""

from __future__ import annotations

import threading

import httpx
import pytest

from support import (
    OrgHandle,
    UserHandle,
    client_for,
    configured_app,
    login_headers,
    new_org,
    new_user,
)
from voxflow.core.context import AppContext
from voxflow.orgs import service

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def home(context: AppContext) -> OrgHandle:
    return await new_org(context)


@pytest.fixture(scope="module")
async def user(context: AppContext, home: OrgHandle) -> UserHandle:
    # Shared by the tests here (hashing a password is slow); each logs in on its own session.
    return await new_user(context, home.id, "admin")


def _set_cookie(response: httpx.Response) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def _attributes(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


class TestLogin:
    async def test_sets_an_httponly_samesite_lax_session_cookie(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            "/v1/auth/login", json={"email": user.email, "password": user.password}
        )

        assert response.status_code == 200, response.text
        cookie = _set_cookie(response)
        assert cookie.startswith("voxflow_session=")
        attributes = _attributes(cookie)
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "secure" not in attributes  # public_url is http in tests

    async def test_cookie_is_secure_when_the_public_url_is_https(
        self, database_url: str, user: UserHandle
    ) -> None:
        async with (
            configured_app(database_url, public_url="https://voxflow.example.com") as app,
            client_for(app) as client,
        ):
            response = await client.post(
                "/v1/auth/login", json={"email": user.email, "password": user.password}
            )

        assert response.status_code == 200, response.text
        attributes = _attributes(_set_cookie(response))
        assert {"secure", "httponly", "samesite=lax"} <= attributes

    async def test_returns_the_user_and_memberships(
        self, client: httpx.AsyncClient, user: UserHandle, home: OrgHandle
    ) -> None:
        response = await client.post(
            "/v1/auth/login", json={"email": user.email.upper(), "password": user.password}
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"]["id"] == user.id
        assert body["user"]["email"] == user.email
        assert body["memberships"] == [{"org_id": home.id, "org_name": "acme", "role": "admin"}]

    async def test_wrong_password_is_401_problem(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            "/v1/auth/login", json={"email": user.email, "password": "not-the-password"}
        )

        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert "voxflow_session" not in response.headers.get("set-cookie", "")

    async def test_unknown_email_is_the_same_401_problem(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        wrong_password = await client.post(
            "/v1/auth/login", json={"email": user.email, "password": "nope"}
        )
        unknown = await client.post(
            "/v1/auth/login", json={"email": "nobody@example.com", "password": "nope"}
        )

        assert unknown.status_code == 401
        assert unknown.headers["content-type"] == PROBLEM
        # The answer must not reveal which emails have accounts.
        assert unknown.json()["detail"] == wrong_password.json()["detail"]
        assert unknown.json()["type"] == wrong_password.json()["type"]

    async def test_verifies_the_password_off_the_event_loop(
        self, client: httpx.AsyncClient, user: UserHandle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Argon2 is CPU-bound for a long while: on the event loop it would stall every request.
        threads: list[int] = []
        verify = service.verify_password

        def recording_verify(password: str, password_hash: str | None) -> bool:
            threads.append(threading.get_ident())
            return verify(password, password_hash)

        monkeypatch.setattr(service, "verify_password", recording_verify)
        response = await client.post(
            "/v1/auth/login", json={"email": user.email, "password": user.password}
        )

        assert response.status_code == 200
        assert threads
        assert threading.get_ident() not in threads


class TestSession:
    async def test_the_cookie_authenticates_me(
        self, client: httpx.AsyncClient, user: UserHandle, home: OrgHandle
    ) -> None:
        headers = await login_headers(client, user)

        response = await client.get("/v1/me", headers=headers)

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"]["email"] == user.email
        assert body["memberships"] == [{"org_id": home.id, "org_name": "acme", "role": "admin"}]
        assert body["org_id"] == home.id
        assert body["role"] == "admin"

    async def test_the_cookie_authenticates_org_routes(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        headers = await login_headers(client, user)

        response = await client.get("/v1/workflows", headers=headers)

        assert response.status_code == 200, response.text

    async def test_logout_revokes_the_session_on_the_server(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        headers = await login_headers(client, user)

        logout = await client.post("/v1/auth/logout", headers=headers)
        replayed = await client.get("/v1/me", headers=headers)

        assert logout.status_code == 204
        assert "voxflow_session=" in logout.headers["set-cookie"]  # the browser drops it too
        assert replayed.status_code == 401
        assert replayed.headers["content-type"] == PROBLEM

    async def test_logout_ends_only_that_session(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        laptop = await login_headers(client, user)
        phone = await login_headers(client, user)

        await client.post("/v1/auth/logout", headers=laptop)

        assert (await client.get("/v1/me", headers=laptop)).status_code == 401
        assert (await client.get("/v1/me", headers=phone)).status_code == 200

    async def test_naming_an_org_they_are_not_in_is_403(
        self, client: httpx.AsyncClient, user: UserHandle, other_org: OrgHandle
    ) -> None:
        headers = {**await login_headers(client, user), "Voxflow-Org": other_org.id}

        assert (await client.get("/v1/me", headers=headers)).status_code == 403
        assert (await client.get("/v1/workflows", headers=headers)).status_code == 403

    async def test_an_invented_cookie_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/me", headers={"Cookie": "voxflow_session=made-up"})

        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM


class TestSeveralOrgs:
    @pytest.fixture
    async def member_of_two(
        self, context: AppContext, org: OrgHandle, other_org: OrgHandle
    ) -> UserHandle:
        user = await new_user(context, org.id, "admin")
        await new_user(context, other_org.id, "member", email=user.email, password="unused")
        return user

    async def test_org_routes_need_the_voxflow_org_header(
        self, client: httpx.AsyncClient, member_of_two: UserHandle
    ) -> None:
        headers = await login_headers(client, member_of_two)

        response = await client.get("/v1/workflows", headers=headers)

        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert [e.get("parameter") for e in response.json()["errors"]] == ["Voxflow-Org"]

    async def test_the_header_picks_the_org_and_its_role(
        self,
        client: httpx.AsyncClient,
        member_of_two: UserHandle,
        org: OrgHandle,
        other_org: OrgHandle,
    ) -> None:
        headers = await login_headers(client, member_of_two)

        in_org = await client.get("/v1/me", headers={**headers, "Voxflow-Org": org.id})
        in_other = await client.get("/v1/me", headers={**headers, "Voxflow-Org": other_org.id})
        listed = await client.get("/v1/workflows", headers={**headers, "Voxflow-Org": org.id})

        assert (in_org.json()["org_id"], in_org.json()["role"]) == (org.id, "admin")
        assert (in_other.json()["org_id"], in_other.json()["role"]) == (other_org.id, "member")
        assert listed.status_code == 200

    async def test_an_org_they_do_not_belong_to_is_403(
        self, client: httpx.AsyncClient, context: AppContext, member_of_two: UserHandle
    ) -> None:
        stranger = await new_org(context, "stranger")
        headers = {**await login_headers(client, member_of_two), "Voxflow-Org": stranger.id}

        listed = await client.get("/v1/workflows", headers=headers)
        me = await client.get("/v1/me", headers=headers)

        assert listed.status_code == 403
        assert listed.headers["content-type"] == PROBLEM
        assert me.status_code == 403

    async def test_me_lists_every_membership_without_the_header(
        self,
        client: httpx.AsyncClient,
        member_of_two: UserHandle,
        org: OrgHandle,
        other_org: OrgHandle,
    ) -> None:
        # /v1/me is how a client learns which orgs it may name, so it cannot require one.
        headers = await login_headers(client, member_of_two)

        response = await client.get("/v1/me", headers=headers)

        assert response.status_code == 200, response.text
        body = response.json()
        assert {(m["org_id"], m["role"]) for m in body["memberships"]} == {
            (org.id, "admin"),
            (other_org.id, "member"),
        }
        assert body["org_id"] is None
        assert body["role"] is None
