"""Cursor pages: the cursor is the last id returned (ids sort by creation time)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
Row = TypeVar("Row")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def build_page(
    rows: Sequence[Row], limit: int, to_item: Callable[[Row], T], key: Callable[[Row], str]
) -> Page[T]:
    """`rows` was fetched with limit + 1 so we know whether another page exists."""
    has_more = len(rows) > limit
    kept = rows[:limit]
    return Page[T](
        items=[to_item(r) for r in kept], next_cursor=key(kept[-1]) if has_more and kept else None
    )
