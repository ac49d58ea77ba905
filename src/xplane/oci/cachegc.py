"""Garbage collection and disk usage for :class:`~xplane.oci.cache.ImageCache`.

Reachability starts at every tag and recorded digest of every repository's ``_tags.json`` and
follows indexes and manifests to their children (configs, layers, subjects). :func:`prune` holds
``locks/gc.lock`` exclusively, so it waits for every pull or load in progress (they hold it
shared for their whole run) and never sweeps the blobs of an image that is half written. Temp
files are removed only when their writer is gone (its pid, which is part of the name, no longer
exists) or they are older than ``stale_after`` seconds.

Only manifests and indexes are read, and only up to :data:`~xplane.oci.cache.MAX_JSON_BLOB_BYTES`:
a child is read when its descriptor's media type says it is one; the top of an entry (a tag or a
recorded digest names a manifest or an index) when it is no larger than that. Configs have no children and layers are never
opened; sizes come from ``stat``. (Reading every reachable blob whole made ``xp cache ls`` take
636 MB for a cache holding one 300 MiB layer, and deep JSON in any of them crashed it.)

A damaged entry (a manifest that is not valid JSON, nests too deep or is too large; a digest the
cache cannot hold) does not stop a walk: it is skipped and described in ``problems``, which
:func:`prune` and :func:`disk_usage` return and ``xp cache`` prints as warnings. Prune keeps such
an entry's top blob; blobs only it would have reached are swept.

Callers use the :class:`ImageCache` methods (``prune``, ``disk_usage``, ``closure``,
``image_size``), which delegate here.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from xplane.oci.cache import (
    STALE_TEMP_SECONDS,
    TEMP_PREFIX,
    CacheProblem,
    DiskUsage,
    PruneResult,
)
from xplane.oci.errors import OCIError
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.models import INDEX_TYPES, MANIFEST_TYPES
from xplane.oci.reference import Digest

if TYPE_CHECKING:
    from xplane.oci.cache import ImageCache


NOTES_DIR = "files"  # under the cache root: notes of images read from files (xplane.oci.localfiles)


def closure(cache: ImageCache, digest: str, problems: list[str] | None = None) -> set[str]:
    """The digests reachable from ``digest`` that are in ``cache``, ``digest`` included.

    Reads manifests and indexes only (see the module notes). What cannot be read is skipped and
    described in ``problems`` when given.
    """
    seen: set[str] = set()
    todo: list[tuple[str, str | None]] = [(digest, None)]  # (digest, media type from its descriptor)
    while todo:
        d, media_type = todo.pop()
        if d in seen:
            continue
        try:
            size = cache.blob_size(d)
        except OCIError as e:  # not a digest the cache can hold (e.g. sha512): nothing to keep
            _note(problems, e.message)
            continue
        if size is None:
            continue
        seen.add(d)
        if media_type is not None and media_type not in MANIFEST_TYPES:
            continue  # a config, a layer or another blob: no children, never read
        try:
            doc = cache.read_json(d, what=f"cached {_kind(media_type)} {d}", verify=False)
        except (OCIError, OSError) as e:
            _note(problems, e.message if isinstance(e, OCIError) else f"cannot read cached blob {d}: {e}")
            continue
        todo.extend(child_descriptors(doc))
    return seen


def _kind(media_type: str | None) -> str:
    return "index" if media_type in INDEX_TYPES else "manifest"


def _note(problems: list[str] | None, text: str) -> None:
    if problems is not None and text not in problems:
        problems.append(text)


def referenced(cache: ImageCache, problems: list[CacheProblem] | None = None) -> set[str]:
    """Every digest some tag or recorded digest of the cache reaches; damaged entries go to ``problems``."""
    live: set[str] = set()
    for entry in cache.entries():
        if entry.digest not in live:
            found: list[str] = []
            live |= closure(cache, entry.digest, found)
            where = f"{entry.name}:{entry.tag}" if entry.tag else f"{entry.name}@{entry.digest}"
            if problems is not None:
                problems.extend(CacheProblem(where, text) for text in found)
    return live


def image_size(cache: ImageCache, digest: str, problems: list[str] | None = None) -> int:
    """Bytes on disk of everything reachable from ``digest`` (``problems`` as in :func:`closure`)."""
    return sum(cache.blob_size(d) or 0 for d in closure(cache, digest, problems))


def prune(
    cache: ImageCache, *, stale_after: float = STALE_TEMP_SECONDS, dry_run: bool = False
) -> PruneResult:
    """Delete unreachable blobs and stale temp files (see the module docstring)."""
    removed = freed = temps = 0
    problems: list[CacheProblem] = []
    with cache.gc_lock():
        live = referenced(cache, problems)
        if cache.blobs_dir.is_dir():
            now = time.time()
            for path in cache.blobs_dir.iterdir():
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if path.name.startswith(TEMP_PREFIX):
                    if temp_is_stale(path.name, st.st_mtime, now, stale_after):
                        temps += 1
                        if not dry_run:
                            path.unlink(missing_ok=True)
                    continue
                if "sha256:" + path.name in live:
                    continue
                removed += 1
                freed += st.st_size
                if not dry_run:
                    path.unlink(missing_ok=True)
        if not dry_run:
            shutil.rmtree(cache.locks_dir / "blobs", ignore_errors=True)
            forget_missing(cache)  # notes of file images whose blobs were just swept
    return PruneResult(blobs=removed, bytes=freed, temp_files=temps, problems=tuple(problems))


def forget_missing(cache: ImageCache) -> int:
    """Remove the notes of file images (:mod:`xplane.oci.localfiles`) whose top blob is gone; return how many."""
    removed = 0
    notes = cache.root / NOTES_DIR
    for note in notes.glob("*.json") if notes.is_dir() else ():
        try:
            digest = str(loads_bounded(note.read_bytes(), what=f"file note {note}")["digest"])
            gone = not cache.has_blob(digest)
        except (OSError, ValueError, KeyError, TypeError, OCIError):
            gone = True
        if gone:
            note.unlink(missing_ok=True)
            removed += 1
    return removed


def disk_usage(cache: ImageCache) -> DiskUsage:
    """Count blobs and bytes, and how many of them :func:`prune` would reclaim."""
    problems: list[CacheProblem] = []
    live = referenced(cache, problems)
    count = total = ref_bytes = temp_bytes = 0
    if cache.blobs_dir.is_dir():
        for path in cache.blobs_dir.iterdir():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if path.name.startswith(TEMP_PREFIX):
                temp_bytes += size
                continue
            count += 1
            total += size
            if "sha256:" + path.name in live:
                ref_bytes += size
    images = len({(e.name, e.digest) for e in cache.entries()})
    return DiskUsage(
        str(cache.root), count, total, ref_bytes, total - ref_bytes, temp_bytes, images, tuple(problems)
    )


def children(doc: Any) -> list[str]:
    """The digests a manifest or index refers to (nothing for other JSON)."""
    return [d for d, _ in child_descriptors(doc)]


def child_descriptors(doc: Any) -> list[tuple[str, str | None]]:
    """``(digest, mediaType)`` of every descriptor a manifest or index refers to (none for other JSON)."""
    if not isinstance(doc, dict):
        return []
    out: list[tuple[str, str | None]] = []
    descs: list[Any] = []
    if isinstance(doc.get("manifests"), list):
        descs.extend(doc["manifests"])
    if isinstance(doc.get("layers"), list):
        descs.extend(doc["layers"])
    if isinstance(doc.get("config"), dict) and "digest" in doc["config"]:
        descs.append(doc["config"])
    if isinstance(doc.get("subject"), dict):
        descs.append(doc["subject"])
    for d in descs:
        if isinstance(d, dict) and isinstance(d.get("digest"), str) and Digest.is_digest(d["digest"]):
            media_type = d.get("mediaType")
            out.append((d["digest"], media_type if isinstance(media_type, str) else ""))
    return out


def temp_is_stale(name: str, mtime: float, now: float, stale_after: float) -> bool:
    """True when the temp file ``name`` is older than ``stale_after`` or its writer is gone."""
    if now - mtime > stale_after:
        return True
    try:
        pid = int(name[len(TEMP_PREFIX) :].split("-", 1)[0])
    except ValueError:
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


__all__ = [
    "child_descriptors",
    "children",
    "closure",
    "disk_usage",
    "image_size",
    "prune",
    "referenced",
    "temp_is_stale",
]
