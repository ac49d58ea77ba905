"""Pushing images from the cache (or from an archive/layout, via the cache) to a registry.

Manifests are pushed as the exact bytes the cache holds, so the digest at the destination equals
the digest here (``skopeo inspect --raw`` shows the same bytes). Several images can be pushed
under one tag as an OCI image index, each child by digest first, as ``crossplane xpkg push``
does with several package files (spec packages §1.3).

registries.conf routes pushes (see :mod:`xplane.oci.mirrors`): a ``location`` remaps the
destination, mirrors are never pushed to, and a ``blocked`` registry refuses the push. Progress
events and the cache name images by the reference asked for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from xplane.oci._parallel import for_each
from xplane.oci.cache import ImageCache
from xplane.oci.errors import BlockedRegistryError, OCIError
from xplane.oci.imagepull import Image, image_from_cache
from xplane.oci.models import OCI_INDEX, Descriptor, Platform, parse_manifest
from xplane.oci.reference import Reference

if TYPE_CHECKING:
    from xplane.oci.client import RegistryClient

log = logging.getLogger(__name__)


class PushProgress:
    """Receives push events; every method is a no-op here. Blob events may come from threads."""

    def blob_start(self, descriptor: Descriptor) -> None:
        """A blob upload (or existence check) starts."""

    def blob_advance(self, descriptor: Descriptor, nbytes: int) -> None:
        """``nbytes`` more bytes were sent."""

    def blob_done(self, descriptor: Descriptor) -> None:
        """The registry has the blob."""

    def manifest_pushed(self, ref: Reference, digest: str) -> None:
        """A manifest or index was stored at ``ref``."""


_NO_PROGRESS = PushProgress()


def _client_or_default(client: RegistryClient | None) -> tuple[RegistryClient, bool]:
    if client is not None:
        return client, False
    from xplane.oci.client import RegistryClient

    return RegistryClient(), True


def _destination(dest: Reference, client: RegistryClient) -> Reference:
    """Where a push of ``dest`` really goes (registries.conf ``location``); refuses blocked registries."""
    from xplane.oci.mirrors import push_endpoint, registries_of

    target = push_endpoint(dest, registries_of(client.config))
    if target.reference != dest:
        log.info("%s: pushing to %s (%s)", dest, target.reference, target.source)
    return target.reference


def _mount_source(image: Image, dest: Reference, client: RegistryClient) -> Reference | None:
    """Where ``image``'s blobs may be mounted from: its repository, when on ``dest``'s registry."""
    from xplane.oci.mirrors import push_endpoint, registries_of

    try:
        source = push_endpoint(image.reference, registries_of(client.config)).reference
    except BlockedRegistryError:
        return None
    return source if source.registry == dest.registry else None


def _push_blobs(
    image: Image, dest: Reference, client: RegistryClient, progress: PushProgress, concurrency: int
) -> None:
    blobs: list[Descriptor] = []
    if image.config_descriptor is not None:
        blobs.append(image.config_descriptor)
    blobs.extend(layer for layer in image.layers if not layer.urls)
    seen: set[str] = set()
    unique = []
    for b in blobs:
        if b.digest not in seen:
            seen.add(b.digest)
            unique.append(b)
    mount = _mount_source(image, dest, client)

    def one(desc: Descriptor) -> None:
        progress.blob_start(desc)

        def opener() -> BinaryIO:
            return image.cache.open_blob(desc.digest)

        def advance(n: int) -> None:
            progress.blob_advance(desc, n)

        client.push_blob(dest, desc.digest, desc.size, opener, mount_from=mount, progress=advance)
        progress.blob_done(desc)

    for_each(unique, one, concurrency)


def _push_one_manifest(
    image: Image,
    dest: Reference,
    endpoint: Reference,
    client: RegistryClient,
    progress: PushProgress,
    concurrency: int,
) -> str:
    """Push ``image`` by digest to ``endpoint`` (where ``dest`` really is)."""
    _push_blobs(image, endpoint, client, progress, concurrency)
    data = image.manifest_bytes()
    digest = client.put_manifest(endpoint.with_digest(image.manifest_digest), data, image.media_type)
    progress.manifest_pushed(dest.with_digest(image.manifest_digest), digest)
    return digest


def push_image(
    image: Image,
    dest: Reference | str,
    *,
    client: RegistryClient | None = None,
    progress: PushProgress | None = None,
    concurrency: int = 4,
) -> str:
    """Push a cached image to ``dest`` (a tag or digest); return the digest stored there.

    For a multi-platform image every platform of the index must be in the cache.
    """
    dest = Reference.parse(dest) if isinstance(dest, str) else dest
    progress = progress or _NO_PROGRESS
    client, own = _client_or_default(client)
    try:
        endpoint = _destination(dest, client)
        if image.index is None:
            _push_blobs(image, endpoint, client, progress, concurrency)
            digest = client.put_manifest(endpoint, image.manifest_bytes(), image.media_type)
            progress.manifest_pushed(dest, digest)
            return digest
        index_bytes = image.cache.read_blob(image.digest)
        index = parse_manifest(index_bytes)
        for child in getattr(index, "manifests", ()):
            sub = image_from_cache(image.cache, image.reference, child.digest)
            if sub is None:
                raise OCIError(
                    f"platform {child.platform or 'linux/amd64'} of {image.reference} ({child.digest}) "
                    "is not in the cache, so the index cannot be pushed",
                    hint="pull each platform first (xp xpkg pull --platform OS/ARCH), or push one platform",
                )
            _push_one_manifest(sub, dest, endpoint, client, progress, concurrency)
        media_type = str(image.index.get("mediaType") or OCI_INDEX)
        digest = client.put_manifest(endpoint, index_bytes, media_type)
        progress.manifest_pushed(dest, digest)
        return digest
    finally:
        if own:
            client.close()


def _platform_of(image: Image) -> Platform:
    c = image.config
    return Platform(
        os=str(c.get("os") or ""),
        architecture=str(c.get("architecture") or ""),
        variant=c.get("variant") or None,
        os_version=c.get("os.version") or None,
    )


def index_bytes_for(images: Sequence[Image], annotations: Mapping[str, str] | None = None) -> bytes:
    """An OCI image index over ``images``, each with the platform its config declares."""
    manifests = []
    for img in images:
        desc: dict[str, Any] = {
            "mediaType": img.media_type,
            "size": img.cache.blob_size(img.manifest_digest),
            "digest": img.manifest_digest,
        }
        plat = _platform_of(img)
        if plat.os or plat.architecture:
            desc["platform"] = plat.to_json()
        manifests.append(desc)
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    if annotations:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc, separators=(",", ":")).encode()


def push_index(
    images: Sequence[Image],
    dest: Reference | str,
    *,
    annotations: Mapping[str, str] | None = None,
    client: RegistryClient | None = None,
    progress: PushProgress | None = None,
    cache: ImageCache | None = None,
    concurrency: int = 4,
) -> str:
    """Push each image by digest, then an OCI index of them to ``dest``; return the index digest.

    The index is also stored in ``cache`` (default: the first image's cache) and tagged ``dest``.
    """
    if not images:
        raise OCIError("push_index needs at least one image")
    dest = Reference.parse(dest) if isinstance(dest, str) else dest
    progress = progress or _NO_PROGRESS
    cache = cache or images[0].cache
    client, own = _client_or_default(client)
    try:
        endpoint = _destination(dest, client)
        for img in images:
            _push_one_manifest(img, dest, endpoint, client, progress, concurrency)
        data = index_bytes_for(images, annotations)
        digest = client.put_manifest(endpoint, data, OCI_INDEX)
        progress.manifest_pushed(dest, digest)
    finally:
        if own:
            client.close()
    with cache.writer():
        cache.write_blob(digest, data)
        if dest.digest is None:
            cache.set_tag(dest, digest, source="push")
    return digest


def push_archive(
    path: Path | str,
    dest: Reference | str,
    *,
    cache: ImageCache | None = None,
    client: RegistryClient | None = None,
    platform: Platform | str | None = None,
    progress: PushProgress | None = None,
) -> str:
    """Load an archive or layout into the cache under ``dest``, then push it there."""
    from xplane.oci.archive import load_archive

    image = load_archive(path, dest, cache=cache, platform=platform)
    return push_image(image, image.reference, client=client, progress=progress)


__all__ = ["PushProgress", "index_bytes_for", "push_archive", "push_image", "push_index"]
