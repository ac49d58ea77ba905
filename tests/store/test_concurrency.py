"""Several processes writing at once lose nothing; a SIGKILL at any point leaves a consistent store."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from tests.store import workers
from tests.store.objs import configuration
from xplane.store import Store

pytestmark = pytest.mark.slow


def test_concurrent_read_modify_update_loses_nothing(db_path: Path) -> None:
    processes, times = 4, 40
    with Store.open(db_path) as store:
        store.create(configuration("counter") | {"spec": {"package": "x", "revisionHistoryLimit": 0}})
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    children = [
        ctx.Process(target=workers.increment, args=(str(db_path), "counter", w, times, start, results))
        for w in range(processes)
    ]
    for child in children:
        child.start()
    try:
        time.sleep(0.5)  # let every worker reach the start line
        start.set()
        conflicts = [results.get(timeout=300) for _ in children]
    finally:
        for child in children:
            child.join(timeout=60)
    assert [c.exitcode for c in children] == [0] * processes
    with Store.open(db_path) as store:
        counter = store.get("configuration", "counter")
        assert counter["spec"]["revisionHistoryLimit"] == processes * times
        assert counter["metadata"]["generation"] == 1 + processes * times
        assert len(store.list("providers")) == processes * times
        versions = [int(o["metadata"]["resourceVersion"]) for o in store.list("providers")]
        assert len(set(versions)) == len(versions)
        assert store.verify() == []
    print(f"conflicts met and retried: {conflicts}")


def _check_consistent(db_path: Path) -> int:
    with Store.open(db_path) as store:
        assert store.verify() == []
        revisions = store.list("configurationrevisions")
        live = {o["metadata"]["uid"] for o in store.list("configurations")}
        for rev in revisions:
            owners = {r["uid"] for r in rev["metadata"].get("ownerReferences", [])}
            # a cascade is all or nothing: a revision whose owner is gone is being deleted
            assert owners & live or rev["metadata"].get("deletionTimestamp"), rev["metadata"]["name"]
        for cfg in store.list("configurations"):
            have = {
                o["metadata"]["name"]
                for o in store.list(
                    "configurationrevisions", selector=f"pkg.crossplane.io/package={cfg['metadata']['name']}"
                )
            }
            assert len(have) in (0, 3), cfg["metadata"]["name"]  # a batch is all or nothing
        store.create(configuration(f"after-kill-{store.resource_version}"))  # and it still takes writes
        return int(store.resource_version)


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.1, 0.25, 0.6])
def test_sigkill_at_any_point_leaves_a_consistent_store(db_path: Path, delay: float) -> None:
    Store.open(db_path).close()
    ctx = multiprocessing.get_context("spawn")
    progress = 0
    for round_ in range(2):
        child = ctx.Process(target=workers.churn, args=(str(db_path),))
        child.start()
        try:
            deadline = time.monotonic() + 60
            with Store.open(db_path) as watcher:  # wait until the child is writing, then a bit more
                base = int(watcher.resource_version)
                while int(watcher.resource_version) < base + 20 and time.monotonic() < deadline:
                    time.sleep(0.01)
            time.sleep(delay + 0.013 * round_)
        finally:
            child.kill()  # SIGKILL
            child.join(timeout=30)
        assert child.exitcode == -9
        rv = _check_consistent(db_path)
        assert rv > progress
        progress = rv


def test_processes_creating_the_database_at_once_all_open_it(tmp_path: Path) -> None:
    # A second process used to read the header (no application_id yet) and then the tables the
    # first one had just committed, and refuse the file as "not xplane's state".
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(8):
        path = str(tmp_path / f"r{round_}" / "state.db")
        start, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=workers.open_fresh, args=(path, start, results)) for _ in range(4)]
        for p in procs:
            p.start()
        errors = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert errors == [""] * 4, errors
