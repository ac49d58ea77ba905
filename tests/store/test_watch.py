"""The change log and watch: order, filters, compaction (410 Gone), other processes, idle cost."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.store.objs import configuration, revision
from xplane.store import GoneError, Store

_WRITE_LATER = """
import sys, time
from xplane.store import Store
time.sleep(float(sys.argv[2]))
with Store.open(sys.argv[1]) as s:
    s.create({"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration",
              "metadata": {"name": "from-elsewhere"}, "spec": {"package": "r.example.com/a:v1"}})
"""


def test_changes_come_in_order_with_their_types(store: Store) -> None:
    c = store.create(configuration("c"))
    c["spec"]["package"] = "r.example.com/a:v2"
    store.update(c)
    store.delete("configuration", "c")
    changes = store.changes_since(0)
    assert [(ch.type, ch.resource_version) for ch in changes] == [
        ("ADDED", 1),
        ("MODIFIED", 2),
        ("DELETED", 3),
    ]
    assert changes[1].object["spec"]["package"] == "r.example.com/a:v2"
    assert changes[0].key == ("configurations.pkg.crossplane.io", "", "c")
    assert store.changes_since("2")[0].type == "DELETED"
    assert store.changes_since(0, limit=1)[0].type == "ADDED"


def test_changes_filtered_by_kind(store: Store) -> None:
    pkg = store.create(configuration("p"))
    store.create(revision("p-1", pkg))
    assert [ch.object["kind"] for ch in store.changes_since(0, kinds=["configurationrevision"])] == [
        "ConfigurationRevision"
    ]
    assert len(store.changes_since(0, kinds=["configurations", "configurationrevisions"])) == 2


def test_list_then_watch_misses_nothing(store: Store) -> None:
    store.create(configuration("before"))
    listed = store.list("configurations")
    store.create(configuration("after"))
    (change,) = store.changes_since(listed.resource_version)
    assert change.object["metadata"]["name"] == "after"


def test_the_log_is_bounded_and_old_versions_are_gone(db_path: Path) -> None:
    with Store.open(db_path, change_log_size=100) as store:
        c = store.create(configuration("c"))
        for i in range(300):
            c["spec"]["package"] = f"r.example.com/a:v{i}"
            c = store.update(c)
        with pytest.raises(GoneError) as e:
            store.changes_since(1)
        assert str(e.value).startswith("too old resource version: 1 (")
        assert "list the objects again" in str(e.value)
        recent = int(store.resource_version) - 50
        assert len(store.changes_since(recent)) == 50
        (count,) = store._db.conn.execute("SELECT count(*) FROM changes").fetchone()
        assert count <= 100 + 64
        assert store.verify() == []


def test_a_version_from_the_future_is_gone(store: Store) -> None:
    store.create(configuration("c"))
    with pytest.raises(GoneError, match="too large resource version: 99"):
        store.changes_since(99)


def test_watch_returns_at_once_when_there_are_changes(store: Store) -> None:
    store.create(configuration("c"))
    t0 = time.monotonic()
    assert [ch.type for ch in store.watch(0, timeout=5)] == ["ADDED"]
    assert time.monotonic() - t0 < 1


def test_watch_times_out_empty(store: Store) -> None:
    store.create(configuration("c"))
    t0 = time.monotonic()
    assert store.watch(store.resource_version, timeout=0.3) == []
    assert 0.25 < time.monotonic() - t0 < 2


def test_watch_sees_a_write_from_another_thread_and_stops_on_request(store: Store, db_path: Path) -> None:
    since = store.resource_version

    def write() -> None:
        time.sleep(0.2)
        with Store.open(db_path) as other:
            other.create(configuration("threaded"))

    t = threading.Thread(target=write)
    t.start()
    changes = store.watch(since, timeout=10)
    t.join()
    assert [ch.object["metadata"]["name"] for ch in changes] == ["threaded"]
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    assert store.watch(store.resource_version, timeout=10, stop=stop) == []
    assert time.monotonic() - t0 < 2


def test_watch_sees_another_process(store: Store, db_path: Path) -> None:
    since = store.resource_version
    child = subprocess.Popen([sys.executable, "-c", _WRITE_LATER, str(db_path), "0.5"])
    try:
        t0 = time.monotonic()
        changes = store.watch(since, timeout=30)
        waited = time.monotonic() - t0
    finally:
        assert child.wait(timeout=60) == 0
    assert [ch.object["metadata"]["name"] for ch in changes] == ["from-elsewhere"]
    assert waited < 20


def test_an_idle_watch_does_not_burn_cpu(store: Store) -> None:
    cpu0, t0 = time.process_time(), time.monotonic()
    assert store.watch(store.resource_version, timeout=2.0) == []
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    assert wall >= 1.9
    assert cpu < 0.1 * wall, f"an idle watch used {cpu:.3f} s of CPU in {wall:.1f} s"


def test_the_change_log_keeps_no_secret_data(store: Store) -> None:
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pull"},
            "stringData": {"password": "hunter2"},
        }
    )
    (change,) = store.changes_since(0)
    assert change.object["metadata"]["name"] == "pull" and "data" not in change.object
    raw = store._db.conn.execute("SELECT group_concat(object) FROM changes").fetchone()[0]
    assert "aHVudGVyMg" not in raw  # base64 of hunter2
    assert store.get("secret", "pull")["data"] == {"password": "aHVudGVyMg=="}


def test_events_are_not_in_the_change_log(store: Store) -> None:
    c = store.create(configuration("c"))
    since = store.resource_version
    store.record_event(c, "Normal", "InstallPackageRevision", "Successfully installed package revision")
    assert store.changes_since(since) == []
