"""Events: correlation (count, lastTimestamp), where they live, retention, what describe reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.conftest import Clock
from tests.store.objs import configuration
from xplane.store import InvalidError, Store

SOURCE = "packages/configuration.pkg.crossplane.io"


def test_an_event_has_kubernetes_fields(store: Store) -> None:
    c = store.create(configuration("platform"))
    e = store.record_event(c, "Warning", "LintPackage", "linting package contents failed: x", source=SOURCE)
    assert e["apiVersion"] == "v1" and e["kind"] == "Event"
    assert e["type"] == "Warning" and e["reason"] == "LintPackage" and e["count"] == 1
    assert e["firstTimestamp"] == e["lastTimestamp"] == "2026-07-25T17:20:00Z"
    assert e["involvedObject"] == {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Configuration",
        "name": "platform",
        "uid": c["metadata"]["uid"],
    }
    assert e["source"] == {"component": SOURCE}
    assert e["metadata"]["namespace"] == "default"  # a cluster-scoped object's events, as Kubernetes
    assert e["metadata"]["name"].startswith("platform.")


def test_the_same_event_again_is_counted(store: Store, clock: Clock) -> None:
    c = store.create(configuration("platform"))
    first = store.record_event(
        c, "Normal", "InstallPackageRevision", "Successfully installed package revision"
    )
    clock.advance(90)
    again = store.record_event(
        c, "Normal", "InstallPackageRevision", "Successfully installed package revision"
    )
    assert again["count"] == 2
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert again["firstTimestamp"] == "2026-07-25T17:20:00Z"
    assert again["lastTimestamp"] == "2026-07-25T17:21:30Z"
    other = store.record_event(c, "Normal", "InstallPackageRevision", "a different message")
    assert other["count"] == 1
    assert [e["count"] for e in store.events_for(c)] == [2, 1]


def test_events_of_a_namespaced_object_live_in_its_namespace(store: Store) -> None:
    s = store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"}})
    e = store.record_event(s, "Normal", "Seen", "seen")
    assert e["metadata"]["namespace"] == "team-a"
    assert [x["reason"] for x in store.list("events", namespace="team-a")] == ["Seen"]
    assert store.get("event", e["metadata"]["name"], "team-a") == e


def test_describe_reads_events_of_this_object_only(store: Store) -> None:
    old = store.create(configuration("platform"))
    store.record_event(old, "Warning", "UnpackPackage", "cannot unpack package: boom")
    store.delete("configuration", "platform")
    new = store.create(configuration("platform"))
    store.record_event(new, "Normal", "InstallPackageRevision", "Successfully installed package revision")
    assert [e["reason"] for e in store.events_for(new)] == ["InstallPackageRevision"]
    assert [e["reason"] for e in store.events_for(old)] == ["UnpackPackage"]
    by_ref = {"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration", "name": "ghost"}
    store.record_event(by_ref, "Normal", "Seen", "no uid")
    assert [e["message"] for e in store.events_for(by_ref)] == ["no uid"]


def test_events_are_ordered_by_last_seen(store: Store, clock: Clock) -> None:
    c = store.create(configuration("c"))
    store.record_event(c, "Normal", "A", "a")
    clock.advance(1)
    store.record_event(c, "Normal", "B", "b")
    clock.advance(1)
    store.record_event(c, "Normal", "A", "a")
    assert [e["reason"] for e in store.events_for(c)] == ["B", "A"]


def test_retention_per_object_and_overall(db_path: Path, clock: Clock) -> None:
    with Store.open(db_path, clock=clock, events_per_object=3, events_total=100) as store:
        c = store.create(configuration("c"))
        for i in range(5):
            clock.advance(1)
            store.record_event(c, "Normal", "Step", f"step {i}")
        assert [e["message"] for e in store.events_for(c)] == ["step 2", "step 3", "step 4"]
        for i in range(300):
            store.record_event({"apiVersion": "v1", "kind": "Secret", "name": f"s{i}"}, "Normal", "Seen", "x")
        assert len(store.list("events")) <= 100 + 64
        assert store.verify() == []


def test_bad_events_are_refused(store: Store) -> None:
    c = store.create(configuration("c"))
    with pytest.raises(InvalidError, match='type: Unsupported value: "Info"'):
        store.record_event(c, "Info", "X", "x")
    with pytest.raises(InvalidError, match="reason: Required value"):
        store.record_event(c, "Normal", "", "x")


def test_long_messages_are_cut(store: Store) -> None:
    c = store.create(configuration("c"))
    e = store.record_event(c, "Warning", "LintPackage", "x" * 5000)
    assert len(e["message"]) == 1024
