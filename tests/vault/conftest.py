"""Vault tests that look at every stored secret (rotation, start-up) get a database of their
own, on each backend, so other tests' secrets (sealed with another key) are not theirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BACKENDS, _create_pg_database, _drop_pg_database
from voxflow.core.migrations import upgrade


@pytest.fixture(params=BACKENDS)
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
        upgrade(url)
        yield url
        return
    url = _create_pg_database()
    if url is None:
        pytest.skip("PostgreSQL unreachable")
    try:
        upgrade(url)
        yield url
    finally:
        _drop_pg_database(url)
