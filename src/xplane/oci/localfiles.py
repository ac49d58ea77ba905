"""Images read from local files in passing, remembered by the file instead of by a tag.

``xp xpkg inspect FILE``, ``extract --from-xpkg FILE`` and ``build --embed-runtime-image-tarball``
read an image from a file the user keeps. Its blobs go into the image cache (that is where an
archive is verified, blob by blob), but no tag is recorded: a tag would list the image in ``xp cache
ls`` under a made-up name and keep its blobs from ``prune`` for a file the cache does not own.

Instead ``files/<hash of the path>.json`` under the cache root notes which image the file held at
which size and modification time (for an OCI layout directory: its ``index.json``'s). Reading an
unchanged file again takes the image straight from the cache, without opening the archive; a
changed file, or one whose blobs a prune removed, is simply loaded again. ``prune`` removes the
notes of images it swept (:func:`forget_missing`).

The image is untagged, so a concurrent prune may remove its blobs: callers hold
:meth:`ImageCache.writer` from the call until they are done reading the image.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from xplane.oci.archive import ArchiveLimits, load_archive
from xplane.oci.cache import ImageCache, atomic_write
from xplane.oci.cachegc import NOTES_DIR
from xplane.oci.errors import OCIError
from xplane.oci.imagepull import Image, image_from_cache
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.models import Platform
from xplane.oci.reference import Reference


def _stamp(path: Path) -> dict[str, int]:
    """What identifies the file's content cheaply: size and mtime (of ``index.json`` for a layout)."""
    index = path / "index.json"
    st = index.stat() if path.is_dir() and index.exists() else path.stat()
    return {"size": st.st_size, "mtimeNs": st.st_mtime_ns}


def _note_path(cache: ImageCache, path: Path, image_name: str | None) -> Path:
    key = f"{path}\0{image_name or ''}".encode()
    return cache.root / NOTES_DIR / f"{hashlib.sha256(key).hexdigest()[:32]}.json"


def _remembered(
    cache: ImageCache, note: Path, path: Path, stamp: dict[str, int], platform: Platform | None
) -> Image | None:
    try:
        doc: Any = loads_bounded(note.read_bytes(), what=f"file note {note}")
        if doc.get("path") != str(path) or doc.get("stamp") != stamp:
            return None
        ref = Reference.parse(str(doc["reference"]))
        digest = str(doc["digest"])
    except (OSError, ValueError, KeyError, AttributeError, TypeError, OCIError):
        return None  # no note, or a damaged one: load the file again
    return image_from_cache(cache, ref, digest, platform)


def load_file(
    path: Path | str,
    *,
    cache: ImageCache,
    platform: Platform | str | None = None,
    image_name: str | None = None,
    limits: ArchiveLimits | None = None,
) -> Image:
    """The image in the tarball, OCI archive or layout at ``path``, in ``cache`` but untagged.

    ``image_name`` picks one image of a file holding several (a RepoTag or an OCI ref name).
    Hold ``cache.writer()`` around the call and every read of the image (see the module notes).
    """
    path = Path(path).resolve()
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    stamp = _stamp(path)
    note = _note_path(cache, path, image_name)
    hit = _remembered(cache, note, path, stamp, plat)
    if hit is not None:
        return hit
    image = load_archive(path, image_name, cache=cache, platform=plat, limits=limits, record=False)
    doc = {"path": str(path), "stamp": stamp, "reference": str(image.reference), "digest": image.digest}
    note.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(note, json.dumps(doc).encode())
    return image


__all__ = ["load_file"]
