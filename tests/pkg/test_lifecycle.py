"""Activation, history limits, Always re-checks, constraints and dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pkg.support import (
    composition,
    condition,
    control_plane,
    package,
    push,
    revisions,
    write_package,
    xrd,
)
from tests.support.registry import RegistryServer
from xplane.pkg import format_list, revision_name
from xplane.store import Store

CFG = "configurations.pkg.crossplane.io"


def versions(tmp: Path, n: int, name: str = "platform") -> list[Path]:
    return [
        write_package(tmp / f"v{i}", "Configuration", name, [xrd("XNet"), composition(f"comp-v{i}", "XNet")])
        for i in range(1, n + 1)
    ]


def test_manual_activation_and_promotion(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    repo = f"{registry_plain.host}/{unique_repo}"
    v1, v2 = versions(tmp_path, 2)
    d1, d2 = push(v1, f"{repo}:v1", tmp_path), push(v2, f"{repo}:v2", tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(
        package(
            "Configuration",
            "platform",
            f"{repo}:v1",
            revisionActivationPolicy="Manual",
            skipDependencyResolution=True,
        )
    )
    assert cp.reconcile().settled
    pkg = store.get(CFG, "platform")
    assert condition(pkg, "Installed") | {"lastTransitionTime": ""} == {
        "type": "Installed",
        "status": "False",
        "reason": "InactivePackageRevision",
        "message": "Package is inactive",
        "lastTransitionTime": "",
        "observedGeneration": 1,
    }
    (r1,) = revisions(store, "Configuration", "platform")
    assert r1["spec"]["desiredState"] == ""
    assert store.try_get("xrds", "xnets.example.org") is None  # not controlling: creates nothing
    store.modify(
        "configurationrevisions", r1["metadata"]["name"], lambda o: o["spec"].update(desiredState="Active")
    )
    assert cp.reconcile().settled
    assert condition(store.get(CFG, "platform"), "Installed")["reason"] == "ActivePackageRevision"
    assert store.get("xrds", "xnets.example.org")
    # a new version under Manual: created inactive, the old one stays active until promoted
    store.modify(CFG, "platform", lambda o: o["spec"].update(package=f"{repo}:v2"))
    assert cp.reconcile().settled
    r1b, r2 = revisions(store, "Configuration", "platform")
    assert r2["metadata"]["name"] == revision_name("platform", d2)
    assert (r1b["spec"]["desiredState"], r2["spec"]["desiredState"]) == ("Inactive", "")
    assert condition(store.get(CFG, "platform"), "Installed")["reason"] == "InactivePackageRevision"
    store.modify(
        "configurationrevisions", r2["metadata"]["name"], lambda o: o["spec"].update(desiredState="Active")
    )
    assert cp.reconcile().settled
    assert store.try_get("compositions", "comp-v2") is not None
    assert store.try_get("compositions", "comp-v1") is None
    assert condition(store.get(CFG, "platform"), "Healthy")["status"] == "True"
    assert d1 != d2


@pytest.mark.parametrize(("limit", "kept"), [(0, 5), (1, 2), (3, 4)])
def test_revision_history_limit(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str, limit: int, kept: int
) -> None:
    repo = f"{registry_plain.host}/{unique_repo}"
    digests = [push(p, f"{repo}:v{i}", tmp_path) for i, p in enumerate(versions(tmp_path, 5), 1)]
    store, cp = control_plane(tmp_path)
    store.create(
        package(
            "Configuration",
            "platform",
            f"{repo}:v1",
            revisionHistoryLimit=limit,
            skipDependencyResolution=True,
        )
    )
    assert cp.reconcile().settled
    for i in range(2, 6):
        store.modify(CFG, "platform", lambda o, i=i: o["spec"].update(package=f"{repo}:v{i}"))
        assert cp.reconcile().settled
    revs = revisions(store, "Configuration", "platform")
    assert [r["spec"]["revision"] for r in revs] == list(range(6 - kept, 6))
    assert revs[-1]["metadata"]["name"] == revision_name("platform", digests[-1])
    assert [r["spec"]["desiredState"] for r in revs] == ["Inactive"] * (kept - 1) + ["Active"]


def test_always_rechecks_a_moved_tag(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    ref = f"{registry_plain.host}/{unique_repo}:latest"
    v1, v2 = versions(tmp_path, 2)
    push(v1, ref, tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(
        package("Configuration", "a", ref, packagePullPolicy="Always", skipDependencyResolution=True)
    )
    assert cp.reconcile().settled
    d2 = push(v2, ref, tmp_path)
    assert cp.reconcile().settled
    assert store.get(CFG, "a")["status"]["currentRevision"] == revision_name("a", d2)
    assert [r["spec"]["desiredState"] for r in revisions(store, "Configuration", "a")] == [
        "Inactive",
        "Active",
    ]


@pytest.mark.parametrize("ignore", [False, True])
def test_incompatible_crossplane_version(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str, ignore: bool
) -> None:
    ref = f"{registry_plain.host}/{unique_repo}:v1"
    push(
        write_package(tmp_path / "p", "Configuration", "p", [xrd("XNet")], crossplane=">=v9.0.0"),
        ref,
        tmp_path,
    )
    store, cp = control_plane(tmp_path, crossplane_version="v2.3.0")
    store.create(
        package("Configuration", "p", ref, ignoreCrossplaneConstraints=ignore, skipDependencyResolution=True)
    )
    assert cp.reconcile().settled
    (rev,) = revisions(store, "Configuration", "p")
    rh = condition(rev, "RevisionHealthy")
    pkg = store.get(CFG, "p")
    if ignore:
        assert rh["status"] == "True"
        assert condition(pkg, "Healthy")["status"] == "True"
        return
    msg = "incompatible Crossplane version: package is not compatible with Crossplane version (v2.3.0)"
    assert (rh["status"], rh["reason"], rh["message"]) == ("False", "UnhealthyPackageRevision", msg)
    assert condition(pkg, "Healthy")["message"] == f'Package revision health is "False" with message: {msg}'
    events = [(e["type"], e["reason"], e["message"]) for e in store.events_for(rev)]
    assert ("Warning", "LintPackage", msg) in events
    assert store.try_get("xrds", "xnets.example.org") is None


def test_missing_dependency(tmp_path: Path, registry_plain: RegistryServer, unique_repo: str) -> None:
    ref = f"{registry_plain.host}/{unique_repo}:v1"
    dep = {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Provider",
        "package": "xpkg.crossplane.io/crossplane-contrib/provider-nop",
        "version": ">=v0.2.0",
    }
    push(write_package(tmp_path / "p", "Configuration", "p", [xrd("XNet")], depends_on=[dep]), ref, tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "p", ref))
    store.create(package("Configuration", "q", ref, skipDependencyResolution=True))
    cp.reconcile()
    (rev,) = revisions(store, "Configuration", "p")
    msg = (
        "cannot resolve package dependencies: missing dependencies: "
        '"xpkg.crossplane.io/crossplane-contrib/provider-nop" (>=v0.2.0)'
    )
    assert condition(rev, "RevisionHealthy")["message"] == msg
    assert (rev["status"]["foundDependencies"], rev["status"]["installedDependencies"]) == (1, 0)
    assert condition(store.get(CFG, "p"), "Healthy")["message"] == (
        f'Package revision health is "False" with message: {msg}'
    )
    lock = store.get("locks", "lock")
    assert [p["name"] for p in lock["packages"]] == [rev["metadata"]["name"]]
    assert lock["packages"][0]["dependencies"][0]["constraints"] == ">=v0.2.0"
    # skipDependencyResolution: installs, no lock entry
    (qrev,) = revisions(store, "Configuration", "q")
    assert condition(qrev, "RevisionHealthy")["status"] == "True"
    store.delete(CFG, "p")
    cp.reconcile()
    assert store.get("locks", "lock")["packages"] == []


def test_format_list() -> None:
    assert format_list(['"c"', '"a"']) == '"a" and "c"'
    assert format_list(["a", "b", "c"]) == "a, b, and c"
    assert format_list(["e", "d", "c", "b", "a"]) == "a, b, c, and 2 more"


def test_run_reconciles_on_changes_and_stops(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    import threading
    import time

    ref = f"{registry_plain.host}/{unique_repo}:v1"
    push(versions(tmp_path, 1)[0], ref, tmp_path)
    store, cp = control_plane(tmp_path, always_interval=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=cp.run, args=(stop,))
    thread.start()
    try:
        other = Store.open(tmp_path / "state.db")  # another process's write wakes the loop
        other.create(package("Configuration", "late", ref, skipDependencyResolution=True))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pkg = store.try_get(CFG, "late")
            if (
                pkg
                and (pkg.get("status") or {}).get("conditions")
                and condition(pkg, "Healthy")["status"] == "True"
            ):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the package was not reconciled")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
