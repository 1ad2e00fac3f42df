"""Where the master keys come from: `VOXFLOW_MASTER_KEY`, or the key file (0600).

Both hold one or more versions, newest last: `1:<base64>` lines in the file, the same entries
separated by commas in the variable (a bare base64 key is version 1). New secrets are sealed
with the highest version; older ones stay until every data key has been re-wrapped.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

from voxflow.vault.crypto import KeyRing, VaultError, new_master_key, parse_master_key

log = structlog.get_logger("voxflow.vault")


def parse_key_ring(text: str) -> KeyRing:
    keys: dict[int, bytes] = {}
    entries = [entry.strip() for entry in text.replace(",", "\n").splitlines() if entry.strip()]
    if not entries:
        raise VaultError("the master key is empty")
    for entry in entries:
        version_text, separator, encoded = entry.partition(":")
        if not separator:
            version_text, encoded = "1", entry
        if not version_text.isdigit() or int(version_text) < 1:
            raise VaultError(f"master key version {version_text!r} is not a positive number")
        version = int(version_text)
        if version in keys:
            raise VaultError(f"master key version {version} is given twice")
        keys[version] = parse_master_key(encoded)
    return KeyRing(keys, current=max(keys))


def load_key_ring(env_value: str | None, path: Path, *, may_generate: bool) -> KeyRing:
    """The master keys; a new key file only when `may_generate` (no ciphertext stored yet)."""
    if env_value:
        return parse_key_ring(env_value)
    if path.exists():
        if readable_by_others(path):
            log.warning("master_key_file_too_open", path=str(path), fix=f"chmod 600 {path}")
        return parse_key_ring(path.read_text())
    if not may_generate:
        raise VaultError(
            f"no master key: the database holds encrypted secrets, but VOXFLOW_MASTER_KEY is "
            f"unset and {path} does not exist"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, f"1:{new_master_key()}\n", exclusive=True)
    log.info("master_key_generated", path=str(path))
    return parse_key_ring(path.read_text())


def add_key_version(path: Path) -> int:
    """Append a new master key version to the key file (for rotation); its number."""
    ring = parse_key_ring(path.read_text())
    version = max(ring.versions) + 1
    _replace(path, path.read_text().rstrip("\n") + f"\n{version}:{new_master_key()}\n")
    return version


def remove_key_version(path: Path, version: int) -> None:
    """Drop one version from the key file (after rotation, once no secret uses it)."""
    kept = [
        line
        for line in (line.strip() for line in path.read_text().splitlines())
        if line and (line.partition(":")[0] if ":" in line else "1") != str(version)
    ]
    parse_key_ring("\n".join(kept))  # never write a file that would not load
    _replace(path, "\n".join(kept) + "\n")


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".new")
    _write_private(temporary, text, exclusive=False)
    os.replace(temporary, path)  # atomic: a crash leaves the old file or the new one


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def readable_by_others(path: Path) -> bool:
    """Whether anyone but the owner may read or write the key file (it should be 0600)."""
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)
