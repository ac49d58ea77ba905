"""Run one blob operation per item, on a small thread pool when that helps (pulls and pushes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def for_each(items: Sequence[T], action: Callable[[T], None], concurrency: int) -> None:
    """Call ``action`` on every item, up to ``concurrency`` at once; the first exception is raised."""
    if concurrency > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
            for future in [pool.submit(action, item) for item in items]:
                future.result()
    else:
        for item in items:
            action(item)
