"""The runner's HTTP/1.1 parsing as a client on a raw socket sees it: framing, repeated headers, slow
clients, ``Expect: 100-continue`` and ``HEAD``. One row per request shape."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.fn.runner_fixtures import RunnerThread, running, test_settings, write_function

RUN = b"POST /functions/f:run HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerThread]:
    root = tmp_path_factory.mktemp("protocol")
    write_function(root, "f", message="ran")
    with running(test_settings(root)) as r:
        yield r


def connect(rt: RunnerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(rt.runner.http_port or 0)), timeout=10)


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(1 << 16):
        data += chunk
    return data


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the last answer in ``raw``."""
    head, _, body = raw.rpartition(b"HTTP/1.1 ")[2].partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[0]), headers, body


def exchange(
    rt: RunnerThread, request: bytes, *, half_close: bool = False
) -> tuple[int, dict[str, str], bytes]:
    with connect(rt) as s:
        s.sendall(request)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return parse(read_all(s))


@pytest.mark.parametrize(
    ("request_bytes", "status", "says"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\n", 200, "ok"),  # repeats: one list
        (b"GET /health HTTP/1.0\r\n\r\n", 200, "ok"),  # HTTP/1.0 needs no Host
        (b"GET /health HTTP/1.1\r\n\r\n", 400, "Host"),
        (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"),
        (
            b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
            400,
            "Content-Length",
        ),
        (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab", 400, "Content-Length"),
        (
            b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            400,
            "Content-Length",
        ),
        (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: two\r\n\r\n", 400, "Content-Length"),
        (RUN + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411, "send Content-Length"),
        (RUN + b"Transfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}", 501, "Transfer-Encoding"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "65536 bytes"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000, 431, "65536 bytes"),  # no end
        (b"NONSENSE\r\n\r\n", 400, "malformed request"),
        (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "use HTTP/1.1"),
    ],
)
def test_request_framing(rt: RunnerThread, request_bytes: bytes, status: int, says: str) -> None:
    got, _, body = exchange(rt, request_bytes, half_close=True)
    assert got == status, body
    assert says in json.loads(body).get("error", json.loads(body).get("status", ""))
    assert exchange(rt, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200  # and the server lives


def test_a_body_shorter_than_its_content_length_is_refused(rt: RunnerThread) -> None:
    status, _, body = exchange(rt, RUN + b"Content-Length: 10\r\n\r\n{}", half_close=True)
    assert status == 400 and "shorter than Content-Length" in json.loads(body)["error"]


def test_head_gets_the_headers_and_no_body(rt: RunnerThread) -> None:
    with connect(rt) as s:
        s.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = read_all(s)
    status, headers, body = parse(raw)
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_expect_100_continue_is_answered_before_the_body_is_sent(rt: RunnerThread) -> None:
    body = b'{"meta":{"tag":"c"}}'
    with connect(rt) as s:
        s.sendall(RUN + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        interim = s.recv(1 << 16)
        assert interim.startswith(b"HTTP/1.1 100 ")
        s.sendall(body)
        status, _, answer = parse(interim + read_all(s))
    assert status == 200 and json.loads(answer)["results"][0]["message"] == "ran from f"


def drip(s: socket.socket, pieces: Iterator[bytes], interval: float) -> bytes:
    """Send one piece every ``interval`` seconds until the server answers; the answer."""
    for piece in pieces:
        if select.select([s], [], [], interval)[0]:
            break
        s.sendall(piece)
    return read_all(s)


@pytest.mark.parametrize(
    ("start", "says"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", "the request was not received in time"),
        (RUN + b"Content-Length: 1000\r\n\r\n", "the request body was not received in time"),
    ],
    ids=["head", "body"],
)
def test_a_client_dripping_bytes_is_cut_off_at_the_read_timeout(
    rt: RunnerThread, start: bytes, says: str
) -> None:
    server = rt.runner.http
    server.read_timeout = 0.5
    try:
        began = time.monotonic()
        with connect(rt) as s:
            s.sendall(start)
            raw = drip(s, (b"X-Drip: 1\r\n" if b"GET" in start else b" " for _ in range(100)), 0.05)
    finally:
        server.read_timeout = 30.0
    status, _, body = parse(raw)
    assert status == 408 and says in json.loads(body)["error"]
    assert time.monotonic() - began < 3
