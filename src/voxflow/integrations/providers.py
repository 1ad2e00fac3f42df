"""The OAuth providers a connection can be made to, declared as data and read from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from pydantic import SecretStr

from voxflow.core.settings import Settings

TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]

AIRTABLE = "airtable"
GENERIC = "generic"


@dataclass(frozen=True)
class OAuthProvider:
    name: str
    title: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    client_id: str | None
    client_secret: SecretStr | None = field(default=None, repr=False)
    token_endpoint_auth_method: TokenEndpointAuthMethod = "none"  # noqa: S105 (a method)
    pkce: bool = True
    revocation_url: str | None = None
    # A GET that answers 2xx when the access token works.
    test_url: str | None = None
    # When the token response has no `expires_in`.
    default_token_lifetime: timedelta = timedelta(hours=1)
    # What an operator sets to configure it, for the "not configured" message.
    client_id_setting: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.client_id)

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    def not_configured_reason(self) -> str:
        return (
            f"{self.title} is not configured: set {self.client_id_setting} (and its client "
            "secret, unless it is a public client) on the server, then restart it."
        )


def airtable(settings: Settings) -> OAuthProvider:
    # https://airtable.com/developers/web/api/oauth-reference: PKCE S256 is required; a
    # client with a secret authenticates with HTTP Basic, one without is a public client.
    # Access tokens last 60 minutes; each refresh token works once and comes back rotated.
    secret = settings.airtable_client_secret
    return OAuthProvider(
        name=AIRTABLE,
        title="Airtable",
        authorize_url="https://airtable.com/oauth2/v1/authorize",
        token_url="https://airtable.com/oauth2/v1/token",  # noqa: S106 (a URL)
        scopes=(
            "data.records:read",
            "data.records:write",
            "schema.bases:read",
            "user.email:read",
        ),
        client_id=settings.airtable_client_id,
        client_secret=secret,
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        pkce=True,
        test_url="https://api.airtable.com/v0/meta/whoami",
        default_token_lifetime=timedelta(minutes=60),
        client_id_setting="VOXFLOW_AIRTABLE_CLIENT_ID",
    )


def generic(settings: Settings) -> OAuthProvider | None:
    if not (settings.generic_oauth_authorize_url and settings.generic_oauth_token_url):
        return None
    return OAuthProvider(
        name=GENERIC,
        title=settings.generic_oauth_title,
        authorize_url=settings.generic_oauth_authorize_url,
        token_url=settings.generic_oauth_token_url,
        scopes=tuple(settings.generic_oauth_scopes.split()),
        client_id=settings.generic_oauth_client_id,
        client_secret=settings.generic_oauth_client_secret,
        token_endpoint_auth_method=settings.generic_oauth_token_endpoint_auth_method,
        pkce=settings.generic_oauth_pkce,
        revocation_url=settings.generic_oauth_revocation_url,
        test_url=settings.generic_oauth_test_url,
        client_id_setting="VOXFLOW_GENERIC_OAUTH_CLIENT_ID",
    )


def providers(settings: Settings) -> dict[str, OAuthProvider]:
    """Every provider this server knows, configured or not, by name."""
    found = [airtable(settings), generic(settings)]
    return {provider.name: provider for provider in found if provider is not None}


def title_of(settings: Settings, name: str) -> str:
    """How to call provider `name` in a message, even once it is no longer configured."""
    provider = providers(settings).get(name)
    return provider.title if provider is not None else name
