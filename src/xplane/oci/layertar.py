"""Reading a layer blob as a tar stream: compression told by its magic bytes, entries not retained.

Both layer readers (xpkg's search for ``package.yaml`` and render's rootfs unpacker) and the
docker-save loader's media-type sniffing use these, so a layer is recognised the same way
everywhere: gzip (``1f 8b``), zstd (``28 b5 2f fd``; frames read one after another, the window
bounded at 128 MiB), else an uncompressed tar. Callers bound what they read (entries, bytes).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import IO

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: The largest zstd window a layer may ask for (zstd's own default limit): its decoder's memory.
ZSTD_MAX_WINDOW = 1 << 27


def zstd_decompressor() -> zstandard.ZstdDecompressor:
    """A zstd decompressor whose window (its memory) is bounded by :data:`ZSTD_MAX_WINDOW`."""
    return zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)


class CorruptLayerError(OSError):
    """A compressed layer stream is damaged (raised while reading it)."""


class ZstdReader(io.RawIOBase):
    """The decompressed bytes of a zstd stream (all its frames); damage is a :class:`CorruptLayerError`."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._reader = zstd_decompressor().stream_reader(raw, read_across_frames=True)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._reader.read(len(buffer))
        except zstandard.ZstdError as e:
            raise CorruptLayerError(f"not a valid zstd stream: {e}") from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()  # type: ignore[no-untyped-call]
            self._raw.close()
        super().close()


def layer_compression(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` for a blob whose first bytes are ``head`` (at least 4)."""
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:4] == ZSTD_MAGIC:
        return "zstd"
    return "none"


def open_layer(path: Path) -> IO[bytes]:
    """The uncompressed tar bytes of the layer blob at ``path``.

    Raises :class:`OSError` when the file cannot be opened; reading a damaged stream raises
    :class:`CorruptLayerError` (zstd), ``gzip.BadGzipFile`` (an ``OSError``) or :class:`EOFError` (gzip).
    """
    f = path.open("rb")
    kind = layer_compression(f.read(4))
    f.seek(0)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        return io.BufferedReader(ZstdReader(f), buffer_size=1 << 16)
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


__all__ = [
    "GZIP_MAGIC",
    "ZSTD_MAGIC",
    "ZSTD_MAX_WINDOW",
    "CorruptLayerError",
    "StreamingTar",
    "ZstdReader",
    "layer_compression",
    "open_layer",
    "zstd_decompressor",
]
