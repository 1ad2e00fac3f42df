"""The secrets of one authorisation: `state` (RFC 6749 §10.12) and the PKCE pair (RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_state() -> str:
    return secrets.token_urlsafe(32)


def state_id(state: str) -> str:
    """How a state is stored and looked up: the database never holds the value itself."""
    return hashlib.sha256(state.encode()).hexdigest()


def new_code_verifier() -> str:
    # 64 characters of the unreserved alphabet: within RFC 7636's 43..128, 384 bits of entropy.
    return secrets.token_urlsafe(48)


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
