"""The network relay that carries gRPC connections into a sandbox's own network namespace.

Run here as xplane runs it (``python -I netrelay.py SOCKET PORT``) but in the test's own network
namespace, against real TCP servers on 127.0.0.1: bytes both ways, half-closes, a port nobody
listens on, back-pressure against a peer that never reads, and its two ways to stop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from xplane.compose.sandbox import RELAY_SCRIPT, own_network_unavailable


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that echoes each connection until its peer half-closes."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()


def _start(path: Path, port: int) -> subprocess.Popen[bytes]:
    relay = subprocess.Popen(
        [sys.executable, "-I", "-S", str(RELAY_SCRIPT), str(path), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while not path.exists():  # a bounded wait for the socket to be bound
        assert relay.poll() is None, relay.stderr.read() if relay.stderr else b""
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return relay


@contextlib.contextmanager
def _relay(tmp_path: Path, port: int) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    path = tmp_path / "grpc.sock"
    relay = _start(path, port)
    try:
        yield path, relay
    finally:
        relay.kill()
        relay.wait()


def _connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


def test_bytes_are_carried_both_ways_with_half_close(tmp_path: Path, echo_port: int) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    with _relay(tmp_path, echo_port) as (path, _), _connect(path) as s:
        sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = bytearray()
        while chunk := s.recv(65536):
            got += chunk
        sender.join()
    assert bytes(got) == payload


def test_many_connections_at_once(tmp_path: Path, echo_port: int) -> None:
    with _relay(tmp_path, echo_port) as (path, _):
        socks = [_connect(path) for _ in range(20)]
        for i, s in enumerate(socks):
            s.sendall(f"hello {i}".encode())
        for i, s in enumerate(socks):
            assert s.recv(100) == f"hello {i}".encode()
            s.close()


def test_a_port_nobody_listens_on_closes_the_connection(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # bound, never listening: connections are refused
        with _relay(tmp_path, dead_port) as (path, relay), _connect(path) as s:
            assert s.recv(10) == b""  # closed: a gRPC client reconnects with backoff
            assert relay.poll() is None  # the relay itself carries on


def test_it_says_ready_once_the_function_accepts_connections(tmp_path: Path) -> None:
    with socket.socket() as fn:
        fn.bind(("127.0.0.1", 0))  # bound, not listening yet: a function still starting
        with _relay(tmp_path, fn.getsockname()[1]) as (_, relay):
            assert relay.stdout is not None
            os.set_blocking(relay.stdout.fileno(), False)
            time.sleep(0.2)
            assert relay.stdout.read() is None  # nothing said while nothing listens
            fn.listen()
            os.set_blocking(relay.stdout.fileno(), True)
            ready = threading.Timer(10, relay.kill)  # bounds the read below
            ready.start()
            assert relay.stdout.readline() == b"ready\n"
            ready.cancel()


def test_a_peer_that_never_reads_holds_the_relay_back_not_its_memory(tmp_path: Path) -> None:
    """Back-pressure: the relay reads one chunk at a time, so a stalled upstream stalls the sender."""
    stalled = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(stalled.accept()[0]), daemon=True).start()
    with _relay(tmp_path, stalled.getsockname()[1]) as (path, relay), _connect(path) as s:
        s.setblocking(False)
        sent, chunk, deadline = 0, b"x" * 65536, time.monotonic() + 10
        while time.monotonic() < deadline and sent < 512 * 1024 * 1024:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    sent += s.send(chunk)
                except BlockingIOError:
                    break  # the relay stopped reading: back-pressure reached the sender
        rss_kib = int(Path(f"/proc/{relay.pid}/status").read_text().split("VmRSS:")[1].split()[0])
    stalled.close()
    for h in held:
        h.close()
    assert sent < 64 * 1024 * 1024, f"{sent} bytes were accepted from a sender whose peer never reads"
    assert rss_kib < 100 * 1024


def test_it_stops_when_its_stdin_closes_and_removes_its_socket(tmp_path: Path, echo_port: int) -> None:
    with _relay(tmp_path, echo_port) as (path, relay):
        assert relay.stdin is not None
        relay.stdin.close()  # what happens when xplane dies
        assert relay.wait(10) == 0
        assert not path.exists()


def test_it_stops_on_sigterm(tmp_path: Path, echo_port: int) -> None:
    with _relay(tmp_path, echo_port) as (path, relay):
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(10) == 0
        assert not path.exists()


def test_a_pid_it_cannot_join_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(RELAY_SCRIPT), "--pid", "999999999", str(tmp_path / "s"), "9443"],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 1 and done.stderr.startswith(b"netrelay: "), done.stderr
    assert not (tmp_path / "s").exists()


def test_bad_arguments_are_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(RELAY_SCRIPT), "only-one"], capture_output=True, timeout=30
    )
    assert done.returncode == 2 and b"usage: netrelay.py [--pid PID] SOCKET_PATH PORT" in done.stderr


_SERVER = """
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 9443))
srv.listen()
while True:
    conn, _ = srv.accept()
    with conn:
        data = conn.recv(100)
        conn.sendall(b"in the sandbox: " + data)
"""
_UNPRIVILEGED = """
import json, os, socket, subprocess, sys, tempfile
relay_script, server = sys.argv[1], sys.argv[2]
r, w = os.pipe()
sandbox = subprocess.Popen(
    ["bwrap", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-user", "--unshare-net",
     "--unshare-pid", "--die-with-parent", "--info-fd", str(w), "--", "/usr/bin/python3", "-I", "-S", "-c", server],
    pass_fds=(w,),
)
os.close(w)
info = b""
while chunk := os.read(r, 65536):
    info += chunk
sock = os.path.join(tempfile.mkdtemp(), "grpc.sock")
relay = subprocess.Popen(
    ["/usr/bin/python3", "-I", "-S", relay_script, "--pid", str(json.loads(info)["child-pid"]), sock, "9443"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
)
assert relay.stdout.readline() == b"ready\\n", relay.stderr.read()
c = socket.socket(socket.AF_UNIX)
c.connect(sock)
c.sendall(b"hello")
print(c.recv(100).decode(), os.getuid())
relay.kill(); sandbox.kill()
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another user"
)
@pytest.mark.skipif(not os.path.exists("/usr/bin/python3") or not shutil.which("bwrap"), reason="no bwrap")
def test_an_unprivileged_user_reaches_a_sandbox_of_its_own_through_the_relay() -> None:
    """What xplane does for its users, who are not root: the relay joins the sandbox's network namespace
    (and the user namespace owning it: the user owns both, no privilege needed) and carries a
    connection in. (Unprivileged, bwrap nests the sandbox in a second user namespace; joining the
    process's own user namespace instead failed here about one run in two.)

    Debian's python3 runs both ends (this test's own interpreter may sit where nobody can read).
    """
    if own_network_unavailable(shutil.which("bwrap") or "/usr/bin/bwrap") is not None:
        pytest.skip("no network namespaces here")
    relay = Path(tempfile.mkdtemp()) / "netrelay.py"
    shutil.copy(RELAY_SCRIPT, relay)  # readable by nobody, wherever the checkout is
    relay.parent.chmod(0o755)
    relay.chmod(0o644)
    try:
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
             "/usr/bin/python3", "-I", "-c", _UNPRIVILEGED, str(relay), _SERVER],
            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
    finally:
        shutil.rmtree(relay.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["in", "the", "sandbox:", "hello", "65534"]
