"""Garbage collection and disk usage for :class:`~xplane.oci.cache.ImageCache`.

Reachability starts at every tag and recorded digest of every repository's ``_tags.json`` and
follows indexes and manifests to their children (configs, layers, subjects). :func:`prune` holds
``locks/gc.lock`` exclusively, so it waits for every pull or load in progress (they hold it
shared for their whole run) and never sweeps the blobs of an image that is half written. Temp
files are removed only when their writer is gone (its pid, which is part of the name, no longer
exists) or they are older than ``stale_after`` seconds.

Callers use the :class:`ImageCache` methods (``prune``, ``disk_usage``, ``closure``,
``image_size``), which delegate here.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from xplane.oci.cache import STALE_TEMP_SECONDS, TEMP_PREFIX, DiskUsage, PruneResult
from xplane.oci.reference import Digest

if TYPE_CHECKING:
    from xplane.oci.cache import ImageCache


def closure(cache: ImageCache, digest: str) -> set[str]:
    """The digests reachable from ``digest`` that are in ``cache``, ``digest`` included."""
    seen: set[str] = set()
    todo = [digest]
    while todo:
        d = todo.pop()
        if d in seen or not cache.has_blob(d):
            continue
        seen.add(d)
        try:
            doc = json.loads(cache.read_blob(d, verify=False))
        except (ValueError, OSError):
            continue
        todo.extend(children(doc))
    return seen


def referenced(cache: ImageCache) -> set[str]:
    """Every digest some tag or recorded digest of the cache reaches."""
    live: set[str] = set()
    for entry in cache.entries():
        if entry.digest not in live:
            live |= closure(cache, entry.digest)
    return live


def image_size(cache: ImageCache, digest: str) -> int:
    """Bytes on disk of everything reachable from ``digest``."""
    return sum(cache.blob_size(d) or 0 for d in closure(cache, digest))


def prune(
    cache: ImageCache, *, stale_after: float = STALE_TEMP_SECONDS, dry_run: bool = False
) -> PruneResult:
    """Delete unreachable blobs and stale temp files (see the module docstring)."""
    removed = freed = temps = 0
    with cache.gc_lock():
        live = referenced(cache)
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
            from xplane.oci.localfiles import forget_missing

            forget_missing(cache)  # notes of file images whose blobs were just swept
    return PruneResult(blobs=removed, bytes=freed, temp_files=temps)


def disk_usage(cache: ImageCache) -> DiskUsage:
    """Count blobs and bytes, and how many of them :func:`prune` would reclaim."""
    live = referenced(cache)
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
    return DiskUsage(str(cache.root), count, total, ref_bytes, total - ref_bytes, temp_bytes, images)


def children(doc: Any) -> list[str]:
    """The digests a manifest or index refers to (nothing for other JSON)."""
    if not isinstance(doc, dict):
        return []
    out: list[str] = []
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
            out.append(d["digest"])
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


__all__ = ["children", "closure", "disk_usage", "image_size", "prune", "referenced", "temp_is_stale"]
