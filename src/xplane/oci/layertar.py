"""Reading a layer blob as a tar stream: compression told by its magic bytes, entries not retained.

Both layer readers (xpkg's search for ``package.yaml`` and render's rootfs unpacker) and the
docker-save loader's media-type sniffing use these, so a layer is recognised the same way
everywhere: gzip (``1f 8b``), zstd (``28 b5 2f fd``, not readable yet), else an uncompressed tar.
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ZstdLayerError(Exception):
    """The layer is zstd-compressed, which xplane cannot decompress yet (callers say where)."""


def layer_compression(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` for a blob whose first bytes are ``head`` (at least 4)."""
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:4] == ZSTD_MAGIC:
        return "zstd"
    return "none"


def open_layer(path: Path) -> IO[bytes]:
    """The uncompressed tar bytes of the layer blob at ``path``.

    Raises :class:`OSError` when the file cannot be opened, :class:`ZstdLayerError` for zstd.
    """
    f = path.open("rb")
    kind = layer_compression(f.read(4))
    f.seek(0)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        f.close()
        raise ZstdLayerError(f"{path.name} is zstd-compressed")
    return f


class StreamingTar(tarfile.TarFile):
    """A forward-only tar reader that keeps no list of the entries it has passed.

    ``TarFile`` appends every entry it reads to ``members`` (for random access), even in stream
    mode, where it can never seek back; this reader drops them as it goes, so memory stays flat
    however many entries a (hostile) layer holds. Open it with ``mode="r|"``.
    """

    def next(self) -> tarfile.TarInfo | None:
        member = super().next()
        self.members.clear()  # type: ignore[attr-defined]  # undeclared in typeshed
        return member


__all__ = ["GZIP_MAGIC", "ZSTD_MAGIC", "StreamingTar", "ZstdLayerError", "layer_compression", "open_layer"]
