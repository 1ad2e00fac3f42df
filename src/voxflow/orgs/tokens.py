"""Credential material: API keys, session tokens and password hashes."""

from __future__ import annotations

import hashlib
import secrets

from pwdlib import PasswordHash

API_KEY_PREFIX = "vf_"
_passwords = PasswordHash.recommended()
# Verifying against a real hash when the email is unknown keeps login time flat,
# so response time does not reveal which emails have accounts.
_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(api_key: str) -> str:
    return api_key[: len(API_KEY_PREFIX) + 8]


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _passwords.verify(password, _DUMMY_HASH)
        return False
    return _passwords.verify(password, password_hash)


def generate_password() -> str:
    return secrets.token_urlsafe(12)
