"""Engine fixtures."""

from __future__ import annotations

import pytest

from engine_support import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()
