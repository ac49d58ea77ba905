"""Parsed packages cached by digest, so a package's YAML is decoded once per machine.

Decoding a large provider's ``package.yaml`` takes seconds; reading the decoded tree back as JSON
takes a few percent of that. Entries live under ``<cache root>/parsed/sha256/<hex>``:

    xplane-parsed/<FORMAT_VERSION>/<LOADER_VERSION>\\n<codec byte><payload>

The first line is a version stamp: a change of the file format or of the YAML rules
(:data:`LOADER_VERSION`) turns every older entry into a miss. The payload is ``orjson`` (codec
``o``), or the standard library's ``json`` (codec ``j``) for the rare tree holding an integer
outside 64 bits. Writes are atomic (a temporary file renamed into place); an unreadable entry is a
miss and is removed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from xplane.oci.cache import default_cache_root
from xplane.xpkg.errors import PackageError
from xplane.xpkg.stream import Document, DocumentStream, parse_stream
from xplane.xpkg.yamlk8s import YAMLWarning, no_gc

__all__ = ["FORMAT_VERSION", "LOADER_VERSION", "ParsedCache"]

log = logging.getLogger(__name__)

#: Version of the entry layout below the stamp line.
FORMAT_VERSION = 1
#: Version of the decoding rules (bump when :mod:`xplane.xpkg.yamlk8s` changes its results).
LOADER_VERSION = 1

_STAMP = f"xplane-parsed/{FORMAT_VERSION}/{LOADER_VERSION}\n".encode()
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})\Z")


def _encode(stream: DocumentStream) -> bytes:
    tree = {
        "documents": [[d.doc, d.file, d.line, d.column, d.offset] for d in stream.documents],
        "warnings": [[w.file, w.line, w.column, w.message, w.key] for w in stream.warnings],
    }
    try:
        return b"o" + orjson.dumps(tree)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits (an integral float >= 2**64)
        return b"j" + json.dumps(tree, separators=(",", ":")).encode()


def _decode(payload: memoryview) -> DocumentStream:
    codec, body = bytes(payload[:1]), payload[1:]
    if codec == b"o":
        tree: Any = orjson.loads(body)
    elif codec == b"j":
        tree = json.loads(bytes(body))
    else:
        raise ValueError(f"unknown codec {codec!r}")
    docs = tuple(Document(doc, file, line, col, off) for doc, file, line, col, off in tree["documents"])
    warns = tuple(YAMLWarning(f, ln, col, msg, key) for f, ln, col, msg, key in tree["warnings"])
    return DocumentStream(docs, warns)


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
        """The cached stream for ``digest``, or None (absent, from another version, or damaged)."""
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("cannot read parsed-package cache entry %s: %s", path, e)
            return None
        if not data.startswith(_STAMP):
            log.debug("parsed-package cache entry %s is from another version; ignoring it", path)
            return None
        try:
            with no_gc():
                return _decode(memoryview(data)[len(_STAMP) :])
        except (ValueError, KeyError, TypeError) as e:
            log.warning("parsed-package cache entry %s is damaged (%s); removing it", path, e)
            path.unlink(missing_ok=True)
            return None

    def put(self, digest: str, stream: DocumentStream) -> Path:
        """Store ``stream`` for ``digest`` atomically; return the entry's path."""
        path = self.path(digest)
        payload = _encode(stream)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".parsed")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_STAMP)
                f.write(payload)
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
