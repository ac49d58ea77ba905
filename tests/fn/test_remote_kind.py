"""Remote functions and the client: a real SDK server (insecure and mTLS), v1beta1 fallback, HTTP."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from tests.fn.conftest import FIXTURES, arun, fatal_message, make_request, results
from tests.support.certs import TLSCerts
from tests.support.procs import free_port, kill, log_tail, spawn
from xplane.fn.client import FunctionClient
from xplane.fn.errors import FunctionCallError, FunctionLoadError
from xplane.fn.loader import load_function
from xplane.fn.proto import fnv1, fnv1beta1, grpcv1beta1, struct_to_dict


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"SDK server did not start:\n{log_tail(log)}")


def _sdk_server(tmp: Path, mode: str) -> Iterator[str]:
    port = free_port()
    log = tmp / "server.log"
    proc = spawn([sys.executable, str(FIXTURES / "sdk_server.py"), f"127.0.0.1:{port}", mode], log)
    try:
        _wait_port(port, proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        kill(proc)


@pytest.fixture(scope="module")
def sdk_insecure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The SDK fixture function served by ``crossplane.function.runtime.serve --insecure``."""
    yield from _sdk_server(tmp_path_factory.mktemp("sdk"), "--insecure")


@pytest.fixture(scope="module")
def sdk_mtls(tmp_path_factory: pytest.TempPathFactory, tls_certs: TLSCerts) -> Iterator[str]:
    """The same, requiring client certificates (the SDK's load_credentials layout)."""
    tmp = tmp_path_factory.mktemp("sdk-mtls")
    certs = tmp / "certs"
    certs.mkdir()
    shutil.copy(tls_certs.server_cert, certs / "tls.crt")
    shutil.copy(tls_certs.server_key, certs / "tls.key")
    shutil.copy(tls_certs.ca_cert, certs / "ca.crt")
    yield from _sdk_server(tmp, str(certs))


def remote(tmp_path: Path, body: str, name: str = "r") -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(body)
    return f


def check_sdk_answer(rsp: fnv1.RunFunctionResponse, tag: str) -> None:
    assert rsp.meta.tag == tag
    assert struct_to_dict(rsp.desired.resources["bucket"].resource)["metadata"]["name"] == "my-xr-bucket"
    assert results(rsp) == [(fnv1.SEVERITY_NORMAL, "composed bucket for my-xr (data)")]


def test_remote_grpc_insecure(tmp_path: Path, sdk_insecure: str) -> None:
    fn = load_function(
        remote(tmp_path, f"kind: remote\nremote: {{address: {sdk_insecure}, tls: {{insecure: true}}}}\n")
    )
    assert fn.spec.kind == "remote" and fn.name == "r"

    async def go() -> fnv1.RunFunctionResponse:
        try:
            return await fn.run(make_request(tag="rem"), timeout=5)
        finally:
            await fn.close()

    check_sdk_answer(arun(go()), "rem")


def test_remote_grpc_mtls(tmp_path: Path, sdk_mtls: str, tls_certs: TLSCerts) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        f"kind: remote\nremote:\n  address: {sdk_mtls}\n  tls:\n    caFile: {tls_certs.ca_cert}\n"
        f"    certFile: {tls_certs.client_cert}\n    keyFile: {tls_certs.client_key}\n"
    )
    no_cert = tmp_path / "nocert.yaml"
    no_cert.write_text(
        f"kind: remote\nremote:\n  address: {sdk_mtls}\n  tls:\n    caFile: {tls_certs.ca_cert}\n"
    )
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"kind: remote\nremote: {{address: {sdk_mtls}, tls: {{insecure: true}}}}\n")
    check_sdk_answer(arun(load_function(ok).run(make_request(tag="m"), timeout=5)), "m")
    for f in (no_cert, plain):
        msg = fatal_message(arun(load_function(f).run(make_request(), timeout=3)))
        assert f"remote function {f.stem!r}" in msg and "UNAVAILABLE" in msg


def test_client_unreachable_and_deadline(tmp_path: Path) -> None:
    port = free_port()

    async def go() -> None:
        async with FunctionClient(f"127.0.0.1:{port}") as client:
            with pytest.raises(FunctionCallError) as e:
                await client.run(make_request(), timeout=2)
            assert e.value.code == "UNAVAILABLE" and "is the server running" in str(e.value)

    arun(go())


class BetaOnly(grpcv1beta1.FunctionRunnerServiceServicer):
    async def RunFunction(
        self, req: fnv1beta1.RunFunctionRequest, context: object
    ) -> fnv1beta1.RunFunctionResponse:
        rsp = fnv1beta1.RunFunctionResponse()
        rsp.meta.tag = req.meta.tag
        rsp.results.add(
            severity=fnv1beta1.SEVERITY_NORMAL, message=f"beta saw {len(req.SerializeToString())} bytes"
        )
        return rsp


def test_client_falls_back_to_v1beta1_and_names_the_size_limit() -> None:
    async def go() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        grpcv1beta1.add_FunctionRunnerServiceServicer_to_server(BetaOnly(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with FunctionClient(f"grpc://127.0.0.1:{port}", max_message_size=1 << 20) as client:
                req = make_request(tag="b")
                rsp = await client.run(req, timeout=5)
                assert isinstance(rsp, fnv1.RunFunctionResponse) and rsp.meta.tag == "b"
                assert results(rsp) == [(fnv1.SEVERITY_NORMAL, f"beta saw {req.ByteSize()} bytes")]
                big = make_request()
                big.observed.composite.resource.update({"blob": "x" * (2 << 20)})
                with pytest.raises(FunctionCallError, match="max message size of 1048576 bytes"):
                    await client.run(big, timeout=5)
        finally:
            await server.stop(None)

    arun(go())


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/garbage":
            out, status = b"<html>oops</html>", 200
        elif self.path == "/error":
            out, status = b"function exploded", 500
        elif self.path == "/slow":
            time.sleep(2)
            out, status = b"{}", 200
        elif self.path.startswith("/whoami"):
            said = self.headers.get("Authorization", "nobody")
            out, status = (
                json.dumps({"results": [{"severity": "SEVERITY_NORMAL", "message": said}]}).encode(),
                200,
            )
        else:
            req = json.loads(body)
            out = json.dumps(
                {
                    "meta": {"tag": req["meta"]["tag"]},
                    "results": [
                        {"severity": "SEVERITY_NORMAL", "message": f"http {self.headers.get('X-Team')}"}
                    ],
                }
            ).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("path", "timeout", "expect"),
    [
        ("/fn", 5, None),
        ("/garbage", 5, "answered invalid JSON"),
        ("/error", 5, "answered HTTP 500: function exploded"),
        ("/slow", 0.3, "did not answer within 0.3s"),
    ],
)
def test_remote_http(
    tmp_path: Path, http_endpoint: str, path: str, timeout: float, expect: str | None
) -> None:
    f = remote(
        tmp_path,
        f"kind: remote\nremote:\n  address: {http_endpoint}{path}\n  headers: {{X-Team: platform}}\n",
    )
    rsp = arun(load_function(f).run(make_request(tag="h"), timeout=timeout))
    assert rsp.meta.tag == "h"
    if expect is None:
        assert results(rsp) == [(fnv1.SEVERITY_NORMAL, "http platform")]
    else:
        assert expect in fatal_message(rsp)


def test_remote_http_credentials_are_sent_as_basic_auth_and_never_shown(
    tmp_path: Path, http_endpoint: str
) -> None:
    with_credentials = http_endpoint.replace("http://", "http://me:s3cr%40t@")
    whoami = remote(tmp_path, f"kind: remote\nremote:\n  address: {with_credentials}/whoami?k=v\n", "who")
    rsp = arun(load_function(whoami).run(make_request(), timeout=5))
    assert results(rsp) == [(fnv1.SEVERITY_NORMAL, "Basic " + base64.b64encode(b"me:s3cr@t").decode())]
    failing = remote(tmp_path, f"kind: remote\nremote:\n  address: {with_credentials}/error\n", "bad")
    message = fatal_message(arun(load_function(failing).run(make_request(), timeout=5)))
    shown = http_endpoint.replace("http://", "http://<redacted>@")
    assert f"at {shown}/error answered HTTP 500" in message and "s3cr" not in message


def test_remote_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(FunctionLoadError, match=r"field 'remote'\): kind remote needs remote"):
        load_function(remote(tmp_path, "kind: remote\n"))
    with pytest.raises(FunctionLoadError, match="certFile and keyFile go together"):
        load_function(remote(tmp_path, "kind: remote\nremote: {address: a:1, tls: {certFile: c.pem}}\n", "x"))
    with pytest.raises(FunctionLoadError, match="TLS file .* does not exist"):
        load_function(
            remote(tmp_path, "kind: remote\nremote: {address: a:1, tls: {caFile: nope.pem}}\n", "y")
        )
    with pytest.raises(FunctionLoadError, match="insecureSkipVerify is not supported for gRPC"):
        load_function(
            remote(tmp_path, "kind: remote\nremote: {address: a:1, tls: {insecureSkipVerify: true}}\n", "z")
        )
