"""``xpkg push`` against a real docker-registry, read back by skopeo and by xplane."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oci.test_pull import make_client
from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo
from tests.xpkg.test_build import build, copy_fixture, runtime_tarball
from xplane.oci.cache import ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.errors import InvalidReferenceError
from xplane.oci.layout import LayoutEntry, MemoryBlobs, write_oci_layout
from xplane.oci.models import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor
from xplane.xpkg.build import BuiltPackage
from xplane.xpkg.errors import PackageError
from xplane.xpkg.package import open_package, package_yaml_of
from xplane.xpkg.publish import find_package_files, parse_annotations, push_packages

KEY = "io.crossplane.xpkg"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    c = make_client()
    yield c
    c.close()


def raw_manifest(skopeo: Skopeo, ref: str) -> bytes:
    return skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=True).stdout.encode()


def skopeo_config(skopeo: Skopeo, ref: str) -> dict[str, Any]:
    out = skopeo("inspect", "--config", "--tls-verify=false", f"docker://{ref}", check=True).stdout
    return dict(json.loads(out))


def read_back(ref: str, tmp_path: Path, **kw: Any) -> Any:
    """The package at ``ref`` read by xplane into a fresh cache."""
    cache = ImageCache(tmp_path / f"read-{hashlib.sha1(ref.encode()).hexdigest()[:6]}")
    return open_package(ref, cache=cache, client_factory=make_client, **kw)


@pytest.fixture
def cfg_pkg(tmp_path: Path) -> tuple[BuiltPackage, Path]:
    built = build(copy_fixture(tmp_path, "configuration"))
    return built, built.write(tmp_path / built.default_file_name())


def test_pushed_by_xplane_read_by_skopeo_and_xplane(
    tmp_path: Path,
    registry_plain: RegistryServer,
    skopeo: Skopeo,
    client: RegistryClient,
    unique_repo: str,
    cfg_pkg: tuple[BuiltPackage, Path],
) -> None:
    built, xpkg = cfg_pkg
    ref = registry_plain.ref(unique_repo, "v1.0.0")
    result = push_packages([xpkg], ref, client=client, cache=ImageCache(tmp_path / "cache"))
    raw = raw_manifest(skopeo, ref)
    assert sha(raw) == result.digest and result.images == [result.digest]
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    built_layers = json.loads(built.manifest)["layers"]
    assert [d["digest"] for d in manifest["layers"]] == [d["digest"] for d in built_layers]  # unchanged
    assert [d.get("annotations") for d in manifest["layers"]] == [{KEY: "base"}, {KEY: "upbound"}]
    assert "annotations" not in manifest  # no -a given
    labels = skopeo_config(skopeo, ref)["config"]["Labels"]
    assert labels == {
        f"{KEY}:{built_layers[0]['digest']}": "base",
        f"{KEY}:{built_layers[1]['digest']}": "upbound",
    }
    pkg = read_back(ref, tmp_path)
    assert pkg.digest == result.digest and pkg.image.manifest_digest == result.digest
    assert package_yaml_of(pkg.image) == built.package_yaml
    assert pkg.meta.name == "platform-ref-network" and len(pkg.objects) == built.object_count
    layers = pkg.summary()["layers"]
    assert [(la["annotation"], la["package"]) for la in layers] == [("base", True), ("upbound", False)]


def _oci_variant(built: BuiltPackage) -> tuple[bytes, MemoryBlobs]:
    """The built image with OCI media types (same config and layer blobs)."""
    m = json.loads(built.manifest)
    oci = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**m["config"], "mediaType": OCI_CONFIG},
        "layers": [{**d, "mediaType": OCI_LAYER_GZIP} for d in m["layers"]],
    }
    data = json.dumps(oci, separators=(",", ":")).encode()
    return data, MemoryBlobs({**built.blobs.blobs, sha(data): data})


def test_pushed_by_skopeo_from_an_oci_layout_bytes_stay_exact(
    tmp_path: Path,
    registry_plain: RegistryServer,
    skopeo: Skopeo,
    unique_repo: str,
    cfg_pkg: tuple[BuiltPackage, Path],
) -> None:
    built, _ = cfg_pkg
    data, blobs = _oci_variant(built)
    layout = tmp_path / "layout"
    write_oci_layout(layout, [LayoutEntry(Descriptor(OCI_MANIFEST, sha(data), len(data)), "v1")], blobs)
    ref = registry_plain.ref(unique_repo, "v1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}", check=True)
    assert raw_manifest(skopeo, ref) == data
    pkg = read_back(ref, tmp_path)
    assert pkg.digest == sha(data)
    assert package_yaml_of(pkg.image) == built.package_yaml
    # no descriptor annotations, but the config labels still name the (unchanged) package layer
    assert [la["package"] for la in pkg.summary()["layers"]] == [True, False]


def test_pushed_by_skopeo_from_the_docker_archive_is_read_by_flattening(
    tmp_path: Path,
    registry_plain: RegistryServer,
    skopeo: Skopeo,
    unique_repo: str,
    cfg_pkg: tuple[BuiltPackage, Path],
) -> None:
    built, xpkg = cfg_pkg
    ref = registry_plain.ref(unique_repo, "v1")
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{xpkg}", f"docker://{ref}", check=True)
    manifest = json.loads(raw_manifest(skopeo, ref))
    built_digests = {d["digest"] for d in json.loads(built.manifest)["layers"]}
    assert len(manifest["layers"]) == 2
    assert not built_digests & {d["digest"] for d in manifest["layers"]}  # recompressed: new digests
    assert all("annotations" not in d for d in manifest["layers"])
    pkg = read_back(ref, tmp_path)
    assert package_yaml_of(pkg.image) == built.package_yaml
    assert pkg.summary()["layers"][0]["package"] is False  # found by the flatten fallback
    assert [d.doc for d in pkg.stream] == [d.doc for d in read_back_file(built, tmp_path).stream]


def read_back_file(built: BuiltPackage, tmp_path: Path) -> Any:
    path = built.write(tmp_path / "again.xpkg")
    return open_package(str(path), cache=ImageCache(tmp_path / "file-cache"))


def test_several_files_make_an_oci_index_with_platforms(
    tmp_path: Path, registry_plain: RegistryServer, skopeo: Skopeo, client: RegistryClient, unique_repo: str
) -> None:
    root = copy_fixture(tmp_path, "function")
    cache = ImageCache(tmp_path / "cache")
    files = []
    for arch in ("amd64", "arm64"):
        tarball = tmp_path / f"rt-{arch}.tar"
        runtime_tarball(tarball, arch=arch, layers=({"usr/bin/fn": f"fn for {arch}".encode()},))
        built = build(root, runtime_image_tarball=tarball, cache=cache)
        files.append(built.write(tmp_path / f"fn-{arch}.xpkg"))
    ref = registry_plain.ref(unique_repo, "v0.1.0")
    result = push_packages(
        files, ref, client=client, cache=cache, annotations={"org.example/built-by": "xplane"}
    )
    raw = raw_manifest(skopeo, ref)
    assert sha(raw) == result.digest
    index = json.loads(raw)
    assert index["mediaType"] == OCI_INDEX and index["annotations"] == {"org.example/built-by": "xplane"}
    assert [m["digest"] for m in index["manifests"]] == result.images
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    for m in index["manifests"]:  # each child pushed by digest, annotated
        child = json.loads(raw_manifest(skopeo, f"{registry_plain.host}/{unique_repo}@{m['digest']}"))
        assert child["layers"][-1]["annotations"] == {KEY: "base"} and "annotations" not in child["layers"][0]
        assert "annotations" not in child  # -a goes on the index only
    arm = read_back(ref, tmp_path, platform="linux/arm64")
    assert arm.digest == result.digest and arm.image.manifest_digest == result.images[1]
    assert arm.image.config["architecture"] == "arm64"
    default = read_back(ref, tmp_path / "default")
    assert default.image.manifest_digest == result.images[0]  # linux/amd64 by default
    assert arm.meta.name == default.meta.name == "function-patch-and-transform"


def test_several_files_without_runtime_base_have_no_platform(
    tmp_path: Path, registry_plain: RegistryServer, skopeo: Skopeo, client: RegistryClient, unique_repo: str
) -> None:
    a = build(copy_fixture(tmp_path, "configuration", "a")).write(tmp_path / "a.xpkg")
    b = build(copy_fixture(tmp_path, "provider", "b")).write(tmp_path / "b.xpkg")
    ref = registry_plain.ref(unique_repo, "v1")
    result = push_packages([a, b], ref, client=client, cache=ImageCache(tmp_path / "cache"))
    index = json.loads(raw_manifest(skopeo, ref))
    assert [m["digest"] for m in index["manifests"]] == result.images
    assert all("platform" not in m for m in index["manifests"])


def test_oci_annotations_go_on_the_manifest_of_a_single_file(
    tmp_path: Path,
    registry_plain: RegistryServer,
    skopeo: Skopeo,
    client: RegistryClient,
    unique_repo: str,
    cfg_pkg: tuple[BuiltPackage, Path],
) -> None:
    _, xpkg = cfg_pkg
    ref = registry_plain.ref(unique_repo, "v1")
    ann = parse_annotations(["org.opencontainers.image.source=https://example.com/x", "empty=", "eq=a=b"])
    push_packages([xpkg], ref, client=client, cache=ImageCache(tmp_path / "cache"), annotations=ann)
    manifest = json.loads(raw_manifest(skopeo, ref))
    assert manifest["annotations"] == {
        "org.opencontainers.image.source": "https://example.com/x",
        "empty": "",
        "eq": "a=b",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("novalue", 'invalid annotation "novalue": must be in key=value format'),
        ("=v", 'invalid annotation "=v": key must not be empty'),
        ("  =v", 'invalid annotation "  =v": key must not be empty'),
    ],
)
def test_bad_annotations_use_upstreams_messages(value: str, message: str) -> None:
    with pytest.raises(PackageError) as e:
        parse_annotations([value])
    assert e.value.message == message


def test_push_without_files_looks_for_exactly_one_xpkg(tmp_path: Path) -> None:
    with pytest.raises(PackageError) as e:
        find_package_files(tmp_path)
    assert str(e.value).startswith("directory does not contain a compiled crossplane package")
    (tmp_path / "a.xpkg").write_bytes(b"x")
    (tmp_path / "not-a-package.tar").write_bytes(b"x")
    assert find_package_files(tmp_path) == [tmp_path / "a.xpkg"]
    (tmp_path / "b.xpkg").write_bytes(b"x")
    with pytest.raises(PackageError) as e:
        find_package_files(tmp_path)
    assert str(e.value).startswith("directory contains multiple compiled crossplane packages")
    assert "a.xpkg,b.xpkg" in (e.value.hint or "")


def test_push_needs_a_fully_qualified_tagged_reference(
    tmp_path: Path, cfg_pkg: tuple[BuiltPackage, Path]
) -> None:
    _, xpkg = cfg_pkg
    c = make_client()
    try:
        for bad in ("just-a-name", "127.0.0.1:5000/repo"):
            with pytest.raises(InvalidReferenceError):
                push_packages([xpkg], bad, client=c, cache=ImageCache(tmp_path / "cache"))
        with pytest.raises(PackageError, match="no package files"):
            push_packages([], "127.0.0.1:5000/repo:v1", client=c)
    finally:
        c.close()


def test_pushed_package_is_available_offline_under_its_reference(
    tmp_path: Path,
    registry_plain: RegistryServer,
    client: RegistryClient,
    unique_repo: str,
    cfg_pkg: tuple[BuiltPackage, Path],
) -> None:
    built, xpkg = cfg_pkg
    cache = ImageCache(tmp_path / "cache")
    ref = registry_plain.ref(unique_repo, "v1")
    result = push_packages([xpkg], ref, client=client, cache=cache)
    pkg = open_package(ref, cache=cache, policy="Never")
    assert pkg.digest == result.digest and package_yaml_of(pkg.image) == built.package_yaml
