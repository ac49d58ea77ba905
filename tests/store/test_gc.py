"""Deletion with finalizers and owner-reference garbage collection."""

from __future__ import annotations

import pytest

from tests.store.conftest import Clock
from tests.store.objs import configuration, owner_ref, revision, xrd
from xplane.store import BadRequestError, ConflictError, NotFoundError, Store

REV_FINALIZER = "revision.pkg.crossplane.io"


def _names(store: Store, kind: str) -> list[str]:
    return [o["metadata"]["name"] for o in store.list(kind)]


def _drop_finalizers(store: Store, kind: str, name: str) -> None:
    store.modify(kind, name, lambda o: o["metadata"].pop("finalizers", None))


def test_delete_without_finalizers_removes_and_logs_the_last_state(store: Store) -> None:
    c = store.create(configuration("c"))
    rv = store.resource_version
    assert store.delete("configuration", "c") is None
    with pytest.raises(NotFoundError):
        store.get("configuration", "c")
    (change,) = store.changes_since(rv)
    assert change.type == "DELETED"
    assert change.object["metadata"]["uid"] == c["metadata"]["uid"]
    assert int(change.object["metadata"]["resourceVersion"]) == change.resource_version
    with pytest.raises(NotFoundError):
        store.delete("configuration", "c")


def test_finalizers_keep_an_object_until_the_last_one_goes(store: Store, clock: Clock) -> None:
    store.create(configuration("c", finalizers=["a.example.org/one", "b.example.org/two"]))
    clock.advance(60)
    deleting = store.delete("configuration", "c")
    assert deleting is not None
    assert deleting["metadata"]["deletionTimestamp"] == "2026-07-25T17:21:00Z"
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
    rv = store.resource_version
    assert store.delete("configuration", "c") == deleting  # asking again changes nothing
    assert store.resource_version == rv
    store.modify("configuration", "c", lambda o: o["metadata"].update(finalizers=["b.example.org/two"]))
    assert store.get("configuration", "c")["metadata"]["deletionTimestamp"] == "2026-07-25T17:21:00Z"
    _drop_finalizers(store, "configuration", "c")
    assert store.try_get("configuration", "c") is None
    assert [c.type for c in store.changes_since(rv)] == ["MODIFIED", "MODIFIED", "DELETED"]


def test_background_cascade_waits_for_finalizers_down_the_chain(store: Store) -> None:
    """Package -> revision (finalizer) -> installed XRD owned by both: Crossplane's shape."""
    pkg = store.create(configuration("platform"))
    rev = store.create(revision("platform-1", pkg, finalizers=(REV_FINALIZER,)))
    store.create(xrd("xthings.example.org", rev, pkg))
    assert store.delete("configuration", "platform") is None
    rev_now = store.get("configurationrevision", "platform-1")
    assert rev_now["metadata"]["deletionTimestamp"]  # its owner is gone; its finalizer holds it
    assert _names(store, "xrds") == ["xthings.example.org"]  # its revision owner still exists
    _drop_finalizers(store, "configurationrevision", "platform-1")
    assert _names(store, "configurationrevisions") == []
    assert _names(store, "xrds") == []
    assert store.verify() == []


def test_a_dependent_with_a_live_owner_survives_and_loses_the_dangling_reference(store: Store) -> None:
    pkg = store.create(configuration("platform"))
    old = store.create(revision("platform-1", pkg))
    store.create(revision("platform-2", pkg))
    store.create(xrd("xthings.example.org", old, pkg))
    store.delete("configurationrevision", "platform-1")  # revision history GC
    survivor = store.get("xrd", "xthings.example.org")
    assert [r["name"] for r in survivor["metadata"]["ownerReferences"]] == ["platform"]
    assert [o["metadata"]["name"] for o in store.dependents(pkg)] == ["platform-2", "xthings.example.org"]


def test_cascade_goes_several_levels_deep(store: Store) -> None:
    top = store.create(configuration("top"))
    middle = store.create(revision("middle", top))
    leaf = store.create(xrd("leaves.example.org", middle))
    store.create(
        {
            "apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "Composition",
            "metadata": {"name": "leaf-child", "ownerReferences": [owner_ref(leaf, controller=True)]},
            "spec": {},
        }
    )
    store.delete("configurations", "top")
    assert _names(store, "configurationrevisions") == []
    assert _names(store, "xrds") == []
    assert _names(store, "compositions") == []


def test_foreground_waits_for_blocking_dependents(store: Store) -> None:
    pkg = store.create(configuration("platform"))
    store.create(revision("platform-1", pkg, finalizers=(REV_FINALIZER,)))  # blockOwnerDeletion: true
    waiting = store.delete("configuration", "platform", propagation="Foreground")
    assert waiting is not None
    assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
    assert store.get("configurationrevision", "platform-1")["metadata"]["deletionTimestamp"]
    _drop_finalizers(store, "configurationrevision", "platform-1")
    assert _names(store, "configurationrevisions") == []
    assert _names(store, "configurations") == []


def test_foreground_does_not_wait_for_non_blocking_dependents(store: Store) -> None:
    pkg = store.create(configuration("platform"))
    dep = revision("platform-1", finalizers=(REV_FINALIZER,))
    dep["metadata"]["ownerReferences"] = [owner_ref(pkg, block=False)]
    store.create(dep)
    assert store.delete("configuration", "platform", propagation="Foreground") is None
    assert store.get("configurationrevision", "platform-1")["metadata"]["deletionTimestamp"]


def test_foreground_without_dependents_deletes_at_once(store: Store) -> None:
    store.create(configuration("alone"))
    assert store.delete("configuration", "alone", propagation="Foreground") is None


def test_orphan_keeps_dependents(store: Store) -> None:
    pkg = store.create(configuration("platform"))
    store.create(revision("platform-1", pkg))
    assert store.delete("configuration", "platform", propagation="Orphan") is None
    orphan = store.get("configurationrevision", "platform-1")
    assert "ownerReferences" not in orphan["metadata"]


def test_bad_propagation_is_a_bad_request(store: Store) -> None:
    store.create(configuration("c"))
    with pytest.raises(BadRequestError, match='unsupported propagation policy "Sideways"'):
        store.delete("configuration", "c", propagation="Sideways")
    assert store.try_get("configuration", "c") is not None


def test_delete_preconditions(store: Store) -> None:
    c = store.create(configuration("c"))
    with pytest.raises(ConflictError):
        store.delete("configuration", "c", resource_version="999")
    with pytest.raises(ConflictError, match="UID in precondition"):
        store.delete("configuration", "c", uid="someone-else")
    assert store.delete("configuration", "c", resource_version=c["metadata"]["resourceVersion"]) is None


def test_collect_garbage_sweeps_what_no_delete_reached(store: Store) -> None:
    pkg = store.create(configuration("platform"))
    ghost = {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Configuration",
        "name": "gone",
        "uid": "no-such-uid",
    }
    orphan = revision("orphan-1")
    orphan["metadata"]["ownerReferences"] = [dict(ghost, controller=True)]
    store.create(orphan)
    half = revision("half-1", pkg)
    half["metadata"]["ownerReferences"].append(ghost)
    store.create(half)
    assert store.collect_garbage() == 2
    assert _names(store, "configurationrevisions") == ["half-1"]
    refs = store.get("configurationrevision", "half-1")["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == [pkg["metadata"]["uid"]]
    assert store.collect_garbage() == 0


def test_a_failed_cascade_leaves_nothing_half_done(store: Store) -> None:
    pkg = store.create(configuration("platform"))
    store.create(revision("platform-1", pkg))
    with pytest.raises(RuntimeError), store.batch():
        store.delete("configuration", "platform")
        raise RuntimeError("crash between the delete and the commit")
    assert _names(store, "configurations") == ["platform"]
    assert _names(store, "configurationrevisions") == ["platform-1"]
