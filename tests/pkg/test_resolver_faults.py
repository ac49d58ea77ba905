"""Dependency resolution when things go wrong, and Crossplane's own package-manager e2e scenarios.

- a dependency's registry unreachable, its tag list a 500 or garbage, its package unreadable: the
  Lock's ``Resolved`` condition names the package and the cause, nothing is installed, and once the
  registry is fixed the next reconcile installs the whole graph;
- a whole ``xp apply`` process SIGKILLed while it installs a Configuration with dependencies: the
  state holds none or all of the plan's dependencies, and rerunning converges;
- Crossplane's ``test/e2e`` package-manager scenarios that need no cluster (see each test).

Real parts throughout: Debian's docker-registry, xplane's own build and push, a fault-injecting
proxy, a hostile registry serving the real package's bytes, whole ``xp`` processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pkg.support import (
    PortForwarder,
    closed_port,
    composition,
    condition,
    control_plane,
    docker_secret,
    image_config,
    package,
    push,
    write_package,
    xrd,
)
from tests.pkg.test_resolver import dep, installed_version, lock_condition, publish
from tests.support.faultproxy import FaultProxy
from tests.support.hostile import Answer, Behavior, HostileRegistry, Served
from tests.support.procs import fresh_user_env
from tests.support.registry import RegistryServer
from xplane.oci import Credentials, to_dns_label
from xplane.store import Store

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "Error occurred during dependency resolution "


def healthy(obj: dict[str, Any]) -> bool:
    return bool(condition(obj, "Healthy")["status"] == "True")


def config_needing(tmp: Path, base: str, source: str, constraint: str = ">=v1.0.0") -> str:
    """Push ``configuration-a:v1.0.0`` (to ``base``) depending on the Provider ``source``; its reference."""
    publish(
        tmp,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", source, constraint)]},
    )
    return f"{base}/configuration-a:v1.0.0"


# -- (a) a dependency that cannot be read ------------------------------------------------------------


def test_unreachable_dependency_registry_names_the_package_then_converges(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    # the Provider lives in registry_plain, but the dependsOn names a port nothing listens on (yet)
    publish(tmp_path, f"{registry_plain.host}/{unique_repo}/provider-x", "Provider", ["v1.0.0", "v1.1.0"])
    port = closed_port()
    source = f"127.0.0.1:{port}/{unique_repo}/provider-x"
    ref = config_needing(tmp_path, f"{registry_plain.host}/{unique_repo}", source)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", ref))
    summary = cp.reconcile()
    assert summary.settled, summary
    c = lock_condition(store)
    assert (c["status"], c["reason"]) == ("False", "DependencyResolutionFailed")
    assert c["message"].startswith(f"{PREFIX}cannot list versions of {source}: "), c["message"]
    assert f"cannot reach registry 127.0.0.1:{port}" in c["message"], c["message"]
    assert c["message"].endswith("Connection refused"), c["message"]
    assert store.list("providers") == [] and store.list("functions") == []
    events = store.events_for(store.get("locks", "lock"))
    assert any(e["reason"] == "DependencyResolutionFailed" and source in e["message"] for e in events)
    # the registry comes up on that port: the next reconcile installs the graph
    forwarder = PortForwarder(port, registry_plain.host)
    try:
        summary = cp.reconcile()
    finally:
        forwarder.close()
    assert summary.settled and not summary.failing, summary.failing
    assert lock_condition(store)["status"] == "True"
    prov = to_dns_label(f"{unique_repo}/provider-x")
    assert store.get("providers", prov)["spec"]["package"] == f"{source}:v1.1.0"
    assert healthy(store.get("providers", prov)) and healthy(store.get("configurations", "configuration-a"))


def test_tag_list_500_names_the_package_then_converges(
    tmp_path: Path, registry_plain: RegistryServer, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    publish(tmp_path, f"{registry_plain.host}/{unique_repo}/provider-x", "Provider", ["v1.0.0"])
    source = f"{fault_proxy.host}/{unique_repo}/provider-x"  # the same repository, through the proxy
    ref = config_needing(tmp_path, f"{registry_plain.host}/{unique_repo}", source)
    fault_proxy.fail(r"/provider-x/tags/list", 500, times=None)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", ref))
    assert cp.reconcile().settled
    c = lock_condition(store)
    assert c["status"] == "False" and c["reason"] == "DependencyResolutionFailed"
    assert c["message"].startswith(f"{PREFIX}cannot list versions of {source}: "), c["message"]
    assert f"tag list in {source} failed: HTTP 500" in c["message"], c["message"]
    # listed once in this reconcile (its retries included), not once per pass
    assert 1 <= fault_proxy.count("/tags/list") <= 4, fault_proxy.requests
    assert store.list("providers") == []
    # the revision side says what is missing, in upstream's words
    cfg = store.get("configurations", "configuration-a")
    assert f'missing dependencies: "{source}" (>=v1.0.0)' in condition(cfg, "Healthy")["message"]
    fault_proxy.reset()
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    assert installed_version(store, "Provider", to_dns_label(f"{unique_repo}/provider-x")) == "v1.0.0"
    assert lock_condition(store)["status"] == "True"


@dataclass
class Switch(Behavior):
    """Answers with ``now``, which the test swaps (a registry that gets fixed)."""

    now: Behavior

    def serve(self, h: Any, served: Served) -> None:
        self.now.serve(h, served)


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    server = HostileRegistry().start()
    try:
        yield server
    finally:
        server.stop()


def copy_image(registry: RegistryServer, repo: str, tag: str, to: HostileRegistry) -> None:
    """Serve ``repo:tag`` of ``registry`` (manifest and blobs, byte for byte) from ``to``."""
    accept = (
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    )
    with httpx.Client(base_url=f"http://{registry.host}") as http:
        r = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
        r.raise_for_status()
        manifest = r.json()
        for desc in [manifest["config"], *manifest["layers"]]:
            blob = http.get(f"/v2/{repo}/blobs/{desc['digest']}")
            blob.raise_for_status()
            to.add_blob(blob.content)
        to.add_manifest(repo, tag, r.content, r.headers["Content-Type"])


def test_tag_list_garbage_names_the_package_then_converges(
    tmp_path: Path, registry_plain: RegistryServer, hostile: HostileRegistry, unique_repo: str
) -> None:
    repo = f"{unique_repo}/provider-x"
    publish(tmp_path, f"{registry_plain.host}/{repo}", "Provider", ["v1.0.0"])
    copy_image(registry_plain, repo, "v1.0.0", hostile)
    json_type = {"Content-Type": "application/json"}
    switch = Switch(Answer(200, b"<html>this is not a tag list</html>", json_type))
    hostile.attack(r"/tags/list", switch)
    source = f"{hostile.host}/{repo}"
    ref = config_needing(tmp_path, f"{registry_plain.host}/{unique_repo}", source)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", ref))
    assert cp.reconcile().settled  # no crash: the garbage is this dependency's problem only
    c = lock_condition(store)
    assert c["status"] == "False" and c["reason"] == "DependencyResolutionFailed"
    assert c["message"] == (
        f"{PREFIX}cannot list versions of {source}: the tag list of {source} is not valid JSON: "
        "Expecting value: line 1 column 1 (char 0)"
    ), c["message"]
    assert store.list("providers") == []
    # a tag list of the wrong shape (valid JSON) is refused the same way
    switch.now = Answer(200, json.dumps({"name": repo, "tags": "v1.0.0"}).encode(), json_type)
    assert cp.reconcile().settled
    c = lock_condition(store)
    assert c["status"] == "False", c
    assert c["message"].endswith(
        f"cannot list versions of {source}: registry {hostile.host} sent an invalid tag list for {repo}"
    ), c["message"]
    assert store.list("providers") == []
    switch.now = Answer(200, json.dumps({"name": repo, "tags": ["v1.0.0", "latest"]}).encode(), json_type)
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    assert installed_version(store, "Provider", to_dns_label(repo)) == "v1.0.0"


def test_unreadable_dependency_package_names_the_version_then_converges(
    tmp_path: Path, registry_plain: RegistryServer, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    # the tags list, but the chosen version's manifest cannot be fetched: "cannot read REF: …"
    publish(tmp_path, f"{registry_plain.host}/{unique_repo}/provider-x", "Provider", ["v1.0.0"])
    publish(tmp_path, f"{registry_plain.host}/{unique_repo}/provider-y", "Provider", ["v2.0.0"])
    x = f"{fault_proxy.host}/{unique_repo}/provider-x"
    y = f"{fault_proxy.host}/{unique_repo}/provider-y"
    publish(
        tmp_path,
        f"{registry_plain.host}/{unique_repo}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", x, ">=v1.0.0"), dep("Provider", y, ">=v2.0.0")]},
    )
    fault_proxy.fail(r"/provider-y/manifests/", 404, times=None)
    store, cp = control_plane(tmp_path)
    store.create(
        package(
            "Configuration", "configuration-a", f"{registry_plain.host}/{unique_repo}/configuration-a:v1.0.0"
        )
    )
    assert cp.reconcile().settled
    c = lock_condition(store)
    assert c["status"] == "False", c
    assert c["message"].startswith(f"{PREFIX}cannot read {y}:v2.0.0: manifest v2.0.0 not found"), c["message"]
    assert store.list("providers") == []  # provider-x was readable, but a plan is whole or nothing
    fault_proxy.reset()
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    assert {p["spec"]["package"] for p in store.list("providers")} == {f"{x}:v1.0.0", f"{y}:v2.0.0"}


def manifest_tags(proxy: FaultProxy) -> dict[str, set[str]]:
    """Repository name -> the tags whose manifests were asked for through the proxy."""
    out: dict[str, set[str]] = {}
    for _, path in proxy.requests:
        if "/manifests/" in path:
            repo, tag = path.split("/manifests/")
            if not tag.startswith("sha256:"):  # by digest: the same image (index or manifest)
                out.setdefault(repo.rsplit("/", 1)[-1], set()).add(tag)
    return out


@pytest.mark.parametrize("mode", ["install", "upgrade"])
def test_read_ahead_fetches_only_the_versions_the_plan_takes(
    tmp_path: Path, registry_plain: RegistryServer, fault_proxy: FaultProxy, unique_repo: str, mode: str
) -> None:
    # The dependencies' packages are read ahead concurrently; a guess the resolver does not take
    # would be a wasted pull (and a stray image in the cache). install: the highest tag every
    # dependent accepts; upgrade: the lowest at or above the installed one.
    base = f"{registry_plain.host}/{unique_repo}"
    names = ("provider-a", "provider-b", "function-c")
    for name in names:
        publish(
            tmp_path,
            f"{base}/{name}",
            "Function" if name.startswith("function") else "Provider",
            ["v1.0.0", "v1.1.0", "v1.2.0", "v2.0.0"],
        )
    constraint = "<v2.0.0" if mode == "install" else ">=v1.1.0"
    deps = [
        dep(
            "Function" if n.startswith("function") else "Provider",
            f"{fault_proxy.host}/{unique_repo}/{n}",
            constraint,
        )
        for n in names
    ]
    publish(tmp_path, f"{base}/configuration-a", "Configuration", ["v1.0.0"], {"v1.0.0": deps})
    store, cp = control_plane(tmp_path, dependency_upgrades=mode == "upgrade")
    if mode == "upgrade":
        for d in deps:
            store.create(
                package(d["kind"], to_dns_label(d["package"].split("/", 1)[1]), f"{d['package']}:v1.0.0")
            )
        assert cp.reconcile().settled
    fault_proxy.reset()
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    want = "v1.2.0" if mode == "install" else "v1.1.0"
    for d in deps:
        assert (
            store.get(d["kind"].lower() + "s", to_dns_label(d["package"].split("/", 1)[1]))["spec"]["package"]
            == f"{d['package']}:{want}"
        )
    assert manifest_tags(fault_proxy) == {n: {want} for n in names}


# -- (b) SIGKILL during `xp apply` ------------------------------------------------------------------


@pytest.fixture
def graph(
    tmp_path: Path, registry_plain: RegistryServer, fault_proxy: FaultProxy, unique_repo: str
) -> dict[str, Any]:
    """A Configuration with three Providers and a Function, the dependencies through the proxy with
    each tag list delayed (a wider window for a kill while the plan is being made)."""
    base = f"{registry_plain.host}/{unique_repo}"
    deps = []
    for name, kind in (
        ("provider-a", "Provider"),
        ("provider-b", "Provider"),
        ("provider-c", "Provider"),
        ("function-d", "Function"),
    ):
        publish(tmp_path, f"{base}/{name}", kind, ["v1.0.0", "v1.1.0"])
        deps.append(dep(kind, f"{fault_proxy.host}/{unique_repo}/{name}", ">=v1.0.0"))
    root = write_package(
        tmp_path / "platform",
        "Configuration",
        "platform",
        [xrd("XPlat"), composition("xplat", "XPlat")],
        depends_on=deps,
    )
    ref = f"{base}/platform:v1.0.0"
    push(root, ref, tmp_path)
    fault_proxy.delay(r"/tags/list", 0.15, times=None)
    manifest = tmp_path / "platform.json"
    manifest.write_text(json.dumps(package("Configuration", "platform", ref)))
    config = tmp_path / "xplane-config.yaml"
    config.write_text(
        json.dumps({"registries": {h: {"plainHTTP": True} for h in (registry_plain.host, fault_proxy.host)}})
    )
    return {"manifest": manifest, "config": config, "deps": deps, "ref": ref}


def xp_env(tmp: Path, config: Path) -> dict[str, str]:
    env = fresh_user_env(tmp, config)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def xp_apply(env: dict[str, str], manifest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xplane.cli.main", "apply", "-f", str(manifest)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def wait_for_configuration(home: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "xp apply ended before it was killed"
        if (home / "state.db").exists():
            try:
                with Store.open(home=home, create=False) as store:
                    if store.try_get("configurations", "platform") is not None:
                        return
            except Exception:  # the schema is still being created: look again
                pass
        time.sleep(0.01)
    raise AssertionError("the configuration never appeared")


def dependency_names(store: Store) -> set[str]:
    return {o["metadata"]["name"] for k in ("providers", "functions") for o in store.list(k)}


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3, 0.6])
def test_sigkill_during_xp_apply_never_tears_a_plan_and_rerun_converges(
    tmp_path: Path, graph: dict[str, Any], unique_repo: str, delay: float
) -> None:
    want = {
        to_dns_label(f"{unique_repo}/{n}") for n in ("provider-a", "provider-b", "provider-c", "function-d")
    }
    env = xp_env(tmp_path / "run", graph["config"])
    home = Path(env["XPLANE_HOME"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "xplane.cli.main", "apply", "-f", str(graph["manifest"])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_configuration(home, proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    with Store.open(home=home, create=False) as store:
        assert dependency_names(store) in (set(), want)  # the plan is one transaction: none or all
        assert store.verify() == []
    r = xp_apply(env, graph["manifest"])
    assert r.returncode == 0, r.stderr
    with Store.open(home=home, create=False) as store:
        assert dependency_names(store) == want
        for kind in ("providers", "functions", "configurations"):
            for o in store.list(kind):
                assert healthy(o), o
                assert (
                    len(
                        store.list(
                            kind[:-1] + "revisions",
                            selector=f"pkg.crossplane.io/package={o['metadata']['name']}",
                        )
                    )
                    == 1
                )
        lock = store.get("locks", "lock")
        assert condition(lock, "Resolved")["status"] == "True", lock
        sources = {p["source"]: p["version"] for p in lock["packages"]}
        assert sources == {
            graph["ref"].rsplit(":", 1)[0]: "v1.0.0",
            **{d["package"]: "v1.1.0" for d in graph["deps"]},
        }
        assert store.verify() == []
        version = store.resource_version
    r = xp_apply(env, graph["manifest"])  # converged: another run writes nothing
    assert r.returncode == 0, r.stderr
    with Store.open(home=home, create=False) as store:
        assert store.resource_version == version


# -- (c) Crossplane's e2e package-manager scenarios (test/e2e/pkg_test.go) ----------------------------


def test_e2e_configuration_with_dependency_then_deleted(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    # TestConfigurationWithDependency: a Configuration depending on provider-nop installs it; both
    # become healthy; deleting the Configuration leaves the Provider (upstream never removes a
    # dependency) and takes the Configuration out of the Lock.
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-nop", "Provider", ["v0.2.1", "v0.3.0"])
    ref = config_needing(tmp_path, base, f"{base}/provider-nop", ">=v0.2.0")
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "e2e-depends-on-provider-nop", ref))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    nop = to_dns_label(f"{unique_repo}/provider-nop")
    assert installed_version(store, "Provider", nop) == "v0.3.0"
    assert healthy(store.get("providers", nop))
    store.delete("configurations", "e2e-depends-on-provider-nop")
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    assert store.try_get("configurations", "e2e-depends-on-provider-nop") is None
    assert healthy(store.get("providers", nop))
    lock = store.get("locks", "lock")
    assert {p["source"] for p in lock["packages"]} == {f"{base}/provider-nop"}


@pytest.mark.parametrize("mode", ["default", "upgrades", "downgrades"])
def test_e2e_dependency_moves_when_the_configuration_is_updated(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str, mode: str
) -> None:
    # TestDependencyUpgrade / TestDependencyDowngrade (Crossplane >= v1.18 with
    # --enable-dependency-version-upgrades / -downgrades): the Configuration is updated to a version
    # whose dependsOn rejects the installed provider; with the mode on, the provider follows.
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-nop", "Provider", ["v0.1.0", "v0.2.0", "v0.3.0"])
    nop = f"{base}/provider-nop"
    publish(
        tmp_path,
        f"{base}/configuration-nop",
        "Configuration",
        ["v0.1.0", "v0.2.0", "v0.3.0"],
        {
            "v0.1.0": [dep("Provider", nop, "<v0.2.0")],
            "v0.2.0": [dep("Provider", nop, ">=v0.2.0")],
            "v0.3.0": [dep("Provider", nop, "<v0.2.0")],
        },
    )
    kw = {"upgrades": {"dependency_upgrades": True}, "downgrades": {"dependency_downgrades": True}}.get(
        mode, {}
    )
    store, cp = control_plane(tmp_path, **kw)
    store.create(package("Configuration", "configuration-nop", f"{base}/configuration-nop:v0.1.0"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    name = to_dns_label(f"{unique_repo}/provider-nop")
    assert installed_version(store, "Provider", name) == "v0.1.0"

    def update(tag: str) -> Any:
        def put(o: dict[str, Any]) -> None:
            o["spec"]["package"] = f"{base}/configuration-nop:{tag}"

        store.modify("configurations", "configuration-nop", put)
        return cp.reconcile()

    summary = update("v0.2.0")
    assert summary.settled, summary
    if mode == "default":  # upstream's default: the provider stays, the Configuration says why
        assert installed_version(store, "Provider", name) == "v0.1.0"
        assert summary.failing["Configuration/configuration-nop"].endswith(
            f"incompatible dependencies: existing package {nop}@v0.1.0 is incompatible with constraint >=v0.2.0"
        ), summary.failing
        return
    assert not summary.failing, summary.failing
    assert installed_version(store, "Provider", name) == "v0.2.0"  # the lowest version it accepts
    assert len({r["spec"]["image"] for r in store.list("providerrevisions")}) >= 1
    summary = update("v0.3.0")  # back below v0.2.0: only a downgrade can satisfy it
    assert summary.settled, summary
    if mode == "upgrades":
        assert installed_version(store, "Provider", name) == "v0.2.0"
        assert "incompatible dependencies" in summary.failing["Configuration/configuration-nop"]
    else:
        assert not summary.failing, summary.failing
        assert installed_version(store, "Provider", name) == "v0.1.0"


def test_e2e_imageconfig_rewrites_a_dependency(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    # TestImageConfigPrefixRewrite, for a dependency: the dependsOn names a registry that is not
    # there; an ImageConfig rewrites its prefix to the mirror. Tags are listed and the package pulled
    # from the mirror; the dependency keeps the name and source as written.
    publish(tmp_path, f"{registry_plain.host}/{unique_repo}/provider-nop", "Provider", ["v0.2.1"])
    upstream = f"127.0.0.1:{closed_port()}"
    source = f"{upstream}/{unique_repo}/provider-nop"
    ref = config_needing(tmp_path, f"{registry_plain.host}/{unique_repo}", source, ">=v0.2.0")
    store, cp = control_plane(tmp_path)
    store.create(
        image_config(
            "to-mirror",
            [{"type": "Prefix", "prefix": upstream}],
            rewriteImage={"prefix": registry_plain.host},
        )
    )
    store.create(package("Configuration", "configuration-a", ref))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    prov = store.get("providers", to_dns_label(f"{unique_repo}/provider-nop"))
    assert prov["spec"]["package"] == f"{source}:v0.2.1"
    assert prov["status"]["resolvedPackage"] == f"{registry_plain.host}/{unique_repo}/provider-nop:v0.2.1"
    assert prov["status"]["appliedImageConfigRefs"] == [{"name": "to-mirror", "reason": "RewriteImage"}]
    assert lock_condition(store)["status"] == "True"


def test_e2e_imageconfig_pull_secret_reaches_a_private_dependency(
    tmp_path: Path, registry_basic: RegistryServer, unique_repo: str
) -> None:
    # TestImageConfigAuth: the Configuration and its dependency live in a registry that wants a
    # login; no package names a pull Secret, an ImageConfig matching the prefix supplies it. The
    # dependency's tags are listed and its package pulled with that Secret.
    reg = registry_basic
    assert reg.username and reg.password
    creds = Credentials(reg.username, reg.password)
    base = f"{reg.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-nop", "Provider", ["v0.2.1", "v0.3.0"], creds=creds)
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-nop", "<v0.3.0")]},
        creds=creds,
    )
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    cp.reconcile()  # no credentials yet: the Configuration itself cannot be pulled
    assert store.list("providers") == []
    store.create(docker_secret("private-creds", reg.host, reg.username, reg.password))
    store.create(
        image_config(
            "private-auth",
            [{"type": "Prefix", "prefix": base}],
            registry={"authentication": {"pullSecretRef": {"name": "private-creds"}}},
        )
    )
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary.failing
    prov = store.get("providers", to_dns_label(f"{unique_repo}/provider-nop"))
    assert prov["spec"]["package"] == f"{base}/provider-nop:v0.2.1"
    assert "packagePullSecrets" not in prov["spec"]  # upstream's shape: the ImageConfig does the work
    assert prov["status"]["appliedImageConfigRefs"] == [
        {"name": "private-auth", "reason": "SetImagePullSecret"}
    ]
    assert lock_condition(store)["status"] == "True"
