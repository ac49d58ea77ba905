"""The offline-first, content-addressed image cache.

Layout under the root (``$XPLANE_CACHE_DIR``, else ``$XDG_CACHE_HOME/xplane``, else
``~/.cache/xplane``)::

    blobs/sha256/<hex>                     layers, configs, manifests and indexes, by digest
    blobs/sha256/.tmp-<pid>-<rand>         a write in progress (never read as a blob)
    refs/<registry>/<repository>/_tags.json   tag -> digest index of one repository
    locks/                                 lock files (gc.lock, one per blob, one per repository)

Every write goes to a temp file in the target directory, is hashed and checked against the
expected digest, fsynced and renamed into place, so a reader only ever sees complete, verified
blobs. A repository's ``_tags.json`` is rewritten the same way under a per-repository file lock,
and only after every blob it refers to is on disk. Writers (pulls, loads) hold a shared lock on
``locks/gc.lock`` for their whole run; :meth:`ImageCache.prune` takes it exclusively, so it never
sweeps blobs of an image that is half written (prune and du live in :mod:`xplane.oci.cachegc`).

Durability: where the fsyncs are and why
    A killed process (SIGKILL, OOM) loses nothing the kernel already has, so for it the temp file
    plus rename is enough: it leaves a ``.tmp-`` file, never a final name with partial content.
    The fsyncs are for an OS crash or power loss, after which a file renamed before its data
    reached the disk can come back under its final name empty or with stale blocks (ext4 delayed
    allocation). Readers trust a present blob (layers are checked by size, not re-hashed), so
    every blob is fsynced *before* its rename; there is no cheaper order that keeps that promise,
    since "rename now, fsync later" opens exactly that window, and "fsync all temp files, then
    rename" still costs one fsync per blob. What is deferred is the directory: one fsync of
    ``blobs/sha256`` after all of an image's renames (:meth:`ImageCache.sync`), then the tag index
    is written (temp, fsync, rename, directory fsync). After a crash a rename may be lost (the blob
    is simply fetched again), but a tag never points at an image whose blobs are not durable.

    Measured on the 2-core development VM (bench/run.py): fsyncing a 64 MiB layer took ~20-28 ms
    of a ~150 ms in-process pull; with early writeback (below) the final fsync waits ~3-5 ms.
    200 layers of ~2 KiB cost ~0.3 ms per fsync, spread over the pull's worker threads. skopeo
    pays the same: its ``oci:`` destination fsyncs every blob before renaming it (seen with strace).

    Early writeback: while a large blob is written, every :data:`WRITEBACK_STEP` bytes are handed
    to the kernel to start writing (``posix_fadvise(DONTNEED)`` on the just-written range), so the
    disk works during the download instead of after it. It changes no guarantee: the fsync before
    the rename still waits for all of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from xplane.oci.atomicfile import atomic_write, fsync_dir, open_temp
from xplane.oci.errors import DigestMismatchError, ManifestError, OCIError
from xplane.oci.flock import FlockLock
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.reference import Digest, Reference

log = logging.getLogger(__name__)

TAGS_FILE = "_tags.json"  # "_" cannot start a repository component, so it never collides with one
TEMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20
STALE_TEMP_SECONDS = 3600.0  # a temp file this old is garbage even if its writer lives
WRITEBACK_STEP = 8 << 20  # start the disk writes of a blob being written every 8 MiB
MAX_JSON_BLOB_BYTES = 16 << 20
"""The largest manifest, index or config the cache (and an archive) reads whole: 16 MiB."""
_fadvise = getattr(os, "posix_fadvise", None)


def default_cache_root(env: dict[str, str] | None = None) -> Path:
    """``$XPLANE_CACHE_DIR``, else ``$XDG_CACHE_HOME/xplane``, else ``~/.cache/xplane``."""
    e = os.environ if env is None else env
    if e.get("XPLANE_CACHE_DIR"):
        return Path(e["XPLANE_CACHE_DIR"]).expanduser()
    if e.get("XDG_CACHE_HOME"):
        return Path(e["XDG_CACHE_HOME"]).expanduser() / "xplane"
    return Path.home() / ".cache" / "xplane"


def utc_now() -> str:
    """The current time as an RFC 3339 UTC timestamp with second precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_digest(digest: str) -> tuple[str, str]:
    d = Digest.parse(digest)
    if d.algorithm != "sha256":
        raise OCIError(f"unsupported digest algorithm in {digest!r}: the cache stores sha256 content only")
    return d.algorithm, d.hex


@dataclass(frozen=True)
class TagEntry:
    """One row of a repository's tag index."""

    name: str  # registry/repository
    tag: str | None  # None for an image recorded by digest only
    digest: str
    resolved_at: str | None  # when the tag was last resolved (against a registry or an archive)
    pulled_at: str | None  # when the content was first written
    source: str | None  # "registry" or "archive:<file>"


@dataclass(frozen=True)
class CacheProblem:
    """A damaged cache entry that ``prune``, ``du`` or ``ls`` skipped (and carried on)."""

    entry: str  # "registry/repository:tag", or "...@sha256:..." for an image recorded by digest
    message: str

    def __str__(self) -> str:
        return f"{self.entry}: warning: {self.message}"


@dataclass(frozen=True)
class PruneResult:
    """What :meth:`ImageCache.prune` removed."""

    blobs: int
    bytes: int
    temp_files: int
    problems: tuple[CacheProblem, ...] = ()  # damaged entries (blobs only they would reach are swept)


@dataclass(frozen=True)
class DiskUsage:
    """What :meth:`ImageCache.disk_usage` counted."""

    root: str
    blobs: int
    bytes: int
    referenced_bytes: int
    reclaimable_bytes: int
    temp_bytes: int
    images: int
    problems: tuple[CacheProblem, ...] = ()  # damaged entries found while counting (each was skipped)


class ImageCache:
    """A content-addressed blob store plus a tag -> digest index per repository.

    Safe for concurrent use by several processes. Library callers that write an image hold
    :meth:`writer` around the whole operation; :func:`xplane.oci.imagepull.pull` and
    :func:`xplane.oci.archive.load_archive` do.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.refs_dir = self.root / "refs"
        self.locks_dir = self.root / "locks"

    def __repr__(self) -> str:
        return f"ImageCache({str(self.root)!r})"

    # -- blobs ---------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it is there)."""
        _, hexpart = _split_digest(digest)
        return self.blobs_dir / hexpart

    def has_blob(self, digest: str) -> bool:
        """True when the blob is in the cache (it was verified when it was written)."""
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int | None:
        """The size of a cached blob, or None if it is absent."""
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def read_blob(self, digest: str, *, verify: bool = True) -> bytes:
        """Read a (small) blob whole; re-hash it unless ``verify`` is false.

        Raises :class:`FileNotFoundError` when it is absent and :class:`DigestMismatchError` when
        it was altered on disk (the damaged file is removed so the next pull fetches it again).
        """
        path = self.blob_path(digest)
        data = path.read_bytes()
        if verify and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            with contextlib.suppress(OSError):
                path.unlink()
            raise DigestMismatchError(
                f"cached blob {digest} is corrupt (its content does not match its digest); it was removed",
                hint="pull the image again",
            )
        return data

    def read_json(
        self, digest: str, *, what: str, max_bytes: int = MAX_JSON_BLOB_BYTES, verify: bool = True
    ) -> Any:
        """A cached manifest, index or config, parsed with a depth bound, never read past ``max_bytes``.

        Raises :class:`ManifestError` (``what`` names the blob) when it is too large, not JSON or
        nested too deep, and the errors of :meth:`read_blob` (with ``verify``) otherwise.
        """
        size = self.blob_size(digest)
        if size is not None and size > max_bytes:
            raise ManifestError(
                f"{what} is {size} bytes, over the {max_bytes >> 20} MiB a manifest or config may have",
                hint="the image is damaged or hostile; remove it with 'xp cache rm REF'",
            )
        return loads_bounded(self.read_blob(digest, verify=verify), what=what)

    def open_blob(self, digest: str) -> BinaryIO:
        """Open a cached blob for reading (raises :class:`FileNotFoundError` when absent)."""
        return self.blob_path(digest).open("rb")

    def verify_blob(self, digest: str) -> bool:
        """Re-hash a cached blob in chunks; True when it matches its digest."""
        h = hashlib.sha256()
        try:
            with self.blob_path(digest).open("rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return False
        return "sha256:" + h.hexdigest() == digest

    @contextlib.contextmanager
    def temp_blob(
        self, digest: str | None = None, *, size: int | None = None, verified_by_writer: bool = False
    ) -> Iterator[_BlobWriter]:
        """A writable, hashing temp file that becomes a blob when the block exits cleanly.

        On exit the content is checked against ``digest`` (and ``size``), fsynced and renamed to
        ``blobs/sha256/<hex>``; on an exception or a mismatch the temp file is removed. The final
        digest is in ``writer.digest`` afterwards. With ``verified_by_writer`` (only with a
        ``digest``) the content is not hashed again here: the writer (the registry client, which
        verifies every blob it fetches and raises before the block exits) already did.
        """
        if verified_by_writer and digest is None:
            raise ValueError("verified_by_writer needs the expected digest")
        if digest is not None:
            _split_digest(digest)
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        fobj, tmp = open_temp(self.blobs_dir, f"{TEMP_PREFIX}{os.getpid()}-")
        writer = _BlobWriter(fobj, hashing=not verified_by_writer)
        try:
            yield writer
            fobj.flush()
            os.fsync(fobj.fileno())
            fobj.close()
            actual = digest if verified_by_writer and digest else "sha256:" + writer.hash.hexdigest()
            if digest is not None and actual != digest:
                raise DigestMismatchError(
                    f"content for blob {digest} hashed to {actual}; nothing was stored",
                    hint="the source is corrupt or was changed while reading; try again",
                )
            if size is not None and writer.size != size:
                raise DigestMismatchError(
                    f"blob {actual} is {writer.size} bytes, but {size} were expected; nothing was stored"
                )
            os.replace(tmp, self.blobs_dir / actual.split(":", 1)[1])
            writer.digest = actual
        finally:
            if not fobj.closed:
                fobj.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def write_blob(
        self, digest: str | None, stream: BinaryIO | IO[bytes] | bytes, *, size: int | None = None
    ) -> str:
        """Store ``stream`` (or bytes) atomically and verified; return its digest.

        With a ``digest`` that is already cached, nothing is read or written.
        """
        if digest is not None and self.has_blob(digest):
            return digest
        with self.temp_blob(digest, size=size) as w:
            if isinstance(stream, bytes | bytearray | memoryview):
                w.write(bytes(stream))
            else:
                while chunk := stream.read(_CHUNK):
                    w.write(chunk)
        assert w.digest is not None
        return w.digest

    def sync(self) -> None:
        """fsync the blob directory so renames done so far survive a crash."""
        fsync_dir(self.blobs_dir)

    def blob_lock(self, digest: str) -> FlockLock:
        """An exclusive per-blob lock: hold it while checking for and fetching one blob."""
        _, hexpart = _split_digest(digest)
        return FlockLock(self.locks_dir / "blobs" / f"{hexpart}.lock", shared=False)

    def writer(self) -> FlockLock:
        """A shared lock held by writers for a whole pull or load; :meth:`prune` waits for it."""
        return FlockLock(self.locks_dir / "gc.lock", shared=True)

    # -- tag index -----------------------------------------------------------------------------

    def _tags_path(self, ref: Reference) -> Path:
        return self.refs_dir / ref.registry / ref.repository / TAGS_FILE

    def _repo_lock(self, ref: Reference) -> FlockLock:
        key = hashlib.sha256(ref.name.encode()).hexdigest()[:32]
        return FlockLock(self.locks_dir / "refs" / f"{key}.lock", shared=False)

    def _read_index(self, path: Path) -> dict[str, Any]:
        """The tag index at ``path``; a damaged one (or damaged rows) is logged and read as empty."""
        try:
            data = loads_bounded(path.read_bytes(), what=f"tag index {path}")
        except FileNotFoundError:
            return {"schemaVersion": 1, "tags": {}, "digests": {}}
        except (OSError, ManifestError) as e:
            log.warning("ignoring unreadable tag index %s: %s", path, e)
            return {"schemaVersion": 1, "tags": {}, "digests": {}}
        if not isinstance(data, dict):
            log.warning("ignoring tag index %s: not a JSON object", path)
            return {"schemaVersion": 1, "tags": {}, "digests": {}}
        tags, digests = data.get("tags"), data.get("digests")
        data["tags"] = {
            str(t): e
            for t, e in (tags.items() if isinstance(tags, dict) else ())
            if isinstance(e, dict) and isinstance(e.get("digest"), str)
        }
        data["digests"] = {
            str(d): i
            for d, i in (digests.items() if isinstance(digests, dict) else ())
            if isinstance(i, dict)
        }
        return data

    def _write_index(self, path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not data["tags"] and not data["digests"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        atomic_write(path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")

    def resolve_tag(self, ref: Reference) -> str | None:
        """The digest the local index holds for ``ref``'s tag (``latest`` if none), or None."""
        tag = ref.effective_tag
        if tag is None:
            return None
        entry = self._read_index(self._tags_path(ref))["tags"].get(tag)
        digest = entry.get("digest") if isinstance(entry, dict) else None
        return digest if isinstance(digest, str) else None

    def tag_entry(self, ref: Reference) -> TagEntry | None:
        """The full index entry for ``ref``'s tag, or None."""
        tag = ref.effective_tag
        if tag is None:
            return None
        data = self._read_index(self._tags_path(ref))
        entry = data["tags"].get(tag)
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            return None
        info = data["digests"].get(entry["digest"], {})
        return TagEntry(
            ref.name,
            tag,
            entry["digest"],
            _text(entry, "resolvedAt"),
            _text(info, "pulledAt"),
            _text(info, "source"),
        )

    def set_tag(
        self, ref: Reference, digest: str, *, source: str = "registry", resolved_at: str | None = None
    ) -> None:
        """Record that ``ref``'s tag points at ``digest`` (also records the digest itself).

        Call it only once every blob of the image is in the cache.
        """
        _split_digest(digest)
        now = resolved_at or utc_now()
        path = self._tags_path(ref)
        with self._repo_lock(ref):
            data = self._read_index(path)
            data["name"] = ref.name
            info = data["digests"].setdefault(digest, {})
            info.setdefault("pulledAt", now)
            info["source"] = source
            if ref.effective_tag is not None:
                data["tags"][ref.effective_tag] = {"digest": digest, "resolvedAt": now}
            self._write_index(path, data)

    def record_digest(self, ref: Reference, digest: str, *, source: str = "registry") -> None:
        """Record an image pulled by digest (so ``ls`` shows it and ``prune`` keeps it)."""
        _split_digest(digest)
        path = self._tags_path(ref)
        with self._repo_lock(ref):
            data = self._read_index(path)
            data["name"] = ref.name
            info = data["digests"].setdefault(digest, {})
            info.setdefault("pulledAt", utc_now())
            info.setdefault("source", source)
            self._write_index(path, data)

    def remove(self, ref: Reference) -> list[TagEntry]:
        """Forget ``ref``: a tag (and its digest if no other tag of the repository uses it), or a
        digest (and every tag pointing at it). Blobs go at the next :meth:`prune`. Returns what
        was removed."""
        path = self._tags_path(ref)
        removed: list[TagEntry] = []
        with self._repo_lock(ref):
            data = self._read_index(path)
            tags: dict[str, Any] = data["tags"]
            digests: dict[str, Any] = data["digests"]
            if ref.digest:
                targets = {ref.digest}
                if ref.tag and tags.get(ref.tag, {}).get("digest") != ref.digest:
                    targets = set()
            else:
                entry = tags.get(ref.effective_tag or "")
                targets = {entry["digest"]} if isinstance(entry, dict) else set()
            for tag, entry in list(tags.items()):
                if entry.get("digest") in targets and (ref.digest or tag == ref.effective_tag):
                    info = digests.get(entry["digest"], {})
                    removed.append(
                        TagEntry(
                            ref.name,
                            tag,
                            entry["digest"],
                            _text(entry, "resolvedAt"),
                            _text(info, "pulledAt"),
                            _text(info, "source"),
                        )
                    )
                    del tags[tag]
            still_tagged = {e.get("digest") for e in tags.values()}
            for digest in targets:
                if digest in digests and digest not in still_tagged:
                    info = digests.pop(digest)
                    if not any(r.digest == digest for r in removed):
                        removed.append(
                            TagEntry(
                                ref.name, None, digest, None, _text(info, "pulledAt"), _text(info, "source")
                            )
                        )
            self._write_index(path, data)
        return removed

    def entries_for(self, ref: Reference) -> list[TagEntry]:
        """The tags and digest-only images recorded for ``ref``'s repository."""
        return self._entries_in(self._tags_path(ref))

    def entries(self) -> list[TagEntry]:
        """Every tag and every digest-only image in the cache, sorted by name then tag."""
        out: list[TagEntry] = []
        if not self.refs_dir.is_dir():
            return out
        for path in sorted(self.refs_dir.rglob(TAGS_FILE)):
            out.extend(self._entries_in(path))
        return out

    def _entries_in(self, path: Path) -> list[TagEntry]:
        out: list[TagEntry] = []
        data = self._read_index(path)
        name = _text(data, "name") or str(path.parent.relative_to(self.refs_dir))
        digests: dict[str, Any] = data["digests"]
        tagged = set()
        for tag, entry in sorted(data["tags"].items()):
            if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
                continue
            tagged.add(entry["digest"])
            info = digests.get(entry["digest"], {})
            out.append(
                TagEntry(
                    name,
                    tag,
                    entry["digest"],
                    _text(entry, "resolvedAt"),
                    _text(info, "pulledAt"),
                    _text(info, "source"),
                )
            )
        for digest, info in sorted(digests.items()):
            if digest not in tagged:
                out.append(TagEntry(name, None, digest, None, _text(info, "pulledAt"), _text(info, "source")))
        return out

    # -- garbage collection (implemented in xplane.oci.cachegc) ---------------------------------

    def closure(self, digest: str, problems: list[str] | None = None) -> set[str]:
        """The digests reachable from ``digest`` that are in the cache (indexes, manifests,
        configs, layers), including ``digest`` itself when present. Damaged manifests are skipped
        and described in ``problems`` when given."""
        from xplane.oci.cachegc import closure

        return closure(self, digest, problems)

    def image_size(self, digest: str, problems: list[str] | None = None) -> int:
        """Bytes on disk of everything reachable from ``digest`` (``problems`` as for :meth:`closure`)."""
        from xplane.oci.cachegc import image_size

        return image_size(self, digest, problems)

    def prune(self, *, stale_after: float = STALE_TEMP_SECONDS, dry_run: bool = False) -> PruneResult:
        """Delete blobs no tag or recorded digest reaches, and temp files left by dead writers.

        Waits for running pulls and loads to finish (they hold :meth:`writer`). A temp file is
        stale when the process that made it is gone or it is older than ``stale_after`` seconds.
        """
        from xplane.oci.cachegc import prune

        return prune(self, stale_after=stale_after, dry_run=dry_run)

    def disk_usage(self) -> DiskUsage:
        """Count blobs and bytes, and how many of them :meth:`prune` would reclaim."""
        from xplane.oci.cachegc import disk_usage

        return disk_usage(self)

    def gc_lock(self) -> FlockLock:
        """The exclusive lock :meth:`prune` holds; it waits for every :meth:`writer`."""
        return FlockLock(self.locks_dir / "gc.lock", shared=False)


class _BlobWriter:
    """A file-like sink that hashes and counts what is written to it."""

    def __init__(self, f: IO[bytes], *, hashing: bool = True) -> None:
        self._f = f
        self._hashing = hashing
        self.hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None
        self._written_back = 0  # bytes handed to the kernel for early writeback

    def write(self, data: bytes) -> int:
        if self._hashing:
            self.hash.update(data)
        self.size += len(data)
        n = self._f.write(data)
        if self.size - self._written_back >= WRITEBACK_STEP:
            self._start_writeback()
        return n

    def _start_writeback(self) -> None:
        """Start writing the bytes since the last call to disk now, without waiting for them.

        The fsync before the rename then has only the tail left to wait for (on a 64 MiB layer
        it drops from ~20 ms to ~3 ms). ``POSIX_FADV_DONTNEED`` on a range of dirty pages starts
        their writeback and leaves them cached (pages under writeback are not dropped); it is
        the portable form of Linux's ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which PostgreSQL
        uses the same way. Where the call does not exist, the fsync simply does all the work.
        """
        start, self._written_back = self._written_back, self.size
        if _fadvise is None:
            return
        self._f.flush()
        with contextlib.suppress(OSError):
            _fadvise(self._f.fileno(), start, self.size - start, os.POSIX_FADV_DONTNEED)

    # Rewinding to the start (a client retrying a broken download) is supported; nothing else.
    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or offset != 0:
            raise OSError("a blob being written can only be rewound to its start")
        self._f.seek(0)
        self.hash = hashlib.sha256()
        self.size = 0
        self._written_back = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        self._f.truncate(self.size if size is None else size)
        return self.size


def _text(d: dict[str, Any], key: str) -> str | None:
    """``d[key]`` when it is a string (a hand-edited or damaged index may hold anything)."""
    value = d.get(key)
    return value if isinstance(value, str) else None


__all__ = [
    "MAX_JSON_BLOB_BYTES",
    "CacheProblem",
    "DiskUsage",
    "ImageCache",
    "PruneResult",
    "TagEntry",
    "atomic_write",
    "default_cache_root",
    "utc_now",
]
