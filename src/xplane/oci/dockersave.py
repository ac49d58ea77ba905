"""Importing ``docker save`` / ``podman save`` tarballs (and ``.xpkg`` files) into the cache.

Such a tarball holds no manifest, so one is made: Docker schema 2, compact JSON in
go-containerregistry's field order, layers as stored (gzip, or uncompressed as in the
``<id>/layer.tar`` legacy form and skopeo's ``<diffid>.tar``). Layer contents are checked against
the config's ``rootfs.diff_ids`` before a layer is committed to the cache.

The check inflates every gzip layer, so it is where a gzip bomb would go off: it inflates at most
1 MiB at a time (``max_length``, draining ``unconsumed_tail``) and counts inflated bytes against
:class:`ArchiveLimits` (``max_member_bytes`` per layer, ``max_total_bytes`` for the image). A
4 MB tarball holding a 4 GiB layer used to take 2.1 GB of memory here.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, cast

import zstandard

from xplane.oci.archivesource import ArchiveLimits, Source
from xplane.oci.cache import ImageCache
from xplane.oci.errors import ArchiveError, InvalidReferenceError, ManifestError
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.layertar import layer_compression, zstd_decompressor
from xplane.oci.models import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_LAYER_ZSTD, Descriptor
from xplane.oci.reference import Reference

DOCKER_LAYER_UNCOMPRESSED = "application/vnd.docker.image.rootfs.diff.tar"
_CHUNK = 1 << 20
NOT_DOCKER_SAVE = "the file was not written by docker save, podman save or xpkg build, or was altered since; create it again"
_GZIP = 31  # zlib wbits for a gzip member


def names_image(candidate: str, ref: Reference) -> bool:
    """True when ``candidate`` (a RepoTag or ref name) is ``ref``'s repository and tag."""
    try:
        other = Reference.parse(candidate)
    except InvalidReferenceError:
        return False
    return other.name == ref.name and other.effective_tag == ref.effective_tag


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


class _Inflated:
    """Inflated bytes of one load, counted against the archive limits."""

    def __init__(self, label: str, limits: ArchiveLimits) -> None:
        self.label = label
        self.limits = limits
        self.total = 0

    def add(self, name: str, layer_bytes: int, n: int) -> None:
        """Count ``n`` more bytes of layer ``name`` (``layer_bytes`` so far, ``n`` included)."""
        self.total += n
        lim = self.limits
        if layer_bytes > lim.max_member_bytes:
            raise ArchiveError(
                f"{self.label}: layer {name!r} inflates to more than {lim.max_member_bytes} bytes; "
                "refusing a possible gzip bomb",
                hint="raise --max-member-size (ArchiveLimits.max_member_bytes) if the archive is trusted",
            )
        if self.total > lim.max_total_bytes:
            raise ArchiveError(
                f"{self.label}: layers inflate to more than {lim.max_total_bytes} bytes in total; "
                "refusing a possible gzip bomb",
                hint="raise --max-total-size (ArchiveLimits.max_total_bytes) if the archive is trusted",
            )


class _Sink:
    """A file-like target for zstd's stream writer: each decompressed chunk goes to ``emit``."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit

    def write(self, data: bytes) -> int:
        self._emit(data)
        return len(data)


class _DiffIdHasher:
    """sha256 of a layer's uncompressed tar, fed the stored (gzip, zstd or plain) bytes chunk by chunk.

    At most :data:`_CHUNK` bytes are inflated per step, whatever the compression ratio.
    Concatenated gzip members are read one after another, as Go's gzip reader does; zstd frames
    likewise (its decoder hands over each :data:`_CHUNK` as it is produced).
    """

    def __init__(self, name: str, compression: str, budget: _Inflated) -> None:
        self.name = name
        self.hash = hashlib.sha256()
        self.size = 0
        self._budget = budget
        self._inflater = zlib.decompressobj(_GZIP) if compression == "gzip" else None
        self._zstd = (
            zstd_decompressor().stream_writer(cast(IO[bytes], _Sink(self._emit)), write_size=_CHUNK)
            if compression == "zstd"
            else None
        )
        self._between_members = False
        self._trailing = False

    def _emit(self, data: bytes) -> None:
        if data:
            self.size += len(data)
            self._budget.add(self.name, self.size, len(data))
            self.hash.update(data)

    def update(self, stored: bytes) -> None:
        """Feed the next stored bytes."""
        if self._zstd is not None:
            self._zstd.write(stored)
            return
        if self._inflater is None:
            self._emit(stored)
            return
        buf = stored
        while not self._trailing:
            if self._between_members:
                if not buf:
                    return
                if buf[:1] != b"\x1f":  # not another gzip member: trailing bytes, ignored as gzip(1) does
                    self._trailing = True
                    return
                self._inflater = zlib.decompressobj(_GZIP)
                self._between_members = False
            out = self._inflater.decompress(buf, _CHUNK)
            self._emit(out)
            if self._inflater.eof:
                buf = self._inflater.unused_data
                self._between_members = True
                continue
            buf = self._inflater.unconsumed_tail
            if not buf and len(out) < _CHUNK:  # a full output chunk may leave more pending inside zlib
                return

    def hexdigest(self) -> str:
        """The digest of everything inflated; raises :class:`zlib.error` for a truncated stream."""
        if self._inflater is not None and not self._between_members:
            raise zlib.error("the gzip stream ends before its end-of-stream marker")
        return self.hash.hexdigest()


def _layer_media_type(head: bytes) -> str:
    kind = layer_compression(head)
    return DOCKER_LAYER if kind == "gzip" else OCI_LAYER_ZSTD if kind == "zstd" else DOCKER_LAYER_UNCOMPRESSED


def _named_hex(name: str) -> str | None:
    """The digest hex a docker-save member name carries (``sha256:<hex>``, ``<hex>.json``,
    ``<hex>.tar[.gz]``, ``blobs/sha256/<hex>``), or None (``<id>/layer.tar``)."""
    base = posixpath.basename(name).removeprefix("sha256:")
    for suffix in (".json", ".tar.gz", ".tgz", ".tar.zst", ".tar"):
        base = base.removesuffix(suffix)
    if len(base) == 64 and all(c in "0123456789abcdef" for c in base):
        return base
    return None


def _import_layer(src: Source, cache: ImageCache, name: str, diff_id: str, budget: _Inflated) -> Descriptor:
    if not src.has(name):
        raise ArchiveError(
            f"{src.label}: layer {name!r} named in manifest.json is missing", hint=NOT_DOCKER_SAVE
        )
    with src.open(name) as f:
        head = f.read(4)
        media_type = _layer_media_type(head)
        diff = _DiffIdHasher(name, layer_compression(head), budget)
        try:
            with cache.temp_blob() as w:
                chunk = head
                while chunk:
                    w.write(chunk)
                    diff.update(chunk)
                    chunk = f.read(_CHUNK)
                digest = "sha256:" + w.hash.hexdigest()
                diff_hex = diff.hexdigest()
                _check_layer(src.label, name, media_type, digest, diff_hex, diff_id)
        except zlib.error as e:
            raise ArchiveError(
                f"{src.label}: layer {name!r} is not valid gzip ({e})", hint="the archive is damaged"
            ) from None
        except zstandard.ZstdError as e:
            raise ArchiveError(
                f"{src.label}: layer {name!r} is not valid zstd ({e})", hint="the archive is damaged"
            ) from None
    assert w.digest is not None
    return Descriptor(media_type=media_type, digest=w.digest, size=w.size)


def _check_layer(
    label: str, name: str, media_type: str, digest: str, diff_hex: str | None, diff_id: str
) -> None:
    """Checked before the blob is committed, so a tampered layer never enters the cache."""
    want_hex = _named_hex(name)
    if want_hex is not None and media_type == DOCKER_LAYER and digest != f"sha256:{want_hex}":
        raise ArchiveError(
            f"{label}: layer {name!r} does not match the digest in its name ({digest})", hint=NOT_DOCKER_SAVE
        )
    if diff_hex is not None and f"sha256:{diff_hex}" != diff_id:
        raise ArchiveError(
            f"{label}: layer {name!r} does not match the config's diff_id {diff_id}",
            hint="the archive is corrupt or was tampered with",
        )


def _strings(label: str, entry: Mapping[str, Any], key: str) -> list[str] | None:
    """``entry[key]`` when it is a list of strings, None when absent or null."""
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchiveError(
            f"{label}: manifest.json: {key!r} must be a list of strings",
            hint=NOT_DOCKER_SAVE,
        )
    return value


def _choose(label: str, entries: list[Mapping[str, Any]], ref: Reference | None) -> Mapping[str, Any]:
    if ref is not None:
        for e in entries:
            if any(names_image(t, ref) for t in _strings(label, e, "RepoTags") or ()):
                return e
    if len(entries) > 1:
        tags = ", ".join(t for e in entries for t in (_strings(label, e, "RepoTags") or ())[:1])
        raise ArchiveError(
            f"{label}: the archive holds {len(entries)} images ({tags or 'untagged'}); choose one",
            hint="pass --ref with one of the archive's RepoTags",
        )
    return entries[0]


def _read_json(src: Source, name: str, what: str) -> Any:
    try:
        return loads_bounded(src.read_json_bytes(name), what=f"{src.label}: {what}")
    except ManifestError as e:
        raise ArchiveError(e.message, hint=e.hint or NOT_DOCKER_SAVE) from e


def _diff_ids(label: str, config: Any, config_name: str, layers: int) -> list[str]:
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ArchiveError(
            f"{label}: config {config_name!r} has no rootfs.diff_ids list of digests", hint=NOT_DOCKER_SAVE
        )
    if len(diff_ids) != layers:
        raise ArchiveError(
            f"{label}: config lists {len(diff_ids)} diff_ids but manifest.json {layers} layers",
            hint=NOT_DOCKER_SAVE,
        )
    return diff_ids


def import_docker(src: Source, cache: ImageCache, ref: Reference | None) -> tuple[str, Reference | None]:
    """Import the image of a docker-save tarball; its manifest digest and the name it carries."""
    entries = _read_json(src, "manifest.json", "manifest.json")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, Mapping) for e in entries):
        raise ArchiveError(
            f"{src.label}: manifest.json must be a non-empty list of images", hint=NOT_DOCKER_SAVE
        )
    chosen = _choose(src.label, entries, ref)
    config_name, layer_names = chosen.get("Config"), _strings(src.label, chosen, "Layers")
    if not isinstance(config_name, str) or layer_names is None:
        raise ArchiveError(
            f"{src.label}: manifest.json entry needs 'Config' and 'Layers'", hint=NOT_DOCKER_SAVE
        )
    config_bytes = src.read_json_bytes(config_name)
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    want = _named_hex(config_name)
    if want is not None and config_digest != f"sha256:{want}":
        raise ArchiveError(
            f"{src.label}: config {config_name!r} does not match the digest in its name", hint=NOT_DOCKER_SAVE
        )
    try:
        config = loads_bounded(config_bytes, what=f"{src.label}: config {config_name!r}")
    except ManifestError as e:
        raise ArchiveError(e.message, hint=e.hint or NOT_DOCKER_SAVE) from e
    diff_ids = _diff_ids(src.label, config, config_name, len(layer_names))
    budget = _Inflated(src.label, src.limits)
    layers = [
        _import_layer(src, cache, name, diff_id, budget)
        for name, diff_id in zip(layer_names, diff_ids, strict=True)
    ]
    cache.write_blob(config_digest, config_bytes)
    config_desc = Descriptor(media_type=DOCKER_CONFIG, digest=config_digest, size=len(config_bytes))
    top = cache.write_blob(None, docker_manifest_bytes(config_desc, layers))
    derived = None
    for t in _strings(src.label, chosen, "RepoTags") or ():
        try:
            derived = Reference.parse(t)
            break
        except InvalidReferenceError:
            continue
    return top, derived


__all__ = ["DOCKER_LAYER_UNCOMPRESSED", "docker_manifest_bytes", "import_docker", "names_image"]
