"""The installed dependency graph (``xplane.pkg.package_graph``) over packages built with ``dependsOn``,
pushed to a real registry and installed by the control plane (no mocks)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.pkg.support import control_plane, package
from tests.pkg.test_resolver import dep, publish
from tests.support.registry import RegistryServer
from xplane.oci import to_dns_label
from xplane.pkg import package_graph
from xplane.store import NotFoundError


def install_chain(tmp: Path, base: str) -> None:
    """configuration-a -> provider-x (>=v1.0.0), function-f (<v0.2.0) -> provider-x (>=v1.1.0)."""
    publish(tmp, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.1.0"])
    publish(
        tmp,
        f"{base}/function-f",
        "Function",
        ["v0.1.0", "v0.2.0"],
        {t: [dep("Provider", f"{base}/provider-x", ">=v1.1.0")] for t in ("v0.1.0", "v0.2.0")},
    )
    deps = [
        dep("Provider", f"{base}/provider-x", ">=v1.0.0"),
        dep("Function", f"{base}/function-f", "<v0.2.0"),
    ]
    publish(tmp, f"{base}/configuration-a", "Configuration", ["v1.0.0"], {"v1.0.0": deps})


def test_graph_tree_json_and_dot(tmp_path: Path, registry_plain: RegistryServer, unique_repo: str) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    install_chain(tmp_path, base)
    store, cp = control_plane(tmp_path)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    summary = cp.reconcile()
    assert summary.settled and not summary.failing, summary
    g = package_graph(store, "Configuration", "configuration-a")
    assert set(g.nodes) == {f"{base}/{n}" for n in ("configuration-a", "provider-x", "function-f")}
    assert all(n.health == "Healthy" for n in g.nodes.values())
    t = g.tree()
    d = t.to_dict()
    assert (d["kind"], d["name"], d["version"], d["edge"], d["health"]) == (
        "Configuration",
        "configuration-a",
        "v1.0.0",
        "root",
        "Healthy",
    )
    prov, fn = d["dependencies"]
    assert (prov["kind"], prov["version"], prov["constraints"], prov["edge"]) == (
        "Provider",
        "v1.1.0",
        ">=v1.0.0",
        "satisfied",
    )
    assert prov["name"] == to_dns_label(f"{unique_repo}/provider-x") and not prov["seeAbove"]
    assert (fn["version"], fn["constraints"]) == ("v0.1.0", "<v0.2.0")
    (shared,) = fn["dependencies"]  # the shared provider appears again, marked, not expanded
    assert shared["seeAbove"] and shared["constraints"] == ">=v1.1.0" and shared["edge"] == "satisfied"
    dot = g.to_dot()
    assert dot.startswith('digraph "Configuration/configuration-a" {')
    assert f'"{base}/function-f" -> "{base}/provider-x" [label=">=v1.1.0"];' in dot
    assert "red" not in dot
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (apt-get install -y graphviz): SVG not rendered")
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60, check=True)
    assert "<svg" in svg.stdout and "Configuration/configuration&#45;a" in svg.stdout


def test_conflicting_edge_and_missing_dependency(
    tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.5.0"])
    publish(
        tmp_path,
        f"{base}/configuration-a",
        "Configuration",
        ["v1.0.0"],
        {"v1.0.0": [dep("Provider", f"{base}/provider-x", ">=v1.5.0")]},
    )
    prov = to_dns_label(f"{unique_repo}/provider-x")
    store, cp = control_plane(tmp_path)  # dependency upgrades are off by default
    store.create(package("Provider", prov, f"{base}/provider-x:v1.0.0"))
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    cp.reconcile()
    g = package_graph(store, "Configuration", "configuration-a")
    (edge,) = g.edges[g.root]
    assert edge.status == "conflict" and g.nodes[edge.child].version == "v1.0.0"
    root = g.nodes[g.root]
    assert root.health == "Unhealthy" and "incompatible dependencies" in (root.message or "")
    dot = g.to_dot()
    assert 'label=">=v1.5.0\\nconflict: v1.0.0", color="red", fontcolor="red", style="dashed"' in dot

    # The provider goes away: the edge is missing (Lock entries stay as the revision recorded them).
    store.delete("providers", prov)
    g = package_graph(store, "Configuration", "configuration-a")
    (edge,) = g.edges[g.root]
    assert edge.status == "missing" and g.nodes[edge.child].health == "Missing"
    assert g.nodes[edge.child].label == f"Provider/{prov}"
    assert 'style="rounded,dashed"' in g.to_dot()


def test_unknown_package_is_not_found(tmp_path: Path) -> None:
    store, _ = control_plane(tmp_path)
    with pytest.raises(NotFoundError) as e:
        package_graph(store, "Configuration", "ghost")
    assert str(e.value) == 'configurations.pkg.crossplane.io "ghost" not found'
