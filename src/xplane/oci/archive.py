"""Loading images from files into the cache: ``docker save``/``podman save``/``.xpkg`` tarballs,
OCI image layout directories and OCI archives (a tar of a layout), the ``kind load`` case.

Archives are untrusted input. Nothing is extracted to disk: members are streamed straight into
the cache, where every blob is hashed and checked against its digest before it is renamed into
place. Before anything is read, every member is checked (:mod:`xplane.oci.archivesource`); absolute
names, ``..``, links that leave the archive, device files, oversized members and tar bombs are
refused with :class:`ArchiveError`. Manifests, indexes and configs are parsed with a depth bound
before they are stored, and the tag is recorded only once the whole image reads back from the
cache as valid, so a bad archive leaves no entry behind (only unreferenced blobs, for ``prune``).

``docker save`` tarballs are imported by :mod:`xplane.oci.dockersave`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xplane.oci.archivesource import ArchiveLimits, DirSource, SafeTar, Source
from xplane.oci.cache import ImageCache
from xplane.oci.dockersave import DOCKER_LAYER_UNCOMPRESSED, docker_manifest_bytes, import_docker, names_image
from xplane.oci.errors import ArchiveError, DigestMismatchError, InvalidReferenceError, ManifestError
from xplane.oci.imagepull import Image, image_from_cache
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.models import (
    INDEX_TYPES,
    OCI_INDEX,
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_manifest,
    sha256_digest,
)
from xplane.oci.reference import Digest, Reference

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
DAMAGED = "the archive or layout is damaged or was not written by an image tool; create it again"
UNNAMED_IMAGE = "xplane.local/unnamed"
"""The name of an image loaded without recording it (``record=False``) from an archive that names none."""


def _blob_name(digest: str) -> str:
    d = Digest.parse(digest)
    return f"blobs/{d.algorithm}/{d.hex}"


def _json(src: Source, name: str) -> Any:
    try:
        return loads_bounded(src.read_json_bytes(name), what=f"{src.label}: {name}")
    except ManifestError as e:
        raise ArchiveError(e.message, hint=e.hint or DAMAGED) from e


def _copy_blob(src: Source, cache: ImageCache, desc: Descriptor, name: str | None = None) -> None:
    """Stream one blob into the cache, verified against ``desc`` (digest and size)."""
    if cache.blob_size(desc.digest) == desc.size:
        return
    name = name or _blob_name(desc.digest)
    if not src.has(name):
        raise ArchiveError(f"{src.label}: blob {desc.digest} is missing (no {name})", hint=DAMAGED)
    if src.size(name) != desc.size:
        raise ArchiveError(
            f"{src.label}: blob {desc.digest} is {src.size(name)} bytes, but its descriptor says {desc.size}",
            hint=DAMAGED,
        )
    with cache.blob_lock(desc.digest):
        try:
            with src.open(name) as f:
                cache.write_blob(desc.digest, f, size=desc.size)
        except DigestMismatchError as e:
            raise ArchiveError(
                f"{src.label}: blob {name} does not match its digest {desc.digest}", hint=DAMAGED
            ) from e


def _copy_manifest(src: Source, cache: ImageCache, desc: Descriptor) -> Manifest | Index:
    name = _blob_name(desc.digest)
    if not src.has(name):
        raise ArchiveError(f"{src.label}: manifest {desc.digest} is missing (no {name})", hint=DAMAGED)
    data = src.read_json_bytes(name)
    if sha256_digest(data) != desc.digest or len(data) != desc.size:
        raise ArchiveError(
            f"{src.label}: manifest {name} does not match its descriptor ({desc.digest})", hint=DAMAGED
        )
    try:
        parsed = parse_manifest(data, desc.media_type)
    except ManifestError as e:
        raise ArchiveError(f"{src.label}: manifest {desc.digest}: {e.message}", hint=e.hint or DAMAGED) from e
    cache.write_blob(desc.digest, data)
    return parsed


def _copy_config(src: Source, cache: ImageCache, desc: Descriptor) -> None:
    """Store a config after checking it against ``desc`` and parsing it (depth-bounded) as an object."""
    if cache.blob_size(desc.digest) == desc.size:
        return
    name = _blob_name(desc.digest)
    if not src.has(name):
        raise ArchiveError(f"{src.label}: config {desc.digest} is missing (no {name})", hint=DAMAGED)
    data = src.read_json_bytes(name)
    if sha256_digest(data) != desc.digest or len(data) != desc.size:
        raise ArchiveError(
            f"{src.label}: config {name} does not match its descriptor ({desc.digest})", hint=DAMAGED
        )
    try:
        config = loads_bounded(data, what=f"{src.label}: config {desc.digest}")
    except ManifestError as e:
        raise ArchiveError(e.message, hint=e.hint or DAMAGED) from e
    if not isinstance(config, dict):
        raise ArchiveError(f"{src.label}: config {desc.digest} is not a JSON object", hint=DAMAGED)
    cache.write_blob(desc.digest, data)


def _copy_image(src: Source, cache: ImageCache, manifest: Manifest) -> None:
    _copy_config(src, cache, manifest.config)
    for layer in manifest.layers:
        if not layer.urls:
            _copy_blob(src, cache, layer)


def _choose_oci(index: Index, ref: Reference | None, label: str) -> tuple[Descriptor, Reference | None]:
    entries = list(index.manifests)
    if not entries:
        raise ArchiveError(f"{label}: index.json lists no images", hint=DAMAGED)

    def names(d: Descriptor) -> list[str]:
        return [v for k in (REF_NAME_ANNOTATION, CONTAINERD_NAME_ANNOTATION) if (v := d.annotations.get(k))]

    if ref is not None:
        for d in entries:
            if ref.digest and d.digest == ref.digest:
                return d, None
            for n in names(d):
                if (ref.tag and n == ref.tag) or names_image(n, ref):
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
        raise ArchiveError(f"{src.label}: index.json: {e.message}", hint=e.hint or DAMAGED) from e
    top, derived = _choose_oci(index, ref, src.label)
    parsed = _copy_manifest(src, cache, top)
    if isinstance(parsed, Manifest):
        _copy_image(src, cache, parsed)
        return top.digest, derived
    try:
        wanted = parsed.select(platform)
    except ManifestError as e:
        raise ArchiveError(f"{src.label}: {e.message}", hint=e.hint or DAMAGED) from None
    for child in parsed.manifests:
        if child.media_type in INDEX_TYPES:
            continue
        if child.digest != wanted.digest and not src.has(_blob_name(child.digest)):
            continue  # layouts may hold only some platforms (skopeo copy without --all)
        sub = _copy_manifest(src, cache, child)
        if isinstance(sub, Manifest):
            _copy_image(src, cache, sub)
    return top.digest, derived


def _open_source(path: Path, limits: ArchiveLimits) -> tuple[Source, str]:
    if path.is_dir():
        src: Source = DirSource(path, limits)
        if not src.has("index.json"):
            raise ArchiveError(
                f"{path}: not an OCI image layout (no index.json)",
                hint="load a directory written by skopeo copy ... oci:DIR, or an archive file",
            )
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
                top, derived = import_docker(src, cache, ref)
            final = ref or derived
            if final is None and not record:
                final = Reference.parse(f"{UNNAMED_IMAGE}@{top}")
            if final is None:
                raise ArchiveError(
                    f"{path}: the archive does not name its image",
                    hint=f"pass --ref, e.g. 'xp xpkg load {path} --ref registry.example.com/org/pkg:v1.0.0'",
                )
            if final.digest and final.digest != top:
                raise ArchiveError(
                    f"{path}: the archive holds {top}, not {final.digest}",
                    hint="pass --ref with the tag the archive names, or the digest it holds",
                )
            cache.sync()
            image = _read_back(cache, path, final, top, plat)  # before any tag: only a valid image is named
            source = f"archive:{os.path.abspath(path)}"
            if record and final.digest is None:
                cache.set_tag(final, top, source=source)
            elif record:
                cache.record_digest(final, top, source=source)
    finally:
        src.close()
    return image


def _read_back(cache: ImageCache, path: Path, ref: Reference, top: str, plat: Platform | None) -> Image:
    """The image just imported, read from the cache as a pull would read it (every document parsed)."""
    try:
        image = image_from_cache(cache, ref, top, plat)
    except ManifestError as e:
        raise ArchiveError(f"{path}: {e.message}", hint=e.hint or DAMAGED) from e
    if image is None:
        raise ArchiveError(
            f"{path}: the image for platform {plat or Platform()} is incomplete in the archive",
            hint=DAMAGED,
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
