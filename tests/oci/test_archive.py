"""Loading docker-save tarballs, OCI layouts and OCI archives; refusing unsafe ones; writing them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.images import layer_tar, make_test_image, make_test_index
from xplane.oci.archive import DOCKER_LAYER_UNCOMPRESSED, ArchiveLimits, load_archive
from xplane.oci.cache import ImageCache
from xplane.oci.errors import ArchiveError, ManifestError
from xplane.oci.imagepull import PullPolicy, pull
from xplane.oci.layout import LayoutEntry, write_docker_archive, write_oci_archive, write_oci_layout
from xplane.oci.models import DOCKER_LAYER, DOCKER_MANIFEST, Descriptor

REF = "127.0.0.1:5000/test/pkg:v0.1.0"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def add(tf: tarfile.TarFile, name: str, data: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if data else None)


def tarball(path: Path, build: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(path, "w") as tf:
        build(tf)
    return path


def cache_files(cache: ImageCache) -> list[str]:
    if not cache.blobs_dir.exists():
        return []
    return sorted(p.name for p in cache.blobs_dir.iterdir())


def test_load_docker_archive_then_pull_offline_with_never(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src", name="test/pkg")
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.archive, REF, cache=cache)
    assert image.media_type == DOCKER_MANIFEST
    assert [layer.digest for layer in image.layers] == [img.layer_digest]
    assert image.layers[0].media_type == DOCKER_LAYER
    assert image.config_descriptor is not None and image.config_descriptor.digest == img.config_digest
    assert image.layer_path(0).read_bytes() == img.layer
    assert image.digest == image.manifest_digest == sha(image.manifest_bytes())
    # the tag is now served from the cache with Never: no registry anywhere
    again = pull(REF, policy=PullPolicy.NEVER, cache=cache)
    assert again.digest == image.digest
    entry = cache.tag_entry(image.reference)
    assert entry is not None and entry.source == f"archive:{img.archive}"
    # the synthesised manifest is deterministic: another cache gives the same digest
    other = load_archive(img.archive, REF, cache=ImageCache(tmp_path / "cache2"))
    assert other.digest == image.digest


def test_load_docker_archive_names_itself_from_repo_tags(tmp_path: Path) -> None:
    img = make_test_image(tmp_path, name="test/pkg", tag="v9")
    image = load_archive(img.archive, cache=ImageCache(tmp_path / "cache"))
    assert str(image.reference) == "index.docker.io/test/pkg:v9"


def test_load_oci_layout_and_oci_archive_keep_digests(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.layout, REF, cache=cache)
    assert image.digest == img.manifest_digest
    assert image.manifest_bytes() == img.manifest
    assert image.layers[0].annotations == {"io.crossplane.xpkg": "base"}
    # a layout's ref.name is a bare tag: it cannot name the image by itself
    with pytest.raises(ArchiveError, match="does not name its image"):
        load_archive(img.layout, cache=cache)
    archive = tmp_path / "image.oci.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(img.layout, arcname=".")
    other = load_archive(archive, "127.0.0.1:5000/test/other:v1", cache=cache)
    assert other.digest == img.manifest_digest


def test_load_index_selects_platform_and_keeps_index_digest(tmp_path: Path) -> None:
    idx = make_test_index(tmp_path / "src", platforms=("linux/amd64", "linux/arm64"))
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(idx.layout, f"127.0.0.1:5000/test/pkg:{idx.tag}", cache=cache)
    assert image.digest == idx.index_digest
    assert image.manifest_digest == idx.images["linux/amd64"].manifest_digest
    arm = load_archive(idx.layout, f"127.0.0.1:5000/test/pkg:{idx.tag}", cache=cache, platform="linux/arm64")
    assert arm.manifest_digest == idx.images["linux/arm64"].manifest_digest
    assert arm.digest == idx.index_digest
    with pytest.raises(ArchiveError, match="no image for platform linux/s390x"):
        load_archive(idx.layout, f"127.0.0.1:5000/test/pkg:{idx.tag}", cache=cache, platform="linux/s390x")
    # both platforms went into the cache: the other one resolves offline too
    with pytest.raises(ManifestError):
        pull(f"127.0.0.1:5000/test/pkg:{idx.tag}", policy="Never", cache=cache, platform="linux/ppc64le")
    assert (
        pull(
            f"127.0.0.1:5000/test/pkg:{idx.tag}", policy="Never", cache=cache, platform="linux/arm64"
        ).manifest_digest
        == arm.manifest_digest
    )


def test_layout_with_several_images_needs_a_choice(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    a = make_test_image(tmp_path, tag="v1", layout=layout, package_yaml="a: 1\n", archive=tmp_path / "a.tar")
    b = make_test_image(tmp_path, tag="v2", layout=layout, package_yaml="b: 2\n", archive=tmp_path / "b.tar")
    cache = ImageCache(tmp_path / "cache")
    with pytest.raises(ArchiveError, match=r"several images \(v1, v2\)"):
        load_archive(layout, "127.0.0.1:5000/x/y:v3", cache=cache)
    assert load_archive(layout, "127.0.0.1:5000/x/y:v2", cache=cache).digest == b.manifest_digest
    assert load_archive(layout, "127.0.0.1:5000/x/y:v1", cache=cache).digest == a.manifest_digest


def legacy_docker_save(tmp_path: Path) -> tuple[Path, bytes, str]:
    """``docker save``/skopeo style: uncompressed ``<diffid>.tar`` and ``<id>/layer.tar`` symlinks."""
    tar = layer_tar({"package.yaml": b"kind: Configuration\n"})
    diff_id = sha(tar)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    ).encode()
    cfg_name = sha(config).split(":")[1] + ".json"
    layer_name = diff_id.split(":")[1] + ".tar"
    manifest = json.dumps(
        [{"Config": cfg_name, "RepoTags": ["docker.io/test/pkg:v0.1.0"], "Layers": ["abc123/layer.tar"]}]
    ).encode()

    def build(tf: tarfile.TarFile) -> None:
        add(tf, layer_name, tar)
        add(tf, "abc123", type=tarfile.DIRTYPE, mode=0o755)
        add(tf, "abc123/layer.tar", type=tarfile.SYMTYPE, linkname=f"../{layer_name}")
        add(tf, "abc123/VERSION", b"1.0")
        add(tf, cfg_name, config)
        add(tf, "manifest.json", manifest)
        add(tf, "repositories", b"{}")

    return tarball(tmp_path / "legacy.tar", build), tar, diff_id


def test_load_legacy_docker_save_with_uncompressed_layers(tmp_path: Path) -> None:
    path, tar, diff_id = legacy_docker_save(tmp_path)
    image = load_archive(path, cache=ImageCache(tmp_path / "cache"))
    assert str(image.reference) == "index.docker.io/test/pkg:v0.1.0"
    assert image.layers[0].media_type == DOCKER_LAYER_UNCOMPRESSED
    assert image.layers[0].digest == diff_id
    assert image.layer_path(0).read_bytes() == tar
    # gzip'd docker save output (docker save | gzip) is read too
    gz = tmp_path / "legacy.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert load_archive(gz, cache=ImageCache(tmp_path / "cache2")).digest == image.digest


def _evil(name: str) -> Callable[[tarfile.TarFile], None]:
    def build(tf: tarfile.TarFile) -> None:
        add(tf, "manifest.json", b"[]")
        if name == "absolute":
            add(tf, "/etc/evil", b"x")
        elif name == "dotdot":
            add(tf, "blobs/../../evil", b"x")
        elif name == "symlink":
            add(tf, "layer.tar", type=tarfile.SYMTYPE, linkname="../../../etc/passwd")
        elif name == "abs-symlink":
            add(tf, "layer.tar", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        elif name == "hardlink":
            add(tf, "layer.tar", type=tarfile.LNKTYPE, linkname="../outside")
        elif name == "device":
            add(tf, "dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        elif name == "fifo":
            add(tf, "pipe", type=tarfile.FIFOTYPE)
        elif name == "duplicate":
            add(tf, "manifest.json", b"[]")
        elif name == "loop":
            add(tf, "a", type=tarfile.SYMTYPE, linkname="b")
            add(tf, "b", type=tarfile.SYMTYPE, linkname="a")

    return build


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("absolute", "absolute path"),
        ("dotdot", r"contains '\.\.'"),
        ("symlink", "points outside the archive"),
        ("abs-symlink", "points outside the archive"),
        ("hardlink", "points outside the archive"),
        ("device", "device file or FIFO"),
        ("fifo", "device file or FIFO"),
        ("duplicate", "appears twice"),
        ("loop", "loop"),
    ],
)
def test_unsafe_archives_are_refused_and_nothing_is_written(tmp_path: Path, kind: str, message: str) -> None:
    path = tarball(tmp_path / "evil.tar", _evil(kind))
    before = sorted(os.listdir(tmp_path))
    cache = ImageCache(tmp_path / "cache")
    with pytest.raises(ArchiveError, match=message):
        load_archive(path, REF, cache=cache)
    assert cache_files(cache) == []
    assert sorted(os.listdir(tmp_path)) == before
    assert not Path("/etc/evil").exists()


def test_size_limits_stop_oversized_members_and_tar_bombs(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    with pytest.raises(ArchiveError, match="over the limit"):
        load_archive(img.archive, REF, cache=cache, limits=ArchiveLimits(max_member_bytes=100))
    with pytest.raises(ArchiveError, match="tar bomb"):
        load_archive(img.archive, REF, cache=cache, limits=ArchiveLimits(max_total_bytes=len(img.layer)))
    many = tarball(tmp_path / "many.tar", lambda tf: [add(tf, f"f{i}", b"x") for i in range(50)])
    with pytest.raises(ArchiveError, match="more than 20 members"):
        load_archive(many, REF, cache=cache, limits=ArchiveLimits(max_members=20))
    # a gzip bomb: tiny on disk, huge inflated
    bomb = tmp_path / "bomb.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        add(tf, "manifest.json", b"[]")
        add(tf, "zeros", b"\0" * (4 << 20))
    bomb.write_bytes(gzip.compress(raw.getvalue()))
    assert bomb.stat().st_size < 64 << 10
    with pytest.raises(ArchiveError, match="tar bomb"):
        load_archive(bomb, REF, cache=cache, limits=ArchiveLimits(max_total_bytes=1 << 20))
    assert cache_files(cache) == []


def test_tampered_content_is_refused(tmp_path: Path) -> None:
    path, _tar, _diff_id = legacy_docker_save(tmp_path)
    # rewrite the layer with different bytes under the same names: diff_id no longer matches
    with tarfile.open(path) as src:
        members = [(m, src.extractfile(m).read() if m.isreg() else b"") for m in src.getmembers()]  # type: ignore[union-attr]
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(tampered, "w") as tf:
        for m, data in members:
            if m.name.endswith(".tar") and m.isreg():
                data = layer_tar({"package.yaml": b"kind: Evil\n"})
                m.size = len(data)
            tf.addfile(m, io.BytesIO(data) if m.isreg() else None)
    cache = ImageCache(tmp_path / "cache")
    with pytest.raises(ArchiveError, match="diff_id"):
        load_archive(tampered, cache=cache)
    assert cache.entries() == []
    assert cache_files(cache) == []  # the tampered layer never entered the cache
    # an OCI layout whose blob was altered
    img = make_test_image(tmp_path / "src")
    blob = img.layout / "blobs" / "sha256" / img.layer_digest.split(":")[1]
    damaged = bytearray(img.layer)
    damaged[20] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    with pytest.raises(ArchiveError, match="does not match its digest"):
        load_archive(img.layout, REF, cache=cache)
    assert not cache.has_blob(img.layer_digest)


def test_layout_directory_symlink_escape_is_refused(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    secret = tmp_path / "secret"
    secret.write_bytes(img.layer)  # even with matching content, reading outside is refused
    blob = img.layout / "blobs" / "sha256" / img.layer_digest.split(":")[1]
    blob.unlink()
    blob.symlink_to(secret)
    with pytest.raises(ArchiveError, match="outside the layout"):
        load_archive(img.layout, REF, cache=ImageCache(tmp_path / "cache"))


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"not a tar")
    with pytest.raises(ArchiveError, match="not a readable tar"):
        load_archive(tmp_path / "junk", REF, cache=ImageCache(tmp_path / "cache"))
    with pytest.raises(ArchiveError, match="no such file"):
        load_archive(tmp_path / "missing.tar", REF, cache=ImageCache(tmp_path / "cache"))
    empty = tarball(tmp_path / "empty.tar", lambda tf: add(tf, "hello", b"x"))
    with pytest.raises(ArchiveError, match="neither a docker-save"):
        load_archive(empty, REF, cache=ImageCache(tmp_path / "cache"))


def test_writers_are_deterministic_and_round_trip(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.layout, REF, cache=cache)
    entry = LayoutEntry(Descriptor(img.manifest_media_type, img.manifest_digest, len(img.manifest)), "v0.1.0")

    out1, out2 = tmp_path / "a.tar", tmp_path / "b.tar"
    write_docker_archive(out1, [LayoutEntry(entry.descriptor, "127.0.0.1:5000/test/pkg:v0.1.0")], cache)
    write_docker_archive(out2, [LayoutEntry(entry.descriptor, "127.0.0.1:5000/test/pkg:v0.1.0")], cache)
    assert out1.read_bytes() == out2.read_bytes()
    with tarfile.open(out1) as tf:
        names = tf.getnames()
        assert names == [img.config_digest, img.layer_digest.split(":")[1] + ".tar.gz", "manifest.json"]
        assert all(m.mtime == 0 and m.mode == 0o644 and m.uid == 0 for m in tf.getmembers())
    back = load_archive(out1, cache=ImageCache(tmp_path / "cache2"))
    assert back.config == image.config and [x.digest for x in back.layers] == [img.layer_digest]

    layout = tmp_path / "layout"
    write_oci_layout(layout, [entry], cache)
    assert json.loads((layout / "index.json").read_bytes())["manifests"][0]["annotations"] == {
        "org.opencontainers.image.ref.name": "v0.1.0"
    }
    assert load_archive(layout, REF, cache=ImageCache(tmp_path / "cache3")).digest == img.manifest_digest

    oa1, oa2 = tmp_path / "o1.tar", tmp_path / "new" / "folder" / "o2.tar"  # folders are created
    write_oci_archive(oa1, [entry], cache)
    write_oci_archive(oa2, [entry], cache)
    assert oa1.read_bytes() == oa2.read_bytes()
    assert load_archive(oa1, REF, cache=ImageCache(tmp_path / "cache4")).digest == img.manifest_digest


def test_writing_an_index_as_docker_archive_is_refused(tmp_path: Path) -> None:
    idx = make_test_index(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    load_archive(idx.layout, "127.0.0.1:5000/test/pkg:multi", cache=cache)
    entry = LayoutEntry(
        Descriptor("application/vnd.oci.image.index.v1+json", idx.index_digest, len(idx.index))
    )
    with pytest.raises(ArchiveError, match="image index"):
        write_docker_archive(tmp_path / "x.tar", [entry], cache)
    layout = tmp_path / "layout"
    write_oci_layout(layout, [LayoutEntry(entry.descriptor, "multi")], cache)
    back = load_archive(
        layout, "127.0.0.1:5000/test/pkg:multi", cache=ImageCache(tmp_path / "c2"), platform="linux/arm64"
    )
    assert back.digest == idx.index_digest
    assert back.manifest_digest == idx.images["linux/arm64"].manifest_digest
