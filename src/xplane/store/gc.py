"""Deletion: finalizers and owner-reference garbage collection, as the API server and Kubernetes'
garbage collector do it, but synchronously, inside the deleting transaction.

* An object with finalizers is not removed: ``metadata.deletionTimestamp`` (and
  ``deletionGracePeriodSeconds: 0``) is set and the object stays until an update removes its last
  finalizer; then it goes (see :mod:`xplane.store.objects`).
* When an object is removed, each *dependent* (an object whose ``ownerReferences`` name its uid) is
  looked at as the garbage collector does: if it still has a live owner, only the references to
  owners that are gone are dropped from it (a CRD owned by a revision and its package survives the
  revision); if none is left, it is deleted in turn (background cascade), finalizers honoured.
* ``propagation``: ``Background`` (default) as above. ``Foreground``: the owner gets the
  ``foregroundDeletion`` finalizer and stays, its dependents are deleted, and the owner goes once
  no dependent with ``blockOwnerDeletion: true`` is left (a dependent with a finalizer keeps it
  waiting until that finalizer is removed). ``Orphan``: the references to the owner are removed
  from its dependents first, which then stay.
* An owner reference is resolved by uid. A reference to a uid that was never in the store makes
  the dependent collectable like one whose owner was deleted, but only :func:`collect` (a full
  sweep, as the collector's resync) acts on it; creating such an object is not refused.

Everything runs in the caller's write transaction: a crash never leaves half a cascade.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from xplane.store.errors import BadRequestError
from xplane.store.rows import Core, Row

FOREGROUND = "foregroundDeletion"
PROPAGATION = ("Background", "Foreground", "Orphan")


def _rewrite(core: Core, row: Row, meta: dict[str, Any]) -> Row:
    meta = dict(meta)
    meta.pop("resourceVersion", None)
    core.replace(row, row.api_version, meta, (row.spec, row.extra, row.status))
    fresh = core.by_id(row.id)
    assert fresh is not None
    return fresh


class _Collector:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.queue: deque[tuple[str, int, str]] = deque()
        self.touched = 0

    def run(self) -> None:
        while self.queue:
            step, object_id, policy = self.queue.popleft()
            row = self.core.by_id(object_id)
            if row is None:
                continue
            if step == "delete":
                self._delete(row, policy)
            elif step == "dependent":
                self._dependent(row)
            else:
                self._finish(row)

    def _waiting(self, row: Row) -> bool:
        return row.deleting and FOREGROUND in row.finalizers

    def _delete(self, row: Row, policy: str) -> None:
        if policy == "Orphan":
            self._orphan(row)
        finalizers = row.finalizers
        if policy == "Foreground" and FOREGROUND not in finalizers and self.core.dependent_ids(row.uid):
            finalizers.append(FOREGROUND)
        if finalizers:
            if not row.deleting or finalizers != row.finalizers:
                meta = dict(row.metadata, finalizers=finalizers)
                meta.setdefault("deletionTimestamp", self.core.now())
                meta.setdefault("deletionGracePeriodSeconds", 0)
                row = _rewrite(self.core, row, meta)
                self.touched += 1
            if FOREGROUND in finalizers:
                for dependent in self.core.dependent_ids(row.uid):
                    self.queue.append(("dependent", dependent, ""))
                self.queue.append(("finish", row.id, ""))
            return
        self._remove(row)

    def _remove(self, row: Row) -> None:
        self.core.remove(row)
        self.touched += 1
        for dependent in self.core.dependent_ids(row.uid):
            self.queue.append(("dependent", dependent, ""))
        self._wake_owners(row.owner_references)

    def _wake_owners(self, refs: list[dict[str, Any]]) -> None:
        for ref in refs:
            owner = self.core.by_uid(ref["uid"])
            if owner is not None and self._waiting(owner):
                self.queue.append(("finish", owner.id, ""))

    def _orphan(self, row: Row) -> None:
        for dependent_id in self.core.dependent_ids(row.uid):
            dependent = self.core.by_id(dependent_id)
            if dependent is None:
                continue
            refs = [r for r in dependent.owner_references if r.get("uid") != row.uid]
            meta = dict(dependent.metadata)
            if refs:
                meta["ownerReferences"] = refs
            else:
                meta.pop("ownerReferences", None)
            _rewrite(self.core, dependent, meta)
            self.touched += 1

    def _dependent(self, row: Row) -> None:
        """The garbage collector's ``attemptToDeleteItem`` for one dependent."""
        solid: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        gone = 0
        for ref in row.owner_references:
            owner = self.core.by_uid(ref["uid"])
            if owner is None:
                gone += 1
            elif self._waiting(owner):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if gone or waiting:
                meta = dict(row.metadata, ownerReferences=solid)
                _rewrite(self.core, row, meta)
                self.touched += 1
                self._wake_owners(waiting)
            return
        if not gone and not waiting:
            return  # no owner references at all: not the collector's
        if row.deleting:
            return  # it goes when its finalizers do; a waiting owner is woken then
        blocking_owner = bool(waiting) and bool(self.core.dependent_ids(row.uid))
        self.queue.append(("delete", row.id, "Foreground" if blocking_owner else "Background"))

    def _finish(self, row: Row) -> None:
        """An owner in foreground deletion: drop ``foregroundDeletion`` once nothing blocks it."""
        if not self._waiting(row):
            return
        for dependent_id in self.core.dependent_ids(row.uid):
            dependent = self.core.by_id(dependent_id)
            if dependent is None:
                continue
            for ref in dependent.owner_references:
                if ref.get("uid") == row.uid and ref.get("blockOwnerDeletion") is True:
                    return
        finalizers = [f for f in row.finalizers if f != FOREGROUND]
        meta = dict(row.metadata)
        if finalizers:
            meta["finalizers"] = finalizers
            _rewrite(self.core, row, meta)
            self.touched += 1
            return
        self._remove(row)


def delete(core: Core, row: Row, propagation: str) -> dict[str, Any] | None:
    """Delete ``row`` with ``propagation``; the object if it is still there (finalizers), else None."""
    if propagation not in PROPAGATION:
        raise BadRequestError(
            f'unsupported propagation policy "{propagation}": must be one of {", ".join(PROPAGATION)}'
        )
    collector = _Collector(core)
    collector.queue.append(("delete", row.id, propagation))
    collector.run()
    left = core.by_id(row.id)
    return None if left is None else left.to_object()


def collect(core: Core) -> int:
    """One full garbage-collection sweep; returns how many objects were changed or deleted."""
    collector = _Collector(core)
    ids = [r[0] for r in core.db.conn.execute("SELECT DISTINCT object_id FROM owners ORDER BY object_id")]
    collector.queue.extend(("dependent", i, "") for i in ids)
    waiting = core.db.conn.execute("SELECT id FROM objects WHERE metadata LIKE ?", (f'%"{FOREGROUND}"%',))
    collector.queue.extend(("finish", r[0], "") for r in waiting)
    collector.run()
    return collector.touched


__all__ = ["FOREGROUND", "PROPAGATION", "collect", "delete"]
