"""xp controlplane init|run|export-cache and xp xpkg install|update|activate, as whole processes,
against packages built by xplane and served by Debian's docker-registry on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.pkg.support import composition, push, write_package, xrd
from tests.support.procs import fresh_user_env
from tests.support.registry import RegistryServer
from xplane.oci import friendly_id


@pytest.fixture
def env(tmp_path: Path, registry_plain: RegistryServer) -> dict[str, str]:
    """A user with nothing of their own: a fresh home, state, cache, and the test registry as plain HTTP."""
    config = tmp_path / "xplane-config.yaml"
    config.write_text(json.dumps({"registries": {registry_plain.host: {"plainHTTP": True}}}))
    return fresh_user_env(tmp_path, config)


def xp(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xplane.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def configuration(tmp_path: Path, registry: RegistryServer, repo: str, tag: str, kinds: list[str]) -> str:
    """Build and push a Configuration shipping one XRD and Composition per kind; its reference."""
    objects = [o for k in kinds for o in (xrd(k), composition(f"{k.lower()}-default", k))]
    root = write_package(tmp_path / f"pkg-{tag}", "Configuration", "platform", objects)
    ref = registry.ref(repo, tag)
    push(root, ref, tmp_path)
    return ref


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def test_init_installs_packages_and_export_cache_writes_crossplanes_files(
    env: dict[str, str], tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    ref = configuration(tmp_path, registry_plain, unique_repo, "v1.0.0", ["XNetwork"])
    r = xp(env, "controlplane", "init", "--crossplane-version", "v2.1.0", "--configuration-packages", ref)
    assert r.returncode == 0, r.stderr
    name = unique_repo.replace("/", "-")
    assert f"configuration.pkg.crossplane.io/{name} created" in r.stdout
    assert json.loads((Path(env["XPLANE_HOME"]) / "controlplane.json").read_text()) == {
        "crossplaneVersion": "v2.1.0"
    }
    rows = table(xp(env, "get", "configuration").stdout)
    assert rows[0] == ["NAME", "INSTALLED", "HEALTHY", "PACKAGE", "AGE"]
    assert rows[1][:4] == [name, "True", "True", ref]
    assert "xnetworks.example.org" in xp(env, "get", "xrds").stdout
    revs = table(xp(env, "get", "pkgrev").stdout)
    assert revs[0][:3] == ["NAME", "HEALTHY", "REVISION"] and revs[1][1:5] == ["True", "1", ref, "Active"]

    out = tmp_path / "export"
    r = xp(env, "controlplane", "export-cache", str(out))
    assert r.returncode == 0, r.stderr
    rev_name = revs[1][0].rsplit("/", 1)[-1]  # a category listing names kind.group/name
    doc = yaml.safe_load(xp(env, "get", "configurationrevision", rev_name, "-o", "yaml").stdout)
    digest = doc["metadata"]["annotations"]["xplane.io/package-digest"]
    expected = out / f"{friendly_id(ref.rsplit(':', 1)[0], digest)}.gz"
    assert expected.is_file() and str(expected) in r.stdout.splitlines()
    pinned = list(yaml.safe_load_all((out / "packages.yaml").read_text()))
    assert pinned[0]["spec"]["package"].endswith(f"@{digest}")
    assert pinned[0]["spec"]["packagePullPolicy"] == "Never"


def test_install_manual_activation_update_and_delete(
    env: dict[str, str], tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    v1 = configuration(tmp_path, registry_plain, unique_repo, "v1.0.0", ["XNetwork", "XCluster"])
    v2 = configuration(tmp_path, registry_plain, unique_repo, "v2.0.0", ["XNetwork"])
    r = xp(env, "xpkg", "install", "configuration", v1, "platform", "--manual-activation", "--wait", "0s")
    assert (r.returncode, r.stdout) == (0, "configuration/platform created\n"), r.stderr
    assert "Package is inactive" in r.stderr  # the warning names why it is not installed
    rows = table(xp(env, "get", "configuration", "platform").stdout)
    assert rows[1][1:3] == ["False", "True"]  # not installed (inactive), healthy
    (rev,) = [row[0] for row in table(xp(env, "get", "configurationrevisions").stdout)[1:]]
    assert xp(env, "get", "xrds").stdout == ""  # a revision that isn't active creates no objects

    r = xp(env, "xpkg", "activate", rev)
    assert r.returncode == 0 and f"{rev} activated" in r.stdout, r.stderr
    assert table(xp(env, "get", "configuration", "platform").stdout)[1][1:3] == ["True", "True"]
    assert xp(env, "get", "xrds").stdout.count("example.org") == 2
    assert xp(env, "xpkg", "install", "configuration", v1, "platform").returncode == 1  # exists

    r = xp(env, "xpkg", "update", "configuration", v2, "platform")
    assert (r.returncode, r.stdout) == (0, "configuration/platform updated\n"), r.stderr
    revs = table(xp(env, "get", "configurationrevisions").stdout)[1:]
    assert len(revs) == 2  # Manual: the new revision waits for activation
    new = next(row[0] for row in revs if row[0] != rev)
    assert xp(env, "xpkg", "activate", new).returncode == 0
    xrds = xp(env, "get", "xrds").stdout
    assert "xnetworks.example.org" in xrds and "xclusters.example.org" not in xrds  # v2 dropped it

    r = xp(env, "delete", "configuration", "platform")
    assert r.returncode == 0, r.stderr
    gone = xp(env, "get", "pkgrev")
    assert gone.stdout == "" and "No resources found" in gone.stderr
    assert xp(env, "xpkg", "activate", "no-such-revision").returncode == 1


def test_wait_gives_up_with_the_reason(env: dict[str, str], registry_plain: RegistryServer) -> None:
    ref = registry_plain.ref("t/does-not-exist", "v1.0.0")
    start = time.monotonic()
    r = xp(env, "xpkg", "install", "configuration", ref, "ghost", "--wait", "2s")
    assert r.returncode == 1 and time.monotonic() - start < 30
    assert "configuration/ghost is not healthy after 2s: cannot unpack package" in r.stderr


def test_run_reconciles_other_processes_changes_until_sigterm(
    env: dict[str, str], tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    ref = configuration(tmp_path, registry_plain, unique_repo, "v1.0.0", ["XNetwork"])
    assert xp(env, "controlplane", "init").returncode == 0
    runner = subprocess.Popen(
        [sys.executable, "-m", "xplane.cli.main", "controlplane", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # another process writes the package straight into the store: no settle of its own
        from xplane.store import Store

        with Store.open(home=Path(env["XPLANE_HOME"])) as store:
            store.apply(
                {
                    "apiVersion": "pkg.crossplane.io/v1",
                    "kind": "Configuration",
                    "metadata": {"name": "platform"},
                    "spec": {"package": ref},
                }
            )
        deadline = time.monotonic() + 60
        while True:
            rows = table(xp(env, "get", "configuration", "platform").stdout)
            if rows[1][1:3] == ["True", "True"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rows[1][1:3] == ["True", "True"]
    finally:
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
    assert runner.returncode == 0, err
    assert "SIGTERM: stopping" in err


def test_two_appliers_at_once_lose_nothing(
    env: dict[str, str], tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    refs = [
        configuration(tmp_path, registry_plain, f"{unique_repo}-{i}", "v1.0.0", [f"XKind{i}"])
        for i in range(2)
    ]
    files = []
    for i, ref in enumerate(refs):
        doc = {"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration", "metadata": {"name": f"p{i}"}}
        files.append(tmp_path / f"p{i}.yaml")
        files[-1].write_text(json.dumps({**doc, "spec": {"package": ref}}))
    appliers = [
        subprocess.Popen(
            [sys.executable, "-m", "xplane.cli.main", "apply", "-f", str(f)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    for proc in appliers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = {row[0]: row[1:3] for row in table(xp(env, "get", "configurations").stdout)[1:]}
    assert rows == {"p0": ["True", "True"], "p1": ["True", "True"]}
    xrds = xp(env, "get", "xrds").stdout
    assert "xkind0s.example.org" in xrds and "xkind1s.example.org" in xrds
