"""Killing a reconciling process anywhere and reconciling again converges; two processes at once lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.pkg.support import composition, control_plane, package, push, write_package, xrd
from tests.support.registry import RegistryServer
from xplane.store import Store

ROOT = Path(__file__).resolve().parents[2]
KINDS = [
    "configurations.pkg.crossplane.io",
    "configurationrevisions.pkg.crossplane.io",
    "compositeresourcedefinitions.apiextensions.crossplane.io",
    "compositions.apiextensions.crossplane.io",
    "locks.pkg.crossplane.io",
]


@pytest.fixture
def refs(tmp_path: Path, registry_plain: RegistryServer, unique_repo: str) -> list[str]:
    out = []
    dep = {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Provider",
        "package": "xpkg.example.org/p",
        "version": ">=v1",
    }
    for i in range(3):
        root = write_package(
            tmp_path / f"src{i}",
            "Configuration",
            f"c{i}",
            [xrd(f"XKind{i}"), composition(f"comp{i}", f"XKind{i}")],
            depends_on=[dep] if i == 2 else (),
        )
        ref = f"{registry_plain.host}/{unique_repo}/c{i}:v1"
        push(root, ref, tmp_path)
        out.append(ref)
    return out


def seed(tmp: Path, refs: list[str]) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    with Store.open(tmp / "state.db") as store:
        for i, ref in enumerate(refs):
            store.create(package("Configuration", f"c{i}", ref, skipDependencyResolution=i == 0))


def snapshot(store: Store) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for kind in KINDS:
        for o in store.list(kind):
            m, st = o["metadata"], dict(o.get("status") or {})
            out[(kind, m["name"])] = {
                "spec": o.get("spec"),
                "packages": [p["name"] for p in o.get("packages") or ()],
                "labels": m.get("labels"),
                "annotations": m.get("annotations"),
                "finalizers": m.get("finalizers"),
                "owners": sorted(
                    (r["kind"], r["name"], bool(r.get("controller"))) for r in m.get("ownerReferences") or ()
                ),
                "conditions": sorted(
                    (c["type"], c["status"], c["reason"], c.get("message", ""))
                    for c in st.pop("conditions", None) or ()
                ),
                "objectRefs": [r["name"] for r in st.pop("objectRefs", None) or ()],
                "status": st,
            }
    return out


def reference(tmp: Path, refs: list[str]) -> dict[Any, Any]:
    seed(tmp, refs)
    store, cp = control_plane(tmp)
    assert cp.reconcile().settled
    try:
        return snapshot(store)
    finally:
        store.close()


def child(tmp: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.pkg.child_reconcile", str(tmp)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.6])
def test_sigkill_and_rerun_converges(tmp_path: Path, refs: list[str], delay: float) -> None:
    want = reference(tmp_path / "ref", refs)
    run = tmp_path / "run"
    seed(run, refs)
    proc = child(run)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    store, cp = control_plane(run)
    assert cp.reconcile().settled
    assert snapshot(store) == want
    assert store.verify() == []
    assert cp.reconcile().changes == 0


def test_two_reconcilers_at_once(tmp_path: Path, refs: list[str]) -> None:
    want = reference(tmp_path / "ref", refs)
    run = tmp_path / "run"
    seed(run, refs)
    procs = [child(run), child(run)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    store, cp = control_plane(run)
    assert snapshot(store) == want
    assert store.verify() == []
    assert cp.reconcile().changes == 0


def test_a_conflict_on_the_lock_is_read_again_not_raised(tmp_path: Path) -> None:
    """Another process writing the Lock between this one's read and write is a real Conflict from the
    store; the control plane reads it again on the next pass instead of failing the command."""
    from xplane.pkg import ControlPlane, LockResolver
    from xplane.store import Store

    store, plane = control_plane(tmp_path)
    lock = {
        "apiVersion": "pkg.crossplane.io/v1beta1",
        "kind": "Lock",
        "metadata": {"name": "lock"},
        "packages": [],
    }
    store.create(lock)
    calls: list[str] = []

    class Racing(LockResolver):
        def reconcile(self, store: Store) -> bool:
            if not calls:
                stale = store.get("Lock", "lock")
                with Store.open(tmp_path / "state.db") as other:  # the other process
                    other.modify(
                        "Lock", "lock", lambda o: o["metadata"].setdefault("labels", {}).update(x="1")
                    )
                calls.append("raced")
                store.update(stale)  # stale resourceVersion: ConflictError
            calls.append("ok")
            return super().reconcile(store)

    racing = ControlPlane(store, plane.settings, lock_reconciler=Racing(store, plane.settings))
    summary = racing.reconcile()
    assert summary.settled and calls[:2] == ["raced", "ok"]
