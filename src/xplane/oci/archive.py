"""Loading images from files into the cache: ``docker save``/``podman save``/``.xpkg`` tarballs,
OCI image layout directories and OCI archives (a tar of a layout), the ``kind load`` case.

Archives are untrusted input. Nothing is extracted to disk: members are streamed straight into
the cache, where every blob is hashed and checked against its digest before it is renamed into
place. Before anything is read, every member is checked (:mod:`xplane.oci.archivesource`); absolute
names, ``..``, links that leave the archive, device files, oversized members and tar bombs are
refused with :class:`ArchiveError`.

``docker save`` tarballs hold no manifest, so one is made: Docker schema 2, compact JSON in
go-containerregistry's field order, layers as stored (gzip, or uncompressed as in the
``<id>/layer.tar`` legacy form and skopeo's ``<diffid>.tar``). Layer contents are checked against
the config's ``rootfs.diff_ids``.
"""

from __future__ import annotations

import json
import os
import posixpath
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xplane.oci.archivesource import ArchiveLimits, DirSource, SafeTar, Source
from xplane.oci.cache import ImageCache
from xplane.oci.errors import ArchiveError, DigestMismatchError, InvalidReferenceError, ManifestError
from xplane.oci.models import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_LAYER_ZSTD,
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_manifest,
    sha256_digest,
)
from xplane.oci.pull import Image, image_from_cache
from xplane.oci.reference import Digest, Reference

DOCKER_LAYER_UNCOMPRESSED = "application/vnd.docker.image.rootfs.diff.tar"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
_CHUNK = 1 << 20
UNNAMED_IMAGE = "xplane.local/unnamed"
"""The name of an image loaded without recording it (``record=False``) from an archive that names none."""


def _blob_name(digest: str) -> str:
    d = Digest.parse(digest)
    return f"blobs/{d.algorithm}/{d.hex}"


def _json(src: Source, name: str) -> Any:
    try:
        return json.loads(src.read_json_bytes(name))
    except (ValueError, UnicodeDecodeError) as e:
        raise ArchiveError(f"{src.label}: {name} is not valid JSON ({e})") from None


def _copy_blob(src: Source, cache: ImageCache, desc: Descriptor, name: str | None = None) -> None:
    """Stream one blob into the cache, verified against ``desc`` (digest and size)."""
    if cache.blob_size(desc.digest) == desc.size:
        return
    name = name or _blob_name(desc.digest)
    if not src.has(name):
        raise ArchiveError(f"{src.label}: blob {desc.digest} is missing (no {name})")
    if src.size(name) != desc.size:
        raise ArchiveError(
            f"{src.label}: blob {desc.digest} is {src.size(name)} bytes, but its descriptor says {desc.size}"
        )
    with cache.blob_lock(desc.digest):
        try:
            with src.open(name) as f:
                cache.write_blob(desc.digest, f, size=desc.size)
        except DigestMismatchError as e:
            raise ArchiveError(f"{src.label}: blob {name} does not match its digest {desc.digest}") from e


def _copy_manifest(src: Source, cache: ImageCache, desc: Descriptor) -> Manifest | Index:
    name = _blob_name(desc.digest)
    if not src.has(name):
        raise ArchiveError(f"{src.label}: manifest {desc.digest} is missing (no {name})")
    data = src.read_json_bytes(name)
    if sha256_digest(data) != desc.digest or len(data) != desc.size:
        raise ArchiveError(f"{src.label}: manifest {name} does not match its descriptor ({desc.digest})")
    try:
        parsed = parse_manifest(data, desc.media_type)
    except ManifestError as e:
        raise ArchiveError(f"{src.label}: manifest {desc.digest}: {e.message}") from None
    cache.write_blob(desc.digest, data)
    return parsed


def _copy_image(src: Source, cache: ImageCache, manifest: Manifest) -> None:
    _copy_blob(src, cache, manifest.config)
    for layer in manifest.layers:
        if not layer.urls:
            _copy_blob(src, cache, layer)


def _same_image(candidate: str, ref: Reference) -> bool:
    try:
        other = Reference.parse(candidate)
    except InvalidReferenceError:
        return False
    return other.name == ref.name and other.effective_tag == ref.effective_tag


def _choose_oci(index: Index, ref: Reference | None, label: str) -> tuple[Descriptor, Reference | None]:
    entries = list(index.manifests)
    if not entries:
        raise ArchiveError(f"{label}: index.json lists no images")

    def names(d: Descriptor) -> list[str]:
        return [v for k in (REF_NAME_ANNOTATION, CONTAINERD_NAME_ANNOTATION) if (v := d.annotations.get(k))]

    if ref is not None:
        for d in entries:
            if ref.digest and d.digest == ref.digest:
                return d, None
            for n in names(d):
                if (ref.tag and n == ref.tag) or _same_image(n, ref):
                    return d, None
    if len(entries) == 1:
        chosen = entries[0]
    else:
        offered = ", ".join(n for d in entries for n in names(d)[:1]) or f"{len(entries)} unnamed images"
        raise ArchiveError(
            f"{label}: the layout holds several images ({offered}); choose one",
            hint="pass --ref with the tag of the one to load (its org.opencontainers.image.ref.name)",
        )
    derived = None
    for n in names(chosen):
        if "/" in n:
            try:
                derived = Reference.parse(n)
                break
            except InvalidReferenceError:
                continue
    return chosen, derived


def _import_oci(
    src: Source, cache: ImageCache, ref: Reference | None, platform: Platform | None
) -> tuple[str, Reference | None]:
    try:
        index = Index.from_json(_json(src, "index.json"), OCI_INDEX)
    except ManifestError as e:
        raise ArchiveError(f"{src.label}: index.json: {e.message}") from None
    top, derived = _choose_oci(index, ref, src.label)
    parsed = _copy_manifest(src, cache, top)
    if isinstance(parsed, Manifest):
        _copy_image(src, cache, parsed)
        return top.digest, derived
    try:
        wanted = parsed.select(platform)
    except ManifestError as e:
        raise ArchiveError(f"{src.label}: {e.message}", hint=e.hint) from None
    for child in parsed.manifests:
        if child.media_type in INDEX_TYPES:
            continue
        if child.digest != wanted.digest and not src.has(_blob_name(child.digest)):
            continue  # layouts may hold only some platforms (skopeo copy without --all)
        sub = _copy_manifest(src, cache, child)
        if isinstance(sub, Manifest):
            _copy_image(src, cache, sub)
    return top.digest, derived


def _layer_media_type(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return DOCKER_LAYER
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return OCI_LAYER_ZSTD
    return DOCKER_LAYER_UNCOMPRESSED


def _named_hex(name: str) -> str | None:
    """The digest hex a docker-save member name carries (``sha256:<hex>``, ``<hex>.json``,
    ``<hex>.tar[.gz]``, ``blobs/sha256/<hex>``), or None (``<id>/layer.tar``)."""
    base = posixpath.basename(name)
    for prefix in ("sha256:",):
        base = base.removeprefix(prefix)
    for suffix in (".json", ".tar.gz", ".tgz", ".tar.zst", ".tar"):
        base = base.removesuffix(suffix)
    if len(base) == 64 and all(c in "0123456789abcdef" for c in base):
        return base
    return None


def _import_docker_layer(src: Source, cache: ImageCache, name: str, diff_id: str | None) -> Descriptor:
    if not src.has(name):
        raise ArchiveError(f"{src.label}: layer {name!r} named in manifest.json is missing")
    with src.open(name) as f:
        head = f.read(4)
        media_type = _layer_media_type(head)
        inflater = zlib.decompressobj(wbits=31) if media_type == DOCKER_LAYER else None
        diff_hash = sha256_hasher() if media_type != OCI_LAYER_ZSTD else None
        try:
            with cache.temp_blob() as w:
                chunk = head
                while chunk:
                    w.write(chunk)
                    if diff_hash is not None:
                        diff_hash.update(inflater.decompress(chunk) if inflater is not None else chunk)
                    chunk = f.read(_CHUNK)
                _check_docker_layer(
                    src.label, name, media_type, "sha256:" + w.hash.hexdigest(), diff_hash, diff_id
                )
        except zlib.error as e:
            raise ArchiveError(f"{src.label}: layer {name!r} is not valid gzip ({e})") from None
    assert w.digest is not None
    return Descriptor(media_type=media_type, digest=w.digest, size=w.size)


def _check_docker_layer(
    label: str, name: str, media_type: str, digest: str, diff_hash: Any, diff_id: str | None
) -> None:
    """Checked before the blob is committed, so a tampered layer never enters the cache."""
    want_hex = _named_hex(name)
    if want_hex is not None and media_type == DOCKER_LAYER and digest != f"sha256:{want_hex}":
        raise ArchiveError(f"{label}: layer {name!r} does not match the digest in its name ({digest})")
    if diff_hash is not None and diff_id is not None and f"sha256:{diff_hash.hexdigest()}" != diff_id:
        raise ArchiveError(
            f"{label}: layer {name!r} does not match the config's diff_id {diff_id}",
            hint="the archive is corrupt or was tampered with",
        )


def sha256_hasher() -> Any:
    """A fresh sha256 hasher."""
    import hashlib

    return hashlib.sha256()


def docker_manifest_bytes(config: Descriptor, layers: Sequence[Descriptor]) -> bytes:
    """A Docker schema 2 manifest as go-containerregistry marshals it (compact, its field order)."""

    def desc(d: Descriptor) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": d.media_type, "size": d.size, "digest": d.digest}
        if d.urls:
            out["urls"] = list(d.urls)
        if d.annotations:
            out["annotations"] = dict(d.annotations)
        return out

    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": desc(config),
        "layers": [desc(d) for d in layers],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _import_docker(src: Source, cache: ImageCache, ref: Reference | None) -> tuple[str, Reference | None]:
    entries = _json(src, "manifest.json")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, Mapping) for e in entries):
        raise ArchiveError(f"{src.label}: manifest.json must be a non-empty list of images")
    chosen: Mapping[str, Any] | None = None
    if ref is not None:
        for e in entries:
            if any(_same_image(t, ref) for t in e.get("RepoTags") or ()):
                chosen = e
                break
    if chosen is None:
        if len(entries) > 1:
            tags = ", ".join(str(t) for e in entries for t in (e.get("RepoTags") or ())[:1])
            raise ArchiveError(
                f"{src.label}: the archive holds {len(entries)} images ({tags or 'untagged'}); choose one",
                hint="pass --ref with one of the archive's RepoTags",
            )
        chosen = entries[0]
    config_name, layer_names = chosen.get("Config"), chosen.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise ArchiveError(f"{src.label}: manifest.json entry needs 'Config' and 'Layers'")
    config_bytes = src.read_json_bytes(config_name)
    config_digest = sha256_digest(config_bytes)
    want = _named_hex(config_name)
    if want is not None and config_digest != f"sha256:{want}":
        raise ArchiveError(f"{src.label}: config {config_name!r} does not match the digest in its name")
    try:
        config = json.loads(config_bytes)
    except ValueError as e:
        raise ArchiveError(f"{src.label}: config {config_name!r} is not valid JSON ({e})") from None
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
        raise ArchiveError(
            f"{src.label}: config lists {len(diff_ids or [])} diff_ids but manifest.json {len(layer_names)} layers"
        )
    layers = [
        _import_docker_layer(src, cache, str(name), str(diff_id))
        for name, diff_id in zip(layer_names, diff_ids, strict=True)
    ]
    cache.write_blob(config_digest, config_bytes)
    config_desc = Descriptor(media_type=DOCKER_CONFIG, digest=config_digest, size=len(config_bytes))
    manifest = docker_manifest_bytes(config_desc, layers)
    top = cache.write_blob(None, manifest)
    derived = None
    for t in chosen.get("RepoTags") or ():
        try:
            derived = Reference.parse(str(t))
            break
        except InvalidReferenceError:
            continue
    return top, derived


def _open_source(path: Path, limits: ArchiveLimits) -> tuple[Source, str]:
    if path.is_dir():
        src: Source = DirSource(path, limits)
        if not src.has("index.json"):
            raise ArchiveError(f"{path}: not an OCI image layout (no index.json)")
        return src, "oci"
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or directory")
    tar = SafeTar(path, limits)
    if tar.has("index.json") and (tar.has("oci-layout") or not tar.has("manifest.json")):
        return tar, "oci"
    if tar.has("manifest.json"):
        return tar, "docker"
    tar.close()
    raise ArchiveError(
        f"{path}: neither a docker-save tarball (manifest.json) nor an OCI archive (index.json)",
        hint="create one with 'docker save', 'podman save', 'skopeo copy ... oci-archive:FILE' or 'xp xpkg build'",
    )


def load_archive(
    path: Path | str,
    ref: Reference | str | None = None,
    *,
    cache: ImageCache | None = None,
    platform: Platform | str | None = None,
    limits: ArchiveLimits | None = None,
    record: bool = True,
) -> Image:
    """Load an image from a tarball, OCI layout or OCI archive into the cache and tag it ``ref``.

    ``ref`` also picks the image when the file holds several; without it the archive's own name
    (``RepoTags``, ``io.containerd.image.name``) is used. Afterwards the image is available to
    ``pull(ref, policy=Never)``, fully offline.

    With ``record=False`` the blobs are stored but no tag or digest is recorded (for a file read
    in passing, such as ``xp xpkg inspect FILE``): ``xp cache ls`` does not list the image and
    ``prune`` may delete it, so hold :meth:`ImageCache.writer` for as long as the image is used.
    An archive that names no image is then called ``UNNAMED_IMAGE@<digest>``.
    """
    path = Path(path)
    ref = Reference.parse(ref) if isinstance(ref, str) else ref
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    cache = cache or ImageCache()
    src, kind = _open_source(path, limits or ArchiveLimits())
    try:
        with cache.writer():
            if kind == "oci":
                top, derived = _import_oci(src, cache, ref, plat)
            else:
                top, derived = _import_docker(src, cache, ref)
            final = ref or derived
            if final is None and not record:
                final = Reference.parse(f"{UNNAMED_IMAGE}@{top}")
            if final is None:
                raise ArchiveError(
                    f"{path}: the archive does not name its image",
                    hint=f"pass --ref, e.g. 'xp xpkg load {path} --ref registry.example.com/org/pkg:v1.0.0'",
                )
            if final.digest and final.digest != top:
                raise ArchiveError(f"{path}: the archive holds {top}, not {final.digest}")
            cache.sync()
            source = f"archive:{os.path.abspath(path)}"
            if record and final.digest is None:
                cache.set_tag(final, top, source=source)
            elif record:
                cache.record_digest(final, top, source=source)
    finally:
        src.close()
    image = image_from_cache(cache, final, top, plat)
    if image is None:
        raise ArchiveError(
            f"{path}: the image for platform {plat or Platform()} is incomplete in the archive"
        )
    return image


__all__ = [
    "DOCKER_LAYER_UNCOMPRESSED",
    "UNNAMED_IMAGE",
    "ArchiveLimits",
    "SafeTar",
    "docker_manifest_bytes",
    "load_archive",
]
