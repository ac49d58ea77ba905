"""Interop with skopeo both ways: same digests, byte-identical manifests, readable files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.oci.test_pull import make_client
from tests.support.images import make_test_image, make_test_index
from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo
from xplane.oci.archive import load_archive
from xplane.oci.cache import ImageCache
from xplane.oci.imagepull import pull
from xplane.oci.layout import LayoutEntry, write_docker_archive, write_oci_archive, write_oci_layout
from xplane.oci.models import Descriptor
from xplane.oci.push import push_image


@pytest.fixture
def client() -> Any:
    c = make_client()
    yield c
    c.close()


def test_what_skopeo_pushes_xplane_pulls_with_identical_digests(
    registry_plain: RegistryServer, skopeo: Skopeo, client: Any, unique_repo: str, tmp_path: Path
) -> None:
    idx = make_test_index(tmp_path / "src", name=unique_repo)
    ref = skopeo.push(idx, registry_plain, repository=unique_repo)
    cache = ImageCache(tmp_path / "cache")
    for plat, img in idx.images.items():
        got = pull(ref, cache=cache, client=client, platform=plat)
        assert got.digest == idx.index_digest
        assert got.manifest_digest == img.manifest_digest and got.manifest_bytes() == img.manifest
        assert got.layer_path(0).read_bytes() == img.layer
        assert cache.read_blob(img.config_digest) == img.config
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=True).stdout
    assert raw.encode() == cache.read_blob(idx.index_digest)


def test_what_xplane_pushes_skopeo_reads_byte_for_byte(
    registry_plain: RegistryServer, skopeo: Skopeo, client: Any, unique_repo: str, tmp_path: Path
) -> None:
    img = make_test_image(tmp_path / "src", name=unique_repo, media_types="docker")
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(
        img.archive, registry_plain.ref(unique_repo, "v1"), cache=cache
    )  # synthesised manifest
    digest = push_image(image, image.reference, client=client)
    ref = f"docker://{image.reference}"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", ref, check=True).stdout
    assert raw.encode() == image.manifest_bytes()
    info = json.loads(skopeo("inspect", "--tls-verify=false", ref, check=True).stdout)
    assert info["Digest"] == digest and info["Layers"] == [img.layer_digest]
    out = tmp_path / "copied"
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{out}:v1", check=True)
    # an oci: layout needs OCI media types, so skopeo converts the schema 2 manifest; the blobs stay
    index = json.loads((out / "index.json").read_bytes())
    assert index["manifests"][0]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    blob = out / "blobs" / "sha256" / img.layer_digest.split(":")[1]
    assert blob.read_bytes() == img.layer


def test_skopeo_reads_the_files_xplane_writes(skopeo: Skopeo, tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    load_archive(img.layout, "127.0.0.1:5000/test/pkg:v0.1.0", cache=cache)
    desc = Descriptor(img.manifest_media_type, img.manifest_digest, len(img.manifest))
    layout, archive, docker = tmp_path / "layout", tmp_path / "o.tar", tmp_path / "d.tar"
    write_oci_layout(layout, [LayoutEntry(desc, "v0.1.0")], cache)
    write_oci_archive(archive, [LayoutEntry(desc, "v0.1.0")], cache)
    write_docker_archive(docker, [LayoutEntry(desc, "test/pkg:v0.1.0")], cache)
    for ref in (f"oci:{layout}:v0.1.0", f"oci-archive:{archive}:v0.1.0"):
        info = json.loads(skopeo("inspect", ref, check=True).stdout)
        assert info["Digest"] == img.manifest_digest and info["Layers"] == [img.layer_digest]
    raw = skopeo("inspect", "--raw", f"oci:{layout}:v0.1.0", check=True).stdout
    assert raw.encode() == img.manifest
    info = json.loads(skopeo("inspect", f"docker-archive:{docker}", check=True).stdout)
    assert info["Layers"] == [img.diff_id]  # skopeo names docker-archive layers by diff_id
    # and skopeo's own docker-archive output (uncompressed layers, legacy links) loads back
    back = tmp_path / "skopeo.tar"
    skopeo("copy", f"oci:{layout}:v0.1.0", f"docker-archive:{back}:test/pkg:v0.1.0", check=True)
    loaded = load_archive(back, cache=ImageCache(tmp_path / "c2"))
    assert str(loaded.reference) == "index.docker.io/test/pkg:v0.1.0"
    assert loaded.layers[0].digest == img.diff_id  # stored uncompressed, as skopeo wrote it
