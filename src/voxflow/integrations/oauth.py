"""The OAuth 2 protocol steps, through Authlib's httpx client: authorise, exchange, refresh,
revoke, and a request with the access token.

Every failure of the token endpoint becomes a `TokenEndpointError` whose `error` is the OAuth
error code (or one of ours: "server_error", "invalid_response", "unreachable") and whose
`description` is short and safe to show: never a token, code, verifier or client secret.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oauth2.client import OAuth2Client  # type: ignore[import-untyped]

from voxflow.integrations.pkce import s256_challenge
from voxflow.integrations.providers import OAuthProvider

# Under the 60 s lease of a connection's refresh lock (`voxflow.core.locks`).
HTTP_TIMEOUT_SECONDS = 10.0
MAX_DESCRIPTION = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_ERROR_CODE = re.compile(r"[^a-z0-9_.-]+")


class TokenEndpointError(Exception):
    def __init__(self, error: str, description: str) -> None:
        self.error = safe_error_code(error)
        self.description = safe_text(description)
        super().__init__(f"{self.error}: {self.description}")


@dataclass(frozen=True)
class TokenSet:
    """What the vault holds for a connection (as JSON)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    token_type: str
    expires_at: datetime | None
    scope: str

    def to_bytes(self) -> bytes:
        expires = int(self.expires_at.timestamp()) if self.expires_at is not None else None
        value = {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": self.token_type,
            "expires_at": expires,
            "scope": self.scope,
        }
        return json.dumps(value, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> TokenSet:
        value = json.loads(raw)
        expires = value.get("expires_at")
        return cls(
            access_token=value["access_token"],
            refresh_token=value.get("refresh_token"),
            token_type=value.get("token_type", "Bearer"),
            expires_at=datetime.fromtimestamp(expires, UTC) if expires is not None else None,
            scope=value.get("scope", ""),
        )


def _client(provider: OAuthProvider, redirect_uri: str | None = None) -> Any:
    # No client-wide scope: Authlib would add it to refresh requests, which some providers
    # refuse; the authorisation request names the scopes itself.
    secret = provider.client_secret.get_secret_value() if provider.client_secret else None
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=secret,
        token_endpoint_auth_method=provider.token_endpoint_auth_method,
        revocation_endpoint_auth_method=provider.token_endpoint_auth_method,
        redirect_uri=redirect_uri,
        timeout=HTTP_TIMEOUT_SECONDS,
        follow_redirects=False,
    )


def authorization_url(
    provider: OAuthProvider, *, redirect_uri: str, state: str, code_verifier: str
) -> str:
    # The challenge is computed here rather than by Authlib so that the one function the
    # tests check against RFC 7636's vector is the one whose result the provider receives.
    pkce = (
        {"code_challenge": s256_challenge(code_verifier), "code_challenge_method": "S256"}
        if provider.pkce
        else {}
    )
    # Building the URL needs no HTTP client: Authlib's protocol-only class does it.
    client = OAuth2Client(session=None, client_id=provider.client_id, redirect_uri=redirect_uri)
    url, _state = client.create_authorization_url(
        provider.authorize_url, state=state, scope=provider.scope, **pkce
    )
    return str(url)


async def exchange_code(
    provider: OAuthProvider, *, code: str, code_verifier: str, redirect_uri: str
) -> TokenSet:
    verifier = {"code_verifier": code_verifier} if provider.pkce else {}
    async with _client(provider, redirect_uri) as client:
        raw = await _token_call(
            lambda: client.fetch_token(
                provider.token_url,
                grant_type="authorization_code",
                code=code,
                redirect_uri=redirect_uri,
                **verifier,
            )
        )
    return token_set(raw, provider, previous_refresh_token=None)


async def refresh(provider: OAuthProvider, refresh_token: str) -> TokenSet:
    """New tokens; a response without `refresh_token` keeps `refresh_token` (RFC 6749 §6)."""
    async with _client(provider) as client:
        raw = await _token_call(lambda: client.refresh_token(provider.token_url, refresh_token))
    return token_set(raw, provider, previous_refresh_token=refresh_token)


async def revoke(provider: OAuthProvider, tokens: TokenSet) -> None:
    """Revoke at the provider (RFC 7009); a refresh token's revocation ends its grant."""
    assert provider.revocation_url is not None
    token, hint = (
        (tokens.refresh_token, "refresh_token")
        if tokens.refresh_token
        else (tokens.access_token, "access_token")
    )
    try:
        async with _client(provider) as client:
            response = await client.revoke_token(
                provider.revocation_url, token=token, token_type_hint=hint
            )
    except httpx2.HTTPError as exc:
        raise TokenEndpointError(
            "unreachable", f"revocation failed ({type(exc).__name__})"
        ) from None
    if response.status_code != 200:
        raise TokenEndpointError("server_error", f"revocation answered HTTP {response.status_code}")


async def probe(provider: OAuthProvider, url: str, access_token: str) -> int:
    """The HTTP status of a GET of `url` with the access token; raises httpx2.HTTPError."""
    async with _client(provider) as client:
        client.token = {"access_token": access_token, "token_type": "Bearer"}
        response = await client.get(url)
    return int(response.status_code)


async def _token_call(call: Callable[[], Awaitable[Any]]) -> Mapping[str, Any]:
    try:
        raw: Mapping[str, Any] = await call()
    except OAuthError as exc:
        error = exc.error or "oauth_error"
        description = exc.description or f"the token endpoint answered {error}"
        raise TokenEndpointError(error, description) from None
    except httpx2.HTTPStatusError as exc:
        status = exc.response.status_code
        raise TokenEndpointError(
            "server_error", f"the token endpoint answered HTTP {status}"
        ) from None
    except httpx2.HTTPError as exc:
        raise TokenEndpointError(
            "unreachable", f"the token endpoint could not be reached ({type(exc).__name__})"
        ) from None
    except ValueError:
        # Authlib's word for a body that is not a JSON object, or a malformed `expires_in`.
        raise TokenEndpointError(
            "invalid_response", "the token endpoint's answer is not a JSON token response"
        ) from None
    return raw


def token_set(
    raw: Mapping[str, Any], provider: OAuthProvider, *, previous_refresh_token: str | None
) -> TokenSet:
    """Check a token response (RFC 6749 §5.1) and keep what the vault stores."""
    access_token = raw.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenEndpointError("invalid_response", "the token response has no access_token")
    token_type = raw.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = safe_text(str(token_type))[:20] if token_type is not None else "none"
        raise TokenEndpointError(
            "invalid_response", f"the token type is {shown!r}, and only Bearer tokens are supported"
        )
    refresh_token = raw.get("refresh_token")
    if refresh_token is not None and (not isinstance(refresh_token, str) or not refresh_token):
        raise TokenEndpointError(
            "invalid_response", "the token response has an invalid refresh_token"
        )
    scope = raw.get("scope")
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token or previous_refresh_token,
        token_type="Bearer",  # noqa: S106 (the type's name)
        expires_at=_expires_at(raw.get("expires_in"), provider.default_token_lifetime),
        scope=scope if isinstance(scope, str) else provider.scope,
    )


def _expires_at(expires_in: object, default: timedelta) -> datetime:
    seconds = default.total_seconds()
    if isinstance(expires_in, int | float | str) and not isinstance(expires_in, bool):
        with contextlib.suppress(ValueError):  # a malformed lifetime gets the default
            seconds = float(expires_in)
    seconds = max(seconds, 0.0)
    return datetime.fromtimestamp(int(time.time() + seconds), UTC)


def safe_text(text: str) -> str:
    """A provider's words, fit for a message, a log line or a URL: one line, short."""
    cleaned = _UNSAFE.sub(" ", text).strip()
    return cleaned if len(cleaned) <= MAX_DESCRIPTION else cleaned[: MAX_DESCRIPTION - 1] + "…"


def safe_error_code(code: str) -> str:
    return _ERROR_CODE.sub("_", code.lower())[:40] or "oauth_error"
