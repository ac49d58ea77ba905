"""Installing, upgrading and activating packages against a real registry."""

from __future__ import annotations

from pathlib import Path

from tests.pkg.support import (
    composition,
    condition,
    control_plane,
    crd,
    package,
    push,
    revisions,
    write_package,
    xrd,
)
from tests.support.registry import RegistryServer
from xplane.pkg import revision_name


def config_v1(tmp: Path) -> Path:
    return write_package(
        tmp / "cfg-v1",
        "Configuration",
        "platform",
        [xrd("XNetwork"), composition("xnetworks-aws", "XNetwork"), composition("xnetworks-old", "XNetwork")],
    )


def config_v2(tmp: Path) -> Path:
    return write_package(
        tmp / "cfg-v2",
        "Configuration",
        "platform",
        [xrd("XNetwork"), composition("xnetworks-aws", "XNetwork"), xrd("XCluster")],
    )


def test_configuration_installs_xrd_and_compositions(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    ref = f"{registry_plain.host}/{unique_repo}:v1.0.0"
    digest = push(config_v1(tmp_path), ref, tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "platform-ref", ref, skipDependencyResolution=True))
    summary = cp.reconcile()
    assert summary.settled, summary
    pkg = store.get("configurations", "platform-ref")
    assert condition(pkg, "Installed")["reason"] == "ActivePackageRevision"
    assert condition(pkg, "Healthy")["status"] == "True"
    assert condition(pkg, "Healthy")["observedGeneration"] == 1
    rev_name = revision_name("platform-ref", digest)
    assert rev_name == "platform-ref-" + digest[7:19]
    assert pkg["status"]["currentRevision"] == rev_name
    assert pkg["status"]["resolvedPackage"] == ref
    rev = store.get("configurationrevisions", rev_name)
    assert rev["spec"]["revision"] == 1
    assert rev["spec"]["desiredState"] == "Active"
    assert rev["spec"]["image"] == ref
    assert rev["metadata"]["finalizers"] == ["revision.pkg.crossplane.io"]
    assert condition(rev, "RevisionHealthy")["reason"] == "HealthyPackageRevision"
    names = [r["name"] for r in rev["status"]["objectRefs"]]
    assert names == ["xnetworks.example.org", "xnetworks-old", "xnetworks-aws"]  # descending by gvk/name
    xrd_obj = store.get("xrds", "xnetworks.example.org")
    owners = xrd_obj["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["controller"]) for o in owners] == [
        ("ConfigurationRevision", rev_name, True),
        ("Configuration", "platform-ref", False),
    ]
    reasons = [e["reason"] for e in store.events_for(pkg)]
    assert "InstallPackageRevision" in reasons
    assert "SyncPackage" in [e["reason"] for e in store.events_for(rev)]
    # settled: another reconcile writes nothing
    assert cp.reconcile().changes == 0


def test_upgrade_takes_over_and_drops(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    ref = f"{registry_plain.host}/{unique_repo}:v1"
    d1 = push(config_v1(tmp_path), ref, tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(
        package("Configuration", "platform", ref, skipDependencyResolution=True, packagePullPolicy="Always")
    )
    assert cp.reconcile().settled
    d2 = push(config_v2(tmp_path), ref, tmp_path)  # the tag moves
    assert d1 != d2
    assert cp.reconcile().settled
    revs = revisions(store, "Configuration", "platform")
    assert [(r["metadata"]["name"], r["spec"]["revision"], r["spec"]["desiredState"]) for r in revs] == [
        (revision_name("platform", d1), 1, "Inactive"),
        (revision_name("platform", d2), 2, "Active"),
    ]
    new = revs[1]
    xnet = store.get("xrds", "xnetworks.example.org")
    ctrl = [o for o in xnet["metadata"]["ownerReferences"] if o.get("controller")]
    assert [o["name"] for o in ctrl] == [new["metadata"]["name"]]
    assert store.try_get("xrds", "xclusters.example.org") is not None
    assert store.try_get("compositions", "xnetworks-old") is None  # no longer shipped: gone
    pkg = store.get("configurations", "platform")
    assert condition(pkg, "Healthy")["status"] == "True"
    assert pkg["status"]["currentRevision"] == new["metadata"]["name"]


def test_provider_crds_become_mrds_and_function_installs_nothing(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    prov = write_package(
        tmp_path / "prov",
        "Provider",
        "provider-nop",
        [
            crd("NopResource", "nop.example.org", ["crossplane", "managed", "nop"]),
            crd("ProviderConfig", "nop.example.org", ["crossplane", "provider", "nop"]),
        ],
    )
    fn = write_package(tmp_path / "fn", "Function", "function-x", [crd("Input", "fn.example.org")])
    pref = f"{registry_plain.host}/{unique_repo}/provider-nop:v0.1.0"
    fref = f"{registry_plain.host}/{unique_repo}/function-x:v0.1.0"
    push(prov, pref, tmp_path)
    push(fn, fref, tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(package("Provider", "provider-nop", pref, skipDependencyResolution=True))
    store.create(package("Function", "function-x", fref, skipDependencyResolution=True))
    assert cp.reconcile().settled
    mrd = store.get("mrds", "nopresources.nop.example.org")
    assert mrd["spec"]["state"] == "Active"
    assert store.get("crds", "providerconfigs.nop.example.org")
    # the Active MRD's CRD exists, so instances of the kind can be stored
    assert store.get("crds", "nopresources.nop.example.org")
    store.create({"apiVersion": "nop.example.org/v1alpha1", "kind": "NopResource", "metadata": {"name": "a"}})
    assert store.get("nopresources", "a")
    assert store.try_get("crds", "inputs.fn.example.org") is None
    for kind, name in (("Provider", "provider-nop"), ("Function", "function-x")):
        pkg = store.get(f"{kind.lower()}s.pkg.crossplane.io", name)
        assert condition(pkg, "Installed")["status"] == "True"
        assert condition(pkg, "Healthy")["status"] == "True"
        (rev,) = revisions(store, kind, name)
        rt = condition(rev, "RuntimeHealthy")
        assert (rt["status"], rt["reason"]) == ("Unknown", "RuntimeNotRun")
        assert rev["spec"]["runtimeConfigRef"] == {
            "apiVersion": "pkg.crossplane.io/v1beta1",
            "kind": "DeploymentRuntimeConfig",
            "name": "default",
        }
        assert rev["spec"]["tlsServerSecretName"] == f"{name}-tls-server"
    frev = revisions(store, "Function", "function-x")[0]
    assert frev["status"]["objectRefs"] == []
    assert frev["status"]["capabilities"] == ["composition"]
