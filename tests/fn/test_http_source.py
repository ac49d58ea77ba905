"""HTTP load mode against Python's own file server, which sends ``Last-Modified`` and no ``ETag``."""

from __future__ import annotations

import base64
import functools
import gzip
import http.server
import io
import json
import logging
import os
import re
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fn.conftest import arun
from tests.fn.runner_fixtures import CLOSED, RunnerThread, running, test_settings, xr_request
from tests.support.procs import free_port
from xplane.fn.client import FunctionClient
from xplane.fn.sources import FunctionSourceError, HttpSource


def bundle(message: str) -> bytes:
    """A ``.tar.gz`` with one scripted function ``f`` answering ``message``."""
    data = json.dumps({"message": message}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("f/function.json")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)  # the same bytes for the same message, in any second


class FileServer:
    """``python -m http.server`` in a thread: serves ``root`` and records each answer's status.

    With ``basic_auth`` (``user:password``), a request without those credentials is answered 401.
    """

    def __init__(self, root: Path, basic_auth: str | None = None) -> None:
        self.statuses: list[int] = []
        outer = self
        expected = "Basic " + base64.b64encode(basic_auth.encode()).decode() if basic_auth else None

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                outer.statuses.append(int(code))

            def do_GET(self) -> None:
                if expected is not None and self.headers.get("Authorization") != expected:
                    self.send_error(401)
                    return
                super().do_GET()

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/functions.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def take(self) -> list[int]:
        """The statuses answered since the last call."""
        out, self.statuses[:] = list(self.statuses), []
        return out


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, FileServer]]:
    root = tmp_path / "www"
    root.mkdir()
    server = FileServer(root)
    yield root / "functions.tar.gz", server
    server.httpd.shutdown()
    server.httpd.server_close()


def publish(path: Path, data: bytes, mtime: float) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def answer(target: str) -> str:
    async def call() -> str:
        async with FunctionClient(target) as client:
            return str((await client.run(xr_request(), timeout=10)).results[0].message)

    return arun(call())


def test_an_unchanged_bundle_costs_one_304(tmp_path: Path, files: tuple[Path, FileServer]) -> None:
    path, server = files
    publish(path, bundle("one"), time.time() - 60)
    source = HttpSource(server.url, tmp_path / "work")
    with running(test_settings(tmp_path), source=source) as rt:
        assert answer(rt.grpc_target) == "one from f"
        assert rt.refresh() is False
        assert rt.refresh() is False
        assert server.take() == [200, 304, 304]
        publish(path, bundle("two"), time.time() - 30)
        assert rt.refresh() is True
        assert server.take() == [200]
        assert answer(rt.grpc_target) == "two from f"


def test_a_bundle_sent_again_unchanged_is_not_reloaded(
    tmp_path: Path, files: tuple[Path, FileServer]
) -> None:
    path, server = files
    publish(path, bundle("same"), time.time() - 60)
    source = HttpSource(server.url, tmp_path / "work")
    with running(test_settings(tmp_path), source=source) as rt:
        closed = len(CLOSED)
        publish(path, bundle("same"), time.time() - 30)  # touched: a newer date, the same bytes
        assert rt.refresh() is False
        assert server.take() == [200, 200]  # downloaded again...
        assert rt.runner.table.reloads == 0  # ...but not reloaded: the function kept serving
        assert len(CLOSED) == closed
        assert len(list((tmp_path / "work").iterdir())) == 1  # and not unpacked again
        assert answer(rt.grpc_target) == "same from f"


def test_a_rewrite_within_the_same_second_is_not_missed(
    tmp_path: Path, files: tuple[Path, FileServer]
) -> None:
    """HTTP dates count whole seconds: a Last-Modified as new as the answer is no validator."""
    path, server = files
    second = float(
        int(time.time()) + 5
    )  # both versions carry the same date, which the answers' Date precedes
    publish(path, bundle("first"), second)
    source = HttpSource(server.url, tmp_path / "work")
    with running(test_settings(tmp_path), source=source) as rt:
        assert answer(rt.grpc_target) == "first from f"
        publish(path, bundle("second"), second)
        assert rt.refresh() is True  # with If-Modified-Since the server would have answered 304
        assert server.take() == [200, 200]
        assert answer(rt.grpc_target) == "second from f"


def _get(rt: RunnerThread, path: str) -> str:
    with urllib.request.urlopen(rt.http_base + path, timeout=10) as resp:
        return str(resp.read().decode())


def test_credentials_in_the_bundle_url_are_sent_and_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "www"
    root.mkdir()
    publish(root / "functions.tar.gz", bundle("one"), time.time() - 60)
    server = FileServer(root, basic_auth="me:pa:ss")
    with_credentials = server.url.replace("http://", "http://me:pa%3Ass@")
    shown = server.url.replace("http://", "http://<redacted>@")
    try:
        source = HttpSource(with_credentials + "?sig=t0ken", tmp_path / "w")
        with caplog.at_level(logging.DEBUG), running(test_settings(tmp_path), source=source) as rt:
            assert answer(rt.grpc_target) == "one from f"  # the credentials went as basic auth
            listing = json.loads(_get(rt, "/functions"))
            ready = _get(rt, "/ready")
        assert listing["source"] == f"http:{shown}" and listing["functions"][0]["source"] == f"http:{shown}"
        with pytest.raises(FunctionSourceError, match=f"GET {shown} answered 401") as refused:
            HttpSource(server.url.replace("http://", "http://me:wrong@"), tmp_path / "w2").poll(None)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    dead = f"127.0.0.1:{free_port()}/functions.tar.gz"
    with pytest.raises(FunctionSourceError, match=f"from http://<redacted>@{dead}: ") as unreachable:
        HttpSource(f"http://me:pa%3Ass@{dead}", tmp_path / "w3").poll(None)
    ours = [r for r in caplog.records if r.name.startswith("xplane")]
    logged = [r.getMessage() + json.dumps(getattr(r, "fields", {}), default=str) for r in ours]
    for text in (json.dumps(listing), ready, str(refused.value), str(unreachable.value), *logged):
        assert not {"pa:ss", "pa%3Ass", "t0ken", "wrong"} & set(re.split(r"[^\w:%]+", text)), text
    # httpx logs each request's URL at INFO (xfn's log setup keeps it at WARNING): never the credentials.
    assert all("pa:ss" not in r.getMessage() and "pa%3Ass" not in r.getMessage() for r in caplog.records)
