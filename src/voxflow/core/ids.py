"""Prefixed, time-ordered ids: readable in logs, sortable for cursor pagination."""

from __future__ import annotations

import base64
import os
import time


def new_id(prefix: str) -> str:
    # 48-bit millisecond timestamp then 80 random bits, like ULID: ids sort by creation.
    raw = int(time.time() * 1000).to_bytes(6, "big") + os.urandom(10)
    return f"{prefix}_{base64.b32encode(raw).decode().rstrip('=').lower()}"
