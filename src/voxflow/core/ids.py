"""Prefixed, time-ordered ids: readable in logs, sortable for cursor pagination."""

from __future__ import annotations

import base64
import os
import time

# RFC 4648 base32 puts the digits 2-7 after Z, so its text does not sort like its bytes.
# Crockford's alphabet is in ASCII order (digits, then letters): text order = time order.
_SORTABLE = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz"
)


def new_id(prefix: str) -> str:
    # 48-bit millisecond timestamp then 80 random bits, like ULID: ids sort by creation.
    raw = int(time.time() * 1000).to_bytes(6, "big") + os.urandom(10)
    return f"{prefix}_{base64.b32encode(raw).rstrip(b'=').translate(_SORTABLE).decode()}"
