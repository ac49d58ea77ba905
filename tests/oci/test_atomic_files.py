"""Issue 8, item 10: no writer follows a symlink planted where it puts its temp file or output.

The attack: an attacker who can write to the output directory plants a symlink under the temp
name a writer is about to use (``.NAME.tmp-PID`` was predictable), pointing at a victim file; the
writer opened it with ``open("wb")`` and overwrote the victim. Each test plants the symlinks at
every name the old code would have used, runs the writer, and checks the victim and the output.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.images import make_test_image
from xplane.oci.archive import load_archive
from xplane.oci.cache import ImageCache, atomic_write
from xplane.oci.layout import (
    LayoutEntry,
    atomic_output,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

VICTIM = b"the victim's data\n"


def plant(directory: Path, names: list[str], victim: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).symlink_to(victim)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "victim"
    path.parent.mkdir()
    path.write_bytes(VICTIM)
    return path


def test_atomic_output_ignores_a_symlink_at_the_old_temp_name(tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "out" / "out.gz"
    plant(out.parent, [f".out.gz.tmp-{os.getpid()}"], victim)
    with atomic_output(out) as f:
        f.write(b"new content")
    assert victim.read_bytes() == VICTIM
    assert out.read_bytes() == b"new content" and not out.is_symlink()


def test_atomic_output_replaces_a_symlink_at_the_output_instead_of_writing_through_it(
    tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "pkg.xpkg"
    out.symlink_to(victim)
    atomic_write(out, b"new")
    assert victim.read_bytes() == VICTIM and out.read_bytes() == b"new" and not out.is_symlink()


def test_open_temp_never_opens_an_existing_name_and_keeps_the_umask(tmp_path: Path) -> None:
    from xplane.oci.atomicfile import open_temp

    names = set()
    for _ in range(50):
        f, path = open_temp(tmp_path, ".x.tmp-")
        f.close()
        names.add(path.name)
    assert len(names) == 50  # 64 random bits per name: nothing to predict
    old = os.umask(0o027)
    try:
        f, path = open_temp(tmp_path, ".y.tmp-")
        f.close()
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # like open("wb"), not mkstemp's 0600


Writer = Callable[[Path, ImageCache, LayoutEntry], None]
WRITERS: dict[str, Writer] = {
    "oci-layout": lambda dest, cache, entry: write_oci_layout(dest, [entry], cache),
    "oci-archive": lambda dest, cache, entry: write_oci_archive(dest / "image.tar", [entry], cache),
    "docker-archive": lambda dest, cache, entry: write_docker_archive(dest / "image.tar", [entry], cache),
}


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_image_writers_do_not_follow_planted_symlinks(tmp_path: Path, victim: Path, write: Writer) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.layout, "example.com/org/pkg:v1", cache=cache)
    from xplane.oci.models import Descriptor

    entry = LayoutEntry(
        Descriptor(image.media_type, image.manifest_digest, len(image.manifest_bytes())), "v1"
    )
    dest = tmp_path / "dest"
    pid = os.getpid()
    blob_dir = dest / "blobs" / "sha256"
    old_names = [
        f".tmp-{pid}-{d.split(':')[1]}" for d in (image.manifest_digest, img.config_digest, img.layer_digest)
    ]
    plant(blob_dir, old_names, victim)
    plant(dest, [f".tmp-{pid}-index.json", "oci-layout", "image.tar"], victim)
    write(dest, cache, entry)
    assert victim.read_bytes() == VICTIM
    written = [p for p in dest.rglob("*") if p.is_file() and not p.is_symlink()]
    assert written, "the writer wrote nothing"
    again = load_archive(
        dest if (dest / "index.json").is_file() else dest / "image.tar",
        "x.io/o/p:v1",
        cache=ImageCache(tmp_path / "c2"),
    )
    assert again.layers[0].digest == img.layer_digest


def test_cache_writes_do_not_follow_planted_symlinks(tmp_path: Path, victim: Path) -> None:
    cache = ImageCache(tmp_path / "cache")
    pid = os.getpid()
    plant(cache.blobs_dir, [f".tmp-{pid}-{i:016x}" for i in range(4)], victim)
    digest = cache.write_blob(None, b"blob")
    assert cache.read_blob(digest) == b"blob" and victim.read_bytes() == VICTIM
