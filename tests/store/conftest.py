"""Fixtures for the store tests: a real state database in ``tmp_path``, a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xplane.store import Store


class Clock:
    """A clock for ``Store.open(clock=...)`` that moves only when told (seconds since the epoch)."""

    def __init__(self, start: float = 1_785_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "state.db"


@pytest.fixture
def store(db_path: Path, clock: Clock) -> Iterator[Store]:
    s = Store.open(db_path, clock=clock)
    try:
        yield s
    finally:
        s.close()
