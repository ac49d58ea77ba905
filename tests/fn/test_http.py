"""The HTTP side: /health, /ready, /metrics, /functions and POST /functions/{name}:run."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.fn.runner_fixtures import RunnerThread, running, test_settings, write_function, xr_request
from tests.support.procs import free_port
from xplane.fn.proto import grpcv1, request_to_json


def http(rt: RunnerThread, path: str, *, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(rt.http_base + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def jhttp(rt: RunnerThread, path: str, **kw: Any) -> tuple[int, Any]:
    status, body = http(rt, path, **kw)
    return status, json.loads(body)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[RunnerThread]:
    write_function(tmp_path, "alpha", message="a", version="1.2.3")
    write_function(tmp_path, "beta", message="b")
    write_function(tmp_path, "broken", broken="SyntaxError in fn.py line 3")
    with running(test_settings(tmp_path, max_message_size=64 * 1024, http_max_body=64 * 1024)) as r:
        yield r


def test_health_and_ready(rt: RunnerThread) -> None:
    assert jhttp(rt, "/health") == (200, {"status": "ok"})
    status, ready = jhttp(rt, "/ready")
    assert status == 200
    assert ready["functions"] == ["alpha", "beta"]
    assert "SyntaxError" in ready["loadErrors"]["broken"]


def test_not_ready_without_functions(tmp_path: Path) -> None:
    with running(test_settings(tmp_path)) as r:
        status, body = jhttp(r, "/ready")
        assert (status, body["reason"]) == (503, "no function loaded")
        assert jhttp(r, "/health")[0] == 200


def test_functions_lists_kind_source_version_and_errors(rt: RunnerThread, tmp_path: Path) -> None:
    status, body = jhttp(rt, "/functions")
    assert status == 200
    by_name = {f["name"]: f for f in body["functions"]}
    assert by_name["alpha"]["status"] == "ready"
    assert by_name["alpha"]["version"] == "1.2.3"
    assert by_name["alpha"]["kind"] == "python"
    assert by_name["alpha"]["path"] == str(tmp_path / "alpha")
    assert by_name["alpha"]["source"] == f"local:{tmp_path}"
    assert by_name["broken"]["status"] == "error"
    assert "SyntaxError" in by_name["broken"]["error"]


def test_run_over_http(rt: RunnerThread) -> None:
    status, body = jhttp(rt, "/functions/beta:run", method="POST", body=request_to_json(xr_request("h1")))
    assert status == 200
    assert body["meta"]["tag"] == "h1"
    assert body["results"][0]["message"] == "b from beta"


def test_run_errors(rt: RunnerThread) -> None:
    status, body = jhttp(rt, "/functions/nope:run", method="POST", body=b"{}")
    assert status == 404 and body["loaded"] == ["alpha", "beta"]
    status, body = jhttp(rt, "/functions/broken:run", method="POST", body=b"{}")
    assert status == 404 and "failed to load" in body["error"]
    status, body = jhttp(rt, "/functions/alpha:run", method="POST", body=b"{not json")
    assert status == 400 and "malformed RunFunctionRequest" in body["error"]
    status, body = jhttp(rt, "/functions/alpha:run", method="POST", body=b'{"observed": 3}')
    assert status == 400
    status, body = jhttp(rt, "/functions/alpha:run", method="POST", body=b"x" * 70_000)
    assert status == 413 and "--http-max-body" in body["error"]
    assert jhttp(rt, "/functions/alpha:run")[0] == 405
    assert jhttp(rt, "/nowhere")[0] == 404
    assert jhttp(rt, "/health", method="POST", body=b"")[0] == 405


def test_garbage_on_the_socket_gets_400_and_the_server_lives(rt: RunnerThread) -> None:
    with socket.create_connection(("127.0.0.1", int(rt.runner.http_port or 0)), timeout=5) as s:
        s.sendall(b"NONSENSE\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert jhttp(rt, "/health")[0] == 200


def test_metrics_count_calls_errors_and_latency(rt: RunnerThread) -> None:
    with grpc.insecure_channel(rt.grpc_target) as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        for _ in range(3):
            stub.RunFunction(xr_request(), metadata=(("x-xplane-function", "alpha"),), timeout=10)
        with pytest.raises(grpc.RpcError):
            stub.RunFunction(xr_request(), metadata=(("x-xplane-function", "ghost"),), timeout=10)
    http(rt, "/functions/beta:run", method="POST", body=b"{}")
    status, raw = http(rt, "/metrics")
    text = raw.decode()
    assert status == 200
    assert 'xfn_function_calls_total{function="alpha",transport="grpc-v1"} 3' in text
    assert 'xfn_function_calls_total{function="beta",transport="http"} 1' in text
    assert 'xfn_function_errors_total{function="ghost",reason="not_found"} 1' in text
    assert 'xfn_function_duration_seconds_count{function="alpha"} 3' in text
    assert 'xfn_function_duration_seconds_bucket{function="alpha",le="+Inf"} 3' in text
    assert "xfn_functions_loaded 2" in text
    assert "xfn_function_load_errors 1" in text
    assert "process_resident_memory_bytes" in text


def test_fatal_results_are_counted_as_errors(tmp_path: Path) -> None:
    write_function(tmp_path, "f", fatal="the input is wrong")
    with running(test_settings(tmp_path)) as r:
        status, body = jhttp(r, "/functions/f:run", method="POST", body=b"{}")
        assert status == 200 and body["results"][0]["severity"] == "SEVERITY_FATAL"
        assert 'xfn_function_errors_total{function="f",reason="fatal"} 1' in http(r, "/metrics")[1].decode()


def test_ready_reports_whether_crossplane_api_answers(tmp_path: Path) -> None:
    write_function(tmp_path, "f")
    dead_port = free_port()  # nobody listens there
    with running(test_settings(tmp_path, crossplane_api_url=f"http://user:pw@127.0.0.1:{dead_port}")) as r:
        status, body = jhttp(r, "/ready")
    assert status == 200  # the runner does not need the API to serve
    assert body["crossplaneApi"]["reachable"] is False
    assert "pw" not in json.dumps(body)
    write_function(tmp_path, "f")
    with running(test_settings(tmp_path)) as r1:
        target = r1.http_base + "/health"
        with running(test_settings(tmp_path, crossplane_api_url=target)) as r2:
            status, body = jhttp(r2, "/ready")
    assert body["crossplaneApi"] == {"url": target, "reachable": True, "status": 200}
