"""Python functions with ``isolation: process``: real worker processes, real crashes, real limits."""

from __future__ import annotations

import asyncio
import json
import shutil
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from tests.fn.conftest import FIXTURES, arun, fatal_message, make_request, results
from tests.fn.runner_fixtures import running, test_settings, xr_request
from xplane.fn.base import DEADLINE_GRACE, FunctionSpec
from xplane.fn.kinds.pyprocess import RESPAWN_INTERVAL, PythonProcessFunction
from xplane.fn.kinds.python import PythonFunction
from xplane.fn.loader import create_function, load_function
from xplane.fn.proto import fnv1, grpcv1
from xplane.fn.sources import LocalSource
from xplane.fn.table import FunctionTable

MODES = """\
import asyncio, ctypes, os, sys, time
from crossplane.function import response

async def run_function(req):
    mode = req.input["mode"] if "mode" in req.input else "ok"
    if mode == "exit":
        os._exit(3)
    if mode == "segv":
        ctypes.string_at(0)
    if mode == "sleep":
        await asyncio.sleep(float(req.input["seconds"]))
    if mode == "block":
        time.sleep(float(req.input["seconds"]))  # blocks the worker's event loop
    if mode == "alloc":
        data = bytearray(1 << 30)
    if mode == "print":
        print("hello from print()")
        sys.stdout.write("\\x00\\x00\\x00\\x07 garbage on stdout")
        sys.stdout.flush()
        os.write(1, b"\\xff raw bytes on fd 1")
    rsp = response.to(req)
    response.normal(rsp, f"pid {os.getpid()}")
    return rsp
"""

SYNC_HANG = """\
import os, time
from crossplane.function import response

def run_function(req):
    time.sleep(float(req.input["seconds"]) if "seconds" in req.input else 0)
    rsp = response.to(req)
    response.normal(rsp, f"pid {os.getpid()}")
    return rsp
"""


def write_function(root: Path, name: str, source: str = MODES, extra: str = "") -> Path:
    """``root/name`` with ``fn.py`` and a ``function.yaml`` asking for process isolation."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "fn.py").write_text(source)
    (d / "function.yaml").write_text("kind: python\nisolation: process\n" + textwrap.dedent(extra))
    return d


def load(path: Path) -> PythonProcessFunction:
    fn = load_function(path)
    assert isinstance(fn, PythonProcessFunction)
    return fn


def req(mode: str = "ok", tag: str = "t", **extra: object) -> fnv1.RunFunctionRequest:
    return make_request(tag=tag, mode=mode, **extra)


def pid_of(rsp: fnv1.RunFunctionResponse) -> int:
    ((severity, message),) = results(rsp)
    assert severity == fnv1.SEVERITY_NORMAL, message
    return int(message.removeprefix("pid "))


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


async def await_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def worker_pids(marker: Path) -> list[int]:
    """Live pyworker processes serving functions under ``marker`` (read from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"xplane.fn.kinds.pyworker" in cmdline and str(marker).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_sdk_function_answers_byte_identically_in_both_modes() -> None:
    path = FIXTURES / "python" / "sdk_fn"
    inproc_spec = FunctionSpec(name="sdk", kind="python", path=path, entrypoint="fn.py")
    proc_spec = FunctionSpec(
        name="sdk", kind="python", path=path, entrypoint="fn.py", options={"isolation": "process"}
    )
    inproc, isolated = create_function(inproc_spec), create_function(proc_spec)
    assert isinstance(inproc, PythonFunction) and isinstance(isolated, PythonProcessFunction)
    assert isolated.version == inproc.version

    async def both() -> tuple[bytes, bytes]:
        request = make_request(tag="t-42", region="ap-south-1")
        a = await inproc.run(request, timeout=5)
        b = await isolated.run(request, timeout=5)
        await isolated.close()
        return a.SerializeToString(deterministic=True), b.SerializeToString(deterministic=True)

    a, b = arun(both())
    assert a == b
    assert b"my-xr-bucket" in b


def test_exit_is_fatal_with_the_code_and_the_next_call_respawns(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "exiter"))
    neighbour = load_function(FIXTURES / "python" / "pkg_fn")  # in process, same loop

    async def scenario() -> None:
        first = pid_of(await fn.run(req(), timeout=5))
        crashed = await fn.run(req("exit", tag="x"), timeout=5)
        assert crashed.meta.tag == "x"
        assert "worker exited with code 3" in fatal_message(crashed)
        assert results(await neighbour.run(make_request(), timeout=5)) == [
            (fnv1.SEVERITY_WARNING, "from a package")
        ]
        second = pid_of(await fn.run(req(), timeout=5))
        assert second != first and not alive(first)
        assert fn.starts == 2
        await fn.close()
        assert not alive(second)

    arun(scenario())


def test_segfault_is_fatal_naming_sigsegv(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "segv"))

    async def scenario() -> str:
        try:
            return fatal_message(await fn.run(req("segv"), timeout=5))
        finally:
            await fn.close()

    message = arun(scenario())
    assert "killed by SIGSEGV" in message
    assert "fn.py" in message  # faulthandler's traceback, from the stderr tail


def test_memory_limit_turns_a_huge_allocation_into_memoryerror(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "hungry", extra="limits: {memory: 200Mi}\n"))
    pid = fn.pid
    assert pid is not None
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(ln for ln in limits.splitlines() if ln.startswith("Max address space"))
    assert line.split()[3] == str(200 << 20), f"the worker has no 200Mi limit: {line}"  # else never allocate

    async def scenario() -> None:
        rsp = await fn.run(req("alloc"), timeout=5)
        assert "raised MemoryError" in fatal_message(rsp)
        assert pid_of(await fn.run(req(), timeout=5)) == pid  # the worker survived
        await fn.close()

    arun(scenario())


def test_print_and_stdout_garbage_do_not_corrupt_frames(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "chatty"))

    async def scenario() -> None:
        pid = pid_of(await fn.run(req("print"), timeout=5))
        assert pid_of(await fn.run(req(), timeout=5)) == pid
        await fn.close()

    arun(scenario())


def test_hung_sync_call_is_fatal_and_its_worker_is_replaced(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "hangs", SYNC_HANG, extra="timeout: 300ms\n"))

    async def scenario() -> None:
        old = pid_of(await fn.run(make_request(), timeout=0.3))
        start = time.monotonic()
        rsp = await fn.run(make_request(seconds=60), timeout=0.3)
        assert "timed out after 0.3s" in fatal_message(rsp)
        assert time.monotonic() - start < 0.3 + DEADLINE_GRACE
        await await_until(lambda: not alive(old), 0.3 + DEADLINE_GRACE + 0.5, "the stuck worker to go")
        assert pid_of(await fn.run(make_request(), timeout=2)) != old
        await fn.close()

    arun(scenario())


def test_async_overrun_is_fatal_and_the_worker_keeps_serving(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "slow"))

    async def scenario() -> None:
        pid = pid_of(await fn.run(req(), timeout=5))
        rsp = await fn.run(req("sleep", seconds=60), timeout=0.2)
        assert "timed out after 0.2s" in fatal_message(rsp)
        assert pid_of(await fn.run(req(), timeout=5)) == pid
        await fn.close()

    arun(scenario())


def test_worker_that_stops_answering_is_killed_after_the_grace(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "wedged"))

    async def scenario() -> None:
        pid = pid_of(await fn.run(req(), timeout=5))
        start = time.monotonic()
        rsp = await fn.run(req("block", seconds=30), timeout=0.2)  # the worker's loop is blocked
        elapsed = time.monotonic() - start
        assert "did not answer within 0.2s; worker restarted" in fatal_message(rsp)
        assert 0.2 + DEADLINE_GRACE <= elapsed < 0.2 + DEADLINE_GRACE + 0.5
        await await_until(lambda: not alive(pid), 2, "the wedged worker to be killed")
        assert pid_of(await fn.run(req(), timeout=5)) != pid
        await fn.close()

    arun(scenario())


def test_async_calls_run_concurrently(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "sleeper"))

    async def scenario() -> float:
        await fn.run(req(), timeout=5)  # the worker is on this loop
        start = time.monotonic()
        rsps = await asyncio.gather(*(fn.run(req("sleep", seconds=0.3), timeout=5) for _ in range(16)))
        elapsed = time.monotonic() - start
        assert len({pid_of(r) for r in rsps}) == 1
        await fn.close()
        return elapsed

    assert arun(scenario()) < 1.2  # serially: 16 * 0.3 = 4.8 s


def test_crash_fails_exactly_the_calls_in_flight(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "crowd"))

    async def scenario() -> None:
        await fn.run(req(), timeout=5)
        sleepers = [
            asyncio.create_task(fn.run(req("sleep", tag=f"s{i}", seconds=30), timeout=10)) for i in range(3)
        ]
        worker = fn._worker
        assert worker is not None
        await await_until(lambda: len(worker.pending) == 3, 2, "three calls in flight")
        crash = await fn.run(req("exit", tag="crash"), timeout=10)
        answers = await asyncio.gather(*sleepers)
        for i, rsp in enumerate([*answers, crash]):
            fatals = [r for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
            assert len(fatals) == 1 and "worker exited with code 3" in fatals[0].message
            assert rsp.meta.tag == (f"s{i}" if i < 3 else "crash")
        pid_of(await fn.run(req(), timeout=5))
        await fn.close()

    arun(scenario())


def test_crash_loop_restarts_at_most_once_a_second(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "looper"))

    async def scenario() -> list[str]:
        messages = []
        start = time.monotonic()
        while time.monotonic() - start < 1.5:
            messages.append(fatal_message(await fn.run(req("exit"), timeout=2)))
            await asyncio.sleep(0.02)  # paces the calls; the backoff is what is measured
        await fn.close()
        return messages

    messages = arun(scenario())
    assert fn.starts <= 3, f"{fn.starts} worker starts in 1.5 s"  # load, first restart, one a second later
    assert any(f"restarts at most once every {RESPAWN_INTERVAL:g}s" in m for m in messages)
    assert all("worker exited with code 3" in m for m in messages)


def test_import_error_is_a_load_error_and_the_others_keep_serving(tmp_path: Path) -> None:
    write_function(tmp_path, "good")
    write_function(tmp_path, "broken", "import not_a_module_anywhere\n")
    shutil.copytree(FIXTURES / "python" / "pkg_fn", tmp_path / "inproc")

    async def scenario() -> None:
        table = FunctionTable(LocalSource(tmp_path))
        await table.refresh()
        try:
            assert "ModuleNotFoundError" in table.errors["broken"]
            assert "fn.py" in table.errors["broken"]
            assert sorted(table.functions) == ["good", "inproc"]
            good = table.functions["good"].function
            pid_of(await good.run(req(), timeout=5))
            assert results(await table.functions["inproc"].function.run(make_request(), timeout=5))
        finally:
            await table.close()

    arun(scenario())
    assert worker_pids(tmp_path) == []


def test_reload_replaces_the_worker_and_stop_leaves_none(tmp_path: Path) -> None:
    d = write_function(tmp_path, "changing")

    async def scenario() -> None:
        table = FunctionTable(LocalSource(tmp_path))
        await table.refresh()
        try:
            old = pid_of(await table.functions["changing"].function.run(req(), timeout=5))
            (d / "fn.py").write_text(MODES.replace('f"pid {os.getpid()}"', 'f"pid {os.getpid()}" + ""'))
            assert await table.refresh()
            new = pid_of(await table.functions["changing"].function.run(req(), timeout=5))
            assert new != old
            await await_until(lambda: not alive(old), 5, "the old worker to go")
        finally:
            await table.close()
        assert not alive(new)

    arun(scenario())
    assert worker_pids(tmp_path) == []


def test_grpc_call_through_a_running_runner(tmp_path: Path) -> None:
    write_function(tmp_path, "isolated")
    with running(test_settings(tmp_path), discover=None) as rt, grpc.insecure_channel(rt.grpc_target) as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        request = xr_request("g1")
        rsp = stub.RunFunction(request, timeout=5)
        assert rsp.meta.tag == "g1"
        pid = pid_of(rsp)
        slow = xr_request("g2")
        slow.input.update({"mode": "sleep", "seconds": 5})
        with pytest.raises(grpc.RpcError) as err:  # the caller's deadline cancels; the worker stays
            stub.RunFunction(slow, timeout=0.3)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert pid_of(stub.RunFunction(xr_request("g3"), timeout=5)) == pid
        assert worker_pids(tmp_path) == [pid]
        with urllib.request.urlopen(f"{rt.http_base}/functions", timeout=5) as resp:
            (shown,) = json.loads(resp.read())["functions"]
        assert shown["isolation"] == "process" and shown["workerPid"] == pid and shown["workerStarts"] == 1
    wait_until(lambda: not worker_pids(tmp_path), 2, "the runner's stop to end the worker")


def test_a_function_moved_to_another_event_loop_gets_a_fresh_worker(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "mover"))
    first = pid_of(arun(fn.run(req(), timeout=5)))  # asyncio.run: a new loop per call, as `xp xfn run`
    second = pid_of(arun(fn.run(req(), timeout=5)))
    assert second != first and not alive(first)
    third = pid_of(arun(fn.run(req(), timeout=5)))  # a move is not a crash: no restart backoff
    assert third not in (first, second)
    arun(fn.close())
    assert worker_pids(tmp_path) == []


ENV = """\
import os
from crossplane.function import response

def run_function(req):
    rsp = response.to(req)
    for name in ("GREETING", "XPLANE_TEST_RUNNER_ONLY", "PATH"):
        response.normal(rsp, f"{name}={os.environ.get(name)}")
    return rsp
"""


def test_worker_gets_the_declared_env_and_not_the_runners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XPLANE_TEST_RUNNER_ONLY", "leaked")
    fn = load(write_function(tmp_path, "env", ENV, extra="env: {GREETING: hello}\n"))

    async def scenario() -> list[str]:
        try:
            return [m for _, m in results(await fn.run(make_request(), timeout=5))]
        finally:
            await fn.close()

    greeting, runner_only, path = arun(scenario())
    assert greeting == "GREETING=hello"
    assert runner_only == "XPLANE_TEST_RUNNER_ONLY=None"
    assert path != "PATH=None"


# -- the sandbox (opt-in: sandbox: bwrap | auto) ----------------------------------------------------------
SANDBOXED = """\
import os, socket, sys
from crossplane.function import response

async def run_function(req):
    what = req.input["probe"]
    rsp = response.to(req)
    if what == "write":
        try:
            with open("written.txt", "w") as f:
                f.write("x")
            response.normal(rsp, "wrote")
        except OSError as e:
            response.normal(rsp, f"refused: {e.strerror}")
    elif what == "connect":
        try:
            socket.create_connection(("127.0.0.1", int(req.input["port"])), timeout=2).close()
            response.normal(rsp, "connected")
        except OSError as e:
            response.normal(rsp, f"refused: {e.strerror or e}")
    elif what == "segv":
        import ctypes
        ctypes.string_at(0)
    elif what == "where":
        response.normal(rsp, f"{os.getcwd()} {os.environ['HOME']} {sys.prefix}")
    return rsp
"""


def _need_bwrap() -> None:
    from xplane.fn.kinds.sandbox import bwrap_available

    if bwrap_available() is None:
        pytest.skip("bubblewrap is missing or cannot create user namespaces here")


def message_of(rsp: fnv1.RunFunctionResponse) -> str:
    ((_, message),) = results(rsp)
    return message


def test_sandboxed_worker_cannot_write_or_connect_and_crashes_are_named(tmp_path: Path) -> None:
    _need_bwrap()
    import socket

    fn = load(write_function(tmp_path, "boxed", SANDBOXED, "sandbox: bwrap\n"))
    assert fn.sandbox == "bwrap"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        async def scenario() -> list[str]:
            try:
                out = []
                for probe in ("write", "connect", "where"):
                    rsp = await fn.run(make_request(probe=probe, port=port), timeout=5)
                    out.append(message_of(rsp))
                crashed = await fn.run(make_request(probe="segv"), timeout=5)
                out.append(fatal_message(crashed))
                return out
            finally:
                await fn.close()

        write, connect, where, crash = arun(scenario())
    assert write == "refused: Read-only file system"
    assert not (tmp_path / "boxed" / "written.txt").exists()
    assert connect.startswith("refused:")  # no network namespace shared
    cwd, home, _prefix = where.split(" ")
    assert cwd == str((tmp_path / "boxed").resolve()) and home == "/tmp"
    assert "SIGSEGV" in crash  # bwrap's 128+signal exit is read back as the signal
    wait_until(lambda: not worker_pids(tmp_path), 5, "the sandboxed worker to go")


def test_sandboxed_worker_may_share_the_network_when_asked(tmp_path: Path) -> None:
    _need_bwrap()
    import socket

    fn = load(write_function(tmp_path, "net", SANDBOXED, "sandbox: bwrap\nnetwork: true\n"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        rsp = arun(_run_and_close(fn, make_request(probe="connect", port=listener.getsockname()[1])))
    assert message_of(rsp) == "connected"


async def _run_and_close(
    fn: PythonProcessFunction, request: fnv1.RunFunctionRequest
) -> fnv1.RunFunctionResponse:
    try:
        return await fn.run(request, timeout=5)
    finally:
        await fn.close()


def test_workers_are_not_sandboxed_unless_asked(tmp_path: Path) -> None:
    fn = load(write_function(tmp_path, "plain", SANDBOXED))
    assert fn.sandbox == "none" and "bwrap" not in fn.command()[0]
    rsp = arun(_run_and_close(fn, make_request(probe="write")))
    assert message_of(rsp) == "wrote" and (tmp_path / "plain" / "written.txt").exists()
