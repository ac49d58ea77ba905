"""Reading response bodies with bounded memory: blobs streamed to disk, everything else capped.

The blob fast path: :func:`body_chunks` (the connection's own chunks, no re-chunking copies) and
:class:`BlobSink` (write and hash in one pass, hashing large blobs on a helper thread). Small
bodies — manifests, tag lists, tokens, error pages — are read with :func:`read_prefix`, which
stops at a cap and never reads further. A ``Content-Encoding`` (registries send none, a proxy
might) is decoded here in bounded steps, so a compressed body cannot inflate past what its reader
accepts in one go. Every chunk can be counted by a :class:`~xplane.oci.limits.TransferMeter`
(the pull deadline and the minimum transfer rate).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from xplane.oci.errors import ManifestError, RegistryError
from xplane.oci.models import new_hasher

if TYPE_CHECKING:
    from xplane.oci.limits import TransferMeter

READ_CHUNK = 1 << 20
THREADED_HASH_MIN = 8 << 20  # blobs at least this large are hashed on a helper thread
HASH_BATCH = 1 << 20  # bytes handed to that thread at a time
DECODE_STEP = 1 << 20  # most bytes one step of decoding a Content-Encoding may produce

Body = bytes | Callable[[], Iterable[bytes]] | None
"""A request body: bytes, or a factory of a fresh chunk iterator (called again on each retry)."""


class BlobSink:
    """Writes a blob body to ``dest`` and hashes it, in one pass over the data.

    With ``threaded`` (large blobs) the hashing runs on a helper thread, about 1 MiB at a time,
    while this thread receives and writes the next batch: hashlib releases the GIL, so on a
    64 MiB layer most of the ~40 ms of SHA-256 overlaps with the network reads and file writes.
    At most two batches are in flight, and batches are hashed in order.
    """

    def __init__(
        self,
        digest: str,
        dest: BinaryIO,
        progress: Callable[[int], None] | None,
        *,
        threaded: bool = False,
    ) -> None:
        self.hasher = new_hasher(digest)
        self.written = 0
        self._dest = dest
        self._progress = progress
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._pending: Future[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="xplane-hash") if threaded else None

    def write(self, chunk: bytes) -> None:
        """Write ``chunk`` to the destination and hash it (now, or on the helper thread)."""
        self._dest.write(chunk)
        self.written += len(chunk)
        if self._progress is not None:
            self._progress(len(chunk))
        if self._pool is None:
            self.hasher.update(chunk)
            return
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= HASH_BATCH:
            self._submit()

    def _submit(self) -> None:
        assert self._pool is not None
        if self._pending is not None:
            self._pending.result()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._pending = self._pool.submit(_hash_all, self.hasher, batch)

    def finish(self) -> None:
        """Wait until everything written so far is hashed."""
        if self._pool is None:
            return
        if self._batch:
            self._submit()
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def close(self) -> None:
        """Stop the helper thread (waits for a batch being hashed). Idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _hash_all(hasher: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


def content_length(resp: httpx.Response) -> int:
    """The response's ``Content-Length``, or 0 when it has none."""
    value = resp.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else 0


def body_chunks(resp: httpx.Response, meter: TransferMeter | None = None) -> Iterator[bytes]:
    """The body as the connection delivers it (no re-chunking copies), each raw chunk counted by
    ``meter``. A ``gzip`` or ``deflate`` ``Content-Encoding`` is decoded, at most
    :data:`DECODE_STEP` bytes per step; any other encoding is a :class:`RegistryError`."""
    if resp.is_stream_consumed:  # built in memory and read already (a transport stand-in's answer)
        content = resp.content
        if meter is not None:
            meter.add(len(content))
        if content:
            yield content
        return
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        for chunk in resp.iter_raw():
            if meter is not None:
                meter.add(len(chunk))
            yield chunk
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise _undecodable(resp, meter, f"unsupported Content-Encoding {encoding!r}")
    wbits = zlib.MAX_WBITS | 16 if encoding != "deflate" else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    first = True
    try:
        for chunk in resp.iter_raw():
            if meter is not None:
                meter.add(len(chunk))
            if first and encoding == "deflate" and chunk and (chunk[0] & 0x0F) != 8:
                decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
            first = False
            data = chunk
            while data and not decoder.eof:
                out = decoder.decompress(data, DECODE_STEP)
                if out:
                    yield out
                data = decoder.unconsumed_tail
        out = decoder.flush(DECODE_STEP)
        if out:
            yield out
    except zlib.error as e:
        raise _undecodable(resp, meter, f"its {encoding} encoding is corrupt ({e})") from None


def _undecodable(resp: httpx.Response, meter: TransferMeter | None, why: str) -> RegistryError:
    what = meter.what if meter is not None else "a response"
    registry = meter.registry if meter is not None else "the registry"
    return RegistryError(
        f"{what} from {registry} cannot be read: {why}",
        registry=registry,
        repository=meter.repository if meter is not None else None,
        status=resp.status_code,
        hint="a proxy between xplane and the registry may be altering responses",
    )


def read_prefix(resp: httpx.Response, limit: int, meter: TransferMeter | None = None) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether that was all of it. Reads no further."""
    buf = bytearray()
    for chunk in body_chunks(resp, meter):
        room = limit - len(buf)
        if len(chunk) > room:
            buf += chunk[:room]
            return bytes(buf), False
        buf += chunk
    return bytes(buf), True


TOO_LARGE_HINT = (
    "no real manifest, index, config or tag list is that large: the registry (or a proxy in front of it) "
    "is misbehaving; report it to its operator"
)


def read_limited(resp: httpx.Response, limit: int, what: str, meter: TransferMeter | None = None) -> bytes:
    """The whole (small) body; :class:`ManifestError` once it passes ``limit`` bytes."""
    data, complete = read_prefix(resp, limit, meter)
    if not complete:
        raise ManifestError(f"{what} is larger than {limit} bytes; refusing to read it", hint=TOO_LARGE_HINT)
    return data


def buffered(resp: httpx.Response, content: bytes) -> httpx.Response:
    """A copy of ``resp`` (status, headers, request) whose body is ``content``, already decoded."""
    dropped = (b"content-encoding", b"content-length")
    headers = [(k, v) for k, v in resp.headers.raw if k.lower() not in dropped]  # raw: any bytes pass
    return httpx.Response(
        resp.status_code,
        headers=headers,
        content=content,
        request=resp.request,
        extensions=resp.extensions,
        history=resp.history,
    )


def tell(f: BinaryIO) -> int | None:
    """``f``'s position when it can be rewound to it, else None."""
    try:
        return f.tell() if f.seekable() else None
    except (OSError, AttributeError, ValueError):
        return None


def rewind(f: BinaryIO, start: int | None) -> None:
    """Truncate ``f`` back to ``start`` (no-op for None)."""
    if start is None:
        return
    f.seek(start)
    f.truncate()


def chunks_of(source: Callable[[], BinaryIO], progress: Callable[[int], None] | None) -> Body:
    """A request body that reads ``source()`` afresh on each (re)try, reporting progress."""

    def factory() -> Iterator[bytes]:
        with source() as stream:
            while chunk := stream.read(READ_CHUNK):
                if progress is not None:
                    progress(len(chunk))
                yield chunk

    return factory


__all__ = [
    "HASH_BATCH",
    "READ_CHUNK",
    "THREADED_HASH_MIN",
    "BlobSink",
    "Body",
    "body_chunks",
    "buffered",
    "chunks_of",
    "content_length",
    "read_limited",
    "read_prefix",
    "rewind",
    "tell",
]
