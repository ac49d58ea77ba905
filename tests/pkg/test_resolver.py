"""Dependency resolution against a real registry: packages built by xplane's build with ``dependsOn``,
pushed under several tags, installed by the control plane's Lock side (no mocks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.pkg.support import condition, control_plane, crd, docker_secret, package, push, write_package
from tests.support.registry import RegistryServer
from xplane.oci import Credentials, to_dns_label


def dep(kind: str, ref: str, version: str) -> dict[str, str]:
    return {"apiVersion": "pkg.crossplane.io/v1", "kind": kind, "package": ref, "version": version}


def publish(
    tmp: Path,
    repo: str,
    kind: str,
    tags: Sequence[str],
    depends_on: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    **push_kw: Any,
) -> dict[str, str]:
    """Push ``repo:tag`` for each tag (a distinct package each); tag -> digest."""
    out: dict[str, str] = {}
    name = repo.rsplit("/", 1)[-1]
    for tag in tags:
        objs = (
            [crd(f"K{name.replace('-', '')}{tag.replace('.', '')}", f"{name}.example.org")]
            if kind == "Provider"
            else []
        )
        root = write_package(
            tmp / f"{name}-{tag}", kind, name, objs, depends_on=(depends_on or {}).get(tag, ())
        )
        out[tag] = push(root, f"{repo}:{tag}", tmp, **push_kw)
    return out


def lock_condition(store: Any) -> dict[str, Any]:
    return condition(store.get("locks", "lock"), "Resolved")


def installed_version(store: Any, kind: str, name: str) -> str:
    return str(store.get(kind.lower() + "s", name)["spec"]["package"]).rsplit(":", 1)[-1]


def test_configuration_installs_provider_and_function(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.1.0"])
    publish(tmp_path, f"{base}/function-f", "Function", ["v0.1.0", "v0.2.0"])
    deps = [
        dep("Provider", f"{base}/provider-x", ">=v1.0.0"),
        dep("Function", f"{base}/function-f", "<v0.2.0"),
    ]
    publish(tmp_path, f"{base}/configuration-a", "Configuration", ["v1.0.0"], {"v1.0.0": deps})
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp.reconcile()
    assert summary.settled, summary
    assert not summary.failing, summary.failing
    prov = to_dns_label(f"{unique_repo}/provider-x")
    fn = to_dns_label(f"{unique_repo}/function-f")
    assert store.get("providers", prov)["spec"]["package"] == f"{base}/provider-x:v1.1.0"
    assert store.get("functions", fn)["spec"]["package"] == f"{base}/function-f:v0.1.0"
    lock = store.get("locks", "lock")
    assert lock_condition(store)["reason"] == "DependencyResolutionSucceeded"
    assert {p["source"] for p in lock["packages"]} == {
        f"{base}/{n}" for n in ("configuration-a", "provider-x", "function-f")
    }
    rev = store.list("configurationrevisions")[0]
    assert rev["status"]["foundDependencies"] == 2 and rev["status"]["installedDependencies"] == 2


def test_overlap_below_highest_and_transitive_chain(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    # configuration-a -> configuration-b -> provider-x (>=v1.0.0); configuration-a also wants <v2.0.0.
    # Upstream installs one implied dependency at a time from the *first* edge: provider-x v2.0.1
    # (b's >=v1.0.0), then a reports "incompatible dependencies". xplane installs v1.5.2.
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.4.0", "v1.5.2", "v2.0.1"])
    publish(
        tmp_path,
        f"{base}/configuration-b",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", ">=v1.0.0")]},
    )
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {
            "v1.0.0": [
                dep("Configuration", f"{base}/configuration-b", ">=v1.0.0"),
                dep("Provider", f"{base}/provider-x", "<v2.0.0"),
            ]
        },
    )
    prov = to_dns_label(f"{unique_repo}/provider-x")
    store, cp = control_plane(tmp_path / "chain")
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary
    assert installed_version(store, "Provider", prov) == "v1.5.2"
    assert (
        installed_version(store, "Configuration", to_dns_label(f"{unique_repo}/configuration-b")) == "v1.0.0"
    )
    # Upstream's resolver on two top-level Configurations: b (provider-x >=v1.0.0) enters the Lock
    # first, so provider-x is installed at the highest version b's edge allows, v2.0.1, and c
    # (<v2.0.0) is left with upstream's "incompatible dependencies". xplane's resolver: v1.5.2.
    publish(
        tmp_path,
        f"{base}/configuration-c",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", "<v2.0.0")]},
    )
    for mode, want in (("upstream", "v2.0.1"), ("graph", "v1.5.2")):
        store, cp = control_plane(tmp_path / mode, dependency_resolution=mode)
        for name in ("configuration-b", "configuration-c"):
            store.create(package("Configuration", name, f"{base}/{name}:v1.0.0"))
        summary = cp.reconcile()
        assert summary.settled, summary
        assert installed_version(store, "Provider", prov) == want, mode
        assert lock_condition(store)["status"] == "True"
        if mode == "upstream":
            assert list(summary.failing) == ["Configuration/configuration-c"], summary.failing
            assert summary.failing["Configuration/configuration-c"].endswith(
                "cannot resolve package dependencies: incompatible dependencies: existing package "
                f"{base}/provider-x@v2.0.1 is incompatible with constraint <v2.0.0"
            ), summary.failing
        else:
            assert not summary.failing, summary.failing


def test_unsatisfiable_pair_names_both_and_installs_nothing(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.4.0", "v2.0.1"])
    for name, c in (("configuration-a", ">=v2.0.0"), ("configuration-b", "<v2.0.0")):
        publish(
            tmp_path,
            f"{base}/{name}",
            "Configuration",
            ["v1.0.0"],
            {"v1.0.0": [dep("Provider", f"{base}/provider-x", c)]},
        )
    store, cp = control_plane(tmp_path)
    for name in ("configuration-a", "configuration-b"):
        store.create(package("Configuration", name, f"{base}/{name}:v1.0.0"))
    cp.reconcile()
    c = lock_condition(store)
    assert c["status"] == "False" and c["reason"] == "DependencyResolutionFailed"
    assert c["message"] == (
        "Error occurred during dependency resolution provider-x: configuration-a requires >=v2.0.0, "
        "configuration-b requires <v2.0.0; no version satisfies both (available: v1.4.0, v2.0.1)"
    ).replace("provider-x:", to_dns_label(f"{unique_repo}/provider-x") + ":")
    assert store.list("providers") == []
    events = store.events_for(store.get("locks", "lock"))
    assert any(e["reason"] == "DependencyResolutionFailed" for e in events)


def test_skip_dependency_resolution_installs_nothing(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0"])
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", ">=v1.0.0")]},
    )
    store, cp = control_plane(tmp_path)
    store.create(
        package(
            "Configuration",
            "configuration-a",
            f"{base}/configuration-a:v1.0.0",
            skipDependencyResolution=True,
        )
    )
    summary = cp.reconcile()
    assert summary.settled and not summary.failing
    assert store.list("providers") == []


def test_digest_pin_match_and_mismatch(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    digests = publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.1.0"])
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", digests["v1.0.0"])]},
    )
    publish(
        tmp_path,
        f"{base}/configuration-b",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", digests["v1.1.0"])]},
    )
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    prov = to_dns_label(f"{unique_repo}/provider-x")
    assert store.get("providers", prov)["spec"]["package"] == f"{base}/provider-x@{digests['v1.0.0']}"
    store.create(package("Configuration", "configuration-b", f"{base}/configuration-b:v1.0.0"))
    summary = cp.reconcile()
    assert (
        "is incompatible with constraint " + digests["v1.1.0"]
        in summary.failing["Configuration/configuration-b"]
    )


def test_cycle_is_reported(tmp_path: Path, registry_plain: RegistryServer, unique_repo: str) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(
        tmp_path,
        f"{base}/configuration-b",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Configuration", f"{base}/configuration-a", ">=v1.0.0")]},
    )
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Configuration", f"{base}/configuration-b", ">=v1.0.0")]},
    )
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    cp.reconcile()
    c = lock_condition(store)
    assert c["status"] == "False"
    assert "cannot sort DAG: detected cycle on: " in c["message"]
    assert f"{base}/configuration-a -> {base}/configuration-b -> {base}/configuration-a" in c["message"]


def test_private_dependency_gets_the_dependents_pull_secret(
    tmp_path: Path, registry_basic: RegistryServer, unique_repo: str
) -> None:
    reg = registry_basic
    base = f"{reg.host}/{unique_repo}"
    publish(
        tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0"], creds=Credentials(reg.username, reg.password)
    )
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", ">=v1.0.0")]},
        creds=Credentials(reg.username, reg.password),
    )
    store, cp = control_plane(tmp_path)
    store.create(docker_secret("example-secret", reg.host, reg.username, reg.password))
    store.create(
        package(
            "Configuration",
            "configuration-a",
            f"{base}/configuration-a:v1.0.0",
            packagePullSecrets=[{"name": "example-secret"}],
        )
    )
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    prov = store.get("providers", to_dns_label(f"{unique_repo}/provider-x"))
    assert prov["spec"]["packagePullSecrets"] == [{"name": "example-secret"}]


def test_upgrade_and_downgrade_modes(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.5.0", "v2.0.0"])
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", ">=v1.5.0")]},
    )
    publish(
        tmp_path,
        f"{base}/configuration-b",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", "<v2.0.0")]},
    )
    prov = to_dns_label(f"{unique_repo}/provider-x")
    # default: an installed v1.0.0 is left alone; the dependent reports upstream's message.
    store, cp = control_plane(tmp_path / "default")
    store.create(package("Provider", prov, f"{base}/provider-x:v1.0.0"))
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp.reconcile()
    assert "incompatible dependencies" in summary.failing["Configuration/configuration-a"]
    assert installed_version(store, "Provider", prov) == "v1.0.0"
    # upgrades: the minimal satisfying version (v1.5.0, not v2.0.0).
    store, cp = control_plane(tmp_path / "up", dependency_upgrades=True)
    store.create(package("Provider", prov, f"{base}/provider-x:v1.0.0"))
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    assert installed_version(store, "Provider", prov) == "v1.5.0"
    # downgrades: v2.0.0 installed, b wants <v2.0.0 -> the highest below (v1.5.0).
    store, cp = control_plane(tmp_path / "down", dependency_downgrades=True)
    store.create(package("Provider", prov, f"{base}/provider-x:v2.0.0"))
    store.create(package("Configuration", "configuration-b", f"{base}/configuration-b:v1.0.0"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    assert installed_version(store, "Provider", prov) == "v1.5.0"


def test_offline_install_with_everything_cached(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    from xplane.oci import RegistryError

    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.1.0"])
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", ">=v1.0.0")]},
    )
    store, cp = control_plane(tmp_path / "online", cache_dir=tmp_path / "shared-cache")
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    assert not cp.reconcile().failing

    def offline(_: Any) -> Any:
        raise RegistryError("registry unreachable (test: no network)", registry=registry_plain.host)

    store2, cp2 = control_plane(
        tmp_path / "offline", cache_dir=tmp_path / "shared-cache", client_factory=offline
    )
    store2.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp2.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    prov = to_dns_label(f"{unique_repo}/provider-x")
    assert store2.get("providers", prov)["spec"]["package"] == f"{base}/provider-x:v1.1.0"


def test_unknown_kind_and_invalid_constraint_install_nothing(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0"])
    bad_kind = {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Widget",
        "package": f"{base}/provider-x",
        "version": ">=v1.0.0",
    }
    publish(tmp_path, f"{base}/configuration-a", "Configuration", ["v1.0.0"], {"v1.0.0": [bad_kind]})
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    cp.reconcile()
    c = lock_condition(store)
    assert c["status"] == "False" and "unknown kind pkg.crossplane.io/v1/Widget" in c["message"]
    assert store.list("providers") == []


def test_dependency_of_the_wrong_kind_installs_nothing(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/function-f", "Function", ["v1.0.0"])
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0"])
    deps = [
        dep("Provider", f"{base}/provider-x", ">=v1.0.0"),
        dep("Provider", f"{base}/function-f", ">=v1.0.0"),
    ]
    publish(tmp_path, f"{base}/configuration-a", "Configuration", ["v1.0.0"], {"v1.0.0": deps})
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    cp.reconcile()
    c = lock_condition(store)
    assert (
        c["status"] == "False" and "is a Function package, but a dependent wants a Provider" in c["message"]
    )
    assert store.list("providers") == [] and store.list("functions") == []  # whole or nothing
