"""Master keys at start and in rotation: generated once, refused when missing or wrong,
rotated online and resumable, old versions removable only when unused."""

from __future__ import annotations

import base64
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from support import make_settings, new_org
from voxflow.core.context import AppContext
from voxflow.core.ids import new_id
from voxflow.vault import rotation
from voxflow.vault.crypto import VaultError
from voxflow.vault.keys import parse_key_ring
from voxflow.vault.models import Secret
from voxflow.vault.repository import SECRET
from voxflow.vault.vault import Vault, VaultUnavailable, open_vault

OTHER_KEY = base64.b64encode(b"\x02" * 32).decode()


@pytest.fixture
async def keyed(own_database: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    """A context whose keys live in a fresh key file (not the environment)."""
    context = AppContext.create(
        make_settings(own_database, master_key=None, master_key_file=tmp_path / "master.key")
    )
    yield context
    await context.close()


async def store(context: AppContext, vault: Vault, org_id: str, count: int) -> list[str]:
    ids = []
    async with context.sessionmaker() as session:
        for index in range(count):
            secret = Secret(
                id=new_id("sec"),
                org_id=org_id,
                kind=SECRET,
                name=f"S{index}_{new_id('x')[2:]}",
                created_by="test",
            )
            vault.seal_into(secret, f"value-{index}".encode())
            session.add(secret)
            ids.append(secret.id)
        await session.commit()
    return ids


async def values(context: AppContext, vault: Vault, ids: list[str]) -> list[str]:
    async with context.sessionmaker() as session:
        rows = (await session.scalars(select(Secret).where(Secret.id.in_(ids)))).all()
    by_id = {row.id: vault.open_row(row).decode() for row in rows}
    return [by_id[secret_id] for secret_id in ids]


async def versions(context: AppContext, ids: list[str]) -> set[int]:
    async with context.sessionmaker() as session:
        return set(
            (await session.scalars(select(Secret.key_version).where(Secret.id.in_(ids)))).all()
        )


@pytest.fixture
def empty_database(own_database: str) -> str:
    return own_database


class TestStart:
    async def test_first_start_generates_a_private_key_file(
        self, empty_database: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "keys" / "master.key"
        context = AppContext.create(
            make_settings(empty_database, master_key=None, master_key_file=path)
        )
        try:
            vault = await open_vault(context)
        finally:
            await context.close()

        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert vault.ring.versions == [1]

    async def test_stored_ciphertext_and_no_key_refuses_with_one_clear_line(
        self, empty_database: str, tmp_path: Path
    ) -> None:
        first = AppContext.create(
            make_settings(empty_database, master_key=None, master_key_file=tmp_path / "a.key")
        )
        org = await new_org(first)
        await store(first, await open_vault(first), org.id, 1)
        await first.close()
        missing = tmp_path / "b.key"
        second = AppContext.create(
            make_settings(empty_database, master_key=None, master_key_file=missing)
        )
        try:
            with pytest.raises(VaultUnavailable) as raised:
                await open_vault(second)
        finally:
            await second.close()

        message = str(raised.value)
        assert "\n" not in message
        assert "VOXFLOW_MASTER_KEY" in message
        assert str(missing) in message
        assert not missing.exists()  # never generated over existing ciphertext

    async def test_a_wrong_key_is_refused_and_nothing_is_overwritten(
        self, empty_database: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "a.key"
        first = AppContext.create(
            make_settings(empty_database, master_key=None, master_key_file=path)
        )
        org = await new_org(first)
        await store(first, await open_vault(first), org.id, 1)
        await first.close()
        original = path.read_text()
        wrong = AppContext.create(make_settings(empty_database, master_key=OTHER_KEY))
        try:
            with pytest.raises(VaultUnavailable, match="does not open the stored secrets"):
                await open_vault(wrong)
        finally:
            await wrong.close()

        assert path.read_text() == original

    def test_serve_refuses_to_start_without_the_key(
        self, empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import asyncio

        from typer.testing import CliRunner

        from voxflow.cli import app

        async def seed() -> None:
            context = AppContext.create(
                make_settings(empty_database, master_key=None, master_key_file=tmp_path / "a.key")
            )
            org = await new_org(context)
            await store(context, await open_vault(context), org.id, 1)
            await context.close()

        asyncio.run(seed())
        monkeypatch.setenv("VOXFLOW_DATABASE_URL", empty_database)
        monkeypatch.setenv("VOXFLOW_MASTER_KEY_FILE", str(tmp_path / "gone.key"))
        monkeypatch.delenv("VOXFLOW_MASTER_KEY", raising=False)
        from voxflow.core.settings import get_settings

        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, ["serve", "--port", "0"])
        finally:
            get_settings.cache_clear()

        assert result.exit_code == 1
        assert "cannot open the vault" in result.output
        assert "Traceback" not in result.output


class TestRotation:
    async def test_rotation_rewraps_every_row_and_old_ciphertexts_still_read(
        self, keyed: AppContext
    ) -> None:
        org = await new_org(keyed)
        vault = await open_vault(keyed)
        ids = await store(keyed, vault, org.id, 25)
        old_rows = await _ciphertexts(keyed, ids)

        plan = await rotation.plan_rotation(keyed)
        advanced: list[int] = []
        result = await rotation.rewrap_all(keyed, plan.ring, advanced.append)
        fresh = Vault(parse_key_ring(keyed.settings.master_key_file.read_text()))

        assert plan.added_version == 2
        assert result.rewrapped >= 25
        assert sum(advanced) == result.rewrapped
        assert await versions(keyed, ids) == {2}
        assert await values(keyed, fresh, ids) == [f"value-{i}" for i in range(25)]
        # The value ciphertext is untouched: only the wrapped data key changed.
        new_rows = await _ciphertexts(keyed, ids)
        assert [r.split(".")[3] for r in new_rows] == [r.split(".")[3] for r in old_rows]
        # A server still holding the version-1 ring learns version 2 from the file by itself.
        assert await values(keyed, vault, ids) == [f"value-{i}" for i in range(25)]

    async def test_an_interrupted_rotation_resumes_without_adding_another_key(
        self, keyed: AppContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        org = await new_org(keyed)
        vault = await open_vault(keyed)
        ids = await store(keyed, vault, org.id, 5)
        monkeypatch.setattr(rotation, "BATCH", 2)
        plan = await rotation.plan_rotation(keyed)

        def interrupt(_: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            await rotation.rewrap_all(keyed, plan.ring, interrupt)
        half = await versions(keyed, ids)
        resumed = await rotation.plan_rotation(keyed)
        await rotation.rewrap_all(keyed, resumed.ring, lambda _: None)

        assert half == {1, 2}
        assert resumed.added_version is None
        assert resumed.ring.current == 2
        assert await versions(keyed, ids) == {2}
        assert await values(keyed, vault, ids) == [f"value-{i}" for i in range(5)]

    async def test_the_old_version_is_removable_only_once_unused(self, keyed: AppContext) -> None:
        org = await new_org(keyed)
        vault = await open_vault(keyed)
        ids = await store(keyed, vault, org.id, 3)
        plan = await rotation.plan_rotation(keyed)

        with pytest.raises(VaultError, match="still use key version 1"):
            await rotation.remove_old_key(keyed, 1)
        await rotation.rewrap_all(keyed, plan.ring, lambda _: None)
        with pytest.raises(VaultError, match="current"):
            await rotation.remove_old_key(keyed, 2)
        await rotation.remove_old_key(keyed, 1)

        ring = parse_key_ring(keyed.settings.master_key_file.read_text())
        assert ring.versions == [2]
        assert await values(keyed, Vault(ring), ids) == ["value-0", "value-1", "value-2"]

    async def test_rotation_is_audited_per_org(self, keyed: AppContext) -> None:
        from voxflow.audit.models import AuditEvent

        org = await new_org(keyed)
        vault = await open_vault(keyed)
        await store(keyed, vault, org.id, 2)
        plan = await rotation.plan_rotation(keyed)
        await rotation.rewrap_all(keyed, plan.ring, lambda _: None)

        async with keyed.sessionmaker() as session:
            events = (
                await session.scalars(
                    select(AuditEvent).where(
                        AuditEvent.org_id == org.id, AuditEvent.action == "vault.key_rotated"
                    )
                )
            ).all()
        assert len(events) == 1
        assert '"rewrapped":2' in events[0].detail


async def _ciphertexts(context: AppContext, ids: list[str]) -> list[str]:
    async with context.sessionmaker() as session:
        rows = (await session.scalars(select(Secret).where(Secret.id.in_(ids)))).all()
    by_id = {row.id: row.ciphertext for row in rows}
    return [by_id[secret_id] for secret_id in ids]
