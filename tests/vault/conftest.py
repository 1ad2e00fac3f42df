"""Vault tests that look at every stored secret (rotation, start-up) get a database of their
own, on each backend, so other tests' secrets (sealed with another key) are not theirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BACKENDS, migrated_database


@pytest.fixture(params=BACKENDS)
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_database(request.param, tmp_path)
