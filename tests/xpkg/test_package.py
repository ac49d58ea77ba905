"""Reading packages from files, layouts and indexes; the summary; the parsed-package cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.images import make_test_image, make_test_index
from tests.xpkg.test_build import build, copy_fixture, runtime_tarball
from xplane.errors import XplaneError
from xplane.oci.archive import load_archive
from xplane.oci.cache import ImageCache
from xplane.xpkg.errors import PackageError, YAMLError
from xplane.xpkg.extract import PackageNotFoundError
from xplane.xpkg.package import open_image, open_package, package_yaml_of, read_image_package
from xplane.xpkg.parsedcache import ParsedCache


def provider_package_yaml(crds: int, fields: int = 400) -> bytes:
    """A provider-shaped package.yaml: a Provider meta object and ``crds`` CRDs with wide schemas."""
    props = "".join(
        f"                    field{i}:\n                      description: synthetic field {i} of a wide schema\n"
        f"                      type: {('string', 'integer', 'boolean')[i % 3]}\n"
        for i in range(fields)
    )
    docs = ["---\napiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-gen\n"]
    for n in range(crds):
        docs.append(
            f"""---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things{n}.gen.example.org
spec:
  group: gen.example.org
  names: {{kind: Thing{n}, plural: things{n}}}
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                forProvider:
                  type: object
                  properties:
{props}"""
        )
    return "".join(docs).encode()


def test_open_an_xpkg_file_and_summarise_it(tmp_path: Path) -> None:
    built = build(copy_fixture(tmp_path, "configuration"))
    path = built.write(tmp_path / "cfg.xpkg")
    pkg = open_package(str(path), cache=ImageCache(tmp_path / "cache"))
    assert pkg.digest == built.digest and pkg.source == str(path)
    assert package_yaml_of(pkg.image) == built.package_yaml
    s = pkg.summary()
    assert (s["apiVersion"], s["kind"], s["name"]) == (
        "meta.pkg.crossplane.io/v1",
        "Configuration",
        "platform-ref-network",
    )
    assert s["digest"] == s["manifestDigest"] == built.digest
    assert s["crossplaneVersion"] == ">=v2.0.0-0"
    assert s["annotations"]["meta.crossplane.io/license"] == "Apache-2.0"
    assert s["dependencies"] == [
        {
            "kind": "Provider",
            "package": "xpkg.crossplane.io/crossplane-contrib/provider-nop",
            "version": ">=v0.2.0",
        },
        {
            "kind": "Function",
            "package": "xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform",
            "version": "sha256:ecc25c121431dfc7058754427f97c034ecde26d4aafa0da16d258090e0443904",
        },
        {
            "kind": "Configuration",
            "package": "xpkg.crossplane.io/example/platform-ref-base",
            "version": "~v1.2",
        },
    ]
    assert s["objects"] == {
        "apiextensions.crossplane.io/v1/CompositeResourceDefinition": 1,
        "apiextensions.crossplane.io/v1/Composition": 1,
        "apiextensions.crossplane.io/v1alpha1/ManagedResourceActivationPolicy": 1,
        "apiextensions.crossplane.io/v2/CompositeResourceDefinition": 1,
        "ops.crossplane.io/v1alpha1/CronOperation": 1,
    }
    assert [(la["annotation"], la["package"]) for la in s["layers"]] == [("base", True), ("upbound", False)]
    assert pkg.meta_document.doc["kind"] == "Configuration" and len(pkg.objects) == 5


def test_function_summary_has_default_capabilities(tmp_path: Path) -> None:
    built = build(copy_fixture(tmp_path, "function"))
    pkg = open_package(str(built.write(tmp_path / "fn.xpkg")), cache=ImageCache(tmp_path / "cache"))
    assert pkg.summary()["capabilities"] == list(pkg.meta.effective_capabilities)
    assert pkg.summary()["kind"] == "Function"


def test_a_package_on_a_runtime_image_is_read_from_its_labelled_layer(tmp_path: Path) -> None:
    tarball = tmp_path / "rt.tar"
    runtime_tarball(tarball, layers=({"package.yaml": b"not: this\n"}, {"bin/fn": b"x"}))  # a decoy
    cache = ImageCache(tmp_path / "cache")
    built = build(copy_fixture(tmp_path, "function"), runtime_image_tarball=tarball, cache=cache)
    pkg = open_package(str(built.write(tmp_path / "fn.xpkg")), cache=cache)
    assert package_yaml_of(pkg.image) == built.package_yaml
    assert [la["package"] for la in pkg.summary()["layers"]] == [False, False, True]


def test_an_oci_layout_directory_and_a_moved_file(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    from_layout = open_package(str(img.layout), cache=cache)
    from_archive = open_package(str(img.archive), cache=cache)
    assert from_layout.digest == img.manifest_digest
    assert package_yaml_of(from_layout.image) == package_yaml_of(from_archive.image) == img.package_yaml
    assert from_layout.meta.name == "test-pkg" and from_layout.objects == ()


def test_index_platform_selection_from_a_layout(tmp_path: Path) -> None:
    idx = make_test_index(tmp_path, platforms=("linux/amd64", "linux/arm64", "linux/arm/v7"))
    index_json = idx.layout / "index.json"  # keep only the index's tag, so the layout holds one image
    top = json.loads(index_json.read_text())
    top["manifests"] = [m for m in top["manifests"] if m["digest"] == idx.index_digest]
    index_json.write_text(json.dumps(top))
    cache = ImageCache(tmp_path / "cache")
    default = open_image(str(idx.layout), cache=cache)
    assert default.digest == idx.index_digest
    assert default.manifest_digest == idx.images["linux/amd64"].manifest_digest
    for plat in ("linux/arm64", "linux/arm/v7"):
        img = open_image(str(idx.layout), cache=cache, platform=plat)
        assert img.manifest_digest == idx.images[plat].manifest_digest, plat
        assert img.digest == idx.index_digest
    # the first read is cached per platform: asking again gives the same answers
    assert open_image(str(idx.layout), cache=cache).manifest_digest == default.manifest_digest
    pkg = open_package(str(idx.layout), cache=cache, platform="linux/arm64")
    assert pkg.image.manifest_digest == idx.images["linux/arm64"].manifest_digest
    with pytest.raises(Exception, match="(?i)platform"):
        open_image(str(idx.layout), cache=cache, platform="windows/amd64")


@pytest.mark.parametrize(
    ("package_yaml", "message"),
    [
        (
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a}\n",
            "0 found",
        ),
        (
            "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata: {name: a}\n---\n"
            "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata: {name: b}\n",
            "2 found",
        ),
    ],
)
def test_not_exactly_one_meta_in_a_package(tmp_path: Path, package_yaml: str, message: str) -> None:
    img = make_test_image(tmp_path / "src", package_yaml=package_yaml)
    with pytest.raises(PackageError, match=f"not exactly one package meta type \\({message}"):
        open_package(str(img.archive), cache=ImageCache(tmp_path / "cache"))


def test_bad_yaml_in_a_package_is_located_in_package_yaml(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src", package_yaml="apiVersion: v1\nkind: X\n---\na: [\n")
    with pytest.raises(YAMLError) as e:
        open_package(str(img.archive), cache=ImageCache(tmp_path / "cache"))
    assert e.value.file == "package.yaml" and e.value.line in (4, 5)  # libyaml points at the missing node


def test_an_image_without_package_yaml(tmp_path: Path) -> None:
    tarball = tmp_path / "rt.tar"
    runtime_tarball(tarball)
    with pytest.raises(PackageNotFoundError, match="package.yaml not found in package"):
        open_package(str(tarball), cache=ImageCache(tmp_path / "cache"))


def test_a_reference_not_in_the_cache_with_policy_never(tmp_path: Path) -> None:
    with pytest.raises(XplaneError) as e:  # the cache miss, from xplane.oci
        open_package("registry.example.com/x/y:v1", cache=ImageCache(tmp_path / "cache"), policy="Never")
    assert "registry.example.com/x/y:v1" in str(e.value)


# --- the parsed-package cache ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider_yaml() -> bytes:
    return provider_package_yaml(40)


def test_second_read_comes_from_the_parsed_cache(tmp_path: Path, provider_yaml: bytes) -> None:
    assert len(provider_yaml) > 2_000_000
    img = make_test_image(tmp_path / "src", package_yaml=provider_yaml)
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.archive, "example.org/x/provider:v1", cache=cache)
    parsed = ParsedCache(cache.root / "parsed")
    assert parsed.get(image.manifest_digest) is None
    first = read_image_package(image)
    assert parsed.path(image.manifest_digest).exists()
    # the cache hit does not touch the layer at all: remove it and read again
    os.unlink(image.layer_path(0))
    second = read_image_package(image)
    assert second.stream == first.stream and second.meta == first.meta
    assert len(second.objects) == 40
    # How much faster the second read is, is the benchmark's business (bench/run.py parse).


def test_a_damaged_parsed_cache_entry_is_reparsed(tmp_path: Path) -> None:
    img = make_test_image(tmp_path / "src")
    cache = ImageCache(tmp_path / "cache")
    image = load_archive(img.archive, "example.org/x/p:v1", cache=cache)
    first = read_image_package(image)
    entry = ParsedCache(cache.root / "parsed").path(image.manifest_digest)
    entry.write_bytes(b"garbage")
    assert read_image_package(image).stream == first.stream


def test_a_layout_with_several_images_needs_a_name(tmp_path: Path) -> None:
    idx = make_test_index(tmp_path, platforms=("linux/amd64", "linux/arm64"))
    cache = ImageCache(tmp_path / "cache")
    with pytest.raises(XplaneError, match="(?i)choose"):
        open_image(str(idx.layout), cache=cache)
    img = open_image(
        str(idx.layout), cache=cache, image_name="example.org/test/pkg:multi", platform="linux/arm64"
    )
    assert img.digest == idx.index_digest
    assert img.manifest_digest == idx.images["linux/arm64"].manifest_digest
    pkg = open_package(str(idx.layout), cache=cache, image_name="example.org/test/pkg:multi")
    assert pkg.image.manifest_digest == idx.images["linux/amd64"].manifest_digest


def test_a_name_is_only_for_files(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="--ref only picks an image inside an archive"):
        open_image("registry.example.com/x/y:v1", cache=ImageCache(tmp_path / "c"), image_name="x:v1")
