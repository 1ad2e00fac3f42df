"""Helpers of the OAuth tests: two providers configured, people who can sign in, and the
providers' endpoints faked at the HTTP boundary.

Authlib's httpx integration runs on `httpx2` (and so `httpcore2`) when that is installed, as
it is here (the OpenAI SDK needs it), and respx patches only `httpcore`. `HTTPCore2Mocker`
teaches respx the same patch for `httpcore2`, so the real Authlib code builds and sends
every request, and only the socket is replaced.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore2
import httpx
from respx.mocks import HTTPCoreMocker

from support import OrgHandle, UserHandle, login_headers, new_user
from voxflow.audit.service import SYSTEM
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.integrations.models import Connection
from voxflow.integrations.oauth import TokenSet
from voxflow.integrations.providers import providers
from voxflow.integrations.repository import transaction
from voxflow.integrations.service import create_connection
from voxflow.vault.vault import get_vault


class HTTPCore2Mocker(HTTPCoreMocker):
    name = "httpcore2"
    targets = [
        "httpcore2._async.connection.AsyncHTTPConnection",
        "httpcore2._async.connection_pool.AsyncConnectionPool",
        "httpcore2._async.http_proxy.AsyncHTTPProxy",
    ]

    @classmethod
    def from_sync_httpx_response(cls, httpx_response: Any, target: Any, **kwargs: Any) -> Any:
        return httpcore2.Response(
            status=httpx_response.status_code,
            headers=httpx_response.headers.raw,
            content=httpx_response.stream,
            extensions=httpx_response.extensions,
        )


PUBLIC_URL = "https://voxflow.example.com"
REDIRECT_URI = f"{PUBLIC_URL}/v1/integrations/oauth/callback"
AIRTABLE_TOKEN_URL = "https://airtable.com/oauth2/v1/token"
AIRTABLE_WHOAMI = "https://api.airtable.com/v0/meta/whoami"
ACME_AUTHORIZE_URL = "https://auth.acme.test/authorize"
ACME_TOKEN_URL = "https://auth.acme.test/token"
ACME_REVOKE_URL = "https://auth.acme.test/revoke"
ACME_TEST_URL = "https://api.acme.test/me"

OAUTH_SETTINGS: dict[str, object] = {
    "public_url": PUBLIC_URL,
    "airtable_client_id": "airtable-client",
    "airtable_client_secret": "airtable-secret",
    "generic_oauth_title": "Acme CRM",
    "generic_oauth_authorize_url": ACME_AUTHORIZE_URL,
    "generic_oauth_token_url": ACME_TOKEN_URL,
    "generic_oauth_revocation_url": ACME_REVOKE_URL,
    "generic_oauth_test_url": ACME_TEST_URL,
    "generic_oauth_scopes": "contacts.read contacts.write",
    "generic_oauth_client_id": "acme-client",
    "generic_oauth_client_secret": "acme-secret",
    "generic_oauth_token_endpoint_auth_method": "client_secret_post",
}


@dataclass(frozen=True)
class Person:
    """A signed-in person of an org, and the org's owner API key."""

    org: OrgHandle
    user: UserHandle
    headers: dict[str, str]

    @property
    def org_id(self) -> str:
        return self.org.id


async def signed_in(
    context: AppContext, client: httpx.AsyncClient, org: OrgHandle, role: str = "admin"
) -> Person:
    user = await new_user(context, org.id, role)
    return Person(org, user, await login_headers(client, user))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def token_response(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": unique("access"),
        "refresh_token": unique("refresh"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "data.records:read data.records:write schema.bases:read user.email:read",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def form(request: httpx.Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.content.decode()).items()}


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def start(
    client: httpx.AsyncClient,
    person: Person,
    provider: str = "airtable",
    name: str = "Sales CRM",
    return_to: str = "/settings/integrations",
) -> dict[str, str]:
    """Start connecting; the authorize URL's query parameters."""
    response = await client.post(
        f"/v1/integrations/{provider}/connect",
        json={"name": name, "return_to": return_to},
        headers=person.headers,
    )
    assert response.status_code == 201, response.text
    return query(response.json()["authorize_url"])


async def come_back(client: httpx.AsyncClient, person: Person, **params: str) -> httpx.Response:
    return await client.get(
        "/v1/integrations/oauth/callback", params=params, headers=person.headers
    )


async def stored_connection(
    context: AppContext,
    org_id: str,
    *,
    provider: str = "airtable",
    name: str | None = None,
    tokens: TokenSet,
) -> Connection:
    """A connection as the callback stores one, without the browser round trip."""
    vault = await get_vault(context)
    async with transaction(context) as session:
        return await create_connection(
            session,
            vault,
            org_id=org_id,
            provider=providers(context.settings)[provider],
            name=name or unique("conn"),
            tokens=tokens,
            actor=SYSTEM,
        )


async def issued_an_hour_ago(context: AppContext, connection_id: str) -> None:
    """As if the connection's token had been issued an hour ago."""
    async with context.sessionmaker() as session:
        connection = await session.get(Connection, connection_id)
        assert connection is not None
        connection.created_at = utcnow() - timedelta(hours=1)
        await session.commit()
