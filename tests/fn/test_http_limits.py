"""Hostile callers of ``POST /functions/{name}:run``: every body bounded, the runner answering throughout.

The attacks run against a real ``xfn`` process on 127.0.0.1 (its RSS and its JSON workers are
then its own process tree), or a real runner in a thread where a test needs a scripted function.
Before the limits, one 7.5 MB body of ``[{},{},...]`` held ``/health`` for 8 s; eight of them for
57 s at 440 MB.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fn.runner_fixtures import RunnerThread, running, test_settings, write_function
from tests.support.procs import free_port, kill, log_tail, spawn
from tests.support.runbodies import kubernetes_request, wrap
from xplane.cli.xfn import serve
from xplane.fn.httpjson import within_values
from xplane.fn.proto import fnv1, grpcv1
from xplane.fn.settings import FLAG_ENV, Address, RunnerConfigError, Settings

ECHO = textwrap.dedent(
    """
    from crossplane.function import response


    def run_function(req):
        rsp = response.to(req)
        response.normal(rsp, f"{len(req.observed.resources)} resources")
        return rsp
    """
)


# -- the real runner, and what watches it ----------------------------------------------------------
@dataclass
class Xfn:
    pid: int
    http_port: int
    grpc_port: int


@pytest.fixture(scope="module")
def xfn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Xfn]:
    """``xfn serve`` with the default limits and one function, ``echo``."""
    root = tmp_path_factory.mktemp("xfn")
    (root / "functions" / "echo").mkdir(parents=True)
    (root / "functions" / "echo" / "fn.py").write_text(ECHO)
    http_port, grpc_port = free_port(), free_port()
    exe = Path(sys.executable).parent / "xfn"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "xplane.cli.xfn"]
    argv += ["serve", "--insecure", "--functions-dir", str(root / "functions"), "--reload-interval", "0"]
    argv += ["--listen-addr", f"127.0.0.1:{http_port}", "--grpc-addr", f"127.0.0.1:{grpc_port}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_")}
    proc = spawn(argv, root / "xfn.log", env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"xfn did not become ready:\n{log_tail(root / 'xfn.log')}")
                time.sleep(0.05)
        yield Xfn(proc.pid, http_port, grpc_port)
    finally:
        kill(proc)


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def children(pid: int) -> list[int]:
    """The process's children (for ``xfn``: its JSON workers)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


@dataclass
class Watch:
    """Probes ``/health`` and gRPC and samples the process tree's RSS until stopped."""

    target: Xfn
    health: list[float] = field(default_factory=list)
    grpc_calls: list[float] = field(default_factory=list)
    peak_rss: int = 0
    most_workers: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watch:
        self._threads = [threading.Thread(target=t, daemon=True) for t in (self._probe, self._sample)]
        for t in self._threads:
            t.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _probe(self) -> None:
        url = f"http://127.0.0.1:{self.target.http_port}/health"
        with grpc.insecure_channel(f"127.0.0.1:{self.target.grpc_port}") as channel:
            stub = grpcv1.FunctionRunnerServiceStub(channel)
            while not self._stop.is_set():
                start = time.monotonic()
                with urllib.request.urlopen(url, timeout=60) as r:
                    assert r.status == 200
                self.health.append(time.monotonic() - start)
                start = time.monotonic()
                stub.RunFunction(fnv1.RunFunctionRequest(), timeout=60)
                self.grpc_calls.append(time.monotonic() - start)
                time.sleep(0.02)

    def _sample(self) -> None:
        pid = self.target.pid
        while not self._stop.is_set():
            workers = children(pid)
            total = _rss(pid)
            for child in workers:
                with contextlib.suppress(OSError):  # it exited meanwhile
                    total += _rss(child)
            self.peak_rss = max(self.peak_rss, total)
            self.most_workers = max(self.most_workers, len(workers))
            time.sleep(0.01)


def post(port: int, path: str, body: bytes, *, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
    """Send the whole body, as an attacker does, then read the answer: status, JSON, head."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        s.sendall(head)
        s.sendall(body)
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    head_text, _, payload = data.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), json.loads(payload), head_text.decode()


# -- the attacks -------------------------------------------------------------------------------
def test_bodies_of_many_small_values_are_refused_unparsed_while_health_answers(xfn: Xfn) -> None:
    dense = wrap(b",".join([b"{}"] * 2_500_000))  # 7.5 MB, under --http-max-body; 2.5M values
    huge = b"0," * 10_000_000  # 20 MB: over --http-max-body, refused before it is read
    with Watch(xfn) as watch, ThreadPoolExecutor(9) as pool:
        answers = list(
            pool.map(lambda b: post(xfn.http_port, "/functions/echo:run", b), [dense] * 8 + [huge])
        )
    for status, body, _ in answers[:8]:
        assert status == 413 and "--http-max-json-values" in body["error"]
    status, body, _ = answers[8]
    assert status == 413 and "--http-max-body" in body["error"]  # an answer, not a connection reset
    assert max(watch.health) < 0.5, watch.health
    assert max(watch.grpc_calls) < 1.0, watch.grpc_calls
    assert watch.peak_rss < 300 * 2**20, watch.peak_rss / 2**20


def test_a_refused_body_is_drained_slowly_and_briefly(xfn: Xfn) -> None:
    """After a 413 the server reads on at DRAIN_RATE (all drains together) for at most LINGER
    seconds: a client streaming a refused body flat out (it used to be read at ~1 GB/s for 2 s on
    the event loop) gets through little, while gRPC and /health stay quick."""
    import socket

    from xplane.fn.http import DRAIN_RATE, LINGER

    head = (
        f"POST /functions/echo:run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**12}\r\n\r\n"
    ).encode()
    chunk = b"0" * 65536

    def stream() -> tuple[float, int]:
        with socket.create_connection(("127.0.0.1", xfn.http_port), timeout=10) as sock:
            sock.sendall(head)
            sent, start = 0, time.monotonic()
            try:
                while time.monotonic() - start < 3 * LINGER:
                    sent += sock.send(chunk)
            except OSError:  # reset or broken pipe: the server stopped reading and closed
                pass
            return time.monotonic() - start, sent

    with Watch(xfn) as watch, ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: stream(), range(2)))
    for elapsed, _ in results:
        assert elapsed < LINGER + 1.5, results
    buffers = 2 * 8 * 2**20  # what the kernel's socket buffers take in besides
    assert sum(sent for _, sent in results) < DRAIN_RATE * (LINGER + 0.5) + buffers, results
    assert max(watch.health) < 0.5, watch.health
    assert max(watch.grpc_calls) < 1.0, watch.grpc_calls


def test_large_valid_bodies_are_parsed_off_the_event_loop_two_at_a_time(xfn: Xfn) -> None:
    body = kubernetes_request(14_000)  # about 6 MB and 400k JSON values: ~1 s of parsing each
    assert within_values(body, 1_000_000) and len(body) < 8 * 2**20
    with Watch(xfn) as watch, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda b: post(xfn.http_port, "/functions/echo:run", b), [body] * 4))
    for status, rsp, _ in answers:
        assert status == 200 and rsp["results"][0]["message"] == "14000 resources"
    assert max(watch.health) < 0.5, watch.health
    assert max(watch.grpc_calls) < 1.0, watch.grpc_calls
    assert 1 <= watch.most_workers <= 2  # --http-max-concurrent-runs
    assert watch.peak_rss < 500 * 2**20, watch.peak_rss / 2**20


def test_a_worker_killed_mid_parse_fails_that_call_only(xfn: Xfn) -> None:
    for worker in children(xfn.pid):  # start from no idle worker, so the next one is the call's own
        os.kill(worker, signal.SIGKILL)
    time.sleep(0.2)
    body = kubernetes_request(14_000)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(post, xfn.http_port, "/functions/echo:run", body)
        deadline = time.monotonic() + 10
        while not (workers := children(xfn.pid)) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert workers
        os.kill(workers[0], signal.SIGKILL)
        status, rsp, _ = call.result(60)
    assert status == 503 and "killed by SIGKILL" in rsp["error"]
    status, rsp, _ = post(xfn.http_port, "/functions/echo:run", body)
    assert status == 200 and rsp["results"][0]["message"] == "14000 resources"


# -- limits, answered the same on the event loop and in a worker -------------------------------------
def jpost(rt: RunnerThread, name: str, body: bytes) -> tuple[int, dict[str, Any], str]:
    return post(int(rt.runner.http_port or 0), f"/functions/{name}:run", body, timeout=60)


def nested(depth: int, pad: int) -> bytes:
    """A resource nested ``depth`` objects deep, padded by ``pad`` bytes (a large pad: a worker parses it)."""
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"observed":{"composite":{"resource":{"pad":"' + b"x" * pad + b'","n":' + inner + b"}}}}"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerThread]:
    """A runner with a 64 KiB message size limit, scripted functions ``f`` and ``big`` (a 100 KB response)."""
    root = tmp_path_factory.mktemp("small")
    write_function(root, "f")
    write_function(root, "big", pad=100_000)
    with running(test_settings(root, max_message_size=64 * 1024)) as rt:
        yield rt


@pytest.mark.parametrize(
    ("depth", "pad", "status"),
    [
        (30, 0, 200),
        (30, 40_000, 200),  # over 32 KiB: decoded in a worker
        (33, 0, 400),  # deeper than gRPC callers may nest it
        (33, 40_000, 400),
        (60, 0, 400),
        (60, 40_000, 400),
        (5000, 0, 400),
    ],
)
def test_nesting_is_held_to_what_grpc_accepts(small: RunnerThread, depth: int, pad: int, status: int) -> None:
    got, body, _ = jpost(small, "f", nested(depth, pad))
    assert got == status, body
    if status == 400:
        assert "malformed RunFunctionRequest JSON for function 'f'" in body["error"]


def test_the_decoded_request_and_the_response_must_fit_the_message_size(small: RunnerThread) -> None:
    zeros = wrap(b",".join([b"0"] * 20_000))  # 40 KB of JSON, 220 KB of protobuf
    status, body, _ = jpost(small, "f", zeros)
    assert status == 413 and "--max-message-size" in body["error"] and "as protobuf" in body["error"]
    status, body, _ = jpost(small, "big", b"{}")
    assert status == 500 and "the response of function 'big'" in body["error"]
    assert "--max-message-size" in body["error"]


def test_a_large_response_is_encoded_in_a_worker(tmp_path: Path) -> None:
    write_function(tmp_path, "big", pad=200_000)
    with running(test_settings(tmp_path)) as rt:
        status, body, _ = jpost(rt, "big", b'{"meta":{"tag":"t"}}')
    assert status == 200 and body["context"]["pad"] == "x" * 200_000 and body["meta"]["tag"] == "t"


def test_runs_over_the_concurrency_limit_wait_then_get_503(tmp_path: Path) -> None:
    write_function(tmp_path, "slow", delay=0.5)
    with running(test_settings(tmp_path, http_max_concurrent_runs=1)) as rt:
        start = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: jpost(rt, "slow", b"{}"), range(3)))
        assert [a[0] for a in answers] == [200] * 3
        assert time.monotonic() - start >= 1.5  # one at a time
        rt.runner.http.app.slot_wait = 0.2
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: jpost(rt, "slow", b"{}"), range(2)))
    (busy,) = [a for a in answers if a[0] != 200]
    assert busy[0] == 503 and "--http-max-concurrent-runs" in busy[1]["error"]
    assert "Retry-After: 1" in busy[2]


# -- who may call :run -------------------------------------------------------------------------
def outside_address() -> str | None:
    """An address of this host that is not loopback (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        host = str(s.getsockname()[0])
    return None if host.startswith("127.") else host


def test_run_is_served_on_loopback_connections_only_by_default(tmp_path: Path) -> None:
    host = outside_address()
    if host is None:
        pytest.skip("this host has no address besides loopback")
    write_function(tmp_path, "f")
    for mode, expected in (("loopback", 403), ("any", 200)):
        with running(test_settings(tmp_path, listen_addr=Address(host, 0), http_run=mode)) as rt:
            url = f"http://{host}:{rt.runner.http_port}"
            with urllib.request.urlopen(url + "/health", timeout=10) as r:
                assert r.status == 200  # probes and metrics stay on the network
            req = urllib.request.Request(url + "/functions/f:run", data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    status, body = r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                status, body = e.code, json.loads(e.read())
        assert status == expected, body
        if status == 403:
            assert "--http-run" in body["error"] and "HTTP_RUN=any" in body["hint"]


def test_run_can_be_turned_off(tmp_path: Path) -> None:
    write_function(tmp_path, "f")
    with running(test_settings(tmp_path, http_run="off")) as rt:
        status, body, _ = jpost(rt, "f", b"{}")
    assert status == 404 and "--http-run off" in body["error"]


# -- counting values without parsing --------------------------------------------------------------
def reference_count(body: bytes) -> int:
    """Commas, ``{`` and ``[`` outside strings, plus one, one character at a time."""
    count, in_string, escaped = 1, False, False
    for ch in body.decode():
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in ",{[":
            count += 1
    return count


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab,{["\\:]} é')),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=-2, max_value=2))
def test_within_values_agrees_with_counting_by_hand(value: Any, delta: int) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    exact = reference_count(body)
    assert within_values(body, max(1, exact + delta)) == (exact <= max(1, exact + delta))


@pytest.mark.parametrize(
    "body",
    [
        b'"' + b'\\"' * 4_000_000,  # an unterminated string of escaped quotes: no backtracking
        b"[" + b'"",' * 2_700_000 + b'""]',  # millions of strings: the walk stops at the limit
        b'["' + b",{[" * 2_700_000 + b'"]',  # brackets inside one string are not values
    ],
)
def test_within_values_is_fast_on_hostile_bodies(body: bytes) -> None:
    start = time.monotonic()
    within_values(body, 1_000_000)
    assert time.monotonic() - start < 2.0
    assert within_values(b'["' + b",{[" * 100 + b'"]', 2)


# -- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "env", "value", "expected"),
    [
        ("http_run", "HTTP_RUN", "Any", "any"),
        ("http_max_body", "HTTP_MAX_BODY", "2MiB", 2 * 2**20),
        ("http_max_json_values", "HTTP_MAX_JSON_VALUES", "250_000", 250_000),
        ("http_max_concurrent_runs", "HTTP_MAX_CONCURRENT_RUNS", "4", 4),
    ],
)
def test_http_limits_are_flags_the_environment_overrides(
    setting: str, env: str, value: str, expected: Any
) -> None:
    flag = next(f for s, f, _ in FLAG_ENV if s == setting)
    assert flag in {opt for p in serve.params for opt in p.opts}
    assert getattr(Settings.load({setting: value}, {}), setting) == expected
    assert getattr(
        Settings.load({setting: "off" if setting == "http_run" else "9999"}, {env: value}), setting
    ) == (expected)
    with pytest.raises(RunnerConfigError, match=env):
        Settings.load({}, {env: "lots"})


def test_http_limit_defaults() -> None:
    s = Settings()
    assert (s.http_run, s.http_max_body, s.http_max_json_values, s.http_max_concurrent_runs) == (
        "loopback",
        8 * 2**20,
        1_000_000,
        2,
    )
    assert s.http_max_body < s.max_message_size  # a smaller default for HTTP than for gRPC


def test_json_workers_yield_the_cpu_to_the_runner() -> None:
    """A worker is niced, and so is its session's scheduling group where the kernel has autogroups
    (there nice only ranks tasks within a group, and each worker is a session of its own)."""
    code = (
        "import os; from xplane.fn.httpjson import _yield_to_the_runner; _yield_to_the_runner(); "
        "group = open('/proc/self/autogroup').read().split()[-1] "
        "if os.path.exists('/proc/self/autogroup') else 'none'; print(os.nice(0), group)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, start_new_session=True
    ).stdout.split()
    assert out[0] == "10"
    assert out[1] in ("10", "none")
