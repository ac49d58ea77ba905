"""The per-call bookkeeping of the router, the function table and metrics: per-router timeouts, plain
counters, the one-function shortcut, and acquire/release holding a function across a reload."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.fn.runner_fixtures import scripted_discover, write_function, xr_request
from xplane.fn.metrics import Metrics
from xplane.fn.router import FunctionNotFoundError, Router
from xplane.fn.sources import LocalSource
from xplane.fn.table import FunctionTable, LoadedFunction


def rewrite(root: Path, name: str, **config: object) -> None:
    """Change a scripted function so the next refresh reloads it (size and mtime both move)."""
    d = write_function(root, name, **config)
    st = (d / "function.json").stat()
    os.utime(d / "function.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


def test_metric_series_count_per_transport_into_one_histogram_per_function() -> None:
    m = Metrics(buckets=(0.1, 1.0))
    m.series("f", "grpc-v1").calls += 1
    m.series("f", "grpc-v1").calls += 1  # asked for again: the same counter goes on
    m.series("f", "grpc-v1").histogram.observe(0.05)
    m.observe_call("f", "http", 5.0)  # another transport: its own count, the function's histogram
    assert m.calls == {("f", "grpc-v1"): 2, ("f", "http"): 1}
    text = m.render()
    assert 'xfn_function_calls_total{function="f",transport="grpc-v1"} 2' in text
    assert 'xfn_function_calls_total{function="f",transport="http"} 1' in text
    assert 'xfn_function_duration_seconds_bucket{function="f",le="0.1"} 1' in text
    assert 'xfn_function_duration_seconds_count{function="f"} 2' in text


def test_single_follows_what_is_loaded(tmp_path: Path) -> None:
    async def go() -> None:
        write_function(tmp_path, "a")
        table = FunctionTable(LocalSource(tmp_path), discover=scripted_discover)
        assert table.single is None
        await table.refresh()
        assert table.single is table.functions["a"]
        write_function(tmp_path, "b")
        await table.refresh()
        assert table.single is None  # two loaded: calls must say which
        router = Router(table, Metrics())
        with pytest.raises(FunctionNotFoundError, match="2 functions are loaded"):
            router.resolve()
        assert router.resolve(name="b") is table.functions["b"]
        (tmp_path / "a" / "function.json").unlink()
        (tmp_path / "a").rmdir()
        await table.refresh()
        assert table.single is table.functions["b"]
        await table.close()
        assert table.single is None

    asyncio.run(go())


def test_release_closes_a_retired_function_after_its_last_call(tmp_path: Path) -> None:
    async def go() -> None:
        write_function(tmp_path, "f", message="one")
        table = FunctionTable(LocalSource(tmp_path), discover=scripted_discover)
        await table.refresh()
        old = table.functions["f"]
        table.acquire(old)
        table.acquire(old)
        rewrite(tmp_path, "f", message="two!")
        assert await table.refresh()
        assert table.functions["f"] is not old and old.retired
        table.release(old)
        await asyncio.sleep(0)
        assert not old.closed and not old.function.closed  # type: ignore[attr-defined]
        table.release(old)
        for _ in range(5):
            await asyncio.sleep(0)
        assert old.closed and old.function.closed
        assert old.inflight == 0
        await table.close()

    asyncio.run(go())


def test_each_router_gives_its_own_timeout_and_a_reload_the_new_one(tmp_path: Path) -> None:
    async def go() -> None:
        write_function(tmp_path, "f", message="one", show_timeout=True)
        table = FunctionTable(LocalSource(tmp_path), discover=scripted_discover)
        await table.refresh()
        metrics = Metrics()
        router = Router(table, metrics, default_timeout=7.0)
        entry = router.resolve()
        for tag in ("a", "b", "c"):
            rsp = await router.run(entry, xr_request(tag), transport="grpc-v1", deadline=30.0)
            assert rsp.meta.tag == tag and rsp.results[0].message == "one from f within 7s"
        rsp = await router.run(entry, xr_request("d"), transport="grpc-v1", deadline=2.0)
        assert rsp.results[0].message == "one from f within 2s"  # the caller's deadline came first
        await router.run(entry, xr_request("e"), transport="http")
        assert entry.inflight == 0 and metrics.inflight == 0
        assert metrics.calls == {("f", "grpc-v1"): 4, ("f", "http"): 1}
        assert metrics.durations["f"].count == 5
        # A second router over the same table gives the same function its own timeout.
        other = Router(table, Metrics(), default_timeout=3.0)
        rsp = await other.run(entry, xr_request(), transport="grpc-v1")
        assert rsp.results[0].message == "one from f within 3s"
        rsp = await router.run(entry, xr_request(), transport="grpc-v1")
        assert rsp.results[0].message == "one from f within 7s"
        # A reload brings the function's own timeout; the metric series carry on by name.
        rewrite(tmp_path, "f", message="two!", show_timeout=True, timeout=4)
        assert await table.refresh()
        fresh = router.resolve()
        assert fresh is not entry
        rsp = await router.run(fresh, xr_request(), transport="grpc-v1")
        assert rsp.results[0].message == "two! from f within 4s"
        assert metrics.calls[("f", "grpc-v1")] == 6 and metrics.durations["f"].count == 7
        await table.close()

    asyncio.run(go())


def test_fatal_answers_and_internal_failures_are_counted(tmp_path: Path) -> None:
    async def go() -> None:
        write_function(tmp_path, "bad", fatal="no region")
        write_function(tmp_path, "bug", **{"raise": True})
        table = FunctionTable(LocalSource(tmp_path), discover=scripted_discover)
        await table.refresh()
        metrics = Metrics()
        router = Router(table, metrics)
        rsp = await router.run(router.resolve(name="bad"), xr_request(), transport="grpc-v1")
        assert rsp.results[0].message == "no region"
        bug: LoadedFunction = router.resolve(name="bug")
        with pytest.raises(RuntimeError):
            await router.run(bug, xr_request(), transport="grpc-v1")
        assert metrics.errors == {("bad", "fatal"): 1, ("bug", "internal"): 1}
        assert bug.inflight == 0 and metrics.inflight == 0
        assert metrics.calls == {("bad", "grpc-v1"): 1, ("bug", "grpc-v1"): 1}
        await table.close()

    asyncio.run(go())
