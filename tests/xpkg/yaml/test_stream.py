"""Reading package files and package.yaml as one located stream of documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from xplane.xpkg.errors import PackageError, YAMLError
from xplane.xpkg.yaml import FILE_SEPARATOR, concatenate, load_all, parse_stream, read_files

META = "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: p\n"
CRD = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {n}\n"


def test_package_yaml_documents_are_located() -> None:
    data = "---\n" + META + "---\n# a comment only\n---\n\n" + CRD.format(n="a") + "---\n" + CRD.format(n="b")
    s = parse_stream(data, file="package.yaml")
    assert [(d.kind, d.line, d.column) for d in s] == [
        ("Provider", 2, 1),
        ("CustomResourceDefinition", 10, 1),
        ("CustomResourceDefinition", 15, 1),
    ]
    assert s.documents[1].where == "package.yaml:10:1"
    assert s.documents[1].offset == data.index("\n\napiVersion: apiextensions") + 1
    assert s.kinds() == {
        "meta.pkg.crossplane.io/v1/Provider": 1,
        "apiextensions.k8s.io/v1/CustomResourceDefinition": 2,
    }


def test_files_are_read_in_order_with_names_relative_to_root(tmp_path: Path) -> None:
    (tmp_path / "crds").mkdir()
    (tmp_path / "crossplane.yaml").write_text(META)
    (tmp_path / "crds" / "a.yaml").write_text("# c\n" + CRD.format(n="a") + "---\n" + CRD.format(n="b"))
    (tmp_path / "crds" / "empty.yml").write_text("# nothing\n---\n")
    paths = [tmp_path / "crds" / "a.yaml", tmp_path / "crds" / "empty.yml", tmp_path / "crossplane.yaml"]
    s = read_files(paths, root=tmp_path)
    assert [(d.file, d.line, d.doc["metadata"]["name"]) for d in s] == [
        ("crds/a.yaml", 2, "a"),
        ("crds/a.yaml", 7, "b"),
        ("crossplane.yaml", 1, "p"),
    ]


def test_per_file_parsing_matches_upstream_concatenation(tmp_path: Path) -> None:
    contents = [META.encode(), b"a: 1\n...\n", b"---\nb: 2", b"# only\n", (CRD.format(n="x")).encode()]
    paths = []
    for i, c in enumerate(contents):
        p = tmp_path / f"f{i}.yaml"
        p.write_bytes(c)
        paths.append(p)
    joined = concatenate(contents)
    assert joined.count(FILE_SEPARATOR) == len(contents)
    assert [d.doc for d in read_files(paths)] == load_all(joined)


def test_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(META)
    bad.write_text(CRD.format(n="a") + "---\nspec:\n  x: [1,\n")
    with pytest.raises(YAMLError) as e:
        read_files([good, bad], root=tmp_path)
    assert (e.value.file, e.value.line, e.value.column) == ("bad.yaml", 8, 1)


def test_unreadable_file_is_a_package_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="cannot read missing.yaml"):
        read_files([tmp_path / "missing.yaml"], root=tmp_path)


def test_warnings_are_collected_with_positions() -> None:
    s = parse_stream("a: 1\n---\nb: 1\nb: 2\n", file="package.yaml")
    assert [d.doc for d in s] == [{"a": 1}, {"b": 2}]
    assert [(w.file, w.line, w.column, w.key) for w in s.warnings] == [("package.yaml", 4, 1, "b")]


def test_non_mapping_documents_are_kept_for_the_caller_to_reject() -> None:
    s = parse_stream("- a\n---\nnull\n")
    assert [d.doc for d in s] == [["a"], None]
    assert [d.kind for d in s] == ["", ""]


def test_lookups_by_kind_and_name() -> None:
    data = "---\n".join(["", META, CRD.format(n="a"), CRD.format(n="b"), CRD.format(n="a")])
    s = parse_stream(data, file="package.yaml")
    crds = s.by_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert [d.name for d in crds] == ["a", "b", "a"]
    assert s.find("apiextensions.k8s.io/v1", "CustomResourceDefinition", "a") is crds[0]  # the first one
    assert s.find("apiextensions.k8s.io/v1", "CustomResourceDefinition", "c") is None
    assert s.find("meta.pkg.crossplane.io/v1", "Provider", "p") is s.documents[0]
    assert s.by_kind("v1", "ConfigMap") == ()


def test_documents_are_read_only_values() -> None:
    s = parse_stream(META, file="crossplane.yaml")
    d = s.documents[0]
    with pytest.raises(AttributeError):
        d.kind = "Other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        d.extra = 1  # type: ignore[attr-defined]
    assert d == parse_stream(META, file="crossplane.yaml").documents[0]
    assert d != parse_stream(META, file="other.yaml").documents[0] and d != d.doc
    assert (d.name, d.loaded) == ("p", True)
    assert "crossplane.yaml" in repr(d)
