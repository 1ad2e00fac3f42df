"""Envelope encryption: round trips, and every way a ciphertext must refuse to open."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.vault.crypto import (
    NONCE_BYTES,
    DecryptionFailed,
    KeyRing,
    Sealed,
    VaultError,
    new_master_key,
    open_sealed,
    parse_master_key,
    rewrap,
    seal,
)

ONE = parse_master_key(new_master_key())
TWO = parse_master_key(new_master_key())
RING = KeyRing({1: ONE}, current=1)
ids = st.text(min_size=1, max_size=40)


@settings(max_examples=200)
@given(value=st.binary(max_size=4096), org_id=ids, secret_id=ids)
def test_what_is_sealed_opens_again_for_its_org_and_secret(
    value: bytes, org_id: str, secret_id: str
) -> None:
    sealed = Sealed.decode(seal(RING, value, org_id=org_id, secret_id=secret_id).encode())

    assert open_sealed(RING, sealed, org_id=org_id, secret_id=secret_id) == value


@settings(max_examples=200)
@given(value=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_changed_byte_is_refused(value: bytes, data: st.DataObject) -> None:
    sealed = seal(RING, value, org_id="org_a", secret_id="sec_a")
    field = data.draw(st.sampled_from(["wrapped_key", "ciphertext"]))
    raw = bytearray(getattr(sealed, field))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    tampered = Sealed(**{**sealed.__dict__, field: bytes(raw)})

    with pytest.raises(DecryptionFailed):
        open_sealed(RING, tampered, org_id="org_a", secret_id="sec_a")


@pytest.mark.parametrize(
    ("org_id", "secret_id"), [("org_b", "sec_a"), ("org_a", "sec_b"), ("org_", "asec_a")]
)
def test_a_ciphertext_copied_to_another_row_or_org_does_not_open(
    org_id: str, secret_id: str
) -> None:
    sealed = seal(RING, b"sk-live-123", org_id="org_a", secret_id="sec_a")

    with pytest.raises(DecryptionFailed):
        open_sealed(RING, sealed, org_id=org_id, secret_id=secret_id)


def test_the_wrong_master_key_is_refused_clearly() -> None:
    sealed = seal(RING, b"sk-live-123", org_id="org_a", secret_id="sec_a")

    with pytest.raises(DecryptionFailed, match="wrong master key"):
        open_sealed(KeyRing({1: TWO}, current=1), sealed, org_id="org_a", secret_id="sec_a")


def test_rotation_rewraps_the_data_key_and_keeps_the_value() -> None:
    sealed = seal(RING, b"sk-live-123", org_id="org_a", secret_id="sec_a")
    rotated_ring = KeyRing({1: ONE, 2: TWO}, current=2)

    rotated = rewrap(rotated_ring, sealed, org_id="org_a", secret_id="sec_a")

    assert rotated.key_version == 2
    assert rotated.ciphertext == sealed.ciphertext
    after_removal = KeyRing({2: TWO}, current=2)
    assert open_sealed(after_removal, rotated, org_id="org_a", secret_id="sec_a") == b"sk-live-123"
    with pytest.raises(VaultError, match="no master key of version 1"):
        open_sealed(after_removal, sealed, org_id="org_a", secret_id="sec_a")


def test_a_key_version_changed_in_storage_does_not_open() -> None:
    sealed = seal(KeyRing({1: ONE, 2: ONE}, current=1), b"x", org_id="o", secret_id="s")
    relabelled = Sealed(2, sealed.wrapped_key, sealed.ciphertext)

    with pytest.raises(DecryptionFailed):
        open_sealed(KeyRing({1: ONE, 2: ONE}, current=1), relabelled, org_id="o", secret_id="s")


def test_two_seals_of_the_same_value_differ() -> None:
    first = seal(RING, b"same", org_id="o", secret_id="s")
    second = seal(RING, b"same", org_id="o", secret_id="s")

    assert first.ciphertext != second.ciphertext
    assert first.wrapped_key != second.wrapped_key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "must be 32 bytes, not 5"),
    ],
)
def test_a_bad_master_key_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(VaultError, match=message):
        parse_master_key(text)


@given(st.text(max_size=200))
def test_decoding_any_text_fails_only_with_a_vault_error(text: str) -> None:
    with contextlib.suppress(VaultError):
        Sealed.decode(text)


def test_10000_seals_never_repeat_a_nonce() -> None:
    nonces: set[bytes] = set()
    for index in range(10_000):
        sealed = seal(RING, b"v", org_id="o", secret_id=f"s{index}")
        nonces.add(sealed.ciphertext[:NONCE_BYTES])
        nonces.add(sealed.wrapped_key[:NONCE_BYTES])

    assert len(nonces) == 20_000  # one for the value and one for its wrapped key, every time
