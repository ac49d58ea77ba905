"""Parsed packages cached by digest, so a package's YAML is decoded once per machine.

Decoding a large provider's ``package.yaml`` takes seconds. An entry stores every document as its
own JSON payload behind a small index, so reading a package back costs reading the index: a
document's value is decoded only when something asks for it (``Document.doc``). Inspecting a
package (its meta object and object counts) or looking up one CRD touches a fraction of the bytes.

Entries live under ``<cache root>/parsed/sha256/<hex>``::

    xplane-parsed/<FORMAT_VERSION>/<LOADER_VERSION>\\n
    <index length> <crc32 of the index, 8 hex digits>\\n
    <index: JSON>
    <payloads, back to back>

The first line is a version stamp: a change of the layout or of the YAML rules
(:data:`LOADER_VERSION`) turns every older entry into a miss. The index holds the payloads' total
size, the warnings, and per document its ``apiVersion``, ``kind``, ``metadata.name``, file, line,
column, offset, and its payload's start, length, codec (``o``: ``orjson``; ``j``: the standard
library's ``json``, for the rare value holding an integer beyond 64 bits) and CRC-32.

Writes are atomic (a temporary file renamed into place). An entry whose stamp, index or size is
wrong is a miss and is removed. A payload found damaged later, when its document is decoded, raises
:class:`~xplane.xpkg.errors.PackageError` naming the entry, and the entry is removed: a damaged
entry never yields a wrong value.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from xplane.oci import default_cache_root
from xplane.xpkg.errors import PackageError
from xplane.xpkg.yaml import Document, DocumentStream, YAMLWarning, no_gc, parse_stream

__all__ = ["FORMAT_VERSION", "LOADER_VERSION", "ParsedCache"]

log = logging.getLogger(__name__)

#: Version of the entry layout below the stamp line.
FORMAT_VERSION = 2
#: Version of the decoding rules (bump when :mod:`xplane.xpkg.yaml` changes what any input decodes to).
LOADER_VERSION = 2

_STAMP = f"xplane-parsed/{FORMAT_VERSION}/{LOADER_VERSION}\n".encode()
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})\Z")
_INDEX_LINE = re.compile(rb"([0-9]{1,12}) ([0-9a-f]{8})\n")
_ROW_TYPES: tuple[type | tuple[type, ...], ...] = (
    str,
    str,
    str,
    (str, type(None)),
    (int, type(None)),
    (int, type(None)),
    int,
    int,
    int,
    str,
    int,
)


class _Damaged(ValueError):
    """An entry's layout is wrong (found while opening it)."""


def _payload(doc: Any) -> tuple[bytes, str]:
    try:
        return orjson.dumps(doc), "o"
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits (an integral float >= 2**64)
        return json.dumps(doc, separators=(",", ":")).encode(), "j"


def _encode(stream: DocumentStream) -> list[bytes]:
    """The entry's parts after the stamp: index line, index, payloads."""
    rows: list[list[Any]] = []
    payloads: list[bytes] = []
    pos = 0
    for d in stream.documents:
        data, codec = _payload(d.doc)
        meta = [d.api_version, d.kind, d.name, d.file, d.line, d.column, d.offset]
        rows.append([*meta, pos, len(data), codec, zlib.crc32(data)])
        payloads.append(data)
        pos += len(data)
    warnings = [[w.file, w.line, w.column, w.message, w.key] for w in stream.warnings]
    index = orjson.dumps({"size": pos, "documents": rows, "warnings": warnings})
    head = f"{len(index)} {zlib.crc32(index):08x}\n".encode()
    return [head, index, *payloads]


class _Entry:
    """An opened cache entry: its bytes and index; decodes one document's payload on request."""

    __slots__ = ("base", "data", "path", "rows", "stat", "warnings")

    def __init__(self, path: Path, data: bytes, stat: os.stat_result) -> None:
        self.path = path
        self.data = data
        self.stat = stat
        m = _INDEX_LINE.match(data, len(_STAMP))
        if m is None:
            raise _Damaged("no index line")
        length, crc = int(m.group(1)), int(m.group(2), 16)
        start = m.end()
        index = memoryview(data)[start : start + length]
        if len(index) != length or zlib.crc32(index) != crc:
            raise _Damaged("index checksum mismatch")
        tree = orjson.loads(index)
        self.base = start + length
        if tree["size"] != len(data) - self.base:
            raise _Damaged(f"payloads hold {len(data) - self.base} bytes, the index says {tree['size']}")
        self.rows: list[list[Any]] = tree["documents"]
        self.warnings = tuple(YAMLWarning(f, ln, col, msg, key) for f, ln, col, msg, key in tree["warnings"])
        for row in self.rows:
            if len(row) != len(_ROW_TYPES) or not all(
                isinstance(v, t) for v, t in zip(row, _ROW_TYPES, strict=True)
            ):
                raise _Damaged(f"malformed index row {row!r:.100}")
            if row[8] < 0 or row[7] < 0 or row[7] + row[8] > tree["size"] or row[9] not in ("o", "j"):
                raise _Damaged("index row points outside the payloads")

    def stream(self) -> DocumentStream:
        """Lazy documents over the payloads."""
        docs = tuple(
            Document.lazy(
                functools.partial(self.decode, i),
                api_version=av,
                kind=kind,
                name=name,
                file=file,
                line=line,
                column=col,
                offset=off,
            )
            for i, (av, kind, name, file, line, col, off, *_) in enumerate(self.rows)
        )
        return DocumentStream(docs, self.warnings)

    def decode(self, i: int) -> Any:
        """Document ``i``'s value; raises :class:`PackageError` (and drops the entry) if damaged."""
        av, kind, name, *_, start, length, codec, crc = self.rows[i]
        lo = self.base + start
        view = memoryview(self.data)[lo : lo + length]
        if zlib.crc32(view) != crc:
            raise self._damaged(i, "checksum mismatch")
        try:
            with no_gc():
                doc = orjson.loads(view) if codec == "o" else json.loads(bytes(view))
        except ValueError as e:
            raise self._damaged(i, f"undecodable payload: {e}") from None
        got = Document(doc)
        if (got.api_version, got.kind, got.name) != (av, kind, name):
            raise self._damaged(i, "payload does not match the index")
        return doc

    def _damaged(self, i: int, reason: str) -> PackageError:
        row = self.rows[i]
        where = ":".join(str(p) for p in (row[3] or "<input>", row[4], row[5]) if p is not None)
        try:  # remove it unless another process has replaced it since it was read
            st = self.path.stat()
            if (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size) == (
                self.stat.st_ino,
                self.stat.st_dev,
                self.stat.st_mtime_ns,
                self.stat.st_size,
            ):
                self.path.unlink()
            removed = "it has been removed"
        except OSError as e:
            removed = f"removing it failed: {e.strerror or e}"
        log.warning("parsed-package cache entry %s is damaged (%s); %s", self.path, reason, removed)
        return PackageError(
            f"parsed-package cache entry {self.path} is damaged: document {i + 1} of {len(self.rows)} "
            f"({where}): {reason}; {removed}",
            hint="read the package again; it will be decoded from its image",
        )


class ParsedCache:
    """Decoded package streams keyed by the digest of the package image (or of its YAML)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root() / "parsed"

    def __repr__(self) -> str:
        return f"ParsedCache({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        """Where the entry for ``digest`` (``sha256:<hex>``) lives."""
        m = _DIGEST.match(digest)
        if m is None:
            raise PackageError(
                f"invalid digest {digest!r} for the parsed-package cache",
                hint="expected sha256: followed by 64 lowercase hex digits",
            )
        return self.root / "sha256" / m.group(1)

    def get(self, digest: str) -> DocumentStream | None:
        """The cached stream for ``digest``, or None (absent, from another version, or damaged).

        Only the entry's index is decoded here; each document's value is decoded on first use
        and raises :class:`PackageError` if its payload turns out to be damaged.
        """
        path = self.path(digest)
        try:
            with path.open("rb") as f:
                stat = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("cannot read parsed-package cache entry %s: %s", path, e)
            return None
        if not data.startswith(_STAMP):
            if data.startswith(b"xplane-parsed/"):
                log.debug("parsed-package cache entry %s is from another version; ignoring it", path)
                return None
            log.warning("parsed-package cache entry %s is not a cache entry; removing it", path)
            path.unlink(missing_ok=True)
            return None
        try:
            return _Entry(path, data, stat).stream()
        except (ValueError, KeyError, TypeError) as e:
            log.warning("parsed-package cache entry %s is damaged (%s); removing it", path, e)
            path.unlink(missing_ok=True)
            return None

    def put(self, digest: str, stream: DocumentStream) -> Path:
        """Store ``stream`` for ``digest`` atomically; return the entry's path."""
        path = self.path(digest)
        parts = _encode(stream)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".parsed")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_STAMP)
                f.writelines(parts)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def load(
        self, digest: str, read: Callable[[], bytes], *, file: str | None = "package.yaml"
    ) -> DocumentStream:
        """The cached stream for ``digest``; on a miss, parse ``read()`` and cache the result.

        A stream that fails to parse raises :class:`YAMLError` and is not cached.
        """
        hit = self.get(digest)
        if hit is not None:
            return hit
        stream = parse_stream(read(), file=file)
        try:
            self.put(digest, stream)
        except OSError as e:  # a read-only or full cache must not fail the read
            log.warning("cannot write parsed-package cache entry for %s: %s", digest, e)
        return stream

    def remove(self, digest: str) -> bool:
        """Drop the entry for ``digest``; True if there was one."""
        path = self.path(digest)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed
