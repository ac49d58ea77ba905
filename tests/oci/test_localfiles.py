"""Images read from local files in passing: in the cache, never tagged, remembered by the file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.images import make_test_image
from xplane.oci.archive import UNNAMED_IMAGE, load_archive
from xplane.oci.cache import ImageCache
from xplane.oci.cachegc import NOTES_DIR
from xplane.oci.imagepull import Image
from xplane.oci.localfiles import load_file
from xplane.oci.models import sha256_digest


def config_of(image: Image) -> str:
    """Which image this is, for archives too (a docker-save archive's manifest is made on load)."""
    assert image.config_descriptor is not None
    return image.config_descriptor.digest


def test_a_file_image_is_cached_but_never_listed(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    for source in (img.archive, img.layout):
        with cache.writer():
            image = load_file(source, cache=cache)
            assert config_of(image) == sha256_digest(img.config)
            assert image.layer_path(0).read_bytes() == img.layer
    assert cache.entries() == []
    assert cache.disk_usage().images == 0


def test_an_unnamed_image_gets_a_digest_name(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")  # its layout names the image "v0.1.0" only
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.layout, cache=cache, record=False)
    assert str(image.reference) == f"{UNNAMED_IMAGE}@{img.manifest_digest}"
    assert (
        load_archive(img.layout, "x.example/p:v0.1.0", cache=cache, record=False).reference.name
        == "x.example/p"
    )
    assert cache.entries() == []


def test_an_unchanged_file_is_not_read_again_a_changed_one_is(tmp_path: Path) -> None:
    a = make_test_image(tmp_path / "a", package_yaml="a: 1\n")
    b = make_test_image(tmp_path / "b", package_yaml="b: 22\n")  # a different size
    cache = ImageCache(tmp_path / "cache")
    path = tmp_path / "pkg.tar"
    shutil.copy(a.archive, path)
    assert config_of(load_file(path, cache=cache)) == sha256_digest(a.config)
    # Identified by size and modification time (as before): same stamp, same image, file unread.
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert config_of(load_file(path, cache=cache)) == sha256_digest(a.config)
    shutil.copy(b.archive, path)
    assert config_of(load_file(path, cache=cache)) == sha256_digest(b.config)


def test_prune_frees_file_images_and_forgets_them(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    first = load_file(img.archive, cache=cache)
    assert len(list((cache.root / NOTES_DIR).iterdir())) == 1
    result = cache.prune()
    assert result.blobs == 3 and not cache.has_blob(first.manifest_digest)
    assert list((cache.root / NOTES_DIR).iterdir()) == []
    image = load_file(img.archive, cache=cache)  # simply loaded again
    assert image.manifest_digest == first.manifest_digest and cache.has_blob(first.manifest_digest)


def test_a_damaged_note_means_loading_again(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    load_file(img.archive, cache=cache)
    (note,) = (cache.root / NOTES_DIR).iterdir()
    note.write_text("{not json")
    assert config_of(load_file(img.archive, cache=cache)) == sha256_digest(img.config)
