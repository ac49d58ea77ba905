"""The cold-pull fast path: threaded hashing of large blobs, raw body chunks, early writeback,
a plain-HTTP session's deferred trust store, the httpx import guard, and the GC module split."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.oci.test_client import FAST, make_client, plain
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryServer
from xplane.oci import cachegc
from xplane.oci.bodies import THREADED_HASH_MIN, BlobSink, body_chunks
from xplane.oci.cache import TEMP_PREFIX, WRITEBACK_STEP, ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.errors import DigestMismatchError, TLSError
from xplane.oci.imagepull import Image, PullPolicy, pull
from xplane.oci.models import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, sha256_digest
from xplane.oci.reference import Reference
from xplane.oci.settings import RegistrySettings
from xplane.oci.tlscontext import DeferredTrustContext
from xplane.oci.transport import HostSession

BIG = THREADED_HASH_MIN + (1 << 20) + 12345  # over the threshold, not a multiple of any chunk size


@pytest.fixture(scope="module")
def big_blob() -> bytes:
    return os.urandom(BIG)


def push_big_image(client: RegistryClient, ref: Reference, layer: bytes) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    for data in (layer, config):
        client.push_blob(ref, sha256_digest(data), len(data), lambda d=data: io.BytesIO(d))  # type: ignore[misc]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(layer), "size": len(layer)}],
        }
    ).encode()
    return client.put_manifest(ref, manifest, OCI_MANIFEST)


def hash_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("xplane-hash")]


# -- threaded hashing against a real registry ------------------------------------------------


def test_large_blob_is_hashed_on_a_helper_thread(
    registry_plain: RegistryServer, unique_repo: str, big_blob: bytes
) -> None:
    ref = Reference.parse(registry_plain.ref(unique_repo, "v1"))
    digest = sha256_digest(big_blob)
    seen_threads: list[str] = []
    progress: list[int] = []

    def on_progress(n: int) -> None:
        progress.append(n)
        if sum(progress) > 3 << 20 and not seen_threads:
            seen_threads.extend(hash_threads())

    with make_client(plain(registry_plain.host)) as client:
        push_big_image(client, ref, big_blob)
        buf = io.BytesIO()
        assert client.fetch_blob(ref, digest, buf, progress=on_progress) == BIG
    assert buf.getvalue() == big_blob
    assert sum(progress) == BIG
    assert seen_threads, "a blob over THREADED_HASH_MIN should be hashed on an xplane-hash thread"
    assert not hash_threads(), "the helper thread must be gone once the blob is fetched"


def test_large_blob_corrupted_or_truncated(
    registry_plain: RegistryServer, fault_proxy: FaultProxy, unique_repo: str, big_blob: bytes
) -> None:
    with make_client(plain(registry_plain.host)) as client:
        push_big_image(client, Reference.parse(registry_plain.ref(unique_repo, "v1")), big_blob)
    ref = Reference.parse(fault_proxy.ref(unique_repo, "v1"))
    digest = sha256_digest(big_blob)
    with make_client(plain(fault_proxy.host), retry=FAST) as client:
        fault_proxy.corrupt(r"/blobs/sha256:", times=None)
        buf = io.BytesIO(b"kept ")
        buf.seek(0, io.SEEK_END)
        with pytest.raises(DigestMismatchError, match=digest):
            client.fetch_blob(ref, digest, buf)
        assert buf.getvalue() == b"kept "
        fault_proxy.reset()
        fault_proxy.truncate(r"/blobs/sha256:", times=1)
        progress: list[int] = []
        buf = io.BytesIO()
        assert client.fetch_blob(ref, digest, buf, progress=progress.append) == BIG
        assert buf.getvalue() == big_blob and sum(progress) == BIG
    assert not hash_threads()


def test_pull_large_layer_into_cache(
    registry_plain: RegistryServer, fault_proxy: FaultProxy, unique_repo: str, big_blob: bytes, tmp_path: Path
) -> None:
    ref = Reference.parse(fault_proxy.ref(unique_repo, "v1"))
    with make_client(plain(fault_proxy.host)) as client:
        top = push_big_image(client, ref, big_blob)
    fault_proxy.reset()
    cache = ImageCache(tmp_path / "cache")

    def pull_once(_: int) -> Image:
        with make_client(plain(fault_proxy.host)) as client:
            return pull(ref, cache=cache, client=client, policy=PullPolicy.ALWAYS)

    # four processes' worth of concurrent pulls of one image into one cache
    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(pull_once, range(4)))
    image = images[0]
    assert {i.digest for i in images} == {top}
    assert image.layer_path(0).read_bytes() == big_blob
    assert cache.verify_blob(image.layers[0].digest)
    assert not [p for p in cache.blobs_dir.iterdir() if p.name.startswith(TEMP_PREFIX)]
    # the large layer crossed the network once: the other pulls waited for it and found it cached
    assert fault_proxy.count(f"/blobs/{image.layers[0].digest}", method="GET") == 1


# -- BlobSink and body_chunks without a registry -----------------------------------------------


@pytest.mark.parametrize("threaded", [False, True])
def test_blob_sink_hashes_everything_in_order(threaded: bool) -> None:
    data = os.urandom(5 << 20)
    sizes = [1, 65536, 3, 1 << 20, 70000, 2 << 20]
    chunks, pos = [], 0
    while pos < len(data):
        n = sizes[len(chunks) % len(sizes)]
        chunks.append(data[pos : pos + n])
        pos += n
    dest = io.BytesIO()
    got: list[int] = []
    sink = BlobSink(sha256_digest(data), dest, got.append, threaded=threaded)
    try:
        for c in chunks:
            sink.write(c)
        sink.finish()
    finally:
        sink.close()
        sink.close()  # idempotent
    assert sink.hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert dest.getvalue() == data and sink.written == len(data) == sum(got)


def test_body_chunks_raw_unless_content_encoded() -> None:
    payload = os.urandom(100_000)
    plain_resp = httpx.Response(200, stream=httpx.ByteStream(payload))  # as streamed from a registry
    assert b"".join(body_chunks(plain_resp)) == payload
    packed = gzip.compress(payload)
    encoded = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(packed))
    assert b"".join(body_chunks(encoded)) == payload  # decoded: the digest is of the blob itself


# -- early writeback --------------------------------------------------------------------------


def test_large_blob_write_starts_writeback_in_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xplane.oci.cache as cache_module

    real = cache_module._fadvise
    if real is None:
        pytest.skip("no posix_fadvise on this platform")
    calls: list[tuple[int, int]] = []

    def recording(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(cache_module, "_fadvise", recording)
    data = os.urandom(2 * WRITEBACK_STEP + 4096)
    cache = ImageCache(tmp_path / "c")
    with cache.temp_blob(sha256_digest(data), size=len(data)) as w:
        w.write(data[:WRITEBACK_STEP])
        w.seek(0)  # a retry rewinds: writeback starts over from the beginning
        for i in range(0, len(data), 1 << 20):
            w.write(data[i : i + (1 << 20)])
    assert calls == [(0, WRITEBACK_STEP), (0, WRITEBACK_STEP), (WRITEBACK_STEP, WRITEBACK_STEP)]
    assert cache.blob_path(sha256_digest(data)).read_bytes() == data


# -- plain-HTTP sessions: the trust store is loaded only when TLS is used ----------------------


def test_deferred_trust_context_verifies(registry_tls: RegistryServer) -> None:
    ctx = DeferredTrustContext()
    assert ctx.cert_store_stats()["x509_ca"] == 0
    assert ctx.verify_mode.name == "CERT_REQUIRED" and ctx.check_hostname
    # a plain-HTTP registry that redirects to https: verification is on (the test CA is not trusted)
    session = HostSession(RegistrySettings(host="127.0.0.1:1", plain_http=True), retry=FAST)
    try:
        with pytest.raises(TLSError, match="certificate verify failed"):
            session.send("GET", f"https://{registry_tls.host}/v2/")
    finally:
        session.close()


def test_client_import_does_not_load_httpx_cli() -> None:
    code = "import sys, xplane.oci.client; print(sorted({'click', 'rich', 'pygments'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the GC module --------------------------------------------------------------------------


def test_gc_helpers(tmp_path: Path) -> None:
    d1, d2, d3 = (sha256_digest(x) for x in (b"1", b"2", b"3"))
    doc = {
        "config": {"digest": d1},
        "layers": [{"digest": d2}, {"digest": "nope"}],
        "subject": {"digest": d3},
    }
    assert sorted(cachegc.children(doc)) == sorted([d1, d2, d3])
    assert cachegc.children(["not", "a", "manifest"]) == []
    now = time.time()
    assert not cachegc.temp_is_stale(f"{TEMP_PREFIX}{os.getpid()}-ab", now, now, 3600)
    assert cachegc.temp_is_stale(f"{TEMP_PREFIX}{os.getpid()}-ab", now - 7200, now, 3600)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert cachegc.temp_is_stale(f"{TEMP_PREFIX}{dead.pid}-ab", now, now, 3600)
    assert cachegc.temp_is_stale(f"{TEMP_PREFIX}garbage", now, now, 3600)
