"""Pulling images into the cache under a pull policy, offline-first.

Kubernetes semantics, a deliberate improvement over Crossplane (spec packages §5.3, where every
policy HEADs tag references): ``IfNotPresent`` uses a cached tag or digest without contacting the
registry; ``Always`` re-resolves the tag (one HEAD) and fetches only the blobs that are missing;
``Never`` uses only the cache and otherwise fails with :class:`CacheMissError`. Tags therefore
work fully offline once pulled (or loaded from an archive).

When the registry must be contacted, registries.conf decides where from (see
:mod:`xplane.oci.mirrors`): mirrors in order, then the primary location, falling back to the next
on a connection error, 404 or 5xx. The image is always recorded under the reference asked for.

This module imports the registry client (and so ``httpx``) only when it has to contact a
registry: a warm ``IfNotPresent`` pull reads a few small files and nothing else.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from xplane.oci._parallel import for_each
from xplane.oci.cache import MAX_JSON_BLOB_BYTES, ImageCache
from xplane.oci.errors import (
    BlockedRegistryError,
    CacheMissError,
    DigestMismatchError,
    ManifestError,
    NotFoundError,
    RegistryError,
    RegistryUnavailableError,
)
from xplane.oci.limits import activate, current_deadline
from xplane.oci.models import (
    DEFAULT_PLATFORM,
    Descriptor,
    Index,
    Platform,
    parse_manifest,
)
from xplane.oci.reference import Reference

if TYPE_CHECKING:
    from xplane.oci.client import RegistryClient
    from xplane.oci.mirrors import Endpoint

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 6  # as skopeo
LOCK_MIN_SIZE = 1 << 20  # blobs from this size on are fetched under a per-blob file lock


class PullPolicy(enum.StrEnum):
    """When to contact the registry (Kubernetes ``imagePullPolicy`` semantics)."""

    IF_NOT_PRESENT = "IfNotPresent"
    ALWAYS = "Always"
    NEVER = "Never"

    @classmethod
    def parse(cls, value: str | PullPolicy) -> PullPolicy:
        """Parse a policy name, case-insensitively (``ifnotpresent``, ``Always``...)."""
        if isinstance(value, PullPolicy):
            return value
        for p in cls:
            if p.value.lower() == str(value).strip().lower():
                return p
        raise ValueError(f"unknown pull policy {value!r}: want IfNotPresent, Always or Never")


@dataclass(frozen=True)
class Image:
    """An image whose manifest, config and layers are all in the cache."""

    reference: Reference
    digest: str  # what the reference points at (the index digest for a multi-platform image)
    manifest_digest: str  # the platform image manifest actually used
    manifest: Mapping[str, Any]
    config: Mapping[str, Any]
    layers: tuple[Descriptor, ...]
    media_type: str = ""
    config_descriptor: Descriptor | None = None
    platform: Platform | None = None  # the platform chosen from an index (None for a plain manifest)
    index: Mapping[str, Any] | None = None  # the index, when ``digest`` names one
    cache: ImageCache = field(default_factory=ImageCache, compare=False, repr=False)

    def layer_path(self, i: int) -> Path:
        """Path of layer ``i``'s blob in the cache (compressed as stored)."""
        return self.cache.blob_path(self.layers[i].digest)

    @property
    def pinned(self) -> Reference:
        """The reference pinned to :attr:`digest`."""
        return self.reference.with_digest(self.digest)

    def manifest_bytes(self) -> bytes:
        """The exact manifest bytes (the ones :attr:`manifest_digest` hashes)."""
        return self.cache.read_blob(self.manifest_digest)


class PullProgress:
    """Receives pull events; the CLI turns them into a progress bar. Every method is a no-op here.

    Blob methods may be called from worker threads (several blobs download at once).
    """

    def resolved(self, ref: Reference, digest: str, *, from_cache: bool) -> None:
        """``ref`` resolved to ``digest`` (from the local index when ``from_cache``)."""

    def blob_start(self, descriptor: Descriptor, *, cached: bool) -> None:
        """A blob is about to be fetched (or is already ``cached``)."""

    def blob_advance(self, descriptor: Descriptor, nbytes: int) -> None:
        """``nbytes`` more bytes of a blob arrived."""

    def blob_done(self, descriptor: Descriptor) -> None:
        """A blob is verified and in the cache."""

    def done(self, image: Image, *, from_cache: bool) -> None:
        """The pull finished."""


_NO_PROGRESS = PullProgress()


def _load_json(cache: ImageCache, digest: str) -> Mapping[str, Any]:
    doc = cache.read_json(digest, what=f"image config {digest}")  # size- and depth-bounded
    if not isinstance(doc, dict):
        raise ManifestError(f"image config {digest} is not a JSON object")
    return doc


def image_from_cache(
    cache: ImageCache, ref: Reference, digest: str, platform: Platform | None = None
) -> Image | None:
    """The image ``digest`` (of ``ref``) if everything it needs is cached, else None.

    For an index the child for ``platform`` (default ``linux/amd64``) is used. Raises
    :class:`ManifestError` when the index offers no such platform.
    """
    try:
        parsed = parse_manifest(_read_manifest(cache, digest))
        index_doc: Mapping[str, Any] | None = None
        chosen: Platform | None = None
        if isinstance(parsed, Index):
            index_doc = parsed.raw
            child = parsed.select(platform or DEFAULT_PLATFORM)
            chosen = child.platform or DEFAULT_PLATFORM
            if not cache.has_blob(child.digest):
                return None
            parsed = parse_manifest(_read_manifest(cache, child.digest), child.media_type)
            if isinstance(parsed, Index):
                raise ManifestError(f"nested image indexes are not supported ({child.digest} in {digest})")
            manifest_digest = child.digest
        else:
            manifest_digest = digest
        manifest = parsed
        config = _load_json(cache, manifest.config.digest) if cache.has_blob(manifest.config.digest) else None
        if config is None:
            return None
        for layer in manifest.layers:
            if layer.urls:  # foreign layers are never fetched
                continue
            if cache.blob_size(layer.digest) != layer.size:
                return None
    except FileNotFoundError:  # pruned while we read
        return None
    except DigestMismatchError as e:  # damaged on disk: removed, so a pull fetches it again
        log.warning("%s", e)
        return None
    return Image(
        reference=ref,
        digest=digest,
        manifest_digest=manifest_digest,
        manifest=manifest.raw,
        config=config,
        layers=manifest.layers,
        media_type=manifest.media_type,
        config_descriptor=manifest.config,
        platform=chosen,
        index=index_doc,
        cache=cache,
    )


def _read_manifest(cache: ImageCache, digest: str) -> bytes:
    """A cached manifest or index, refused unread when it is larger than any manifest may be."""
    size = cache.blob_size(digest)
    if size is not None and size > MAX_JSON_BLOB_BYTES:
        raise ManifestError(
            f"cached manifest {digest} is {size} bytes, over the {MAX_JSON_BLOB_BYTES >> 20} MiB a manifest may have",
            hint="the reference names a layer or a damaged blob; remove it with 'xp cache rm REF'",
        )
    return cache.read_blob(digest)


def _record(cache: ImageCache, ref: Reference, digest: str, source: str) -> None:
    if ref.digest is None:
        cache.set_tag(ref, digest, source=source)
    else:
        cache.record_digest(ref, digest, source=source)


def cached_image(
    ref: Reference, *, cache: ImageCache | None = None, platform: Platform | None = None
) -> Image | None:
    """The cached image for ``ref`` (tag via the local index, or digest), or None. No network."""
    cache = cache or ImageCache()
    digest = ref.digest or cache.resolve_tag(ref)
    if digest is None:
        return None
    return image_from_cache(cache, ref, digest, platform)


def pull(
    ref: Reference | str,
    *,
    policy: PullPolicy | str = PullPolicy.IF_NOT_PRESENT,
    cache: ImageCache | None = None,
    client: RegistryClient | None = None,
    client_factory: Callable[[], RegistryClient] | None = None,
    platform: Platform | str | None = None,
    progress: PullProgress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Image:
    """Make ``ref`` available in the cache according to ``policy`` and return it.

    This is the one place that decides whether the cache answers (``IfNotPresent`` and ``Never``
    hits) or the registry is contacted; every caller goes through it. Without ``client``, a client
    is made only when the registry must be contacted, by ``client_factory`` (default: a
    :class:`RegistryClient` with the default keychain and settings), and closed again, so a cache
    hit creates none. The registries.conf carried by the client's ``config`` routes the pull
    (mirrors, ``location``, ``blocked``).
    """
    ref = Reference.parse(ref) if isinstance(ref, str) else ref
    policy = PullPolicy.parse(policy)
    cache = cache or ImageCache()
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    progress = progress or _NO_PROGRESS

    if policy is not PullPolicy.ALWAYS:
        image = cached_image(ref, cache=cache, platform=plat)
        if image is not None:
            progress.resolved(ref, image.digest, from_cache=True)
            if ref.digest and not _digest_recorded(cache, ref):
                cache.record_digest(ref, image.digest)
            progress.done(image, from_cache=True)
            return image
        if policy is PullPolicy.NEVER:
            raise CacheMissError(
                f"{ref.original or ref} is not in the cache and the pull policy is Never",
                hint=f"pull it once with --pull-policy IfNotPresent, or load it with "
                f"'xp xpkg load FILE --ref {ref}' (cache: {cache.root})",
            )

    own_client = client is None
    if client is None:
        if client_factory is None:
            from xplane.oci.client import RegistryClient

            client_factory = RegistryClient
        client = client_factory()
    try:
        return _fetch(ref, cache, client, plat, progress, concurrency)
    finally:
        if own_client:
            client.close()


def _digest_recorded(cache: ImageCache, ref: Reference) -> bool:
    return any(e.digest == ref.digest for e in cache.entries_for(ref))


def _fetch(
    ref: Reference,
    cache: ImageCache,
    client: RegistryClient,
    platform: Platform | None,
    progress: PullProgress,
    concurrency: int,
) -> Image:
    from xplane.oci.mirrors import pull_sources, registries_of  # registries.conf rules: only when contacting

    sources = pull_sources(ref, registries_of(client.config))
    with cache.writer(), client.pull_deadline(ref).active():  # one deadline for the whole pull
        top, served_by = _fetch_first(ref, sources, cache, client, platform, progress, concurrency)
        cache.sync()
        # Read the image back as every later use will (manifests and config parsed, sizes checked)
        # before recording it: a tag never names an image that does not load.
        image = image_from_cache(cache, ref, top, platform)
        if image is None:  # pragma: no cover - only if blobs are deleted by hand during the pull
            raise CacheMissError(f"{ref} vanished from the cache while it was being pulled; try again")
        _record(cache, ref, top, f"mirror:{served_by.reference.name}" if served_by.mirror else "registry")
    progress.done(image, from_cache=False)
    return image


def _worth_trying_next(e: RegistryError) -> bool:
    """Connection errors, 404 and 5xx move on to the next source; anything else is final."""
    if isinstance(e, (RegistryUnavailableError, NotFoundError, BlockedRegistryError)):
        return True
    return type(e) is RegistryError and e.status is not None and e.status >= 500


def _fetch_first(
    ref: Reference,
    sources: tuple[Endpoint, ...],
    cache: ImageCache,
    client: RegistryClient,
    platform: Platform | None,
    progress: PullProgress,
    concurrency: int,
) -> tuple[str, Endpoint]:
    """Fetch ``ref`` from the first of ``sources`` that has it; its digest and the source used."""
    tried: list[str] = []
    for n, source in enumerate(sources):
        try:
            top = _fetch_from(ref, source.reference, cache, client, platform, progress, concurrency)
        except RegistryError as e:
            last = n == len(sources) - 1
            if last or not _worth_trying_next(e):
                if source.mirror:
                    e.add_note(f"from a mirror of {ref.name} ({source.source})")
                if tried:
                    e.add_note(f"tried before: {'; '.join(tried)}")
                raise
            log.debug(
                "%s: %s (%s) failed: %s; trying the next", ref, source.reference, source.source, e.message
            )
            tried.append(f"{source.reference}: {e.message}")
            continue
        where = f" ({source.source})" if source.source else ""
        log.info("%s: pulled from %s%s", ref, source.reference, where)
        return top, source
    raise AssertionError("pull_sources returned no source")  # pragma: no cover


def _fetch_from(
    ref: Reference,
    endpoint: Reference,
    cache: ImageCache,
    client: RegistryClient,
    platform: Platform | None,
    progress: PullProgress,
    concurrency: int,
) -> str:
    """Fetch the manifest(s) and blobs of ``ref`` from ``endpoint`` into the cache; the top digest."""
    top = ref.digest or client.head_manifest(endpoint).digest
    progress.resolved(ref, top, from_cache=False)
    pinned = endpoint.with_digest(top)
    _fetch_manifest(cache, client, pinned, top)
    parsed = parse_manifest(cache.read_blob(top))
    if isinstance(parsed, Index):
        child = parsed.select(platform or DEFAULT_PLATFORM)
        _fetch_manifest(cache, client, endpoint.with_digest(child.digest), child.digest)
        parsed = parse_manifest(cache.read_blob(child.digest), child.media_type)
        if isinstance(parsed, Index):
            raise ManifestError(f"nested image indexes are not supported ({child.digest} in {top})")
    blobs = [parsed.config, *(layer for layer in parsed.layers if not layer.urls)]
    seen: set[str] = set()
    unique = [b for b in blobs if not (b.digest in seen or seen.add(b.digest))]  # type: ignore[func-returns-value]

    deadline = current_deadline()  # worker threads work under the pull's deadline too

    def fetch_one(desc: Descriptor) -> None:
        with activate(deadline):
            _fetch_blob(cache, client, pinned, desc, progress)

    for_each(unique, fetch_one, concurrency)
    return top


def _fetch_manifest(cache: ImageCache, client: RegistryClient, ref: Reference, digest: str) -> None:
    if cache.has_blob(digest):
        return
    data, _ = client.get_manifest(ref)
    cache.write_blob(digest, data)


def _fetch_blob(
    cache: ImageCache, client: RegistryClient, ref: Reference, desc: Descriptor, progress: PullProgress
) -> None:
    # The per-blob lock only keeps a second process from downloading the same blob at the same
    # time; correctness comes from the verified temp file and the atomic rename (two writers store
    # identical bytes). A lock file is a new inode, ~0.5 ms: for a small blob that is more than
    # fetching it twice (on 200 layers of 2 KiB the locks were ~17% of the pull), so only blobs of
    # LOCK_MIN_SIZE and more take it.
    lock = cache.blob_lock(desc.digest) if desc.size >= LOCK_MIN_SIZE else contextlib.nullcontext()
    with lock:
        if cache.blob_size(desc.digest) == desc.size:
            progress.blob_start(desc, cached=True)
            progress.blob_done(desc)
            return
        progress.blob_start(desc, cached=False)

        def advance(n: int) -> None:
            progress.blob_advance(desc, n)

        with cache.temp_blob(desc.digest, size=desc.size, verified_by_writer=True) as w:
            client.fetch_blob(ref, desc.digest, cast(BinaryIO, w), size=desc.size, progress=advance)
        progress.blob_done(desc)


__all__ = ["Image", "PullPolicy", "PullProgress", "cached_image", "image_from_cache", "pull"]
