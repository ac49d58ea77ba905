"""Which files ``xpkg build`` reads and in which order (upstream's walk and filters)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xplane.xpkg.discover import find_yaml_files, glob_match

# (pattern, path, matches) with Go's filepath.Match semantics.
GLOBS = [
    ("*.yaml", "a.yaml", True),
    ("*.yaml", "dir/a.yaml", False),  # '*' does not cross '/'
    ("*/*.yaml", "dir/a.yaml", True),
    ("crds/*", "crds/a.yaml", True),
    ("crds/*", "crds/sub/a.yaml", False),
    ("?.yaml", "a.yaml", True),
    ("?.yaml", "ab.yaml", False),
    ("a?b", "a/b", False),  # '?' does not match '/'
    ("[ab].yaml", "b.yaml", True),
    ("[ab].yaml", "c.yaml", False),
    ("[^ab].yaml", "c.yaml", True),  # Go negates with '^'
    ("[^ab].yaml", "a.yaml", False),
    ("[a-c]x.yml", "bx.yml", True),
    ("[!a].yaml", "!.yaml", True),  # '!' is literal in Go
    ("\\*.yaml", "*.yaml", True),
    ("\\*.yaml", "a.yaml", False),
    ("a.yaml", "a.yaml", True),
    ("a.yaml", "axyaml", False),  # '.' is literal
    ("a+b(c).yaml", "a+b(c).yaml", True),  # regex characters are literal
    ("/pkg/*.yaml", "/pkg/x.yaml", True),
    ("/pkg/*.yaml", "/pkg/x.yaml.bak", False),  # anchored at the end
]


@pytest.mark.parametrize(("pattern", "path", "want"), GLOBS)
def test_glob_match_follows_go_filepath_match(pattern: str, path: str, want: bool) -> None:
    assert glob_match(pattern, path) is want


def write(root: Path, rel: str, text: str = "kind: X\n") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def rels(root: Path, files: list[Path]) -> list[str]:
    return [f.relative_to(root.resolve()).as_posix() for f in files]


def test_walk_is_lexical_with_files_and_directories_interleaved(tmp_path: Path) -> None:
    for rel in ("b.yaml", "a.yaml", "a/z.yaml", "a-b/c.yaml", "A.yaml", "a/b/y.yml", "a/a.yaml"):
        write(tmp_path, rel)
    got = rels(tmp_path, find_yaml_files(tmp_path))
    # byte order: 'A' < 'a' < 'a-b' < 'a.yaml'; inside a/: 'a.yaml' < 'b/' < 'z.yaml'
    assert got == ["A.yaml", "a/a.yaml", "a/b/y.yml", "a/z.yaml", "a-b/c.yaml", "a.yaml", "b.yaml"]


def test_paths_are_absolute_even_for_a_relative_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "pkg/x.yaml")
    monkeypatch.chdir(tmp_path)
    files = find_yaml_files(Path("pkg"))
    assert files == [tmp_path.resolve() / "pkg" / "x.yaml"] and files[0].is_absolute()


def test_only_yaml_and_yml_extensions_exactly(tmp_path: Path) -> None:
    for rel in ("a.yaml", "b.yml", "c.YAML", "d.yaml.bak", "e.json", "yaml", "f.Yml", "g.yaml~"):
        write(tmp_path, rel)
    assert rels(tmp_path, find_yaml_files(tmp_path)) == ["a.yaml", "b.yml"]


def test_empty_files_are_skipped_but_whitespace_files_are_read(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "newline.yaml", "\n")
    write(tmp_path, "comment.yaml", "# nothing\n")
    assert rels(tmp_path, find_yaml_files(tmp_path)) == ["comment.yaml", "newline.yaml"]


def test_ignore_globs_are_joined_to_the_root_and_match_files_only(tmp_path: Path) -> None:
    for rel in ("crossplane.yaml", "crds/a.yaml", "crds/sub/b.yaml", "top.yaml", "x/top.yaml"):
        write(tmp_path, rel)
    assert rels(tmp_path, find_yaml_files(tmp_path, ignore=["crds/*.yaml"])) == [
        "crds/sub/b.yaml",
        "crossplane.yaml",
        "top.yaml",
        "x/top.yaml",
    ]
    # '*.yaml' only reaches the root directory's files
    assert rels(tmp_path, find_yaml_files(tmp_path, ignore=["*.yaml"])) == [
        "crds/a.yaml",
        "crds/sub/b.yaml",
        "x/top.yaml",
    ]
    # a directory glob does not ignore the files below it (upstream filters files, not directories)
    assert "crds/a.yaml" in rels(tmp_path, find_yaml_files(tmp_path, ignore=["crds"]))
    # Go's filepath.Join cleans the joined pattern ('./' and '..' segments)
    assert "crds/a.yaml" not in rels(tmp_path, find_yaml_files(tmp_path, ignore=["./crds/../crds/a.yaml"]))
    # several globs, and empty ones are ignored
    got = rels(tmp_path, find_yaml_files(tmp_path, ignore=["", "top.yaml", "x/*"]))
    assert got == ["crds/a.yaml", "crds/sub/b.yaml", "crossplane.yaml"]


def test_examples_root_is_excluded_by_substring_like_upstream(tmp_path: Path) -> None:
    for rel in ("crossplane.yaml", "examples/e.yaml", "examples-old/o.yaml", "myexamples/m.yaml", "z.yaml"):
        write(tmp_path, rel)
    got = rels(tmp_path, find_yaml_files(tmp_path, exclude_containing=tmp_path / "examples"))
    # "<root>/examples" is a substring of "<root>/examples-old/o.yaml" too; not of "<root>/myexamples"
    assert got == ["crossplane.yaml", "myexamples/m.yaml", "z.yaml"]


def test_examples_root_relative_to_cwd_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "pkg/crossplane.yaml")
    write(tmp_path, "pkg/examples/e.yaml")
    monkeypatch.chdir(tmp_path / "pkg")
    got = rels(tmp_path / "pkg", find_yaml_files(Path("."), exclude_containing=Path("./examples")))
    assert got == ["crossplane.yaml"]


def test_examples_root_outside_the_package_excludes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "pkg/examples/e.yaml")
    write(tmp_path, "pkg/a.yaml")
    got = rels(tmp_path / "pkg", find_yaml_files(tmp_path / "pkg", exclude_containing=tmp_path / "ex"))
    assert got == ["a.yaml", "examples/e.yaml"]


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "outside/secret.yaml")
    write(tmp_path, "pkg/a.yaml")
    os.symlink(tmp_path / "outside", tmp_path / "pkg" / "linked")
    os.symlink(tmp_path / "outside", tmp_path / "pkg" / "linked.yaml")  # a directory named like YAML
    assert rels(tmp_path / "pkg", find_yaml_files(tmp_path / "pkg")) == ["a.yaml"]


def test_a_file_root_yields_itself(tmp_path: Path) -> None:
    f = write(tmp_path, "only.yaml")
    assert find_yaml_files(f) == [f.resolve()]
