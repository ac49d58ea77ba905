"""Pushing from the cache, from archives and as an index, against a real docker-registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.oci.test_pull import make_client
from tests.support.images import make_test_image, make_test_index
from tests.support.registry import RegistryServer
from xplane.oci.archive import load_archive
from xplane.oci.cache import ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.errors import OCIError
from xplane.oci.imagepull import pull
from xplane.oci.models import OCI_INDEX
from xplane.oci.push import PushProgress, push_archive, push_image, push_index
from xplane.oci.reference import Reference


@pytest.fixture
def client() -> Any:
    c = make_client()
    yield c
    c.close()


class Recorder(PushProgress):
    def __init__(self) -> None:
        self.manifests: list[str] = []
        self.blobs: list[str] = []

    def blob_done(self, descriptor: Any) -> None:
        self.blobs.append(descriptor.digest)

    def manifest_pushed(self, ref: Reference, digest: str) -> None:
        self.manifests.append(digest)


def test_push_cached_image_keeps_manifest_bytes(
    registry_plain: RegistryServer, client: RegistryClient, unique_repo: str, tmp_path: Path
) -> None:
    img = make_test_image(tmp_path / "src", name=unique_repo)
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.layout, registry_plain.ref(unique_repo, "v0.1.0"), cache=cache)
    rec = Recorder()
    digest = push_image(image, registry_plain.ref(unique_repo, "v1"), client=client, progress=rec)
    assert digest == img.manifest_digest and rec.manifests == [digest]
    assert sorted(rec.blobs) == sorted([img.config_digest, img.layer_digest])
    data, desc = client.get_manifest(Reference.parse(registry_plain.ref(unique_repo, "v1")))
    assert data == img.manifest and desc.digest == digest
    # pulled back into a fresh cache: identical
    back = pull(registry_plain.ref(unique_repo, "v1"), cache=ImageCache(tmp_path / "c2"), client=client)
    assert back.digest == digest and back.layer_path(0).read_bytes() == img.layer


def test_push_archive_then_pull_gives_the_same_digest(
    registry_plain: RegistryServer, client: RegistryClient, unique_repo: str, tmp_path: Path
) -> None:
    img = make_test_image(tmp_path / "src", name=unique_repo, media_types="docker")
    ref = registry_plain.ref(unique_repo, "v2")
    digest = push_archive(img.archive, ref, cache=ImageCache(tmp_path / "cache"), client=client)
    back = pull(ref, cache=ImageCache(tmp_path / "c2"), client=client)
    assert back.digest == digest
    assert [layer.digest for layer in back.layers] == [img.layer_digest]


def test_push_index_of_several_images(
    registry_plain: RegistryServer, client: RegistryClient, unique_repo: str, tmp_path: Path
) -> None:
    cache = ImageCache(tmp_path / "cache")
    amd = make_test_image(
        tmp_path,
        name=unique_repo,
        tag="a",
        platform="linux/amd64",
        archive=tmp_path / "a.tar",
        layout=tmp_path / "la",
        package_yaml="a: 1\n",
    )
    arm = make_test_image(
        tmp_path,
        name=unique_repo,
        tag="b",
        platform="linux/arm64",
        archive=tmp_path / "b.tar",
        layout=tmp_path / "lb",
        package_yaml="b: 1\n",
    )
    images = [load_archive(i.layout, registry_plain.ref(unique_repo, i.tag), cache=cache) for i in (amd, arm)]
    ref = registry_plain.ref(unique_repo, "multi")
    digest = push_index(images, ref, client=client, annotations={"org.example": "yes"})
    data, _ = client.get_manifest(Reference.parse(ref))
    doc = json.loads(data)
    assert doc["mediaType"] == OCI_INDEX and doc["annotations"] == {"org.example": "yes"}
    assert [(m["digest"], m["platform"]["architecture"]) for m in doc["manifests"]] == [
        (amd.manifest_digest, "amd64"),
        (arm.manifest_digest, "arm64"),
    ]
    fresh = ImageCache(tmp_path / "c2")
    got = pull(ref, cache=fresh, client=client, platform="linux/arm64")
    assert got.digest == digest and got.manifest_digest == arm.manifest_digest
    assert cache.resolve_tag(Reference.parse(ref)) == digest


def test_push_multi_platform_image_needs_every_platform(
    registry_plain: RegistryServer, client: RegistryClient, unique_repo: str, tmp_path: Path
) -> None:
    idx = make_test_index(tmp_path / "src", name=unique_repo)
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(idx.layout, registry_plain.ref(unique_repo, idx.tag), cache=cache)
    digest = push_image(image, registry_plain.ref(unique_repo, "copy"), client=client)
    assert digest == idx.index_digest
    # drop one platform from the cache: the index can no longer be pushed whole
    arm = idx.images["linux/arm64"]
    cache.blob_path(arm.layer_digest).unlink()
    with pytest.raises(OCIError, match="linux/arm64"):
        push_image(image, registry_plain.ref(unique_repo, "copy2"), client=client)
