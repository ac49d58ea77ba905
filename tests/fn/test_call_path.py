"""The per-call fast paths: no request copy for gRPC, one deadline scope, exec without asyncio's
subprocess machinery, wasm output in memory; each still answers faults the way it did."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest

from tests.fn.conftest import arun, fatal_message, make_request, results
from tests.fn.runner_fixtures import running, test_settings, xr_request
from xplane.fn.kinds import exec as exec_kind
from xplane.fn.kinds import wasm as wasm_kind
from xplane.fn.loader import load_function
from xplane.fn.proto import fnv1, grpcv1

MUTATES = """\
from crossplane.function import response

async def run_function(req):
    req.meta.tag = "changed-by-function"
    {body}
    rsp = response.to(req)
    rsp.meta.tag = ""
    return rsp
"""


def python_fn(tmp_path: Path, body: str = "pass", name: str = "mut") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "fn.py").write_text(MUTATES.format(body=body))
    return d


def test_run_owned_hands_over_the_request_and_keeps_the_callers_tag(tmp_path: Path) -> None:
    fn = load_function(python_fn(tmp_path))
    req = make_request(tag="orig")
    rsp = arun(fn.run_owned(req, timeout=5))
    assert req.meta.tag == "changed-by-function"  # the function had the request itself: no copy
    assert rsp.meta.tag == "orig"  # the tag as it came in, whatever the function did to the request
    kept = make_request(tag="orig")
    arun(fn.run(kept, timeout=5))
    assert kept.meta.tag == "orig"  # run: the function changed a copy


def test_run_owned_fatal_results_carry_the_original_tag(tmp_path: Path) -> None:
    fn = load_function(python_fn(tmp_path, body="raise RuntimeError('boom')"))
    rsp = arun(fn.run_owned(make_request(tag="orig"), timeout=5))
    assert rsp.meta.tag == "orig"
    assert "raised RuntimeError: boom" in fatal_message(rsp)
    slow = load_function(python_fn(tmp_path, body="import asyncio; await asyncio.sleep(5)", name="slow"))
    t = time.monotonic()
    rsp = arun(slow.run_owned(make_request(tag="orig"), timeout=0.2))
    assert time.monotonic() - t < 2
    assert rsp.meta.tag == "orig" and "timed out after 0.2s" in fatal_message(rsp)


SLEEPY = """\
import asyncio
from crossplane.function import response

async def run_function(req):
    await asyncio.sleep(float(req.input["sleep"]))
    return response.to(req)
"""


def test_grpc_deadline_cancels_the_call_and_is_counted(tmp_path: Path) -> None:
    (tmp_path / "sleepy").mkdir()
    (tmp_path / "sleepy" / "fn.py").write_text(SLEEPY)
    with running(test_settings(tmp_path), discover=None) as rt, grpc.insecure_channel(rt.grpc_target) as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        req = xr_request("d")
        req.input.update({"sleep": 5})
        with pytest.raises(grpc.RpcError) as err:
            stub.RunFunction(req, timeout=0.3)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        metrics = rt.runner.metrics
        deadline = time.monotonic() + 3
        while metrics.inflight and time.monotonic() < deadline:  # the handler was cancelled, not left running
            time.sleep(0.02)
        assert metrics.inflight == 0
        assert metrics.errors.get(("sleepy", "cancelled")) == 1
        quick = xr_request("q")
        quick.input.update({"sleep": 0})
        assert stub.RunFunction(quick, timeout=5).meta.tag == "q"


def test_own_timeout_before_the_callers_deadline_answers_fatal(tmp_path: Path) -> None:
    (tmp_path / "sleepy").mkdir()
    (tmp_path / "sleepy" / "fn.py").write_text(SLEEPY)
    settings = test_settings(tmp_path, timeout=0.3)
    with running(settings, discover=None) as rt, grpc.insecure_channel(rt.grpc_target) as ch:
        req = xr_request("late")
        req.input.update({"sleep": 5})
        rsp = grpcv1.FunctionRunnerServiceStub(ch).RunFunction(req, timeout=10)
    assert rsp.meta.tag == "late"
    assert rsp.results[0].severity == fnv1.SEVERITY_FATAL
    assert "timed out after 0.3s" in rsp.results[0].message


COUNTER = """\
import json, sys
data = sys.stdin.buffer.read()
sys.stderr.write("x" * 200000)
json.dump({"results": [{"severity": "SEVERITY_NORMAL", "message": "read %d" % len(data)}]}, sys.stdout)
"""


def exec_fn(tmp_path: Path, body: str, name: str = "ex") -> Path:
    d = tmp_path / name
    d.mkdir()
    exe = d / "main"
    exe.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    exe.chmod(0o755)
    (d / "function.yaml").write_text("kind: exec\nentrypoint: main\nsandbox: none\n")
    return d


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "waiter-thread"])
def test_exec_large_stdin_and_stderr_both_exit_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    monkeypatch.setattr(exec_kind, "_HAS_PIDFD", pidfd and exec_kind._HAS_PIDFD)
    fn = load_function(exec_fn(tmp_path, COUNTER))
    req = make_request()
    req.input.update({"blob": "y" * 1_000_000})  # far over a pipe's buffer: written as the child reads
    rsp = arun(fn.run(req, timeout=20))
    size = len(fn.encode(req))  # type: ignore[attr-defined]
    assert results(rsp) == [(fnv1.SEVERITY_NORMAL, f"read {size}")]


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "waiter-thread"])
def test_exec_timeout_and_output_cap_both_exit_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    monkeypatch.setattr(exec_kind, "_HAS_PIDFD", pidfd and exec_kind._HAS_PIDFD)
    hang = load_function(exec_fn(tmp_path, "import time\ntime.sleep(30)\n", name="hang"))
    t = time.monotonic()
    assert "timed out after 0.3s (process killed)" in fatal_message(
        arun(hang.run(make_request(), timeout=0.3))
    )
    assert time.monotonic() - t < 5
    d = exec_fn(tmp_path, "import sys\nsys.stdout.write('z' * 100000)\n", name="loud")
    (d / "function.yaml").write_text(
        "kind: exec\nentrypoint: main\nsandbox: none\nlimits: {outputBytes: 1000}\n"
    )
    msg = fatal_message(arun(load_function(d).run(make_request(), timeout=10)))
    assert "wrote more than 1000 bytes to stdout (process killed)" in msg


def test_exec_process_that_ignores_stdin_and_exits(tmp_path: Path) -> None:
    fn = load_function(exec_fn(tmp_path, "import sys\nsys.stderr.write('nope')\nsys.exit(3)\n"))
    req = make_request()
    req.input.update({"blob": "y" * 500_000})  # the write side sees EPIPE; the exit code decides
    assert fatal_message(arun(fn.run(req, timeout=10))).endswith("exited with code 3: nope")


def wat_stderr(n: int, code: int) -> str:
    data = "".join(f"\\{b:02x}" for b in b"e" * n)
    return f"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{data}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {n}))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const {code}))))
"""


def test_wasm_stderr_is_kept_up_to_a_cap_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPLANE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(wasm_kind, "_STDERR_KEPT", 30)
    d = tmp_path / "w"
    d.mkdir()
    (d / "fn.wat").write_text(wat_stderr(20, 7))
    fn = load_function(d)
    msg = fatal_message(arun(fn.run(make_request(), timeout=5)))
    assert msg.endswith("exited with code 7: " + "e" * 30)  # two writes of 20, the head kept
    scratch = Path(fn._tmp.name)  # type: ignore[attr-defined]
    for _ in range(3):
        arun(fn.run(make_request(), timeout=5))
    assert all(p.name.startswith("stdin-") for p in scratch.iterdir())  # no per-call files left behind
    arun(fn.close())
    assert not scratch.exists()
