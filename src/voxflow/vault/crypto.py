"""Envelope encryption for the vault: a data key per secret, wrapped by a versioned master key.

    ring = KeyRing({1: master_key}, current=1)
    sealed = seal(ring, b"sk-live-…", org_id="org_…", secret_id="sec_…")
    stored = sealed.encode()                    # one ASCII string for a column
    open_sealed(ring, Sealed.decode(stored), org_id="org_…", secret_id="sec_…")

AES-256-GCM (`cryptography`'s AESGCM) with random 96-bit nonces, everywhere. The value is
encrypted with a fresh data key under associated data naming the org and the secret, so a
ciphertext copied to another row or org does not decrypt. The data key is wrapped by the master
key under associated data naming org, secret *and* key version, so rotating the master key
re-wraps data keys (`rewrap`) without touching the encrypted values.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = "v1"


class VaultError(Exception):
    """A key or a ciphertext is unusable; the message never contains key material."""


class DecryptionFailed(VaultError):
    pass


def parse_master_key(encoded: str) -> bytes:
    """A master key from its base64 text (`VOXFLOW_MASTER_KEY`, or the key file's content)."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VaultError("the master key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise VaultError(f"the master key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_master_key() -> str:
    """A fresh master key, base64-encoded as it is stored."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class KeyRing:
    """Master keys by version; new secrets are sealed with `current`."""

    def __init__(self, keys: Mapping[int, bytes], current: int) -> None:
        if current not in keys:
            raise VaultError(f"no master key of version {current}")
        for version, key in keys.items():
            if version < 1 or len(key) != KEY_BYTES:
                raise VaultError(f"master key version {version} is malformed")
        self._keys = dict(keys)
        self.current = current

    @property
    def versions(self) -> list[int]:
        return sorted(self._keys)

    def key(self, version: int) -> AESGCM:
        key = self._keys.get(version)
        if key is None:
            raise VaultError(f"no master key of version {version}; was it removed too early?")
        return AESGCM(key)


@dataclass(frozen=True)
class Sealed:
    key_version: int
    wrapped_key: bytes  # nonce + AES-GCM(master key, data key)
    ciphertext: bytes  # nonce + AES-GCM(data key, value)

    def encode(self) -> str:
        wrapped = base64.urlsafe_b64encode(self.wrapped_key).decode()
        data = base64.urlsafe_b64encode(self.ciphertext).decode()
        return f"{_FORMAT}.{self.key_version}.{wrapped}.{data}"

    @classmethod
    def decode(cls, text: str) -> Sealed:
        try:
            form, version, wrapped, data = text.split(".")
            if form != _FORMAT:
                raise ValueError(form)
            return cls(
                key_version=int(version),
                wrapped_key=base64.urlsafe_b64decode(wrapped.encode()),
                ciphertext=base64.urlsafe_b64decode(data.encode()),
            )
        except (ValueError, binascii.Error):
            raise VaultError("a stored secret is not in the vault's format") from None


def seal(ring: KeyRing, value: bytes, *, org_id: str, secret_id: str) -> Sealed:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, value, _value_aad(org_id, secret_id))
    return Sealed(
        key_version=ring.current,
        wrapped_key=_wrap(ring, ring.current, data_key, org_id, secret_id),
        ciphertext=ciphertext,
    )


def open_sealed(ring: KeyRing, sealed: Sealed, *, org_id: str, secret_id: str) -> bytes:
    return open_with_data_key(
        unwrap_data_key(ring, sealed, org_id=org_id, secret_id=secret_id),
        sealed,
        org_id=org_id,
        secret_id=secret_id,
    )


def unwrap_data_key(ring: KeyRing, sealed: Sealed, *, org_id: str, secret_id: str) -> bytes:
    """The secret's data key (for a short-lived cache: opening then costs one AES-GCM pass)."""
    return _unwrap(ring, sealed, org_id, secret_id)


def open_with_data_key(data_key: bytes, sealed: Sealed, *, org_id: str, secret_id: str) -> bytes:
    return prepare_open(data_key, sealed, org_id=org_id, secret_id=secret_id).open()


@dataclass(frozen=True, slots=True)
class PreparedOpen:
    """One stored value ready to decrypt: what a cache keeps so a read is one AES-GCM pass."""

    cipher: AESGCM
    nonce: bytes
    body: bytes
    aad: bytes

    def open(self) -> bytes:
        try:
            return self.cipher.decrypt(self.nonce, self.body, self.aad)
        except (InvalidTag, ValueError):
            raise DecryptionFailed("the secret does not decrypt for this org and secret") from None


def prepare_open(data_key: bytes, sealed: Sealed, *, org_id: str, secret_id: str) -> PreparedOpen:
    return PreparedOpen(
        cipher=AESGCM(data_key),
        nonce=sealed.ciphertext[:NONCE_BYTES],
        body=sealed.ciphertext[NONCE_BYTES:],
        aad=_value_aad(org_id, secret_id),
    )


def rewrap(
    ring: KeyRing, sealed: Sealed, *, org_id: str, secret_id: str, to_version: int | None = None
) -> Sealed:
    """The same value with its data key wrapped by another master key (default: the current)."""
    target = ring.current if to_version is None else to_version
    data_key = _unwrap(ring, sealed, org_id, secret_id)
    return Sealed(
        key_version=target,
        wrapped_key=_wrap(ring, target, data_key, org_id, secret_id),
        ciphertext=sealed.ciphertext,
    )


def _wrap(ring: KeyRing, version: int, data_key: bytes, org_id: str, secret_id: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    aad = _key_aad(org_id, secret_id, version)
    return nonce + ring.key(version).encrypt(nonce, data_key, aad)


def _unwrap(ring: KeyRing, sealed: Sealed, org_id: str, secret_id: str) -> bytes:
    nonce, body = sealed.wrapped_key[:NONCE_BYTES], sealed.wrapped_key[NONCE_BYTES:]
    aad = _key_aad(org_id, secret_id, sealed.key_version)
    try:
        data_key = ring.key(sealed.key_version).decrypt(nonce, body, aad)
    except (InvalidTag, ValueError):
        raise DecryptionFailed(
            "the data key does not unwrap: wrong master key, or another org's or secret's row"
        ) from None
    if len(data_key) != KEY_BYTES:
        raise DecryptionFailed("the data key is malformed")
    return data_key


def _value_aad(org_id: str, secret_id: str) -> bytes:
    return _aad("value", org_id, secret_id)


def _key_aad(org_id: str, secret_id: str, version: int) -> bytes:
    return _aad("key", org_id, secret_id, str(version))


def _aad(*parts: str) -> bytes:
    # Length-prefixed, so ("ab", "c") and ("a", "bc") can never produce the same bytes.
    return b"voxflow/vault/v1" + b"".join(
        len(encoded).to_bytes(4, "big") + encoded for encoded in (p.encode() for p in parts)
    )
