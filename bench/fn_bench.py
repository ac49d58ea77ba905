"""Benchmark: an SDK-written function served by ``xfn`` vs the SDK's own ``runtime.serve``.

Both servers run in their own process on loopback; one client (this process, ``grpc.aio``) sends the
same ``RunFunctionRequest`` with 1 and 64 calls in flight. Also measured: ``xfn`` start-to-ready
(spawn until ``/ready`` answers 200) and idle RSS with three functions loaded.

    .venv/bin/python bench/fn_bench.py [--calls 3000] [--json out.json]

Targets (issue #4): throughput ratio xfn/SDK >= 1.0, p99 ratio <= 1.0, idle RSS <= 60 MB,
start-to-ready <= 1.5 s. Numbers are from one run on a shared machine: repeat before believing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
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


async def load(port: int, concurrency: int, calls: int) -> dict[str, float]:
    import grpc

    from xplane.fn.proto import grpcv1

    req = request()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        for _ in range(50):  # warm up
            await stub.RunFunction(req)
        latencies: list[float] = []
        per_worker = max(1, calls // concurrency)

        async def worker() -> None:
            for _ in range(per_worker):
                t = time.perf_counter()
                await stub.RunFunction(req, timeout=30)
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    py = sys.executable
    xfn = (
        [str(Path(py).parent / "xfn")] if (Path(py).parent / "xfn").exists() else [py, "-m", "xplane.cli.xfn"]
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fn-bench-") as tmp:
        root = Path(tmp)
        (root / "sdk").mkdir()
        (root / "sdk" / "fn.py").write_text(FUNCTION)
        (root / "sdk" / "main.py").write_text(SDK_MAIN)
        one = root / "one"
        three = root / "three"
        (one / "bench").mkdir(parents=True)
        (one / "bench" / "fn.py").write_text(FUNCTION)
        for name in ("alpha", "beta", "gamma"):
            (three / name).mkdir(parents=True)
            (three / name / "fn.py").write_text(FUNCTION)

        # start-to-ready and idle RSS with three functions
        env = {**os.environ, "FUNCTIONS_DIR": str(three)}
        http_port, grpc_port = free_port(), free_port()
        env["LISTEN_ADDR"] = f"127.0.0.1:{http_port}"
        t0 = time.monotonic()
        proc = spawn([*xfn, "--insecure", "--grpc-addr", f"127.0.0.1:{grpc_port}"], env)
        try:
            results["start_to_ready_s"] = wait_ready(http_port) - t0
            time.sleep(1.0)
            results["idle_rss_mb_three_functions"] = rss_mb(proc.pid)
        finally:
            stop(proc)

        for label, argv, env in (
            ("sdk", [py, str(root / "sdk" / "main.py"), "127.0.0.1:{port}", str(root / "sdk")], None),
            (
                "xfn",
                [*xfn, "--insecure", "--grpc-addr", "127.0.0.1:{port}"],
                {
                    **os.environ,
                    "FUNCTIONS_DIR": str(one),
                    "LISTEN_ADDR": f"127.0.0.1:{free_port()}",
                    "LOG_LEVEL": "warn",
                },
            ),
        ):
            port = free_port()
            proc = spawn([a.replace("{port}", str(port)) for a in argv], env)
            try:
                wait_grpc(port)
                time.sleep(0.3)
                for conc in (1, 64):
                    results[f"{label}_c{conc}"] = asyncio.run(load(port, conc, args.calls))
            finally:
                stop(proc)

    for conc in (1, 64):
        x, s = results[f"xfn_c{conc}"], results[f"sdk_c{conc}"]
        results[f"throughput_ratio_c{conc}"] = x["rps"] / s["rps"]
        results[f"p99_ratio_c{conc}"] = x["p99_ms"] / s["p99_ms"]
    print(f"{'':14}{'xfn rps':>10}{'sdk rps':>10}{'ratio':>8}{'xfn p99':>10}{'sdk p99':>10}{'ratio':>8}")
    for conc in (1, 64):
        x, s = results[f"xfn_c{conc}"], results[f"sdk_c{conc}"]
        print(
            f"{f'{conc} in flight':14}{x['rps']:>10.0f}{s['rps']:>10.0f}{results[f'throughput_ratio_c{conc}']:>7.2f}x"
            f"{x['p99_ms']:>8.2f}ms{s['p99_ms']:>8.2f}ms{results[f'p99_ratio_c{conc}']:>7.2f}x"
        )
    print(f"start to ready: {results['start_to_ready_s']:.2f} s (target <= 1.5 s)")
    print(f"idle RSS, three functions: {results['idle_rss_mb_three_functions']:.1f} MB (target <= 60 MB)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
