"""Media types, descriptors, platforms, manifest/index parsing and platform selection."""

from __future__ import annotations

import json

import pytest

from xplane.oci.errors import ManifestError
from xplane.oci.models import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    Platform,
    compute_digest,
    parse_manifest,
    select_platform,
    sha256_digest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _image(media_type: str | None = OCI_MANIFEST) -> dict[str, object]:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": D2,
                "size": 20,
                "annotations": {"io.crossplane.xpkg": "base"},
            }
        ],
    }
    if media_type:
        doc["mediaType"] = media_type
    return doc


def _child(digest: str, platform: dict[str, str] | None) -> dict[str, object]:
    d: dict[str, object] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 5}
    if platform is not None:
        d["platform"] = platform
    return d


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("windows/amd64", Platform("windows", "amd64")),
    ],
)
def test_platform_parse(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected
    assert str(Platform.parse(text)) == text


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d", ""])
def test_platform_parse_rejects(text: str) -> None:
    with pytest.raises(ManifestError, match="invalid platform"):
        Platform.parse(text)


# (offered, wanted, satisfies)
PLATFORM_MATCHES = [
    ("linux/amd64", "linux/amd64", True),
    ("linux/arm64", "linux/amd64", False),
    ("darwin/amd64", "linux/amd64", False),
    ("linux/arm64/v8", "linux/arm64", True),  # no variant wanted: any variant
    ("linux/arm64", "linux/arm64/v8", True),  # arm64 without variant means v8
    ("linux/arm/v6", "linux/arm/v7", False),
    ("linux/arm", "linux/arm/v7", True),
]


@pytest.mark.parametrize(("offered", "wanted", "ok"), PLATFORM_MATCHES)
def test_platform_satisfies(offered: str, wanted: str, ok: bool) -> None:
    assert Platform.parse(offered).satisfies(Platform.parse(wanted)) is ok


def test_descriptor_round_trip() -> None:
    raw = {
        "mediaType": OCI_MANIFEST,
        "digest": D1,
        "size": 42,
        "urls": ["https://example.com/x"],
        "annotations": {"a": "b"},
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    }
    d = Descriptor.from_json(raw)
    assert d.platform == Platform("linux", "arm64", "v8")
    assert d.urls == ("https://example.com/x",)
    assert d.to_json() == raw
    assert Descriptor(OCI_MANIFEST, D1, 1).to_json() == {"mediaType": OCI_MANIFEST, "digest": D1, "size": 1}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mediaType": OCI_MANIFEST, "size": 1}, "bad digest"),
        ({"mediaType": OCI_MANIFEST, "digest": "nothex", "size": 1}, "bad digest"),
        ({"mediaType": OCI_MANIFEST, "digest": D1}, "bad size"),
        ({"mediaType": OCI_MANIFEST, "digest": D1, "size": -1}, "bad size"),
        ({"mediaType": OCI_MANIFEST, "digest": D1, "size": True}, "bad size"),
        ({"mediaType": OCI_MANIFEST, "digest": D1, "size": 1, "annotations": []}, "annotations"),
    ],
)
def test_descriptor_rejects(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Descriptor.from_json(raw)


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_parse_image_manifest(media_type: str) -> None:
    m = parse_manifest(json.dumps(_image(media_type)).encode())
    assert isinstance(m, Manifest)
    assert m.media_type == media_type
    assert m.config.digest == D1
    assert [layer.digest for layer in m.layers] == [D2]
    assert m.layers[0].annotations == {"io.crossplane.xpkg": "base"}


def test_parse_manifest_without_media_type_uses_content_type_then_shape() -> None:
    data = json.dumps(_image(None)).encode()
    m1 = parse_manifest(data, DOCKER_MANIFEST + "; charset=utf-8")
    assert m1.media_type == DOCKER_MANIFEST
    m2 = parse_manifest(data, "application/octet-stream")
    assert m2.media_type == OCI_MANIFEST
    idx = parse_manifest(json.dumps({"schemaVersion": 2, "manifests": []}).encode())
    assert isinstance(idx, Index) and idx.media_type == OCI_INDEX


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "schema 1"),
        (json.dumps({"mediaType": "application/x-weird"}).encode(), "unsupported manifest media type"),
        (json.dumps({"mediaType": OCI_MANIFEST, "layers": []}).encode(), "needs 'config'"),
        (json.dumps({"mediaType": OCI_INDEX}).encode(), "'manifests' list"),
    ],
)
def test_parse_manifest_rejects(data: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(data)


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_index_select(media_type: str) -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            _child(D1, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
            _child(D2, {"os": "linux", "architecture": "amd64"}),
        ],
    }
    idx = parse_manifest(json.dumps(doc).encode())
    assert isinstance(idx, Index)
    assert idx.select().digest == D2
    assert idx.select(Platform.parse("linux/arm64")).digest == D1
    with pytest.raises(
        ManifestError, match=r"no image for platform linux/s390x.*linux/amd64, linux/arm64/v8"
    ):
        idx.select(Platform.parse("linux/s390x"))


def test_child_without_platform_counts_as_linux_amd64() -> None:
    children = [Descriptor.from_json(_child(D3, None))]
    assert select_platform(children, Platform()).digest == D3
    with pytest.raises(ManifestError):
        select_platform(children, Platform.parse("linux/arm64"))


def test_accept_lists_all_four_types() -> None:
    assert set(MANIFEST_TYPES) == {OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST}


def test_digests() -> None:
    assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert compute_digest(b"", "sha512:").startswith("sha512:cf83e135")
    with pytest.raises(ManifestError, match="unsupported digest algorithm"):
        compute_digest(b"", "md5:")
