"""Rate limits: login per IP and per email, API traffic per key; in Redis or in memory."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

import httpx

from support import OrgHandle, client_for, configured_app, new_org, new_user
from voxflow.core.context import AppContext
from voxflow.core.settings import Settings

DEFAULT_LOGIN_LIMIT = Settings.model_fields["login_rate_limit"].default
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def _unique_ip() -> str:
    # Limits kept in Redis outlive a test run: every test counts against its own address.
    return str(ipaddress.IPv6Address(uuid.uuid4().int))


def _unique_email() -> str:
    return f"nobody-{uuid.uuid4().hex}@example.com"


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60


async def _login(client: httpx.AsyncClient, email: str, password: str = "wrong") -> int:
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    return response.status_code


async def _me_statuses(client: httpx.AsyncClient, key: str, times: int) -> list[int]:
    headers = {"Authorization": f"Bearer {key}"}
    return [(await client.get("/v1/me", headers=headers)).status_code for _ in range(times)]


def test_the_default_login_limit_is_ten_per_minute() -> None:
    assert DEFAULT_LOGIN_LIMIT == "10/minute"


class TestLogin:
    async def test_the_eleventh_attempt_from_one_ip_is_429(self, database_url: str) -> None:
        async with (
            configured_app(database_url, login_rate_limit=DEFAULT_LOGIN_LIMIT) as app,
            client_for(app, _unique_ip()) as client,
        ):
            first_ten = await asyncio.gather(*(_login(client, _unique_email()) for _ in range(10)))
            eleventh = await client.post(
                "/v1/auth/login", json={"email": _unique_email(), "password": "wrong"}
            )

        assert first_ten == [401] * 10
        assert_rate_limited(eleventh)

    async def test_the_eleventh_attempt_at_one_email_is_429_even_with_the_right_password(
        self, database_url: str, context: AppContext, org: OrgHandle
    ) -> None:
        user = await new_user(context, org.id)
        async with configured_app(database_url, login_rate_limit=DEFAULT_LOGIN_LIMIT) as app:
            clients = [client_for(app, _unique_ip()) for _ in range(11)]
            first_ten = await asyncio.gather(*(_login(c, user.email) for c in clients[:10]))
            eleventh = await clients[10].post(
                "/v1/auth/login", json={"email": user.email.upper(), "password": user.password}
            )
            for c in clients:
                await c.aclose()

        assert first_ten == [401] * 10
        assert_rate_limited(eleventh)

    async def test_other_ips_and_emails_are_not_affected(self, database_url: str) -> None:
        async with configured_app(database_url, login_rate_limit="2/minute") as app:
            async with client_for(app, _unique_ip()) as busy:
                for _ in range(2):
                    await _login(busy, _unique_email())
                assert (await _login(busy, _unique_email())) == 429
            async with client_for(app, _unique_ip()) as fresh:
                assert (await _login(fresh, _unique_email())) == 401


class TestApiKey:
    async def test_the_sixth_request_within_five_per_minute_is_429(
        self, database_url: str, context: AppContext
    ) -> None:
        org = await new_org(context)
        async with (
            configured_app(database_url, api_rate_limit="5/minute") as app,
            client_for(app) as client,
        ):
            statuses = await _me_statuses(client, org.api_key, 5)
            sixth = await client.get("/v1/me", headers=org.headers)

        assert statuses == [200] * 5
        assert_rate_limited(sixth)

    async def test_every_limit_of_a_list_holds(
        self, database_url: str, context: AppContext
    ) -> None:
        org = await new_org(context)
        async with (
            configured_app(database_url, api_rate_limit="100/minute;3/hour") as app,
            client_for(app) as client,
        ):
            statuses = await _me_statuses(client, org.api_key, 3)
            fourth = await client.get("/v1/me", headers=org.headers)

        assert statuses == [200] * 3
        assert fourth.status_code == 429
        assert 60 < int(fourth.headers["retry-after"]) <= 3600  # the hourly limit's window

    async def test_each_key_has_its_own_budget(
        self, database_url: str, context: AppContext
    ) -> None:
        busy, quiet = await new_org(context), await new_org(context)
        async with (
            configured_app(database_url, api_rate_limit="5/minute") as app,
            client_for(app) as client,
        ):
            await _me_statuses(client, busy.api_key, 6)
            assert await _me_statuses(client, quiet.api_key, 5) == [200] * 5

    async def test_a_logged_in_person_is_limited_too(
        self, database_url: str, context: AppContext, org: OrgHandle
    ) -> None:
        user = await new_user(context, org.id)
        async with (
            configured_app(database_url, api_rate_limit="5/minute") as app,
            client_for(app) as client,
        ):
            login = await client.post(
                "/v1/auth/login", json={"email": user.email, "password": user.password}
            )
            headers = {"Cookie": f"voxflow_session={login.cookies['voxflow_session']}"}
            client.cookies.clear()
            statuses = [(await client.get("/v1/me", headers=headers)).status_code for _ in range(5)]
            sixth = await client.get("/v1/me", headers=headers)

        assert statuses == [200] * 5
        assert_rate_limited(sixth)


class TestInRedis:
    """With Redis the limits are shared: two app instances stand for two processes."""

    async def test_login_attempts_from_one_ip_count_across_processes(
        self, database_url: str, redis_url: str
    ) -> None:
        ip = _unique_ip()
        settings = {"login_rate_limit": DEFAULT_LOGIN_LIMIT, "redis_url": redis_url}
        async with (
            configured_app(database_url, **settings) as app_a,
            configured_app(database_url, **settings) as app_b,
            client_for(app_a, ip) as a,
            client_for(app_b, ip) as b,
        ):
            first_ten = await asyncio.gather(
                *(_login(process, _unique_email()) for process in [a, b] * 5)
            )
            eleventh = await a.post(
                "/v1/auth/login", json={"email": _unique_email(), "password": "wrong"}
            )

        assert first_ten == [401] * 10
        assert_rate_limited(eleventh)

    async def test_an_api_key_budget_is_shared_across_processes(
        self, database_url: str, redis_url: str, context: AppContext
    ) -> None:
        org = await new_org(context)
        settings = {"api_rate_limit": "5/minute", "redis_url": redis_url}
        async with (
            configured_app(database_url, **settings) as app_a,
            configured_app(database_url, **settings) as app_b,
            client_for(app_a) as a,
            client_for(app_b) as b,
        ):
            on_a = await _me_statuses(a, org.api_key, 3)
            on_b = await _me_statuses(b, org.api_key, 2)
            sixth = await b.get("/v1/me", headers=org.headers)

        assert on_a + on_b == [200] * 5
        assert_rate_limited(sixth)

    async def test_concurrent_hits_sharing_a_round_trip_let_exactly_the_limit_through(
        self, database_url: str, redis_url: str, context: AppContext
    ) -> None:
        # 40 requests at once on two processes: their hits are coalesced into few INCRBYs,
        # which must admit exactly as many as one INCR each would have.
        org = await new_org(context)
        settings = {"api_rate_limit": "7/minute", "redis_url": redis_url}
        async with (
            configured_app(database_url, **settings) as app_a,
            configured_app(database_url, **settings) as app_b,
            client_for(app_a) as a,
            client_for(app_b) as b,
        ):
            responses = await asyncio.gather(
                *(process.get("/v1/me", headers=org.headers) for process in [a, b] * 20)
            )

        statuses = [response.status_code for response in responses]
        assert statuses.count(200) == 7
        assert statuses.count(429) == 33


class TestRedisUnreachable:
    """A limit kept in memory is better than an outage."""

    async def test_requests_succeed_and_are_limited_in_memory(
        self, database_url: str, context: AppContext
    ) -> None:
        org = await new_org(context)
        async with (
            configured_app(database_url, api_rate_limit="5/minute", redis_url=CLOSED_REDIS) as app,
            client_for(app) as client,
        ):
            statuses = await _me_statuses(client, org.api_key, 5)
            sixth = await client.get("/v1/me", headers=org.headers)

        assert statuses == [200] * 5
        assert_rate_limited(sixth)

    async def test_login_still_works(
        self, database_url: str, context: AppContext, org: OrgHandle
    ) -> None:
        user = await new_user(context, org.id)
        async with (
            configured_app(database_url, redis_url=CLOSED_REDIS) as app,
            client_for(app) as client,
        ):
            assert await _login(client, user.email, user.password) == 200
