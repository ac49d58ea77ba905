"""A hostile registry on 127.0.0.1: serves real images, and attacks on the routes a test names.

:class:`HostileRegistry` speaks enough of the distribution API for a pull (``/v2/``, manifests by
tag or digest, blobs, tag lists, and a token endpoint when ``auth="token"``) from content a test
puts in it (:meth:`HostileRegistry.serve_image`, :meth:`add_manifest`, :meth:`add_blob`). Then
:meth:`HostileRegistry.attack` makes matching requests misbehave the way issue 8 found registries
can:

- :class:`Endless`: a body that never ends (optionally under a huge ``Content-Length``);
- :class:`Drip`: a body sent one byte at a time; :class:`HeaderDrip`: the status line and headers;
- :class:`Truncated`: fewer body bytes than ``Content-Length``, then the connection closes;
- :class:`RedirectLoop`: every answer a redirect to itself;
- :class:`Answer`: any fixed status, headers and body (deep JSON, say).

Every response is recorded with the number of body bytes the server managed to send
(:attr:`HostileRegistry.sent`), so tests can bound what the client read: the kernel's socket
buffers hold the rest (the server's send buffer is kept small; see :data:`SEND_BUFFER`).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.support.images import TestImage, sha256
from tests.support.procs import serve_http, stop_http

SEND_BUFFER = 64 << 10  # the server's socket send buffer: bytes sent can exceed bytes read by ~this
CHUNK = 64 << 10


def deep_json(depth: int, *, key: str | None = None) -> bytes:
    """``[[[...]]]`` nested ``depth`` deep, or ``{"key": [[[...]]]}`` with ``key``."""
    inner = b"[" * depth + b"]" * depth
    return json.dumps({key: None}).encode().replace(b"null", inner) if key else inner


@dataclass
class Served:
    """One response: what was asked, what status was sent, how many body bytes went out."""

    method: str
    path: str
    status: int = 0
    sent: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)  # the request's headers
    finished: float = 0.0  # time.monotonic() when the server stopped writing


class Behavior:
    """How to answer one request. Subclasses write raw HTTP through ``h``."""

    def serve(self, h: _Handler, served: Served) -> None:
        raise NotImplementedError


@dataclass
class Answer(Behavior):
    """A fixed answer (``body`` may be deep JSON, garbage...)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def serve(self, h: _Handler, served: Served) -> None:
        h.head(self.status, {**self.headers, "Content-Length": str(len(self.body))}, served)
        h.body(self.body, served)


@dataclass
class Endless(Behavior):
    """Headers, then body bytes until the client goes away (``content_length``: what to claim)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_length: int | None = None
    byte: bytes = b"x"

    def serve(self, h: _Handler, served: Served) -> None:
        hdrs = dict(self.headers)
        if self.content_length is not None:
            hdrs["Content-Length"] = str(self.content_length)
        else:
            hdrs["Connection"] = "close"  # the body ends when the connection does: never
        h.head(self.status, hdrs, served)
        chunk = self.byte * CHUNK
        while h.body(chunk, served):
            pass


@dataclass
class Drip(Behavior):
    """``body`` one byte every ``interval`` seconds (full ``Content-Length`` declared up front)."""

    body: bytes
    interval: float = 1.0
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    def serve(self, h: _Handler, served: Served) -> None:
        h.head(self.status, {**self.headers, "Content-Length": str(len(self.body))}, served)
        for i in range(len(self.body)):
            if not h.body(self.body[i : i + 1], served):
                return
            time.sleep(self.interval)


@dataclass
class HeaderDrip(Behavior):
    """The status line and headers one byte every ``interval`` seconds, padded to never end soon."""

    interval: float = 0.2

    def serve(self, h: _Handler, served: Served) -> None:
        raw = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100_000
        for i in range(len(raw)):
            if not h.raw(raw[i : i + 1]):
                return
            time.sleep(self.interval)


@dataclass
class Truncated(Behavior):
    """``Content-Length: len(body)``, then only ``body[:at]``, then the connection closes."""

    body: bytes
    at: int
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    def serve(self, h: _Handler, served: Served) -> None:
        h.head(self.status, {**self.headers, "Content-Length": str(len(self.body))}, served)
        h.body(self.body[: self.at], served)
        h.close_connection = True


@dataclass
class RedirectLoop(Behavior):
    """``307`` to the very URL asked for, forever."""

    def serve(self, h: _Handler, served: Served) -> None:
        h.head(307, {"Location": h.path, "Content-Length": "0"}, served)


class HostileRegistry:
    """A threaded registry on 127.0.0.1:<free port>; see the module docstring.

    With ``auth="token"``, ``/v2/`` answers 401 with a Bearer challenge whose realm is
    ``realm`` (default: this server's own ``/token``), and ``/token`` hands out a token to anyone.
    """

    def __init__(self, *, auth: str | None = None, realm: str | None = None) -> None:
        self.auth = auth
        self._realm = realm
        self._lock = threading.Lock()
        self._manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._blobs: dict[str, bytes] = {}
        self._attacks: list[tuple[re.Pattern[str], str | None, Behavior]] = []
        self._served: list[Served] = []
        self._conns: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> HostileRegistry:
        """Bind a free port and serve in a daemon thread."""
        registry = self

        class Handler(_Handler):
            hostile = registry

        self._httpd, self._thread = serve_http(Handler, "hostile-registry")
        self.port = int(self._httpd.server_address[1])
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection (attacks never end by themselves)."""
        if self._httpd is not None:
            stop_http(self._httpd, self._thread, before_join=self._cut)
            self._httpd = None

    def _cut(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> HostileRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        """The token realm ``/v2/`` challenges name."""
        return self._realm or f"http://{self.host}/token"

    def ref(self, repository: str, tag: str = "latest") -> str:
        """An image reference into this registry."""
        return f"{self.host}/{repository}:{tag}"

    # -- content -----------------------------------------------------------------------------

    def add_blob(self, data: bytes) -> str:
        """Serve ``data`` as a blob; its digest."""
        digest = sha256(data)
        with self._lock:
            self._blobs[digest] = data
        return digest

    def add_manifest(self, repository: str, tag: str, data: bytes, media_type: str) -> str:
        """Serve ``data`` as manifest ``repository:tag`` (and by digest); its digest."""
        digest = sha256(data)
        with self._lock:
            self._manifests[(repository, tag)] = (data, media_type)
            self._manifests[(repository, digest)] = (data, media_type)
        return digest

    def serve_image(self, image: TestImage, repository: str | None = None, tag: str | None = None) -> str:
        """Serve ``image`` (manifest, config, layer) as ``repository:tag``; the reference."""
        repo, t = repository or image.name, tag or image.tag
        for data in image.blobs.values():
            self.add_blob(data)
        self.add_manifest(repo, t, image.manifest, image.manifest_media_type)
        return self.ref(repo, t)

    def attack(self, pattern: str, behavior: Behavior, *, method: str | None = None) -> None:
        """Answer requests whose path matches ``pattern`` (regex search) with ``behavior``."""
        with self._lock:
            self._attacks.append((re.compile(pattern), method, behavior))

    # -- observations ------------------------------------------------------------------------

    @property
    def served(self) -> list[Served]:
        """Every request so far, oldest first (a response still being sent included)."""
        with self._lock:
            return list(self._served)

    def sent(self, pattern: str = "") -> int:
        """Body bytes sent on responses whose path matches ``pattern``."""
        rx = re.compile(pattern)
        return sum(s.sent for s in self.served if rx.search(s.path))

    def count(self, pattern: str = "", method: str | None = None) -> int:
        """Requests whose path matches ``pattern`` (and ``method``)."""
        rx = re.compile(pattern)
        return sum(1 for s in self.served if rx.search(s.path) and method in (None, s.method))

    # -- used by the handler -----------------------------------------------------------------

    def _record(self, served: Served) -> None:
        with self._lock:
            self._served.append(served)

    def _behavior(self, method: str, path: str) -> Behavior | None:
        with self._lock:
            for rx, m, behavior in self._attacks:
                if (m is None or m == method) and rx.search(path):
                    return behavior
        return None

    def _normal(self, method: str, path: str) -> Behavior:
        if path == "/v2/" or path == "/v2":
            if self.auth == "token":
                challenge = f'Bearer realm="{self.realm}",service="hostile"'
                return Answer(401, b"{}", {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
            return Answer(200, b"{}", {"Content-Type": "application/json"})
        if path == "/token":
            return Answer(
                200, json.dumps({"token": "hostile-token"}).encode(), {"Content-Type": "application/json"}
            )
        m = re.fullmatch(r"/v2/(.+)/(manifests|blobs|tags)/(.+)", path)
        if m is None:
            return Answer(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such path"}]}')
        repo, kind, ident = m.groups()
        with self._lock:
            manifest = self._manifests.get((repo, ident))
            blob = self._blobs.get(ident)
            tags = sorted({t for (r, t) in self._manifests if r == repo and not t.startswith("sha256:")})
        if kind == "manifests" and manifest is not None:
            data, media_type = manifest
            return Answer(200, data, {"Content-Type": media_type, "Docker-Content-Digest": sha256(data)})
        if kind == "blobs" and blob is not None:
            return Answer(
                200, blob, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ident}
            )
        if kind == "tags" and ident == "list":
            return Answer(
                200, json.dumps({"name": repo, "tags": tags}).encode(), {"Content-Type": "application/json"}
            )
        code = "MANIFEST_UNKNOWN" if kind == "manifests" else "BLOB_UNKNOWN"
        return Answer(404, json.dumps({"errors": [{"code": code, "message": "unknown"}]}).encode())

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)


class _Handler(BaseHTTPRequestHandler):
    hostile: HostileRegistry
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.hostile._track(self.connection, True)

    def finish(self) -> None:
        self.hostile._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def head(self, status: int, headers: Mapping[str, str], served: Served) -> bool:
        served.status = status
        self.send_response_only(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        return self.raw(b"")

    def body(self, data: bytes, served: Served) -> bool:
        if self.command == "HEAD":
            return False
        ok = self.raw(data)
        if ok:
            served.sent += len(data)
        return ok

    def raw(self, data: bytes) -> bool:
        """Write ``data``; False once the client has gone."""
        try:
            if data:
                self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = urlsplit(self.path).path
        served = Served(self.command, path, headers=dict(self.headers.items()))
        self.hostile._record(served)  # at once: an attack may still be running when a test looks
        behavior = self.hostile._behavior(self.command, path) or self.hostile._normal(self.command, path)
        try:
            behavior.serve(self, served)
        finally:
            served.finished = time.monotonic()

    do_GET = do_HEAD = do_POST = do_PUT = _answer


@contextlib.contextmanager
def hostile_registry(**kw: Any) -> Iterator[HostileRegistry]:
    """A started :class:`HostileRegistry`, stopped afterwards."""
    server = HostileRegistry(**kw).start()
    try:
        yield server
    finally:
        server.stop()
