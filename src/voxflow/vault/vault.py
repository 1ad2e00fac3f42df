"""The process's vault: its master keys, and a short-lived cache of unwrapped data keys.

    vault = await get_vault(context)
    ciphertext, key_version = vault.seal(b"value", org_id=…, secret_id=…)
    vault.open(ciphertext, org_id=…, secret_id=…)

Keys come from `VOXFLOW_MASTER_KEY` or the key file (`voxflow.vault.keys`). A key file is
re-read when it changes or when a row names a key version this process has not seen, so
`voxflow secrets rotate-key` can run while servers serve.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import structlog
from sqlalchemy import exists, select

from voxflow.core.context import AppContext
from voxflow.vault.crypto import (
    KeyRing,
    PreparedOpen,
    Sealed,
    VaultError,
    prepare_open,
    seal,
    unwrap_data_key,
)
from voxflow.vault.keys import load_key_ring, parse_key_ring
from voxflow.vault.models import Secret

log = structlog.get_logger("voxflow.vault")

_FILE_CHECK_SECONDS = 5.0
_DATA_KEYS_CACHED = 10_000


class Vault:
    def __init__(
        self, ring: KeyRing, *, key_file: Path | None = None, cache_seconds: float = 60.0
    ) -> None:
        self._ring = ring
        self._key_file = key_file  # None when the keys come from the environment
        self._file_stamp = _stamp(key_file)
        self._checked_at = time.monotonic()
        self._cache_seconds = cache_seconds
        # (org, secret, stored text) → (expiry, the value ready to decrypt with its data key).
        self._prepared: dict[tuple[str, str, str], tuple[float, PreparedOpen]] = {}
        self._lock = threading.Lock()

    @property
    def ring(self) -> KeyRing:
        self._reload_if_changed()
        return self._ring

    def seal(self, value: bytes, *, org_id: str, secret_id: str) -> tuple[str, int]:
        """The stored form of `value` for row `secret_id` of `org_id`, and its key version."""
        sealed = seal(self.ring, value, org_id=org_id, secret_id=secret_id)
        return sealed.encode(), sealed.key_version

    def open(self, ciphertext: str, *, org_id: str, secret_id: str) -> bytes:
        """The value stored as `ciphertext`; raises VaultError (wrong key, row or org)."""
        cache_key = (org_id, secret_id, ciphertext)
        cached = self._prepared.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1].open()
        sealed = Sealed.decode(ciphertext)
        data_key = unwrap_data_key(
            self._ring_for(sealed.key_version), sealed, org_id=org_id, secret_id=secret_id
        )
        prepared = prepare_open(data_key, sealed, org_id=org_id, secret_id=secret_id)
        value = prepared.open()
        if self._cache_seconds > 0:
            self._remember(cache_key, prepared)
        return value

    def _remember(self, key: tuple[str, str, str], prepared: PreparedOpen) -> None:
        # Keyed by the stored text itself: a new value or a re-wrap is a new key, so a stale
        # data key is never used; entries expire after `cache_seconds` all the same.
        with self._lock:
            while len(self._prepared) >= _DATA_KEYS_CACHED:
                self._prepared.pop(next(iter(self._prepared)))  # the oldest
            self._prepared[key] = (time.monotonic() + self._cache_seconds, prepared)

    def open_row(self, secret: Secret) -> bytes:
        return self.open(secret.ciphertext, org_id=secret.org_id, secret_id=secret.id)

    def seal_into(self, secret: Secret, value: bytes) -> None:
        """Store `value` in `secret` (a row whose id and org are set)."""
        secret.ciphertext, secret.key_version = self.seal(
            value, org_id=secret.org_id, secret_id=secret.id
        )

    def _ring_for(self, version: int) -> KeyRing:
        ring = self.ring
        if version not in ring.versions and self._key_file is not None:
            self._reload()  # a rotation in another process added it
        return self._ring

    def _reload_if_changed(self) -> None:
        if self._key_file is None:
            return
        now = time.monotonic()
        if now - self._checked_at < _FILE_CHECK_SECONDS:
            return
        self._checked_at = now
        if _stamp(self._key_file) != self._file_stamp:
            self._reload()

    def _reload(self) -> None:
        assert self._key_file is not None
        try:
            ring = parse_key_ring(self._key_file.read_text())
        except (OSError, VaultError) as exc:
            log.error("master_key_reload_failed", path=str(self._key_file), error=str(exc))
            return
        self._file_stamp = _stamp(self._key_file)
        if ring.versions != self._ring.versions:
            log.info("master_keys_reloaded", versions=ring.versions, current=ring.current)
        self._ring = ring


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


class VaultUnavailable(VaultError):
    """The vault cannot open (no key for existing ciphertext, or a key that does not fit)."""


async def open_vault(context: AppContext) -> Vault:
    """Load the master keys, generating a key file only while no ciphertext is stored.

    With ciphertext stored, the keys must open a stored row: a wrong key is refused here,
    before anything could be written with it.
    """
    settings = context.settings
    async with context.read_sessionmaker() as session:
        stored = await session.scalar(select(exists().where(Secret.id.is_not(None))))
        sample = (
            await session.scalar(select(Secret).order_by(Secret.id.desc()).limit(1))
            if stored
            else None
        )
    env_value = settings.master_key.get_secret_value() if settings.master_key else None
    path = settings.master_key_file
    try:
        ring = await asyncio.to_thread(load_key_ring, env_value, path, may_generate=not stored)
    except VaultError as exc:
        raise VaultUnavailable(str(exc)) from None
    vault = Vault(
        ring,
        key_file=None if env_value else path,
        cache_seconds=settings.vault_cache_seconds,
    )
    if sample is not None:
        try:
            vault.open_row(sample)
        except VaultError:
            source = "VOXFLOW_MASTER_KEY" if env_value else str(path)
            raise VaultUnavailable(
                f"the master key from {source} does not open the stored secrets "
                f"(key versions {ring.versions}); is it the key they were sealed with?"
            ) from None
    return vault


async def get_vault(context: AppContext) -> Vault:
    """This process's vault, opened on first use (the server opens it at start)."""
    vault: Vault | None = context.extras.get("vault")
    if vault is None:
        lock: asyncio.Lock = context.extras.setdefault("vault_lock", asyncio.Lock())
        async with lock:
            vault = context.extras.get("vault")
            if vault is None:
                vault = await open_vault(context)
                context.extras["vault"] = vault
    return vault
