"""Benchmark of the function runner (``xfn``): the targets of issue #4, measured in one run.

1. gRPC: an SDK-written function served by ``xfn`` vs the same function served by the SDK's own
   ``runtime.serve``, each in its own process, both up for the whole run. One ``grpc.aio`` client
   (this process) sends the same request with 1 and 64 calls in flight, in interleaved rounds
   (xfn, sdk, sdk, xfn, ...) after a warm-up; ratios are taken per pair of adjacent rounds and
   reported as the median with the spread (min-max). On a machine with two or more CPUs both servers
   are pinned to the first CPU and the client to the others (``--no-pin`` turns that off).
2. exec kind: per-call time of ``ExecFunction.run`` on a gcc-compiled binary (JSON protocol, no
   sandbox) vs a bare ``subprocess.run`` of the same binary with the same stdin, interleaved rounds.
   When bubblewrap works, the same again under ``sandbox: bwrap`` vs a bare spawn of the same bwrap
   command line (informational).
3. wasm kind: per-call time of ``WasmFunction.run`` once compiled (the same C program built with
   clang for wasm32-wasi).
   Then the python kind's ``isolation: process`` vs in process, per call through ``Function.run``
   (the gRPC case's SDK function, interleaved rounds; informational: the price of the worker).
4. ``xfn`` start-to-ready (spawn until ``GET /ready`` is 200) and idle RSS with three functions.
5. Idle RSS of ``xfn`` serving one SDK-written Python function and one executable (no
   ``function.yaml``, default sandbox), after one call of each and a settling pause, beside the
   SDK's own server after one call; also ``xfn`` on asyncio's own loop (informational).

    .venv/bin/python bench/fn_bench.py [--rounds 8] [--calls 1000] [--no-pin] [--json out.json]

Targets: throughput xfn/SDK >= 1.0 and p99 xfn/SDK <= 1.0 at 1 and 64 in flight; exec <= 1.3x a bare
spawn; wasm <= 2 ms per call; idle RSS <= 60 MB (three functions), < 50 MB (one Python and one
executable function); start to ready <= 1.5 s. The machine may be shared: read the spread before
believing a ratio.

Every server process runs as an installed xplane would: byte-compiled once into a private pycache
(``PYTHONPYCACHEPREFIX``), whatever ``PYTHONDONTWRITEBYTECODE`` says. A process that compiles
xplane's modules from source keeps several MB more resident and starts slower.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FUNCTION = textwrap.dedent(
    """
    from crossplane.function import resource, response
    from crossplane.function.proto.v1 import run_function_pb2 as fnv1
    from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1


    class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
        async def RunFunction(self, req, context):
            rsp = response.to(req)
            xr = resource.struct_to_dict(req.observed.composite.resource)
            for i in range(10):
                resource.update(rsp.desired.resources[f"bucket-{i}"], {
                    "apiVersion": "s3.example.org/v1", "kind": "Bucket",
                    "spec": {"region": xr["spec"]["region"], "index": i}})
                rsp.desired.resources[f"bucket-{i}"].ready = fnv1.READY_TRUE
            response.normal(rsp, f"composed buckets for {xr['metadata']['name']}")
            return rsp
    """
)
SDK_MAIN = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from crossplane.function import runtime
    from fn import FunctionRunner
    runtime.serve(FunctionRunner(), sys.argv[1], creds=None, insecure=True)
    """
)
# One C program for the exec kind (gcc) and the wasm kind (clang --target=wasm32-wasi).
C_FUNCTION = textwrap.dedent(
    r"""
    #include <stdio.h>
    #include <unistd.h>
    int main(void) {
        static char buf[1 << 16];
        size_t total = 0;
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) total += n;
        printf("{\"meta\":{\"tag\":\"bench\"},\"results\":[{\"severity\":\"SEVERITY_NORMAL\","
               "\"message\":\"read %zu bytes\"}]}\n", total);
        return 0;
    }
    """
)


# -- helpers -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_grpc(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listening on {port}")


def wait_ready(http_port: int, timeout: float = 20) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError("xfn did not become ready")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request() -> Any:
    """The ~2 KB request every case sends (an XR with 40 tags)."""
    from xplane.fn.proto import fnv1

    req = fnv1.RunFunctionRequest(meta=fnv1.RequestMeta(tag="bench"))
    req.observed.composite.resource.update(
        {
            "apiVersion": "example.org/v1",
            "kind": "XBuckets",
            "metadata": {"name": "bench-xr", "labels": {"a": "b"}},
            "spec": {"region": "eu-west-1", "tags": {f"k{i}": f"v{i}" for i in range(40)}},
        }
    )
    return req


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class Pinning:
    """Which CPUs servers and the client run on (None: no pinning)."""

    def __init__(self, enabled: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        self.all = set(cpus)
        self.server: set[int] | None = None
        self.client: set[int] | None = None
        if enabled and len(cpus) >= 2:
            self.server, self.client = {cpus[0]}, set(cpus[1:])

    def pin_client(self) -> None:
        """Pin this process; call before any thread starts (threads inherit the mask)."""
        if self.client is not None:
            os.sched_setaffinity(0, self.client)

    def unpin(self) -> None:
        """All CPUs again (for the in-process exec and wasm cases, which spawn and use threads)."""
        os.sched_setaffinity(0, self.all)

    def pin_server(self, pid: int) -> None:
        """Pin a just-started server, before it starts threads (they inherit the mask).

        From outside rather than in a ``preexec_fn``: that would fork instead of vfork and run
        grpcio's fork handlers, which can abort the child (grpc/grpc#43055).
        """
        if self.server is not None:
            os.sched_setaffinity(pid, self.server)

    def describe(self) -> str:
        if self.server is None:
            return "not pinned"
        return f"servers on CPU {sorted(self.server)}, client on CPU {sorted(self.client or ())}"


@contextmanager
def spawned(argv: list[str], pinning: Pinning, env: dict[str, str] | None = None) -> Iterator[Any]:
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pinning.pin_server(proc.pid)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def xfn_argv() -> list[str]:
    exe = Path(sys.executable).parent / "xfn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "xplane.cli.xfn"]


def server_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: byte-compiled into ``root/pycache`` (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env.update(extra)
    return env


def xfn_env(functions_dir: Path, http_port: int, **extra: str) -> dict[str, str]:
    return server_env(
        functions_dir.parent,
        FUNCTIONS_DIR=str(functions_dir),
        LISTEN_ADDR=f"127.0.0.1:{http_port}",
        **extra,
    )


# -- 1. gRPC: xfn vs the SDK's runtime.serve ----------------------------------------------------------
def cpu_ns(pid: int) -> int:
    """CPU time (ns) every thread of ``pid`` has run so far, from ``/proc/PID/task/*/schedstat``."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # the thread ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total


async def one_round(stub: Any, req: Any, concurrency: int, calls: int, pid: int) -> dict[str, float]:
    latencies: list[float] = []
    per_worker = max(1, calls // concurrency)
    run = stub.RunFunction
    clock = time.perf_counter

    async def worker() -> None:
        for _ in range(per_worker):
            t = clock()
            await run(req, timeout=30)
            latencies.append(clock() - t)

    cpu = cpu_ns(pid)
    start = clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = clock() - start
    cpu = cpu_ns(pid) - cpu
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "cpu_us_per_call": cpu / 1000 / len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    }


async def grpc_rounds(ports: dict[str, int], pids: dict[str, int], rounds: int, calls: int) -> dict[str, Any]:
    import grpc

    from xplane.fn.proto import grpcv1

    req = request()
    out: dict[str, Any] = {}
    channels = {label: grpc.aio.insecure_channel(f"127.0.0.1:{port}") for label, port in ports.items()}
    try:
        stubs = {label: grpcv1.FunctionRunnerServiceStub(ch) for label, ch in channels.items()}
        for label, stub in stubs.items():  # warm up: connections, caches, the allocator
            for _ in range(300):
                await stub.RunFunction(req, timeout=30)
            await one_round(stub, req, 64, 1000, pids[label])
        for conc, n in ((1, calls), (64, calls * 2)):
            samples: dict[str, list[dict[str, float]]] = {"xfn": [], "sdk": []}
            for r in range(rounds):
                for label in ("xfn", "sdk") if r % 2 == 0 else ("sdk", "xfn"):
                    samples[label].append(await one_round(stubs[label], req, conc, n, pids[label]))
            pairs = list(zip(samples["xfn"], samples["sdk"], strict=True))
            out[f"c{conc}"] = {
                "calls_per_round": n,
                "rounds": samples,
                "xfn_rps": statistics.median(s["rps"] for s in samples["xfn"]),
                "sdk_rps": statistics.median(s["rps"] for s in samples["sdk"]),
                "xfn_p99_ms": statistics.median(s["p99_ms"] for s in samples["xfn"]),
                "sdk_p99_ms": statistics.median(s["p99_ms"] for s in samples["sdk"]),
                "throughput_ratio": spread([x["rps"] / s["rps"] for x, s in pairs]),
                "p99_ratio": spread([x["p99_ms"] / s["p99_ms"] for x, s in pairs]),
                "xfn_cpu_us": statistics.median(s["cpu_us_per_call"] for s in samples["xfn"]),
                "sdk_cpu_us": statistics.median(s["cpu_us_per_call"] for s in samples["sdk"]),
                "cpu_ratio": spread([x["cpu_us_per_call"] / s["cpu_us_per_call"] for x, s in pairs]),
            }
    finally:
        for ch in channels.values():
            await ch.close()
    return out


def bench_grpc(root: Path, pinning: Pinning, rounds: int, calls: int) -> dict[str, Any]:
    (root / "sdk").mkdir()
    (root / "sdk" / "fn.py").write_text(FUNCTION)
    (root / "sdk" / "main.py").write_text(SDK_MAIN)
    one = root / "one"
    (one / "bench").mkdir(parents=True)
    (one / "bench" / "fn.py").write_text(FUNCTION)
    sdk_port, xfn_port = free_port(), free_port()
    sdk_argv = [sys.executable, str(root / "sdk" / "main.py"), f"127.0.0.1:{sdk_port}", str(root / "sdk")]
    xfn = [*xfn_argv(), "--insecure", "--grpc-addr", f"127.0.0.1:{xfn_port}"]
    with (
        spawned(sdk_argv, pinning, server_env(root)) as sdk,
        spawned(xfn, pinning, xfn_env(one, free_port())) as xfn_proc,
    ):
        wait_grpc(sdk_port)
        wait_grpc(xfn_port)
        time.sleep(0.3)
        ports, pids = {"xfn": xfn_port, "sdk": sdk_port}, {"xfn": xfn_proc.pid, "sdk": sdk.pid}
        return asyncio.run(grpc_rounds(ports, pids, rounds, calls))


# -- 2. exec kind vs a bare spawn -----------------------------------------------------------------
def _exec_function(root: Path, binary: Path, sandbox: str) -> Any:
    from xplane.fn.loader import load_function

    d = root / f"exec-{sandbox}"
    d.mkdir()
    shutil.copy(binary, d / "fn")
    (d / "function.yaml").write_text(f"kind: exec\nentrypoint: fn\nprotocol: json\nsandbox: {sandbox}\n")
    return load_function(d)


async def exec_rounds(fn: Any, argv: list[str], rounds: int, calls: int) -> dict[str, Any]:
    from xplane.fn.proto import request_to_json

    req = request()
    data = request_to_json(req)

    def bare() -> None:
        subprocess.run(argv, input=data, capture_output=True, check=True)

    for _ in range(20):  # warm up both paths
        bare()
        rsp = await fn.run(req, timeout=30)
    if rsp.results[0].severity == 1:  # FATAL
        raise RuntimeError(f"exec function failed: {rsp.results[0].message}")
    bare_ms: list[float] = []
    kind_ms: list[float] = []
    for r in range(rounds):
        for which in ("kind", "bare") if r % 2 == 0 else ("bare", "kind"):
            t = time.perf_counter()
            if which == "bare":
                for _ in range(calls):
                    bare()
                bare_ms.append((time.perf_counter() - t) / calls * 1000)
            else:
                for _ in range(calls):
                    await fn.run(req, timeout=30)
                kind_ms.append((time.perf_counter() - t) / calls * 1000)
    return {
        "calls_per_round": calls,
        "bare_ms": bare_ms,
        "kind_ms": kind_ms,
        "bare_ms_median": statistics.median(bare_ms),
        "kind_ms_median": statistics.median(kind_ms),
        "ratio": spread([k / b for k, b in zip(kind_ms, bare_ms, strict=True)]),
    }


def bench_exec(root: Path, rounds: int, calls: int) -> dict[str, Any]:
    from xplane.fn.kinds import sandbox

    if shutil.which("gcc") is None:
        return {"skipped": "gcc is not installed"}
    (root / "fn.c").write_text(C_FUNCTION)
    binary = root / "fn-native"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(root / "fn.c")], check=True)
    out: dict[str, Any] = {}
    plain = _exec_function(root, binary, "none")
    out["none"] = asyncio.run(exec_rounds(plain, [str(plain.executable)], rounds, calls))
    if sandbox.bwrap_available():
        boxed = _exec_function(root, binary, "bwrap")
        out["bwrap"] = asyncio.run(exec_rounds(boxed, boxed.command(), max(2, rounds // 2), calls // 2))
    return out


# -- 3. wasm kind --------------------------------------------------------------------------------
def bench_wasm(root: Path, calls: int) -> dict[str, Any]:
    if shutil.which("clang") is None:
        return {"skipped": "clang is not installed"}
    os.environ["XPLANE_CACHE_DIR"] = str(root / "cache")  # compile into a private cache
    from xplane.fn.loader import load_function

    d = root / "wasm"
    d.mkdir()
    (root / "fn.c").write_text(C_FUNCTION)
    build = subprocess.run(
        [
            "clang",
            "--target=wasm32-wasi",
            "-O2",
            "-nodefaultlibs",
            "-o",
            str(d / "fn.wasm"),
            str(root / "fn.c"),
            "-lc",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        return {"skipped": f"clang cannot build wasm32-wasi: {build.stderr[-200:]}"}
    t = time.perf_counter()
    fn = load_function(d)
    compile_s = time.perf_counter() - t
    req = request()

    async def run() -> list[float]:
        for _ in range(30):
            rsp = await fn.run(req, timeout=30)
        if rsp.results[0].severity == 1:  # FATAL
            raise RuntimeError(f"wasm function failed: {rsp.results[0].message}")
        samples = []
        for _ in range(calls):
            t = time.perf_counter()
            await fn.run(req, timeout=30)
            samples.append((time.perf_counter() - t) * 1000)
        await fn.close()
        return sorted(samples)

    samples = asyncio.run(run())
    return {
        "compile_s": compile_s,
        "calls": calls,
        "median_ms": statistics.median(samples),
        "mean_ms": statistics.fmean(samples),
        "p99_ms": samples[max(0, int(len(samples) * 0.99) - 1)],
    }


# -- 3b. python kind: isolation: process vs in process -------------------------------------------------
def bench_python_isolation(root: Path, rounds: int, calls: int) -> dict[str, Any]:
    """Per-call time of the SDK function in process vs in its own worker (``isolation: process``)."""
    from xplane.fn.loader import load_function

    dirs = {}
    for label, isolation in (("inprocess", "inprocess"), ("process", "process")):
        d = root / f"py-{label}"
        d.mkdir()
        (d / "fn.py").write_text(FUNCTION)
        (d / "function.yaml").write_text(f"kind: python\nentrypoint: fn.py\nisolation: {isolation}\n")
        dirs[label] = d
    req = request()

    async def run() -> dict[str, list[float]]:
        fns = {label: load_function(d) for label, d in dirs.items()}
        try:
            for fn in fns.values():  # warm up: worker pipes on this loop, caches
                for _ in range(200):
                    rsp = await fn.run(req, timeout=30)
                if rsp.results[0].severity == 1:  # FATAL
                    raise RuntimeError(f"python function failed: {rsp.results[0].message}")
            per_call: dict[str, list[float]] = {"inprocess": [], "process": []}
            for r in range(rounds):
                for label in ("inprocess", "process") if r % 2 == 0 else ("process", "inprocess"):
                    t = time.perf_counter()
                    for _ in range(calls):
                        await fns[label].run(req, timeout=30)
                    per_call[label].append((time.perf_counter() - t) / calls * 1e6)
            return per_call
        finally:
            for fn in fns.values():
                await fn.close()

    per_call = asyncio.run(run())
    pairs = list(zip(per_call["process"], per_call["inprocess"], strict=True))
    return {
        "calls_per_round": calls,
        "inprocess_us": statistics.median(per_call["inprocess"]),
        "process_us": statistics.median(per_call["process"]),
        "ratio": spread([p / i for p, i in pairs]),
    }


# -- 4. start to ready, idle RSS -----------------------------------------------------------------------
def bench_startup(root: Path, pinning: Pinning, repeats: int = 3) -> dict[str, Any]:
    three = root / "three"
    for name in ("alpha", "beta", "gamma"):
        (three / name).mkdir(parents=True)
        (three / name / "fn.py").write_text(FUNCTION)
    ready: list[float] = []
    rss: list[float] = []
    for _ in range(repeats):
        http_port = free_port()
        t0 = time.monotonic()
        argv = [*xfn_argv(), "--insecure", "--grpc-addr", f"127.0.0.1:{free_port()}"]
        with spawned(argv, pinning, xfn_env(three, http_port)) as proc:
            ready.append(wait_ready(http_port) - t0)
            time.sleep(1.0)
            rss.append(rss_mb(proc.pid))
    return {"start_to_ready_s": spread(ready), "idle_rss_mb_three_functions": spread(rss)}


# -- 5. idle RSS: one python and one executable function, beside the SDK's server -------------------------
async def call_each(port: int, names: list[str | None]) -> None:
    """One ``RunFunction`` call per name (``None``: no routing metadata), each checked for FATAL."""
    import grpc

    from xplane.fn.proto import grpcv1

    req = request()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = grpcv1.FunctionRunnerServiceStub(channel)
        for name in names:
            metadata = (("x-xplane-function", name),) if name else ()
            rsp = await stub.RunFunction(req, timeout=30, metadata=metadata)
            if rsp.results and rsp.results[0].severity == 1:  # FATAL
                raise RuntimeError(f"{name or 'sdk'} answered FATAL: {rsp.results[0].message}")


def _idle_rss(
    argv: list[str],
    env: dict[str, str],
    pinning: Pinning,
    *,
    port: int,
    http_port: int | None,
    names: list[str | None],
    settle: float,
) -> float:
    with spawned(argv, pinning, env) as proc:
        wait_grpc(port)
        if http_port is not None:
            wait_ready(http_port)
        asyncio.run(call_each(port, names))
        time.sleep(settle)
        return rss_mb(proc.pid)


def bench_idle_rss(root: Path, pinning: Pinning, repeats: int = 3, settle: float = 2.0) -> dict[str, Any]:
    """Idle RSS after one call of each function: xfn (uvloop, asyncio) and the SDK's ``runtime.serve``."""
    pair = root / "pair"
    (pair / "python-fn").mkdir(parents=True)
    (pair / "python-fn" / "fn.py").write_text(FUNCTION)
    exe = pair / "exec-fn"  # a bare executable: kind exec, protocol json, sandbox auto (the defaults)
    if shutil.which("gcc") is not None:
        (root / "idle.c").write_text(C_FUNCTION)
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(root / "idle.c")], check=True)
    else:
        exe.write_text(
            "#!/bin/sh\ncat >/dev/null\n"
            """echo '{"results":[{"severity":"SEVERITY_NORMAL","message":"ok"}]}'\n"""
        )
        exe.chmod(0o755)
    sdk_dir = root / "sdk-idle"
    sdk_dir.mkdir()
    (sdk_dir / "fn.py").write_text(FUNCTION)
    (sdk_dir / "main.py").write_text(SDK_MAIN)
    out: dict[str, Any] = {}
    cases: dict[str, tuple[str, dict[str, str]]] = {
        "xfn": ("xfn", {}),
        "xfn_asyncio": ("xfn", {"EVENT_LOOP": "asyncio"}),
        "sdk": ("sdk", {}),
    }
    for label, (server, extra) in cases.items():
        samples = []
        for i in range(repeats + 1):  # the first start byte-compiles into the private pycache: not counted
            port = free_port()
            if server == "xfn":
                http_port = free_port()
                argv = [*xfn_argv(), "--insecure", "--grpc-addr", f"127.0.0.1:{port}"]
                env = xfn_env(pair, http_port, **extra)
                names: list[str | None] = ["python-fn", "exec-fn"]
            else:
                http_port = None
                argv = [sys.executable, str(sdk_dir / "main.py"), f"127.0.0.1:{port}", str(sdk_dir)]
                env = server_env(root)
                names = [None]
            rss = _idle_rss(argv, env, pinning, port=port, http_port=http_port, names=names, settle=settle)
            if i:
                samples.append(rss)
        out[label] = spread(samples)
    return out


# -- report ----------------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for conc in (1, 64) if "grpc" in results else ():
        g = results["grpc"][f"c{conc}"]
        tr, pr = g["throughput_ratio"], g["p99_ratio"]
        rows.append(
            (
                f"throughput xfn/SDK, {conc} in flight",
                ">= 1.0x",
                f"{tr['median']:.2f}x ({g['xfn_rps']:.0f} vs {g['sdk_rps']:.0f} rps)",
                f"{tr['min']:.2f}-{tr['max']:.2f}",
            )
        )
        rows.append(
            (
                f"p99 xfn/SDK, {conc} in flight",
                "<= 1.0x",
                f"{pr['median']:.2f}x ({g['xfn_p99_ms']:.2f} vs {g['sdk_p99_ms']:.2f} ms)",
                f"{pr['min']:.2f}-{pr['max']:.2f}",
            )
        )
        cr = g["cpu_ratio"]
        rows.append(
            (
                f"server CPU per call xfn/SDK, {conc} in flight",
                "(<= 1.0x)",
                f"{cr['median']:.2f}x ({g['xfn_cpu_us']:.0f} vs {g['sdk_cpu_us']:.0f} us)",
                f"{cr['min']:.2f}-{cr['max']:.2f}",
            )
        )
    if "exec" not in results:
        return rows + _idle_rows(results)
    ex = results["exec"]
    if "none" in ex:
        e = ex["none"]
        rows.append(
            (
                "exec kind / bare spawn",
                "<= 1.3x",
                f"{e['ratio']['median']:.2f}x ({e['kind_ms_median']:.3f} vs {e['bare_ms_median']:.3f} ms)",
                f"{e['ratio']['min']:.2f}-{e['ratio']['max']:.2f}",
            )
        )
    if "bwrap" in ex:
        e = ex["bwrap"]
        rows.append(
            (
                "exec kind / bare spawn, both in bwrap",
                "(info)",
                f"{e['ratio']['median']:.2f}x ({e['kind_ms_median']:.3f} vs {e['bare_ms_median']:.3f} ms)",
                f"{e['ratio']['min']:.2f}-{e['ratio']['max']:.2f}",
            )
        )
    if "skipped" in ex:
        rows.append(("exec kind / bare spawn", "<= 1.3x", f"skipped: {ex['skipped']}", ""))
    w = results["wasm"]
    if "skipped" in w:
        rows.append(("wasm per call, compiled", "<= 2 ms", f"skipped: {w['skipped']}", ""))
    else:
        rows.append(
            (
                "wasm per call, compiled",
                "<= 2 ms",
                f"{w['median_ms']:.3f} ms median",
                f"p99 {w['p99_ms']:.2f} ms",
            )
        )
    py = results.get("python_isolation")
    if py is not None:
        rows.append(
            (
                "python isolation: process / in process",
                "(info)",
                f"{py['ratio']['median']:.2f}x ({py['process_us']:.0f} vs {py['inprocess_us']:.0f} us/call)",
                f"{py['ratio']['min']:.2f}-{py['ratio']['max']:.2f}",
            )
        )
    s = results["startup"]
    r, m = s["start_to_ready_s"], s["idle_rss_mb_three_functions"]
    rows.append(("start to ready", "<= 1.5 s", f"{r['median']:.2f} s", f"{r['min']:.2f}-{r['max']:.2f}"))
    rows.append(
        ("idle RSS, three functions", "<= 60 MB", f"{m['median']:.1f} MB", f"{m['min']:.1f}-{m['max']:.1f}")
    )
    return rows + _idle_rows(results)


def _idle_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    idle = results.get("idle_rss")
    if idle is not None:
        x, a, k = idle["xfn"], idle["xfn_asyncio"], idle["sdk"]
        rows.append(
            (
                "idle RSS, one python + one exec fn",
                "< 50 MB",
                f"{x['median']:.1f} MB (SDK server, one fn: {k['median']:.1f} MB)",
                f"{x['min']:.1f}-{x['max']:.1f} (SDK {k['min']:.1f}-{k['max']:.1f})",
            )
        )
        rows.append(
            (
                "  the same, --event-loop asyncio",
                "(info)",
                f"{a['median']:.1f} MB",
                f"{a['min']:.1f}-{a['max']:.1f}",
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds per case [8]")
    parser.add_argument(
        "--calls", type=int, default=1000, help="calls per gRPC round at 1 in flight (x2 at 64) [1000]"
    )
    parser.add_argument("--exec-calls", type=int, default=150, help="calls per exec round [150]")
    parser.add_argument("--wasm-calls", type=int, default=300, help="wasm calls measured [300]")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and client to CPUs")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--grpc-only", action="store_true", help="only the gRPC case (xfn vs the SDK)")
    parser.add_argument("--idle-rss-only", action="store_true", help="only the idle RSS case (5.)")
    args = parser.parse_args()
    pinning = Pinning(not args.no_pin)
    pinning.pin_client()  # before grpc or any thread starts
    results: dict[str, Any] = {"pinning": pinning.describe(), "loadavg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="fn-bench-") as tmp:
        root = Path(tmp)
        if args.idle_rss_only:
            results["idle_rss"] = bench_idle_rss(root, pinning)
        else:
            results["grpc"] = bench_grpc(root, pinning, args.rounds, args.calls)
        if not args.grpc_only and not args.idle_rss_only:
            pinning.unpin()  # exec and wasm run in this process, as they would inside xfn: on every CPU
            results["exec"] = bench_exec(root, max(2, args.rounds - 2), args.exec_calls)
            results["wasm"] = bench_wasm(root, args.wasm_calls)
            results["python_isolation"] = bench_python_isolation(root, max(2, args.rounds - 2), 500)
            results["startup"] = bench_startup(root, pinning)
            results["idle_rss"] = bench_idle_rss(root, pinning)
    results["loadavg_after"] = os.getloadavg()
    _print(results, table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _print(results: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> None:
    pinning = results["pinning"]
    widths = [max(len(row[i]) for row in [("case", "target", "result", "spread"), *rows]) for i in range(4)]
    for row in [("case", "target", "result", "spread"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(
        f"({pinning}; load average {results['loadavg_before'][0]:.2f} before, "
        f"{results['loadavg_after'][0]:.2f} after; ratios are medians of per-round pairs, spread min-max)"
    )


if __name__ == "__main__":
    sys.exit(main())
