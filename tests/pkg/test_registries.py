"""Pull Secrets, ImageConfigs, unreachable registries, offline installs and export-cache."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.pkg.support import (
    condition,
    control_plane,
    docker_secret,
    image_config,
    package,
    push,
    revisions,
    write_package,
    xrd,
)
from tests.support.registry import RegistryServer
from xplane.oci import Credentials, ImageCache, Reference, load_archive
from xplane.pkg import cache_file_name, revision_name
from xplane.xpkg import BuildOptions, build_package

CFG = "configurations.pkg.crossplane.io"
NOP_DIGEST = "sha256:ecc25c121431dfc7058754427f97c034ecde26d4aafa0da16d258090e0443904"


def simple(tmp: Path, name: str = "p", xr: str = "XNet") -> Path:
    return write_package(tmp / name, "Configuration", name, [xrd(xr)])


def test_names_match_the_spec_examples() -> None:
    assert (
        revision_name("crossplane-contrib-provider-nop", NOP_DIGEST)
        == "crossplane-contrib-provider-nop-ecc25c121431"
    )
    assert (
        cache_file_name("xpkg.crossplane.io/crossplane-contrib/provider-nop", NOP_DIGEST)
        == "xpkg-crossplane-io-crossplane-contrib-provider-nop-sha256-ecc25.gz"
    )


def test_private_repository_with_pull_secret(
    tmp_path: Path, registry_factory: Callable[..., RegistryServer], unique_repo: str
) -> None:
    reg = registry_factory(auth="basic")
    ref = f"{reg.host}/{unique_repo}:v1"
    assert reg.username and reg.password
    push(simple(tmp_path), ref, tmp_path, creds=Credentials(reg.username, reg.password))
    store, cp = control_plane(tmp_path)
    store.create(
        package(
            "Configuration",
            "private",
            ref,
            packagePullSecrets=[{"name": "example-secret"}],
            skipDependencyResolution=True,
        )
    )
    cp.reconcile()
    pkg = store.get(CFG, "private")
    inst = condition(pkg, "Installed")
    assert (inst["status"], inst["reason"]) == ("False", "UnpackingPackage")
    assert inst["message"].startswith(
        "cannot unpack package: cannot get pull secret crossplane-system/example-secret: "
        'secrets "example-secret" not found'
    )
    assert ("Warning", "UnpackPackage") in [(e["type"], e["reason"]) for e in store.events_for(pkg)]
    store.create(docker_secret("example-secret", reg.host, reg.username, reg.password))
    assert cp.reconcile().settled
    assert condition(store.get(CFG, "private"), "Healthy")["status"] == "True"


def test_unreachable_registry_leaves_others_untouched(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    good = f"{registry_plain.host}/{unique_repo}:v1"
    push(simple(tmp_path), good, tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "good", good, skipDependencyResolution=True))
    store.create(
        package("Configuration", "bad", "127.0.0.1:9/nothing/here:v1", skipDependencyResolution=True)
    )
    summary = cp.reconcile()
    assert summary.settled
    assert condition(store.get(CFG, "good"), "Healthy")["status"] == "True"
    bad = store.get(CFG, "bad")
    assert condition(bad, "Installed")["reason"] == "UnpackingPackage"
    assert "cannot unpack package:" in summary.failing["Configuration/bad"]
    assert "Configuration/good" not in summary.failing


def test_imageconfig_rewrite_to_mirror_and_pull_secret_by_prefix(
    tmp_path: Path,
    registry_plain: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    unique_repo: str,
) -> None:
    mirror = registry_factory(auth="basic")
    assert mirror.username and mirror.password
    # the package lives only in the mirror; spec.package names an upstream that does not serve it
    push(
        simple(tmp_path),
        f"{mirror.host}/{unique_repo}:v1",
        tmp_path,
        creds=Credentials(mirror.username, mirror.password),
    )
    original = f"{registry_plain.host}/{unique_repo}:v1"
    store, cp = control_plane(tmp_path)
    store.create(docker_secret("mirror-creds", mirror.host, mirror.username, mirror.password))
    store.create(
        image_config(
            "to-mirror",
            [{"type": "Prefix", "prefix": registry_plain.host}],
            rewriteImage={"prefix": mirror.host},
        )
    )
    store.create(
        image_config(
            "mirror-auth-short",
            [{"prefix": mirror.host}],
            registry={"authentication": {"pullSecretRef": {"name": "nope"}}},
        )
    )
    store.create(
        image_config(
            "mirror-auth",
            [{"prefix": f"{mirror.host}/{unique_repo}"}],
            registry={"authentication": {"pullSecretRef": {"name": "mirror-creds"}}},
        )
    )
    store.create(package("Configuration", "p", original, skipDependencyResolution=True))
    assert cp.reconcile().settled
    pkg = store.get(CFG, "p")
    assert condition(pkg, "Healthy")["status"] == "True", pkg["status"]
    assert pkg["status"]["resolvedPackage"] == f"{mirror.host}/{unique_repo}:v1"
    assert pkg["status"]["appliedImageConfigRefs"] == [
        {"name": "to-mirror", "reason": "RewriteImage"},
        {"name": "mirror-auth", "reason": "SetImagePullSecret"},
    ]
    (rev,) = revisions(store, "Configuration", "p")
    assert rev["spec"]["image"] == original
    assert rev["status"]["resolvedImage"] == f"{mirror.host}/{unique_repo}:v1"


def test_offline_installs_from_the_cache(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    ref = f"{registry_plain.host}/{unique_repo}:v1"
    digest = push(simple(tmp_path), ref, tmp_path)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "online", ref, skipDependencyResolution=True))
    assert cp.reconcile().settled
    # a package side-loaded under an unqualified name, as 'xp xpkg load FILE --ref platform-ref-aws' does
    built = build_package(
        BuildOptions(package_root=simple(tmp_path, "platform-ref-aws", "XAws"), examples_root=None)
    )
    xpkg = built.write(tmp_path / "platform-ref-aws.xpkg")
    load_archive(xpkg, Reference.parse("platform-ref-aws"), cache=ImageCache(tmp_path / "cache"))
    registry_plain.stop()  # from here on, no registry
    try:
        repo = f"{registry_plain.host}/{unique_repo}"
        store.create(
            package(
                "Configuration",
                "by-tag",
                f"{repo}:v1",
                packagePullPolicy="Never",
                skipDependencyResolution=True,
            )
        )
        store.create(
            package(
                "Configuration",
                "by-digest",
                f"{repo}@{digest}",
                packagePullPolicy="Never",
                skipDependencyResolution=True,
            )
        )
        store.create(
            package(
                "Configuration",
                "offline-platform-ref-aws",
                "platform-ref-aws",
                packagePullPolicy="Never",
                skipDependencyResolution=True,
            )
        )
        store.create(
            package(
                "Configuration",
                "missing",
                f"{repo}:v9",
                packagePullPolicy="Never",
                skipDependencyResolution=True,
            )
        )
        assert cp.reconcile().settled
        assert condition(store.get(CFG, "offline-platform-ref-aws"), "Healthy")["status"] == "True"
        online_rev = revision_name("online", digest)
        for name in ("by-tag", "by-digest"):  # fetched offline; the same XRD as "online": a conflict
            pkg = store.get(CFG, name)
            assert pkg["status"]["currentRevision"] == revision_name(name, digest)
            assert condition(pkg, "Installed")["reason"] == "ActivePackageRevision"
            msg = condition(pkg, "Healthy")["message"]
            assert "cannot establish control of object: xnets.example.org is already controlled by " in msg
            assert f"ConfigurationRevision {online_rev} (uid " in msg
        unq = store.get(CFG, "offline-platform-ref-aws")
        warnings = [e["message"] for e in store.events_for(unq) if e["reason"] == "UnqualifiedPackage"]
        assert warnings and "not a fully qualified reference" in warnings[0]
        assert "pull policy is Never" in condition(store.get(CFG, "missing"), "Installed")["message"]

        out = cp.export_cache(tmp_path / "export")
        names = sorted(p.name for p in out.cache_files)
        source_key = cache_file_name(f"{repo}", digest)
        assert source_key in names
        assert cache_file_name("platform-ref-aws", built.digest) in names
        data = gzip.decompress((tmp_path / "export" / source_key).read_bytes())
        assert b"meta.pkg.crossplane.io" in data
        assert out.manifests is not None
        docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out.manifests.read_text()) if d}
        assert docs["online"]["spec"]["package"] == f"{repo}@{digest}"
        assert docs["online"]["spec"]["packagePullPolicy"] == "Never"
        assert "missing" not in docs
    finally:
        registry_plain.start()
