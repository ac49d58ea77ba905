"""``xp tree`` over a control plane that installed real packages (built with ``dependsOn``, pushed to
the test registry): the text tree, JSON, DOT, the SVG drawn by Graphviz, and the exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.pkg.support import control_plane, package
from tests.pkg.test_graph import install_chain
from tests.pkg.test_resolver import dep, publish
from tests.support.registry import RegistryServer
from xplane.cli.main import cli
from xplane.cli.output import run_cli
from xplane.oci import to_dns_label


def xp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_cli(cli, list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def installed(tmp_path: Path, registry_plain: RegistryServer, unique_repo: str) -> tuple[Path, str, str]:
    """A home where configuration-a -> provider-x, function-f -> provider-x are installed; (home, base, repo)."""
    base = f"{registry_plain.host}/{unique_repo}"
    install_chain(tmp_path, base)
    home = tmp_path / "home"
    store, cp = control_plane(home)
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    assert not cp.reconcile().failing
    store.close()
    return home, base, unique_repo


def test_text_json_dot_and_svg(
    capsys: pytest.CaptureFixture[str], installed: tuple[Path, str, str], tmp_path: Path
) -> None:
    home, base, repo = installed
    prov, fn = to_dns_label(f"{repo}/provider-x"), to_dns_label(f"{repo}/function-f")
    code, out, err = xp(capsys, "tree", "configuration", "configuration-a", "--home", str(home))
    assert code == 0, err
    assert out.splitlines() == [
        f"Configuration/configuration-a  {base}/configuration-a:v1.0.0  Healthy",
        f"├── Provider/{prov}  {base}/provider-x:v1.1.0  requires >=v1.0.0  Healthy",
        f"└── Function/{fn}  {base}/function-f:v0.1.0  requires <v0.2.0  Healthy",
        f"    └── Provider/{prov}  {base}/provider-x:v1.1.0  requires >=v1.1.0  Healthy  (see above)",
    ]
    code, out, _ = xp(capsys, "tree", "pkg.crossplane.io/v1", "x", "--home", str(home))  # not a kind
    assert code == 2
    code, out, _ = xp(
        capsys,
        "tree",
        "configurations.pkg.crossplane.io",
        "configuration-a",
        "-o",
        "json",
        "--home",
        str(home),
    )
    doc = json.loads(out)
    assert doc["name"] == "configuration-a" and doc["edge"] == "root"
    assert [d["name"] for d in doc["dependencies"]] == [prov, fn]
    assert doc["dependencies"][1]["dependencies"][0]["seeAbove"] is True
    code, dot, _ = xp(capsys, "tree", "provider", prov, "-o", "dot", "--home", str(home))
    assert code == 0 and dot.startswith(f'digraph "Provider/{prov}" {{')
    svg = tmp_path / "out" / "graph.svg"
    svg.parent.mkdir()
    if shutil.which("dot") is None:
        code, _, err = xp(
            capsys, "tree", "configuration", "configuration-a", "--svg", str(svg), "--home", str(home)
        )
        assert code == 1 and "Graphviz's 'dot' is not installed" in err and "hint:" in err
        pytest.skip("Graphviz is not installed (apt-get install -y graphviz): SVG not rendered")
    code, out, err = xp(
        capsys, "tree", "configuration", "configuration-a", "--svg", str(svg), "--home", str(home)
    )
    assert code == 0 and out == "", err
    text = svg.read_text()
    assert text.rstrip().endswith("</svg>") and "function&#45;f" in text
    assert [p.name for p in svg.parent.iterdir()] == ["graph.svg"]  # no temporary file left


def test_conflict_missing_and_not_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, registry_plain: RegistryServer, unique_repo: str
) -> None:
    base = f"{registry_plain.host}/{unique_repo}"
    publish(tmp_path, f"{base}/provider-x", "Provider", ["v1.0.0", "v1.5.0"])
    publish(tmp_path, f"{base}/function-f", "Function", ["v0.1.0"])
    deps = [
        dep("Provider", f"{base}/provider-x", ">=v1.5.0"),
        dep("Function", f"{base}/function-f", ">=v0.1.0"),
    ]
    publish(tmp_path, f"{base}/configuration-a", "Configuration", ["v1.0.0"], {"v1.0.0": deps})
    prov, fn = to_dns_label(f"{unique_repo}/provider-x"), to_dns_label(f"{unique_repo}/function-f")
    home = tmp_path / "home"
    store, cp = control_plane(home)  # dependency upgrades off: an installed v1.0.0 stays
    store.create(package("Provider", prov, f"{base}/provider-x:v1.0.0"))
    store.create(package("Configuration", "configuration-a", f"{base}/configuration-a:v1.0.0"))
    cp.reconcile()
    store.delete("functions", fn)  # gone since: a missing dependency
    store.close()
    code, out, err = xp(capsys, "tree", "configuration", "configuration-a", "--home", str(home))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"Configuration/configuration-a  {base}/configuration-a:v1.0.0  Unhealthy (")
    assert "incompatible dependencies" in lines[0]
    assert lines[1] == (
        f"├── Provider/{prov}  {base}/provider-x:v1.0.0  requires >=v1.5.0  Healthy"
        "  CONFLICT: v1.0.0 does not satisfy >=v1.5.0"
    )
    assert lines[2] == f"└── Function/{fn}  requires >=v0.1.0  Missing: not installed"
    code, dot, _ = xp(capsys, "tree", "configuration", "configuration-a", "-o", "dot", "--home", str(home))
    assert 'conflict: v1.0.0", color="red", fontcolor="red", style="dashed"' in dot
    assert 'missing", color="red", fontcolor="red", style="dashed"' in dot
    code, _, err = xp(capsys, "tree", "configuration", "ghost", "--home", str(home))
    assert code == 3 and 'configurations.pkg.crossplane.io "ghost" not found' in err
    code, _, err = xp(capsys, "tree", "xrd", "x", "--home", str(home))
    assert code == 2
    code, _, err = xp(capsys, "tree", "configuration", "x", "--home", str(tmp_path / "empty"))
    assert code == 3 and 'configurations.pkg.crossplane.io "x" not found' in err


def test_cycle_is_marked_and_rich_draws_the_same_tree(capsys: pytest.CaptureFixture[str]) -> None:
    from xplane.cli.tree import print_rich, render_text
    from xplane.pkg import GraphEdge, GraphNode, PackageGraph

    def node(src: str) -> GraphNode:
        return GraphNode(
            src, "Configuration", src, f"r/{src}:v1.0.0", "v1.0.0", None, "Healthy", in_lock=True
        )

    edges: dict[str, tuple[GraphEdge, ...]] = {
        "a": (GraphEdge("a", "b", ">=v1.0.0", "Configuration", "satisfied"),),
        "b": (GraphEdge("b", "a", ">=v1.0.0", "Configuration", "satisfied"),),
    }
    g = PackageGraph("a", {"a": node("a"), "b": node("b")}, edges)
    text = render_text(g.tree())
    assert text.splitlines() == [
        "Configuration/a  r/a:v1.0.0  Healthy",
        "└── Configuration/b  r/b:v1.0.0  requires >=v1.0.0  Healthy",
        "    └── Configuration/a  r/a:v1.0.0  requires >=v1.0.0  Healthy  (cycle)",
    ]
    assert g.tree().children[0].children[0].to_dict()["cycle"] is True
    capsys.readouterr()
    print_rich(g.tree())
    assert capsys.readouterr().out == text


def test_svg_without_graphviz_says_how_to_get_it(
    capsys: pytest.CaptureFixture[str],
    installed: tuple[Path, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, _, _ = installed
    empty = tmp_path / "no-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    svg = tmp_path / "g.svg"
    code, _, err = xp(
        capsys, "tree", "configuration", "configuration-a", "--svg", str(svg), "--home", str(home)
    )
    assert code == 1 and "Graphviz's 'dot' is not installed" in err and "apt-get install -y graphviz" in err
    assert not svg.exists()
