"""Finding package.yaml in an image (base-layer rule, flatten fallback, whiteouts, limits) and ``extract``."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.oci.test_pull import make_client
from tests.support.registry import RegistryServer
from tests.xpkg.test_build import build, copy_fixture, runtime_tarball
from xplane.oci.cache import ImageCache
from xplane.oci.models import Descriptor
from xplane.xpkg.errors import PackageError
from xplane.xpkg.extract import (
    MAX_PACKAGE_SIZE,
    PackageNotFoundError,
    PackageTooLargeError,
    base_layer_index,
    read_package_yaml,
)
from xplane.xpkg.package import extract_to_gzip
from xplane.xpkg.publish import push_packages

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
Entry = tuple[str, bytes | None]  # (name, content); None = a directory


def tar_bytes(entries: Sequence[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Layers:
    """Layer blobs on disk plus their descriptors, bottom first."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.paths: list[Path] = []
        self.descs: list[Descriptor] = []

    def add(self, entries: Sequence[Entry], annotation: str | None = None, *, compress: bool = True) -> str:
        blob = tar_bytes(entries)
        if compress:
            blob = gzip.compress(blob, mtime=0)
        return self.add_blob(blob, annotation)

    def add_blob(self, blob: bytes, annotation: str | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        path = self.tmp / f"layer{len(self.paths)}"
        path.write_bytes(blob)
        ann: Mapping[str, str] = {"io.crossplane.xpkg": annotation} if annotation else {}
        self.paths.append(path)
        self.descs.append(Descriptor(LAYER, digest, len(blob), annotations=ann))
        return digest

    def read(self, config: dict[str, object] | None = None) -> bytes:
        return read_package_yaml(self.paths, self.descs, config)


@pytest.fixture
def layers(tmp_path: Path) -> Layers:
    return Layers(tmp_path)


# --- the base-layer rule -----------------------------------------------------------------------------


def test_first_annotated_base_layer_wins(layers: Layers) -> None:
    layers.add([("package.yaml", b"unannotated")])
    layers.add([("package.yaml", b"first base")], "base")
    layers.add([("package.yaml", b"second base")], "base")
    layers.add([("package.yaml", b"top, upbound")], "upbound")
    assert base_layer_index(layers.descs) == 1
    assert layers.read() == b"first base"


def test_base_layer_package_yaml_at_any_depth(layers: Layers) -> None:
    layers.add(
        [("README", b"x"), ("opt", None), ("opt/pkg/package.yaml", b"deep"), ("package.yaml", b"later")],
        "base",
    )
    assert layers.read() == b"deep"  # the first entry whose basename is package.yaml


def test_annotated_base_layer_without_package_yaml_is_an_error(layers: Layers) -> None:
    layers.add([("package.yaml", b"elsewhere")])
    layers.add([("other.yaml", b"x")], "base")
    with pytest.raises(PackageNotFoundError, match="package.yaml not found in package"):
        layers.read()


def test_config_labels_name_the_base_layer_when_annotations_are_gone(layers: Layers) -> None:
    layers.add([("package.yaml", b"runtime junk")])
    digest = layers.add([("package.yaml", b"labelled")])
    layers.add([("etc/x", b"top")])
    config: dict[str, object] = {"config": {"Labels": {f"io.crossplane.xpkg:{digest}": "base"}}}
    assert base_layer_index(layers.descs, config) == 1 and layers.read(config) == b"labelled"
    # a label naming a digest that is not in the image (layers were recompressed) is ignored
    stale: dict[str, object] = {"config": {"Labels": {"io.crossplane.xpkg:sha256:" + "0" * 64: "base"}}}
    assert base_layer_index(layers.descs, stale) is None
    assert layers.read(stale) == b"labelled"  # flattened: the upper layer's package.yaml


# --- the flatten fallback ------------------------------------------------------------------------------


def test_flatten_top_layer_wins(layers: Layers) -> None:
    layers.add([("pkg/package.yaml", b"bottom")])
    layers.add([("pkg/package.yaml", b"top")])
    assert layers.read() == b"top"


def test_flatten_whiteout_file_hides_lower_package_yaml(layers: Layers) -> None:
    layers.add([("a/package.yaml", b"deleted"), ("b/deep/package.yaml", b"visible")])
    layers.add([("a/.wh.package.yaml", b"")])
    assert layers.read() == b"visible"


def test_flatten_whiteout_of_a_directory(layers: Layers) -> None:
    layers.add([("a/package.yaml", b"deleted"), ("z/package.yaml", b"visible")])
    layers.add([(".wh.a", b"")])
    assert layers.read() == b"visible"


def test_flatten_opaque_directory_hides_everything_below_it(layers: Layers) -> None:
    layers.add([("a/package.yaml", b"hidden"), ("a/sub/package.yaml", b"hidden too")])
    layers.add([("a", None), ("a/.wh..wh..opq", b""), ("a/other", b"x")])
    with pytest.raises(PackageNotFoundError, match="package.yaml not found in package"):
        layers.read()
    layers.add([("a/sub/package.yaml", b"re-added above the opaque layer")])
    assert layers.read() == b"re-added above the opaque layer"


def test_flatten_opaque_hides_only_lower_layers(layers: Layers) -> None:
    layers.add([("a/package.yaml", b"lower")])
    layers.add([("a/.wh..wh..opq", b""), ("a/package.yaml", b"same layer")])
    assert layers.read() == b"same layer"


def test_flatten_whiteout_across_three_layers(layers: Layers) -> None:
    layers.add([("x/package.yaml", b"oldest")])
    layers.add([("x/.wh.package.yaml", b"")])
    layers.add([("y/file", b"nothing")])
    with pytest.raises(PackageNotFoundError):
        layers.read()


def test_flatten_a_file_replacing_a_directory_hides_its_contents(layers: Layers) -> None:
    layers.add([("a/package.yaml", b"under a directory")])
    layers.add([("a", b"now a file")])
    with pytest.raises(PackageNotFoundError):
        layers.read()


def test_flatten_reads_uncompressed_layers(layers: Layers) -> None:
    layers.add([("package.yaml", b"plain tar")], compress=False)
    assert layers.read() == b"plain tar"


def test_no_package_yaml_anywhere(layers: Layers) -> None:
    layers.add([("bin/app", b"x")])
    with pytest.raises(PackageNotFoundError) as e:
        layers.read()
    assert "package.yaml not found in package" in str(e.value) and e.value.hint


# --- damage and limits -----------------------------------------------------------------------------


def test_corrupt_gzip_is_a_package_error_naming_the_layer(layers: Layers) -> None:
    blob = bytearray(gzip.compress(tar_bytes([("package.yaml", os.urandom(4000))]), mtime=0))
    blob[40:60] = b"\x00" * 20
    digest = layers.add_blob(bytes(blob), "base")
    with pytest.raises(PackageError) as e:
        layers.read()
    assert digest in str(e.value) and "not a readable" in str(e.value)


def test_truncated_gzip_is_a_package_error(layers: Layers) -> None:
    blob = gzip.compress(tar_bytes([("package.yaml", b"x" * 5000)]), mtime=0)
    layers.add_blob(blob[: len(blob) // 2], "base")
    with pytest.raises(PackageError, match="not a readable"):
        layers.read()


def test_garbage_that_is_not_a_tar(layers: Layers) -> None:
    layers.add_blob(gzip.compress(b"this is not a tar archive" * 40), "base")
    with pytest.raises(PackageError, match="not a readable"):
        layers.read()


def _zstd(data: bytes, *, frames: int = 1, window_log: int | None = None) -> bytes:
    """``data`` as zstd, split over ``frames`` frames, streamed (no content size in the header)."""
    import zstandard

    # with a content checksum, as the zstd tool and Go's encoders write by default
    params = zstandard.ZstdCompressionParameters(window_log=window_log or 0, write_checksum=True)
    compressor = zstandard.ZstdCompressor(compression_params=params)
    out = io.BytesIO()
    step = -(-len(data) // frames)
    for i in range(frames):
        with compressor.stream_writer(out, closefd=False) as w:
            w.write(data[i * step : (i + 1) * step])
    return out.getvalue()


def test_zstd_layers_are_read_across_frames(layers: Layers) -> None:
    doc = b"apiVersion: meta.pkg.crossplane.io/v1\nkind: Configuration\n" + b"# padding\n" * 5000
    layers.add_blob(_zstd(tar_bytes([("package.yaml", doc)]), frames=3), "base")
    assert layers.read() == doc


def test_a_damaged_zstd_layer_is_a_package_error(layers: Layers) -> None:
    blob = bytearray(_zstd(tar_bytes([("package.yaml", b"kind: Configuration\n" * 2000)])))
    blob[len(blob) // 2] ^= 0xFF  # the checksum (or the block's own structure) no longer matches
    layers.add_blob(bytes(blob), "base")
    with pytest.raises(PackageError, match=r"not a readable tar \(gzip, zstd or uncompressed\)"):
        layers.read()


def test_a_zstd_frame_asking_for_a_huge_window_is_refused(layers: Layers) -> None:
    layers.add_blob(_zstd(tar_bytes([("package.yaml", b"x" * 1000)]), window_log=28), "base")
    with pytest.raises(PackageError, match="too much memory"):
        layers.read()


def test_a_zstd_bomb_stops_at_the_package_size_limit(layers: Layers) -> None:
    header = tarfile.TarInfo("package.yaml")
    header.size = MAX_PACKAGE_SIZE + 1
    import zstandard

    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False) as w:
        w.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        zeros = bytes(1 << 20)
        for _ in range((MAX_PACKAGE_SIZE >> 20) + 2):
            w.write(zeros)
    assert out.tell() < 1 << 20  # a few KiB that inflate past 200 MiB
    layers.add_blob(out.getvalue(), "base")
    with pytest.raises(PackageTooLargeError):
        layers.read()


def _sparse_tar(path: Path, name: str, size: int) -> None:
    """An uncompressed tar whose one member is ``size`` bytes of zeros, written sparsely (no RAM, no disk)."""
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    with path.open("wb") as f:
        f.write(header)
        padded = (size + 511) // 512 * 512
        f.truncate(len(header) + padded + 1024)  # the data, then two zero blocks


@pytest.mark.parametrize("annotated", [True, False])
def test_package_yaml_over_200_mib_is_refused(layers: Layers, tmp_path: Path, annotated: bool) -> None:
    big = tmp_path / "big.tar"
    _sparse_tar(big, "package.yaml", MAX_PACKAGE_SIZE + 1)
    layers.paths.append(big)
    ann = {"io.crossplane.xpkg": "base"} if annotated else {}
    layers.descs.append(Descriptor("application/vnd.oci.image.layer.v1.tar", "sha256:" + "b" * 64, 1, ann))
    with pytest.raises(PackageTooLargeError) as e:
        layers.read()
    assert "200 MiB" in str(e.value) and str(MAX_PACKAGE_SIZE + 1) in str(e.value)


def test_an_uncompressed_layer_with_trailing_sparse_blocks_is_read(layers: Layers, tmp_path: Path) -> None:
    # the size check happens before any byte is read: a small package.yaml next to a huge file is fine
    big = tmp_path / "big.tar"
    info = tarfile.TarInfo("package.yaml")
    info.size = 5
    with big.open("wb") as f:
        f.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        f.write(b"kind:".ljust(512, b"\0"))
        f.truncate(f.tell() + 1024)
    layers.paths.append(big)
    layers.descs.append(Descriptor("application/vnd.oci.image.layer.v1.tar", "sha256:" + "c" * 64, 1))
    assert layers.read() == b"kind:"


# --- extract ---------------------------------------------------------------------------------------


def test_extract_from_a_file_writes_gzip_of_package_yaml_atomically(tmp_path: Path) -> None:
    built = build(copy_fixture(tmp_path, "configuration"))
    xpkg = built.write(tmp_path / "cfg.xpkg")
    out = tmp_path / "out" / "pkg.gz"
    out.parent.mkdir()
    got = extract_to_gzip(str(xpkg), out, cache=ImageCache(tmp_path / "cache"))
    assert got == out
    raw = out.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00" and raw[4:8] == b"\x00\x00\x00\x00"  # no name, mtime 0
    assert gzip.decompress(raw) == built.package_yaml
    assert sorted(p.name for p in out.parent.iterdir()) == ["pkg.gz"]  # no temp files left
    # overwriting keeps the old file until the new one is complete, and gives the same bytes
    extract_to_gzip(str(xpkg), out, cache=ImageCache(tmp_path / "cache"))
    assert out.read_bytes() == raw


def test_extract_of_an_image_without_package_yaml_writes_nothing(tmp_path: Path) -> None:
    tarball = tmp_path / "runtime.tar"
    runtime_tarball(tarball)  # an ordinary image: binaries, no package.yaml
    out = tmp_path / "x.gz"
    with pytest.raises(PackageNotFoundError, match="package.yaml not found in package"):
        extract_to_gzip(str(tarball), out, cache=ImageCache(tmp_path / "cache"))
    assert list(tmp_path.glob("*x.gz*")) == []


def test_extract_from_a_reference(tmp_path: Path, registry_plain: RegistryServer, unique_repo: str) -> None:
    built = build(copy_fixture(tmp_path, "configuration"))
    xpkg = built.write(tmp_path / "cfg.xpkg")
    ref = registry_plain.ref(unique_repo, "v1")
    client = make_client()
    try:
        push_packages([xpkg], ref, client=client, cache=ImageCache(tmp_path / "push-cache"))
    finally:
        client.close()
    out = extract_to_gzip(
        ref, tmp_path / "ref.gz", cache=ImageCache(tmp_path / "cache"), client_factory=make_client
    )
    assert gzip.decompress(out.read_bytes()) == built.package_yaml


def test_extract_refuses_several_annotated_base_layers_like_upstream(tmp_path: Path) -> None:
    from xplane.oci.layout import LayoutEntry, MemoryBlobs, write_oci_layout
    from xplane.oci.models import OCI_CONFIG, OCI_MANIFEST

    blobs = MemoryBlobs()
    layer_descs = []
    for text in (b"one", b"two"):
        blob = gzip.compress(tar_bytes([("package.yaml", text)]), mtime=0)
        layer_descs.append({"mediaType": LAYER, "digest": blobs.add(blob), "size": len(blob),
                            "annotations": {"io.crossplane.xpkg": "base"}})  # fmt: skip
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": blobs.add(config), "size": len(config)},
            "layers": layer_descs,
        }
    ).encode()
    digest = blobs.add(manifest)
    write_oci_layout(
        tmp_path / "layout", [LayoutEntry(Descriptor(OCI_MANIFEST, digest, len(manifest)), "v1")], blobs
    )
    with pytest.raises(PackageError, match="multiple annotated base layers"):
        extract_to_gzip(str(tmp_path / "layout"), tmp_path / "out.gz", cache=ImageCache(tmp_path / "cache"))
    assert not (tmp_path / "out.gz").exists()
    # reading (as the package manager does) takes the first one
    from xplane.xpkg.package import open_image, package_yaml_of

    assert (
        package_yaml_of(open_image(str(tmp_path / "layout"), cache=ImageCache(tmp_path / "cache"))) == b"one"
    )
