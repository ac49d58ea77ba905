"""Issue 8, items 8 and 10 on the package side: tar bombs in layers, and planted symlinks.

A layer of a great many empty files (9 MB gzip for a million) is cheap to make and was costly to
read: ``inspect``/``extract`` kept every entry (600 MB and 22 s per million). Entries are now
counted while streaming and refused past ``--max-layer-entries`` (default 100,000), in bounded
memory. ``extract`` and ``build`` write through fresh, unguessable temp files.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from tests.cli.test_xpkg_pull_cli import xp
from tests.oci.hostile import MiB, many_entries_tar, measure, oci_layout
from tests.support.images import DEFAULT_PACKAGE_YAML, make_test_image
from xplane.oci.cache import ImageCache
from xplane.xpkg.extract import MAX_LAYER_ENTRIES, TooManyEntriesError
from xplane.xpkg.package import extract_to_gzip, open_package

SRC = str(Path(__file__).resolve().parents[2] / "src")
CONFIG = b'{"architecture":"amd64","os":"linux"}'  # no xpkg labels: the layers are flattened


def _layout(tmp_path: Path, entries: int) -> Path:
    """An unannotated package image whose one layer holds ``entries`` empty files, then package.yaml."""
    tar = many_entries_tar(entries, last={"package.yaml": DEFAULT_PACKAGE_YAML.encode()})
    return oci_layout(tmp_path / f"l{entries}", config=CONFIG, layers=[gzip.compress(tar, 1, mtime=0)]).path


def test_a_layer_of_many_entries_is_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    entries = MAX_LAYER_ENTRIES + 20_000
    layout = _layout(tmp_path, entries)
    assert layout.stat().st_size < 10 * MiB
    setup = (
        "from xplane.xpkg.package import open_package\nfrom xplane.oci.cache import ImageCache\n"
        f"from xplane.oci.localfiles import load_file\nc = ImageCache({str(tmp_path / 'c')!r})\n"
        f"load_file({str(layout)!r}, cache=c)"
    )
    m = measure(setup, f"result = open_package({str(layout)!r}, cache=c).meta.name", env={"PYTHONPATH": SRC})
    assert (
        m.outcome.startswith("TooManyEntriesError: ")
        and f"more than {MAX_LAYER_ENTRIES} tar entries" in m.outcome
    )
    assert m.rss_growth < 32 * MiB, m  # read whole before: ~66 MiB here, 600 MB per million entries
    assert m.seconds < 4.0, m  # linear in the entries read, so the cap bounds it


def test_the_entry_limit_is_settable(tmp_path: Path) -> None:
    layout = _layout(tmp_path, 3000)
    cache = ImageCache(tmp_path / "cache")
    with pytest.raises(TooManyEntriesError, match="more than 1000 tar entries"):
        open_package(str(layout), cache=cache, max_layer_entries=1000)
    assert open_package(str(layout), cache=cache, max_layer_entries=3001).meta.name == "test-pkg"
    archive = make_archive_of(layout, tmp_path / "pkg.tar")  # extract --from-xpkg takes a file
    for cmd in (
        ("inspect", str(layout)),
        ("extract", "--from-xpkg", str(archive), "-o", str(tmp_path / "o")),
    ):
        r = xp("xpkg", *cmd, "--max-layer-entries", "1000", cache=tmp_path / "c2")
        assert r.returncode == 1 and r.stderr.startswith("xp: error: layer sha256:"), r.stderr
        assert "more than 1000 tar entries" in r.stderr and "hint: raise --max-layer-entries" in r.stderr
        ok = xp("xpkg", *cmd, "--max-layer-entries", "5000", cache=tmp_path / "c2")
        assert ok.returncode == 0, ok.stderr


def make_archive_of(layout: Path, dest: Path) -> Path:
    """The layout as an OCI archive (``extract --from-xpkg`` takes a file)."""
    import tarfile

    with tarfile.open(dest, "w") as tf:
        for p in sorted(layout.rglob("*")):
            if p.is_file():
                tf.add(p, str(p.relative_to(layout)))
    return dest


def test_an_annotated_layer_counts_too(tmp_path: Path) -> None:
    """The base-layer rule reads one layer, but that layer is bounded the same way."""
    img = make_test_image(tmp_path, extra_files={f"f{i:05d}": b"" for i in range(1500)})
    with pytest.raises(TooManyEntriesError):
        open_package(str(img.layout), cache=ImageCache(tmp_path / "c"), max_layer_entries=1000)


def test_extract_does_not_follow_a_symlink_planted_at_its_temp_name(tmp_path: Path) -> None:
    """The issue's reproduction: ``.out.gz.tmp-PID`` pointing at a victim file."""
    img = make_test_image(tmp_path / "src")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / f".out.gz.tmp-{os.getpid()}").symlink_to(victim)
    out = extract_to_gzip(str(img.archive), out_dir / "out.gz", cache=ImageCache(tmp_path / "cache"))
    assert victim.read_bytes() == b"precious\n"
    assert gzip.decompress(out.read_bytes()) == img.package_yaml


def test_build_does_not_follow_a_symlink_planted_at_its_temp_name(tmp_path: Path) -> None:
    from tests.xpkg.test_build import build, copy_fixture

    root = copy_fixture(tmp_path, "configuration")
    built = build(root)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    out = tmp_path / "dist" / "pkg.xpkg"
    out.parent.mkdir()
    (out.parent / f".pkg.xpkg.tmp-{os.getpid()}").symlink_to(victim)
    built.write(out)
    assert victim.read_bytes() == b"precious\n" and out.stat().st_size > 0
