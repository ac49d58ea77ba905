"""Reload without dropping calls, load modes (local, secret, http), load failures."""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.fn.runner_fixtures import CLOSED, running, test_settings, write_function, xr_request
from xplane.fn.proto import grpcv1
from xplane.fn.sources import HttpSource, SecretSource


def _call(target: str, name: str | None = None, timeout: float = 10) -> str:
    md = (("x-xplane-function", name),) if name else None
    with grpc.insecure_channel(target) as ch:
        rsp = grpcv1.FunctionRunnerServiceStub(ch).RunFunction(xr_request(), metadata=md, timeout=timeout)
    return str(rsp.results[0].message)


def test_reload_keeps_the_in_flight_call_and_serves_the_new_version(tmp_path: Path) -> None:
    write_function(tmp_path, "f", message="old", delay=0.8)
    with running(test_settings(tmp_path)) as rt, concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(_call, rt.grpc_target)
        time.sleep(0.3)  # the old version is now inside its call
        write_function(tmp_path, "f", message="new", version="v2")
        assert rt.refresh() is True
        assert _call(rt.grpc_target) == "new from f"  # no delay in the new version
        assert "f@old" not in CLOSED  # still running the old call
        assert in_flight.result(10) == "old from f"
        deadline = time.time() + 5
        while "f@old" not in CLOSED and time.time() < deadline:
            time.sleep(0.02)
        assert "f@old" in CLOSED


def test_unchanged_functions_are_not_reloaded(tmp_path: Path) -> None:
    write_function(tmp_path, "a", message="a1")
    write_function(tmp_path, "b", message="b1")
    with running(test_settings(tmp_path)) as rt:
        before = rt.runner.table.functions["a"]
        write_function(tmp_path, "b", message="b2")
        assert rt.refresh() is True
        assert rt.runner.table.functions["a"] is before
        assert _call(rt.grpc_target, "b") == "b2 from b"
        assert rt.refresh() is False  # nothing changed since


def test_bytecode_caches_are_no_change(tmp_path: Path) -> None:
    # importing a function writes __pycache__ next to it (in process, or in its own worker): that
    # must not make the next poll reload every function
    write_function(tmp_path, "a", message="a1")
    with running(test_settings(tmp_path)) as rt:
        before = rt.runner.table.functions["a"]
        cache = tmp_path / "a" / "__pycache__"
        cache.mkdir(exist_ok=True)
        (cache / "fn.cpython-311.pyc").write_bytes(b"bytecode")
        (tmp_path / ".git").mkdir()
        (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        assert rt.refresh() is False
        assert rt.runner.table.functions["a"] is before


def test_a_function_broken_on_reload_keeps_serving_its_last_version(tmp_path: Path) -> None:
    write_function(tmp_path, "f", message="good")
    write_function(tmp_path, "g", message="other")
    with running(test_settings(tmp_path)) as rt:
        write_function(tmp_path, "f", broken="ImportError: no module named nope")
        rt.refresh()
        assert _call(rt.grpc_target, "f") == "good from f"
        status = {s["name"]: s for s in rt.runner.table.status()}
        assert status["f"]["status"] == "stale" and "ImportError" in status["f"]["error"]
        write_function(tmp_path, "f", message="fixed")
        rt.refresh()
        assert _call(rt.grpc_target, "f") == "fixed from f"
        assert "f" not in rt.runner.table.errors


def test_removed_function_stops_serving_and_single_one_takes_all(tmp_path: Path) -> None:
    write_function(tmp_path, "a", message="A")
    write_function(tmp_path, "b", message="B")
    with running(test_settings(tmp_path)) as rt:
        (tmp_path / "b" / "function.json").unlink()
        (tmp_path / "b").rmdir()
        rt.refresh()
        assert rt.runner.table.names() == ["a"]
        assert _call(rt.grpc_target) == "A from a"


def test_background_watch_picks_up_a_new_function(tmp_path: Path) -> None:
    write_function(tmp_path, "a")
    with running(test_settings(tmp_path, reload_interval=0.05)) as rt:
        write_function(tmp_path, "b", message="late")
        deadline = time.time() + 5
        while "b" not in rt.runner.table.functions and time.time() < deadline:
            time.sleep(0.05)
        assert _call(rt.grpc_target, "b") == "late from b"


def test_missing_functions_dir_is_reported_not_fatal(tmp_path: Path) -> None:
    with running(test_settings(tmp_path / "absent")) as rt:
        ok, details = rt.call(rt.runner.readiness())
    assert not ok
    assert "does not exist" in details["sourceError"]


# -- Secret volumes --------------------------------------------------------------------------------
def _secret_version(mount: Path, stamp: str, files: dict[str, bytes]) -> None:
    """Write one version the way the kubelet does: ..<stamp>/ files, ..data symlink swapped atomically."""
    version = mount / f"..{stamp}"
    version.mkdir()
    for name, data in files.items():
        (version / name).write_bytes(data)
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")
    tmp = mount / "..data_tmp"
    tmp.symlink_to(version.name)
    os.replace(tmp, mount / "..data")


def _bundle(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_secret_mode_follows_data_symlink_updates(tmp_path: Path) -> None:
    mount = tmp_path / "secret"
    mount.mkdir()
    _secret_version(
        mount,
        "2026_01_01",
        {
            "hello.fn.json": json.dumps({"message": "v1"}).encode(),
            "bundle.tar.gz": _bundle({"packed/function.json": json.dumps({"message": "from tar"}).encode()}),
        },
    )
    source = SecretSource(mount, tmp_path / "work")
    with running(test_settings(mount, load_mode="secret"), source=source) as rt:
        assert rt.runner.table.names() == ["hello", "packed"]
        assert _call(rt.grpc_target, "packed") == "from tar from packed"
        assert rt.refresh() is False
        _secret_version(
            mount,
            "2026_01_02",
            {
                "hello.fn.json": json.dumps({"message": "v2"}).encode(),
                "bundle.tar.gz": _bundle(
                    {"packed/function.json": json.dumps({"message": "tar v2"}).encode()}
                ),
            },
        )
        assert rt.refresh() is True
        assert _call(rt.grpc_target, "hello") == "v2 from hello"
        assert _call(rt.grpc_target, "packed") == "tar v2 from packed"
        _secret_version(mount, "2026_01_03", {"hello.fn.json": b"{}", "bundle.tar.gz": b"not a tarball"})
        assert rt.refresh() is False  # a broken key: the previous functions keep serving
        assert "cannot unpack Secret key bundle.tar.gz" in str(rt.runner.table.source_error)
        assert _call(rt.grpc_target, "hello") == "v2 from hello"


# -- HTTP bundles ----------------------------------------------------------------------------------
class _BundleServer:
    def __init__(self) -> None:
        self.body = b""
        self.statuses: list[int] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                etag = '"' + hashlib.sha256(outer.body).hexdigest()[:16] + '"'
                # Record the status before answering: the client may check it as soon as it has the reply.
                if self.headers.get("If-None-Match") == etag:
                    outer.statuses.append(304)
                    self.send_response(304)
                    self.end_headers()
                    return
                outer.statuses.append(200)
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/functions.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def bundle_server() -> Iterator[_BundleServer]:
    server = _BundleServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_http_mode_loads_a_bundle_and_refreshes_by_etag(tmp_path: Path, bundle_server: _BundleServer) -> None:
    bundle_server.body = _bundle({"f/function.json": json.dumps({"message": "one"}).encode()})
    settings = test_settings(tmp_path, load_mode="http", http_url=bundle_server.url)
    with running(settings, source=HttpSource(bundle_server.url, tmp_path / "work")) as rt:
        assert _call(rt.grpc_target) == "one from f"
        assert rt.refresh() is False
        assert bundle_server.statuses == [200, 304]
        bundle_server.body = _bundle({"f/function.json": json.dumps({"message": "two"}).encode()})
        assert rt.refresh() is True
        assert _call(rt.grpc_target) == "two from f"
        snapshots = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert len(snapshots) == 1  # the first bundle's directory was removed once its function closed


def test_http_mode_keeps_serving_when_the_server_goes_away(
    tmp_path: Path, bundle_server: _BundleServer
) -> None:
    bundle_server.body = _bundle({"f/function.json": json.dumps({"message": "kept"}).encode()})
    with running(test_settings(tmp_path), source=HttpSource(bundle_server.url, tmp_path / "w")) as rt:
        bundle_server.httpd.shutdown()
        bundle_server.httpd.server_close()
        rt.refresh()
        assert _call(rt.grpc_target) == "kept from f"
        assert "cannot fetch the function bundle" in str(rt.runner.table.source_error)


def test_http_mode_rejects_a_bundle_escaping_its_directory(
    tmp_path: Path, bundle_server: _BundleServer
) -> None:
    bundle_server.body = _bundle({"../evil/function.json": b"{}"})
    with running(test_settings(tmp_path), source=HttpSource(bundle_server.url, tmp_path / "w")) as rt:
        assert rt.runner.table.names() == []
        assert "cannot unpack" in str(rt.runner.table.source_error)
    assert not (tmp_path / "evil").exists()
