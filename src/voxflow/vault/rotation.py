"""Master key rotation: re-wrap every data key with the newest master key, online.

The values themselves are not re-encrypted: each row's data key is unwrapped with its old
master key and wrapped again with the new one. Rows are updated one at a time on the condition
that nobody changed them meanwhile (a server may be replacing a secret right now), and each
batch commits on its own, so an interrupted rotation keeps what it did, and running it again
continues with the rows still on an older key. Servers read the new key from the key file by
themselves (`voxflow.vault.vault.Vault` re-reads it when it changes).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update

from voxflow.audit.service import SYSTEM, record_audit
from voxflow.core.context import AppContext
from voxflow.vault.crypto import KeyRing, Sealed, VaultError, rewrap
from voxflow.vault.keys import add_key_version, parse_key_ring, remove_key_version
from voxflow.vault.models import Secret

BATCH = 200


@dataclass
class RotationPlan:
    ring: KeyRing
    added_version: int | None  # None: resuming, or the keys come from the environment
    pending: int  # rows wrapped by an older version


@dataclass
class RotationResult:
    key_version: int
    rewrapped: int


async def rows_by_version(context: AppContext) -> dict[int, int]:
    async with context.read_sessionmaker() as session:
        result = await session.execute(
            select(Secret.key_version, func.count()).group_by(Secret.key_version)
        )
        return {version: count for version, count in result.all()}


def key_source(context: AppContext) -> tuple[KeyRing, Path | None]:
    """The master keys as the settings give them, and the key file (None: the environment)."""
    settings = context.settings
    if settings.master_key is not None:
        return parse_key_ring(settings.master_key.get_secret_value()), None
    path = settings.master_key_file
    if not path.exists():
        raise VaultError(f"no master key: VOXFLOW_MASTER_KEY is unset and {path} does not exist")
    return parse_key_ring(path.read_text()), path


async def plan_rotation(context: AppContext) -> RotationPlan:
    """Add a new key version, unless an earlier rotation is still unfinished (then resume)."""
    ring, path = key_source(context)
    counts = await rows_by_version(context)
    unknown = sorted(set(counts) - set(ring.versions))
    if unknown:
        raise VaultError(f"stored secrets use key versions {unknown}, which the keys lack")
    pending = sum(count for version, count in counts.items() if version < ring.current)
    added = None
    if pending == 0 and path is not None:
        added = await asyncio.to_thread(add_key_version, path)
        ring = parse_key_ring(path.read_text())
        pending = sum(counts.values())
    return RotationPlan(ring=ring, added_version=added, pending=pending)


async def rewrap_all(
    context: AppContext, ring: KeyRing, advance: Callable[[int], None]
) -> RotationResult:
    """Re-wrap every row below `ring.current`; `advance(n)` after each batch."""
    target = ring.current
    done = 0
    per_org: Counter[str] = Counter()
    while True:
        async with context.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Secret.id, Secret.org_id, Secret.ciphertext)
                    .where(Secret.key_version < target)
                    .order_by(Secret.id)
                    .limit(BATCH)
                )
            ).all()
            if not rows:
                break
            changed = 0
            for secret_id, org_id, ciphertext in rows:
                sealed = rewrap(ring, Sealed.decode(ciphertext), org_id=org_id, secret_id=secret_id)
                result = await session.execute(
                    update(Secret)
                    .where(Secret.id == secret_id, Secret.ciphertext == ciphertext)
                    .values(ciphertext=sealed.encode(), key_version=target)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    changed += 1
                    per_org[org_id] += 1
            await session.commit()
        done += changed
        advance(changed)
        if changed == 0:
            # Every row of the batch was replaced under us (by a server still sealing with the
            # old key until it notices the new one): give it a moment, then take them again.
            await asyncio.sleep(1.0)
    async with context.sessionmaker() as session:
        for org_id, count in sorted(per_org.items()):
            await record_audit(
                session,
                org_id=org_id,
                actor=SYSTEM,
                action="vault.key_rotated",
                target_type="vault",
                target_id=f"key-{target}",
                detail={"key_version": target, "rewrapped": count},
            )
        await session.commit()
    return RotationResult(key_version=target, rewrapped=done)


async def remove_old_key(context: AppContext, version: int) -> None:
    """Drop master key `version` from the key file once no row needs it."""
    ring, path = key_source(context)
    if version == ring.current:
        raise VaultError(f"key version {version} is the current one; rotate first")
    if version not in ring.versions:
        raise VaultError(f"there is no key version {version} (versions: {ring.versions})")
    still = (await rows_by_version(context)).get(version, 0)
    if still:
        raise VaultError(
            f"{still} secrets still use key version {version}; run `voxflow secrets rotate-key`"
        )
    if path is None:
        raise VaultError(
            f"the keys come from VOXFLOW_MASTER_KEY: remove version {version} from it yourself"
        )
    await asyncio.to_thread(remove_key_version, path, version)
