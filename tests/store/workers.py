"""Child-process bodies for the concurrency and crash tests (imported by ``multiprocessing`` spawn)."""

from __future__ import annotations

import itertools
import os
from typing import Any

from xplane.store import ConflictError, Store

PKG = "pkg.crossplane.io/v1"


def increment(path: str, name: str, worker: int, times: int, start: Any, results: Any) -> None:
    """Add one to ``spec.revisionHistoryLimit`` of Configuration ``name`` ``times`` times by
    read-modify-update, retrying on conflict; also create one object of its own per round.
    Puts how many conflicts it met on ``results``."""
    start.wait()
    conflicts = 0
    with Store.open(path, busy_timeout=60) as store:
        for i in range(times):
            while True:
                obj = store.get("configuration", name)
                obj["spec"]["revisionHistoryLimit"] += 1
                try:
                    store.update(obj)
                    break
                except ConflictError:
                    conflicts += 1
            store.create(
                {
                    "apiVersion": PKG,
                    "kind": "Provider",
                    "metadata": {"name": f"{name}-{worker}-{i}"},
                    "spec": {},
                }
            )
    results.put(conflicts)


def churn(path: str) -> None:
    """Write forever, in transactions of several writes, until killed: packages with revisions
    (finalizers, owner references), status updates, events, deletions with cascades."""
    with Store.open(path, busy_timeout=60) as store:
        run = os.getpid()
        for i in itertools.count():
            name = f"p{run}-{i}"
            with store.batch():
                pkg = store.create(
                    {
                        "apiVersion": PKG,
                        "kind": "Configuration",
                        "metadata": {"name": name},
                        "spec": {"package": "x"},
                    }
                )
                ref = {
                    "apiVersion": PKG,
                    "kind": "Configuration",
                    "name": name,
                    "uid": pkg["metadata"]["uid"],
                }
                for r in range(3):
                    rev = store.create(
                        {
                            "apiVersion": PKG,
                            "kind": "ConfigurationRevision",
                            "metadata": {
                                "name": f"{name}-{r}",
                                "labels": {"pkg.crossplane.io/package": name},
                                "finalizers": ["revision.pkg.crossplane.io"] if r == 0 else [],
                                "ownerReferences": [dict(ref, controller=True, blockOwnerDeletion=True)],
                            },
                            "spec": {"revision": r + 1, "desiredState": "Inactive", "image": "x"},
                        }
                    )
                    rev["status"] = {"conditions": [{"type": "RevisionHealthy", "status": "True"}]}
                    store.update_status(rev)
                store.record_event(
                    pkg, "Normal", "InstallPackageRevision", "Successfully installed package revision"
                )
            if i >= 2:
                old = f"p{run}-{i - 2}"
                store.delete("configuration", old)
                store.modify(
                    "configurationrevision", f"{old}-0", lambda o: o["metadata"].pop("finalizers", None)
                )


def open_fresh(path: str, start: Any, results: Any) -> None:
    """Open (and so create) the state database at ``path`` the moment ``start`` fires; put the
    error text, or "", on ``results``."""
    start.wait()
    try:
        with Store.open(path) as store:
            store.list("configuration")
        results.put("")
    except Exception as e:  # the test reports it
        results.put(f"{type(e).__name__}: {e}")
