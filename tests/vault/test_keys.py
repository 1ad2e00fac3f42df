"""Master keys: from the environment or a 0600 file, generated only when nothing is sealed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from voxflow.vault.crypto import VaultError, new_master_key, open_sealed, seal
from voxflow.vault.keys import add_key_version, load_key_ring, parse_key_ring, readable_by_others


def test_a_missing_key_file_is_generated_private_on_first_start(tmp_path: Path) -> None:
    path = tmp_path / "data" / "master.key"

    ring = load_key_ring(None, path, may_generate=True)

    assert ring.versions == [1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_ring(None, path, may_generate=False).versions == [1]


def test_without_a_key_and_with_ciphertext_stored_the_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="VOXFLOW_MASTER_KEY is unset"):
        load_key_ring(None, tmp_path / "master.key", may_generate=False)
    assert not (tmp_path / "master.key").exists()


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    load_key_ring(None, path, may_generate=True)
    key = new_master_key()

    ring = load_key_ring(f"1:{new_master_key()},2:{key}", path, may_generate=True)

    assert ring.versions == [1, 2]
    assert ring.current == 2
    assert parse_key_ring(key).versions == [1]  # a bare key is version 1


def test_a_file_readable_by_others_is_noticed_and_still_used(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(f"1:{new_master_key()}\n")
    path.chmod(0o644)

    assert readable_by_others(path)
    assert load_key_ring(None, path, may_generate=False).versions == [1]
    path.chmod(0o600)
    assert not readable_by_others(path)


def test_adding_a_version_keeps_the_old_keys_and_opens_old_secrets(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    ring = load_key_ring(None, path, may_generate=True)
    sealed = seal(ring, b"token", org_id="o", secret_id="s")

    assert add_key_version(path) == 2
    rotated = load_key_ring(None, path, may_generate=False)

    assert rotated.current == 2
    assert open_sealed(rotated, sealed, org_id="o", secret_id="s") == b"token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("0:AAAA", "not a positive number"),
        (f"1:{new_master_key()}\n1:{new_master_key()}", "given twice"),
        ("1:short", "not valid base64|must be 32 bytes"),
    ],
)
def test_a_malformed_key_ring_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(VaultError, match=message):
        parse_key_ring(text)
