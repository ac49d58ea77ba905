"""Small, deterministic xpkg-shaped images for tests, written without any container tool.

:func:`make_test_image` writes an OCI image layout (``skopeo copy oci:DIR:TAG ...``) and a
``docker save``-style tarball (``docker-archive:FILE``) holding one gzip layer with a
``package.yaml``; the layer descriptor carries ``io.crossplane.xpkg: base`` and the config the
label ``io.crossplane.xpkg:<layer digest>: base`` (spec packages §1.2). Same inputs, same bytes.
:func:`make_test_index` writes a multi-platform OCI index. Copying from the OCI layout keeps
digests exactly; copying from the docker archive does not (skopeo re-compresses, spec §2.2).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
XPKG_ANNOTATION = "io.crossplane.xpkg"
REF_NAME = "org.opencontainers.image.ref.name"

DEFAULT_PACKAGE_YAML = """\
apiVersion: meta.pkg.crossplane.io/v1
kind: Configuration
metadata:
  name: test-pkg
spec:
  crossplane:
    version: ">=v1.14.0"
"""


@dataclass(frozen=True)
class TestImage:
    """What :func:`make_test_image` wrote: paths, skopeo refs, and every blob with its digest."""

    __test__ = False  # not a pytest test class

    name: str  # repository, e.g. "test/pkg"
    tag: str
    layout: Path  # OCI image layout directory
    archive: Path  # docker-save tarball
    manifest: bytes
    manifest_digest: str
    manifest_media_type: str
    config: bytes
    config_digest: str
    layer: bytes  # the gzip layer blob
    layer_digest: str
    diff_id: str  # sha256 of the uncompressed layer tar
    package_yaml: bytes

    @property
    def oci_ref(self) -> str:
        """``oci:LAYOUT:TAG`` for skopeo."""
        return f"oci:{self.layout}:{self.tag}"

    @property
    def archive_ref(self) -> str:
        """``docker-archive:FILE`` for skopeo."""
        return f"docker-archive:{self.archive}"

    @property
    def blobs(self) -> dict[str, bytes]:
        """digest -> bytes of config and layer."""
        return {self.config_digest: self.config, self.layer_digest: self.layer}


@dataclass(frozen=True)
class TestIndex:
    """What :func:`make_test_index` wrote: an OCI layout whose tag points at an image index."""

    __test__ = False

    layout: Path
    tag: str
    index: bytes
    index_digest: str
    images: Mapping[str, TestImage]  # platform "os/arch[/variant]" -> image (its manifest is in the layout)

    @property
    def oci_ref(self) -> str:
        """``oci:LAYOUT:TAG`` for skopeo (copy with ``--all`` to push every platform)."""
        return f"oci:{self.layout}:{self.tag}"


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Compact, key-ordered-as-given JSON bytes (stable for the same input)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def layer_tar(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed tar with regular files (mode 0644, uid/gid 0, mtime 0), sorted by name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_blob(layout: Path, data: bytes) -> str:
    digest = sha256(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _add_to_index(layout: Path, descriptor: dict[str, Any], tag: str) -> None:
    """Add ``descriptor`` to ``index.json`` under ref name ``tag`` (replacing that tag)."""
    (layout / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    index_path = layout / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if index_path.exists():
        index = json.loads(index_path.read_bytes())
    index["manifests"] = [
        m for m in index.get("manifests", []) if m.get("annotations", {}).get(REF_NAME) != tag
    ] + [{**descriptor, "annotations": {REF_NAME: tag}}]
    index_path.write_bytes(canonical_json(index))


def _build(
    *,
    package_yaml: bytes,
    extra_files: Mapping[str, bytes],
    media_types: str,
    annotate: bool,
    platform: str,
) -> tuple[bytes, bytes, bytes, str, str]:
    """(manifest, config, layer, layer_digest, diff_id)."""
    tar = layer_tar({"package.yaml": package_yaml, **extra_files})
    layer = gzip.compress(tar, compresslevel=6, mtime=0)
    layer_digest, diff_id = sha256(layer), sha256(tar)
    os_, arch, *variant = platform.split("/")
    config_obj: dict[str, Any] = {"architecture": arch, "os": os_}
    if variant:
        config_obj["variant"] = variant[0]
    config_obj["config"] = {"Labels": {f"{XPKG_ANNOTATION}:{layer_digest}": "base"} if annotate else {}}
    config_obj["rootfs"] = {"type": "layers", "diff_ids": [diff_id]}
    config = canonical_json(config_obj)
    docker = media_types == "docker"
    layer_desc: dict[str, Any] = {
        "mediaType": DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP,
        "size": len(layer),
        "digest": layer_digest,
    }
    if annotate:
        layer_desc["annotations"] = {XPKG_ANNOTATION: "base"}
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                "size": len(config),
                "digest": sha256(config),
            },
            "layers": [layer_desc],
        }
    )
    return manifest, config, layer, layer_digest, diff_id


def _write_archive(path: Path, *, config: bytes, layer: bytes, repo_tags: Sequence[str] | None) -> None:
    config_name = sha256(config).split(":", 1)[1] + ".json"
    layer_name = sha256(layer).split(":", 1)[1] + ".tar.gz"
    manifest = canonical_json(
        [{"Config": config_name, "RepoTags": list(repo_tags) if repo_tags else None, "Layers": [layer_name]}]
    )
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in ((config_name, config), (layer_name, layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))


def make_test_image(
    tmp_path: Path,
    *,
    name: str = "test/pkg",
    tag: str = "v0.1.0",
    package_yaml: str | bytes = DEFAULT_PACKAGE_YAML,
    extra_files: Mapping[str, bytes] | None = None,
    media_types: str = "oci",
    annotate: bool = True,
    platform: str = "linux/amd64",
    layout: Path | None = None,
    archive: Path | None = None,
) -> TestImage:
    """Write an xpkg-shaped image as an OCI layout and a docker-save tarball under ``tmp_path``.

    ``media_types`` is ``"oci"`` or ``"docker"`` (schema 2, like ``crossplane xpkg build``).
    ``layout`` may name an existing layout to add this tag to. Vary ``package_yaml`` (or
    ``extra_files``) to get different digests.
    """
    if media_types not in ("oci", "docker"):
        raise ValueError("media_types must be 'oci' or 'docker'")
    pkg = package_yaml.encode() if isinstance(package_yaml, str) else package_yaml
    manifest, config, layer, layer_digest, diff_id = _build(
        package_yaml=pkg,
        extra_files=extra_files or {},
        media_types=media_types,
        annotate=annotate,
        platform=platform,
    )
    layout = layout or tmp_path / "oci-layout"
    for blob in (config, layer):
        _write_blob(layout, blob)
    manifest_digest = _write_blob(layout, manifest)
    media_type = DOCKER_MANIFEST if media_types == "docker" else OCI_MANIFEST
    _add_to_index(layout, {"mediaType": media_type, "digest": manifest_digest, "size": len(manifest)}, tag)
    archive = archive or tmp_path / "image.tar"
    _write_archive(archive, config=config, layer=layer, repo_tags=[f"{name}:{tag}"])
    return TestImage(
        name=name,
        tag=tag,
        layout=layout,
        archive=archive,
        manifest=manifest,
        manifest_digest=manifest_digest,
        manifest_media_type=media_type,
        config=config,
        config_digest=sha256(config),
        layer=layer,
        layer_digest=layer_digest,
        diff_id=diff_id,
        package_yaml=pkg,
    )


def make_test_index(
    tmp_path: Path,
    *,
    name: str = "test/pkg",
    tag: str = "multi",
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
    package_yaml: str | bytes = DEFAULT_PACKAGE_YAML,
) -> TestIndex:
    """Write an OCI layout whose ``tag`` is an image index with one xpkg image per platform.

    Each platform's layer also holds a ``platform`` file, so every child has its own digest.
    """
    layout = tmp_path / "oci-index"
    images: dict[str, TestImage] = {}
    descriptors: list[dict[str, Any]] = []
    for plat in platforms:
        safe = plat.replace("/", "-")
        img = make_test_image(
            tmp_path,
            name=name,
            tag=f"{tag}-{safe}",
            package_yaml=package_yaml,
            platform=plat,
            extra_files={"platform": plat.encode()},
            layout=layout,
            archive=tmp_path / f"{safe}.tar",
        )
        images[plat] = img
        os_, arch, *variant = plat.split("/")
        p: dict[str, str] = {"architecture": arch, "os": os_}
        if variant:
            p["variant"] = variant[0]
        descriptors.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": img.manifest_digest,
                "size": len(img.manifest),
                "platform": p,
            }
        )
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
    index_digest = _write_blob(layout, index)
    _add_to_index(layout, {"mediaType": OCI_INDEX, "digest": index_digest, "size": len(index)}, tag)
    return TestIndex(layout=layout, tag=tag, index=index, index_digest=index_digest, images=images)
