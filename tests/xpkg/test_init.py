"""``xpkg init``: every skeleton builds and lints cleanly as generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xplane.fn.loader import load_function
from xplane.xpkg.build import BuildOptions, build_package
from xplane.xpkg.errors import PackageError
from xplane.xpkg.init import PACKAGE_TYPES, init_package
from xplane.xpkg.yaml import load_all

ROOTS = {"configuration": "", "provider": "", "function": "package"}


@pytest.mark.parametrize("ptype", PACKAGE_TYPES)
def test_each_skeleton_builds_and_lints_clean(tmp_path: Path, ptype: str) -> None:
    target = tmp_path / f"my-{ptype}"
    files = init_package(f"my-{ptype}", ptype, target)
    assert files and all(f.is_file() for f in files)
    assert not list(target.rglob(".*.tmp-*"))
    root = target / ROOTS[ptype]
    built = build_package(BuildOptions(package_root=root, examples_root=target / "examples"))
    assert built.lint.ok and built.lint.errors == [] and built.lint.warnings == [], built.lint.findings
    assert built.warnings == []
    assert built.meta.name == f"my-{ptype}" and built.meta.kind == ptype.capitalize()
    docs = load_all(built.package_yaml)
    assert docs[0]["kind"] == ptype.capitalize() and len(docs) >= 2
    if ptype == "configuration":
        assert built.examples_yaml is not None and b"XBucket" in built.examples_yaml
        kinds = [d["kind"] for d in docs[1:]]
        assert sorted(kinds) == ["CompositeResourceDefinition", "Composition"]
    else:
        assert built.examples_yaml is None
        assert [d["kind"] for d in docs[1:]] == ["CustomResourceDefinition"]
    assert len(json.loads(built.manifest)["layers"]) == (2 if ptype == "configuration" else 1)


def test_function_skeleton_is_a_loadable_python_function(tmp_path: Path) -> None:
    init_package("function-demo", "function", tmp_path / "fn")
    fn = load_function(tmp_path / "fn" / "function")
    assert fn.name == "function-demo" and fn.spec.kind == "python"


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "x" * 64, "", "a.b"])
def test_names_must_be_dns_labels(tmp_path: Path, name: str) -> None:
    with pytest.raises(PackageError, match="is not a DNS label"):
        init_package(name, "provider", tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="unknown package type") as e:
        init_package("x", "composition", tmp_path / "x")
    assert "configuration, function, provider" in (e.value.hint or "")


def test_existing_files_are_kept_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "p"
    init_package("provider-a", "provider", target)
    meta = target / "crossplane.yaml"
    meta.write_text("# mine\n")
    with pytest.raises(PackageError, match="already exists"):
        init_package("provider-b", "provider", target)
    assert meta.read_text() == "# mine\n"
    init_package("provider-b", "provider", target, force=True)
    assert "name: provider-b" in meta.read_text()


def test_init_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    """Files are written through an unpredictable O_EXCL temp name: links planted beside them stay untouched."""
    import os

    victim = tmp_path / "victim"
    victim.write_text("keep me")
    target = tmp_path / "demo"
    target.mkdir()
    for pid in range(os.getpid() - 5, os.getpid() + 5):
        (target / f".crossplane.yaml.tmp-{pid}").symlink_to(victim)
    init_package("demo", "configuration", target)
    assert victim.read_text() == "keep me"
    assert (target / "crossplane.yaml").read_text().startswith("apiVersion: meta.pkg.crossplane.io/")
