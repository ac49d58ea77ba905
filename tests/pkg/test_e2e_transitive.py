"""Crossplane's e2e TestUpgradeDependencyVersionSharedTransitive(Noop) and TestUpgradeDependencyDigest,
without a cluster.

Upstream's packages (test/e2e/manifests/pkg/dependency-upgrade/transitive): config1 -> dep1 ->
transitive and config2 -> dep2 -> transitive, every edge pinned to the same version (v0.0.1,
v0.0.2, v0.0.3); transitive v0.0.2 and v0.0.3 are byte-identical (one digest). The control plane
runs with dependency upgrades and downgrades on, as upstream's "package-dependency-updates" suite.
Updating config1 alone leaves dep1 and dep2 wanting different transitive versions (the Lock says
the resolution failed); updating config2 too moves the whole graph, and the identical-digest step
changes only the package references, not the revisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.pkg.support import condition, control_plane, package, push, revisions, write_package
from tests.pkg.test_resolver import dep, installed_version, lock_condition, publish
from tests.support.registry import RegistryServer
from xplane.oci import to_dns_label

VERSIONS = ("v0.0.1", "v0.0.2", "v0.0.3")


def publish_graph(tmp: Path, base: str) -> dict[str, str]:
    """Push the five packages at three versions; the digest of each transitive version."""
    digests: dict[str, str] = {}
    for v in VERSIONS:
        label = "one" if v == "v0.0.1" else "two"  # v0.0.2 and v0.0.3 are the same package
        root = write_package(
            tmp / f"transitive-{v}", "Configuration", "transitive", labels={"version": label}
        )
        digests[v] = push(root, f"{base}/transitive:{v}", tmp)
        for parent, child in (
            ("dep1", "transitive"),
            ("dep2", "transitive"),
            ("config1", "dep1"),
            ("config2", "dep2"),
        ):
            root = write_package(
                tmp / f"{parent}-{v}",
                "Configuration",
                parent,
                depends_on=[dep("Configuration", f"{base}/{child}", v)],
            )
            push(root, f"{base}/{parent}:{v}", tmp)
    return digests


def healthy(obj: dict[str, Any]) -> bool:
    return bool(condition(obj, "Healthy")["status"] == "True")


@pytest.mark.parametrize("target", ["v0.0.2", "v0.0.3"], ids=["transitive", "transitive-noop"])
def test_a_shared_transitive_dependency_moves_once_both_parents_do(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str, target: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    digests = publish_graph(tmp_path, base)
    assert digests["v0.0.2"] == digests["v0.0.3"] != digests["v0.0.1"]
    store, cp = control_plane(tmp_path, dependency_upgrades=True, dependency_downgrades=True)
    start = "v0.0.2" if target == "v0.0.3" else "v0.0.1"  # the noop case starts where the other ends
    for name in ("config1", "config2"):
        store.create(package("Configuration", name, f"{base}/{name}:{start}"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    deps = {n: to_dns_label(f"{unique_repo}/{n}") for n in ("dep1", "dep2", "transitive")}
    for n in deps.values():
        assert installed_version(store, "Configuration", n) == start
        assert healthy(store.get("configurations", n))

    def update(name: str) -> Any:
        def put(o: dict[str, Any]) -> None:
            o["spec"]["package"] = f"{base}/{name}:{target}"

        store.modify("configurations", name, put)
        return cp.reconcile()

    update("config1")  # dep1@target wants transitive@target, dep2@start wants transitive@start
    c = lock_condition(store)
    assert c["status"] == "False" and c["reason"] == "DependencyResolutionFailed", c
    assert (
        "transitive" in c["message"]
        and f"requires {start}" in c["message"]
        and f"requires {target}" in c["message"]
    )
    assert installed_version(store, "Configuration", deps["transitive"]) == start  # nothing half moved
    assert installed_version(store, "Configuration", deps["dep2"]) == start

    summary = update("config2")
    assert summary.settled and not summary.failing, summary.failing
    for n in deps.values():
        assert installed_version(store, "Configuration", n) == target
        assert healthy(store.get("configurations", n))
    for name in ("config1", "config2"):
        assert healthy(store.get("configurations", name))
    assert lock_condition(store)["status"] == "True"
    digests_seen = [r["metadata"]["name"] for r in revisions(store, "Configuration", deps["transitive"])]
    if target == "v0.0.3":  # the same digest: no new revision of transitive, only a new reference
        assert len(revisions(store, "Configuration", deps["transitive"])) == 1, digests_seen
    else:
        assert len(revisions(store, "Configuration", deps["transitive"])) == 2, digests_seen


def test_a_digest_pinned_dependency_moves_with_its_configuration(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    # TestUpgradeDependencyDigest: the Configuration's dependsOn pins the provider by digest; the
    # next version of the Configuration pins another digest, and the provider follows it.
    base = f"{registry_plain.host}/{unique_repo}"
    pins = publish(tmp_path, f"{base}/provider-nop", "Provider", ["v0.2.0", "v0.3.0"])
    publish(
        tmp_path,
        f"{base}/configuration",
        "Configuration",
        ["v0.0.1", "v0.0.2"],
        {
            "v0.0.1": [dep("Provider", f"{base}/provider-nop", pins["v0.2.0"])],
            "v0.0.2": [dep("Provider", f"{base}/provider-nop", pins["v0.3.0"])],
        },
    )
    store, cp = control_plane(tmp_path, dependency_upgrades=True)
    store.create(package("Configuration", "configuration", f"{base}/configuration:v0.0.1"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    nop = to_dns_label(f"{unique_repo}/provider-nop")
    assert store.get("providers", nop)["spec"]["package"] == f"{base}/provider-nop@{pins['v0.2.0']}"

    def put(o: dict[str, Any]) -> None:
        o["spec"]["package"] = f"{base}/configuration:v0.0.2"

    store.modify("configurations", "configuration", put)
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    provider = store.get("providers", nop)
    assert provider["spec"]["package"] == f"{base}/provider-nop@{pins['v0.3.0']}" and healthy(provider)
    assert healthy(store.get("configurations", "configuration"))
    assert lock_condition(store)["status"] == "True"
