"""xp xpkg install|update --dry-run as whole processes: the plan printed against the installed graph
(and the control plane's upgrade/downgrade settings), nothing written, exit 1 when the install would
fail. Packages are built by xplane and served by Debian's docker-registry on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from tests.cli.test_controlplane_cli import env, table, xp  # noqa: F401  (env is a fixture)
from tests.pkg.test_resolver import dep, publish
from tests.support.registry import RegistryServer
from xplane.oci import to_dns_label


def short(unique_repo: str) -> str:
    """A short unique repository: package names are DNS labels of 63 characters at most."""
    return "dr/" + hashlib.sha256(unique_repo.encode()).hexdigest()[:8]


def _graph(tmp: Path, registry: RegistryServer, repo: str) -> str:
    """provider-x at v1.0.0/v1.5.0/v2.0.1; configuration-a wants >=v1.5.0, configuration-b <v1.5.0."""
    base = f"{registry.host}/{repo}"
    publish(tmp, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.5.0", "v2.0.1"])
    for name, c in (("configuration-a", ">=v1.5.0"), ("configuration-b", "<v1.5.0")):
        publish(
            tmp,
            f"{base}/{name}",
            "Configuration",
            ["v1.0.0"],
            {"v1.0.0": [dep("Provider", f"{base}/provider-x", c)]},
        )
    return base


def test_dry_run_prints_the_plan_and_writes_nothing(
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    registry_plain: RegistryServer,
    unique_repo: str,
) -> None:
    repo = short(unique_repo)
    base = _graph(tmp_path, registry_plain, repo)
    prov = to_dns_label(f"{repo}/provider-x")
    r = xp(env, "xpkg", "install", "configuration", f"{base}/configuration-a:v1.0.0", "--dry-run")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["ACTION", "KIND", "NAME", "PACKAGE", "PREVIOUS", "WHY"]
    assert rows[1][:5] == [
        "INSTALL",
        "Configuration",
        to_dns_label(f"{repo}/configuration-a"),
        f"{base}/configuration-a:v1.0.0",
        "-",
    ]
    assert rows[2][:5] == ["INSTALL", "Provider", prov, f"{base}/provider-x:v2.0.1", "-"]
    assert "configuration-a" in " ".join(rows[2][5:]) and ">=v1.5.0" in " ".join(rows[2][5:])
    assert r.stdout.rstrip().endswith("dry run: nothing was changed")
    # nothing installed: no state at all, and a real install afterwards starts from scratch
    assert not (Path(env["XPLANE_HOME"]) / "state.db").exists()
    assert xp(env, "get", "configuration").stdout.strip() in ("", "No resources found.")
    doc = json.loads(
        xp(
            env,
            "xpkg",
            "install",
            "configuration",
            f"{base}/configuration-a:v1.0.0",
            "--dry-run",
            "--format",
            "json",
        ).stdout
    )
    assert doc["ok"] is True and [s["action"] for s in doc["steps"]] == ["install", "install"]
    assert (
        yaml.safe_load(
            xp(
                env,
                "xpkg",
                "install",
                "configuration",
                f"{base}/configuration-a:v1.0.0",
                "--dry-run",
                "--format",
                "yaml",
            ).stdout
        )
        == doc
    )


def test_dry_run_against_the_installed_graph_and_its_modes(
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    registry_plain: RegistryServer,
    unique_repo: str,
) -> None:
    repo = short(unique_repo)
    base = _graph(tmp_path, registry_plain, repo)
    prov = to_dns_label(f"{repo}/provider-x")
    r = xp(env, "xpkg", "install", "provider", f"{base}/provider-x:v1.0.0", prov, "--wait", "60s")
    assert r.returncode == 0, r.stderr
    before = xp(env, "get", "provider", "-o", "json").stdout

    # default: the installed v1.0.0 is left alone and configuration-a would be unhealthy (upstream's text)
    r = xp(env, "xpkg", "install", "configuration", f"{base}/configuration-a:v1.0.0", "--dry-run")
    assert r.returncode == 1
    assert "incompatible dependencies" in r.stderr and ">=v1.5.0" in r.stderr, r.stderr
    assert ["KEEP", "Provider", prov, f"{base}/provider-x:v1.0.0"] == table(r.stdout)[2][:4]

    # upgrades on: the minimal satisfying version
    assert xp(env, "controlplane", "init", "--dependency-upgrades").returncode == 0
    r = xp(env, "xpkg", "install", "configuration", f"{base}/configuration-a:v1.0.0", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert table(r.stdout)[2][:5] == [
        "UPGRADE",
        "Provider",
        prov,
        f"{base}/provider-x:v1.5.0",
        "v1.0.0",
    ]

    # with configuration-a installed at v1.5.0, configuration-b (<v1.5.0) can't be satisfied with it
    assert xp(env, "controlplane", "init", "--dependency-downgrades").returncode == 0
    r = xp(env, "xpkg", "install", "configuration", f"{base}/configuration-a:v1.0.0", "--wait", "60s")
    assert r.returncode == 0, r.stderr
    r = xp(env, "xpkg", "install", "configuration", f"{base}/configuration-b:v1.0.0", "--dry-run")
    assert r.returncode == 1
    assert (
        "configuration-a requires >=v1.5.0" in r.stderr and "configuration-b requires <v1.5.0" in r.stderr
    ), r.stderr
    assert "no version satisfies both (available: v1.0.0, v1.5.0, v2.0.1)" in r.stderr
    # the dry runs changed nothing the user had installed
    providers = json.loads(xp(env, "get", "provider", "-o", "json").stdout)
    assert providers != json.loads(before)  # the real install of configuration-a upgraded it...
    assert str(providers["items"][0]["spec"]["package"]).endswith(":v1.5.0")  # ...to v1.5.0, no further
    assert [row[0] for row in table(xp(env, "get", "configuration").stdout)[1:]] == [
        to_dns_label(f"{repo}/configuration-a")
    ]


def test_update_dry_run_needs_the_package_to_exist(
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    registry_plain: RegistryServer,
    unique_repo: str,
) -> None:
    repo = short(unique_repo)
    base = _graph(tmp_path, registry_plain, repo)
    r = xp(env, "xpkg", "update", "configuration", f"{base}/configuration-a:v1.0.0", "--dry-run")
    assert r.returncode == 1 and "does not exist" in r.stderr
