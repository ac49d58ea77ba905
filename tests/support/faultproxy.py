"""An HTTP/1.1 fault-injecting reverse proxy in front of a real (plain-HTTP) registry.

Clients talk to ``proxy.host`` as if it were the registry. Requests are forwarded to the upstream
registry with its own ``Host`` header and ``Location`` headers are rewritten back to the proxy, so
blob uploads keep going through it. Rules (first match wins, optionally limited to ``times``
applications) can: drop the connection, answer a status (500, 429 + ``Retry-After``, 405 for HEAD),
delay, truncate or corrupt the response body, or strip ``Docker-Content-Digest``.

Patterns are regular expressions searched in the request path *without* the query string, e.g.
``r"/blobs/sha256:"`` or ``r"/manifests/v1$"``. Every request is counted per (method, path) so tests
can assert retries. Bodies are buffered (test images are small); at most ``max_connections``
client connections are served at once.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.support.procs import serve_http, stop_http

DROP = "drop"
STATUS = "status"
DELAY = "delay"
TRUNCATE = "truncate"
CORRUPT = "corrupt"
STRIP_DIGEST = "strip_digest"
ACTIONS = (DROP, STATUS, DELAY, TRUNCATE, CORRUPT, STRIP_DIGEST)

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "expect",
}


@dataclass
class Rule:
    """One fault. ``times=None`` applies forever; ``hits`` counts applications."""

    pattern: re.Pattern[str]
    action: str
    method: str | None = None
    times: int | None = None
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    truncate_at: int | None = None  # body bytes sent before closing; None = half
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            (self.times is None or self.hits < self.times)
            and (self.method is None or self.method == method)
            and self.pattern.search(path) is not None
        )


@dataclass
class _Stats:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)


class FaultProxy:
    """Threaded proxy on 127.0.0.1:<free port> forwarding to ``upstream`` (``host:port``, HTTP)."""

    def __init__(self, upstream: str, *, max_connections: int = 32, upstream_timeout: float = 30.0) -> None:
        self.upstream = upstream
        self.upstream_timeout = upstream_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._stats = _Stats()
        self._conns: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._port = 0
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        proxy = self

        class _Handler(_ProxyHandler):
            fault_proxy = proxy

        self._httpd, self._thread = serve_http(_Handler, "fault-proxy")
        self._port = int(self._httpd.server_address[1])
        return self

    def stop(self) -> None:
        """Stop accepting, close open client connections. Idempotent."""
        if self._httpd is None:
            return
        stop_http(self._httpd, self._thread, before_join=self._close_connections)
        self._httpd = None
        self._thread = None

    def _close_connections(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (kept after stop(), so tests can check that it refuses connections)."""
        assert self._port, "fault proxy not started"
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` to use in image references instead of the registry's host."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def ref(self, repository: str, tag: str = "latest") -> str:
        """An image reference through the proxy."""
        return f"{self.host}/{repository}:{tag}"

    # -- rules -------------------------------------------------------------------------------

    def add_rule(
        self, pattern: str, action: str, *, method: str | None = None, times: int | None = None, **params: Any
    ) -> Rule:
        """Add a rule (see module docstring); returns it so tests can read ``rule.hits``."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
        rule = Rule(re.compile(pattern), action, method.upper() if method else None, times, **params)
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(
        self,
        pattern: str,
        status: int = 500,
        *,
        times: int | None = 1,
        method: str | None = None,
        retry_after: str | int | None = None,
    ) -> Rule:
        """Answer ``status`` (with ``Retry-After`` if given) instead of forwarding."""
        ra = None if retry_after is None else str(retry_after)
        return self.add_rule(pattern, STATUS, method=method, times=times, status=status, retry_after=ra)

    def throttle(
        self, pattern: str, *, retry_after: str | int = 1, times: int | None = 1, method: str | None = None
    ) -> Rule:
        """Answer 429 Too Many Requests with ``Retry-After``."""
        return self.fail(pattern, 429, times=times, method=method, retry_after=retry_after)

    def drop(self, pattern: str, *, times: int | None = 1, method: str | None = None) -> Rule:
        """Close the connection without answering."""
        return self.add_rule(pattern, DROP, method=method, times=times)

    def delay(
        self, pattern: str, seconds: float, *, times: int | None = 1, method: str | None = None
    ) -> Rule:
        """Wait ``seconds`` before forwarding."""
        return self.add_rule(pattern, DELAY, method=method, times=times, delay=seconds)

    def truncate(
        self, pattern: str, *, at: int | None = None, times: int | None = 1, method: str | None = None
    ) -> Rule:
        """Send the full ``Content-Length`` but only ``at`` body bytes (default half), then close."""
        return self.add_rule(pattern, TRUNCATE, method=method, times=times, truncate_at=at)

    def corrupt(self, pattern: str, *, times: int | None = 1, method: str | None = "GET") -> Rule:
        """Flip one byte in the middle of the response body (length unchanged)."""
        return self.add_rule(pattern, CORRUPT, method=method, times=times)

    def strip_digest(self, pattern: str, *, times: int | None = None, method: str | None = "HEAD") -> Rule:
        """Remove ``Docker-Content-Digest`` from responses (HEAD by default)."""
        return self.add_rule(pattern, STRIP_DIGEST, method=method, times=times)

    def head_not_allowed(self, pattern: str = r"/manifests/", *, times: int | None = None) -> Rule:
        """Answer HEAD with 405 Method Not Allowed (clients must fall back to GET)."""
        return self.fail(pattern, 405, times=times, method="HEAD")

    def reset(self) -> None:
        """Remove every rule and forget the counts."""
        with self._lock:
            self._rules.clear()
            self._stats = _Stats()

    # -- observations ------------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every (method, path with query) seen, oldest first."""
        with self._lock:
            return list(self._stats.log)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """(method, path without query) -> number of requests."""
        with self._lock:
            return Counter(self._stats.counts)

    def count(self, pattern: str = "", method: str | None = None) -> int:
        """How many requests matched ``pattern`` (regex search on the path) and ``method``."""
        rx = re.compile(pattern)
        m = method.upper() if method else None
        return sum(
            n for (meth, path), n in self.counts.items() if (m is None or meth == m) and rx.search(path)
        )

    # -- used by the handler -----------------------------------------------------------------

    def _observe(self, method: str, target: str) -> Rule | None:
        path = urlsplit(target).path
        with self._lock:
            self._stats.counts[(method, path)] += 1
            self._stats.log.append((method, target))
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)


class _ProxyHandler(BaseHTTPRequestHandler):
    fault_proxy: FaultProxy
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # library code never prints
        pass

    def handle(self) -> None:
        proxy = self.fault_proxy
        if not proxy._slots.acquire(timeout=10):
            return
        proxy._track(self.connection, True)
        try:
            super().handle()
        finally:
            proxy._track(self.connection, False)
            proxy._slots.release()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        send_body: bool,
        length: int | None = None,
    ) -> None:
        self.send_response_only(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if send_body:
            self.wfile.write(body)
        self.wfile.flush()

    def _abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _proxy(self) -> None:
        proxy = self.fault_proxy
        method = self.command
        body = self._read_body()
        rule = proxy._observe(method, self.path)
        is_head = method == "HEAD"
        if rule is not None and rule.action == DROP:
            self._abort()
            return
        if rule is not None and rule.action == STATUS:
            code = "TOOMANYREQUESTS" if rule.status == 429 else "UNKNOWN"
            err = json.dumps({"errors": [{"code": code, "message": "injected by fault proxy"}]}).encode()
            hdrs = [("Content-Type", "application/json"), ("Docker-Distribution-Api-Version", "registry/2.0")]
            if rule.retry_after is not None:
                hdrs.append(("Retry-After", rule.retry_after))
            self._send(rule.status, hdrs, err, send_body=not is_head)
            return
        if rule is not None and rule.action == DELAY:
            time.sleep(rule.delay)

        up_host, _, up_port = proxy.upstream.partition(":")
        conn = http.client.HTTPConnection(up_host, int(up_port or 80), timeout=proxy.upstream_timeout)
        try:
            # putheader keeps repeated headers (e.g. several Accept lines) as the client sent them
            conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", proxy.upstream)
            for k, v in self.headers.items():
                if k.lower() not in _HOP_BY_HOP:
                    conn.putheader(k, v)
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            status, resp_headers = resp.status, resp.getheaders()
            declared = resp.getheader("Content-Length")
        except (OSError, http.client.HTTPException):
            self._abort()
            return
        finally:
            conn.close()

        out: list[tuple[str, str]] = []
        for k, v in resp_headers:
            lk = k.lower()
            if lk in _HOP_BY_HOP:
                continue
            if lk == "docker-content-digest" and rule is not None and rule.action == STRIP_DIGEST:
                continue
            if lk == "location":
                v = v.replace(f"http://{proxy.upstream}", proxy.url)
            out.append((k, v))
        if is_head:
            # HEAD has no body; keep the upstream's declared length.
            self._send(status, out, b"", send_body=False, length=int(declared or 0))
            return
        if rule is not None and rule.action == CORRUPT and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        if rule is not None and rule.action == TRUNCATE:
            cut = rule.truncate_at if rule.truncate_at is not None else len(data) // 2
            self._send(status, out, data[:cut], send_body=True, length=len(data))
            self._abort()
            return
        self._send(status, out, data, send_body=True)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _proxy
