"""The runner's HTTP side on ``--listen-addr``: probes, metrics, the function list, and HTTP calls.

| method and path | answer |
|---|---|
| ``GET /health`` | 200 while the process and its event loop are alive (liveness) |
| ``GET /ready`` | 200 once functions are loaded and gRPC is serving, else 503 (readiness) |
| ``GET /metrics`` | Prometheus text format (see :mod:`xplane.fn.metrics`) |
| ``GET /functions`` | JSON: every function (or load error), kind, source, path, version |
| ``POST /functions/{name}:run`` | body: a ``RunFunctionRequest`` as protobuf JSON; answer: the response |

A deliberately small HTTP/1.1 server on ``asyncio`` streams (one request per connection, bodies
by ``Content-Length`` only) so the runner needs no web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from xplane.fn.router import FunctionNotFoundError, Router
from xplane.fn.settings import RunnerConfigError

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
_RUN_PATH = re.compile(r"^/functions/([A-Za-z0-9][A-Za-z0-9._-]*):run$")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Response:
    """What a route answers."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, data: Any) -> Response:
        """A JSON response."""
        return cls(status, (json.dumps(data, indent=2) + "\n").encode())

    @classmethod
    def error(cls, status: int, message: str, **extra: Any) -> Response:
        """``{"error": message, ...}`` with ``status``."""
        return cls.json(status, {"error": message, **extra})


class HttpError(Exception):
    """Ends request parsing with a status (not an XplaneError: it never leaves this module)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


ReadyFn = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


class HttpApp:
    """The routes; ``ready`` reports readiness and its details (see the runner)."""

    def __init__(self, router: Router, *, ready: ReadyFn, max_body: int) -> None:
        self.router = router
        self.ready = ready
        self.max_body = max_body

    async def handle(self, req: Request) -> Response:
        """Answer one request."""
        path = req.path.split("?", 1)[0]
        if path in ("/health", "/healthz", "/livez"):
            return self._get_only(req) or Response.json(200, {"status": "ok"})
        if path in ("/ready", "/readyz"):
            if (bad := self._get_only(req)) is not None:
                return bad
            ok, details = await self.ready()
            return Response.json(200 if ok else 503, {"status": "ready" if ok else "not ready", **details})
        if path == "/metrics":
            if (bad := self._get_only(req)) is not None:
                return bad
            registry = self.router.registry
            text = self.router.metrics.render(loaded=registry.names(), load_errors=len(registry.errors))
            return Response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/functions":
            if (bad := self._get_only(req)) is not None:
                return bad
            registry = self.router.registry
            return Response.json(
                200,
                {
                    "source": registry.source.describe(),
                    "sourceError": registry.source_error,
                    "functions": registry.status(),
                },
            )
        m = _RUN_PATH.match(path)
        if m:
            if req.method != "POST":
                return Response.error(405, f"use POST for {path}")
            return await self._run(m.group(1), req)
        return Response.error(
            404,
            f"no route for {req.method} {path}",
            routes=["/health", "/ready", "/metrics", "/functions", "/functions/{name}:run"],
        )

    @staticmethod
    def _get_only(req: Request) -> Response | None:
        if req.method not in ("GET", "HEAD"):
            return Response.error(405, f"use GET for {req.path}")
        return None

    async def _run(self, name: str, req: Request) -> Response:
        from google.protobuf import json_format

        from xplane.fn.proto import fnv1

        try:
            entry = self.router.resolve(name=name, authority=req.headers.get("host"))
        except FunctionNotFoundError as e:
            return Response.error(404, e.message, loaded=e.loaded)
        try:
            request = json_format.Parse(req.body or b"{}", fnv1.RunFunctionRequest())
        except (json_format.ParseError, UnicodeDecodeError, ValueError) as e:
            self.router.metrics.count_error(name, "invalid")
            return Response.error(400, f"malformed RunFunctionRequest JSON for function {name!r}: {e}")
        try:
            rsp = await self.router.run(entry, request, transport="http")
        except Exception as e:
            return Response.error(500, f"xplane failed to run function {name!r}: {e}")
        body = json_format.MessageToJson(rsp, indent=2).encode()
        return Response(200, body + b"\n")


class HttpServer:
    """Serves an :class:`HttpApp` on a host and port (port 0 picks a free one)."""

    def __init__(self, app: HttpApp, *, read_timeout: float = 30.0) -> None:
        self.app = app
        self.read_timeout = read_timeout
        self.server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Start listening; returns the bound port. A port in use is a :class:`RunnerConfigError`."""
        try:
            self.server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEADER_BYTES)
        except OSError as e:
            raise RunnerConfigError(
                f"cannot listen for HTTP on {host}:{port}: {e.strerror or e}",
                hint="is another process using the port? see --listen-addr (LISTEN_ADDR)",
            ) from None
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening and close the listening socket."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = ""
        try:
            try:
                req = await asyncio.wait_for(self._read(reader), self.read_timeout)
                method = req.method
                resp = await self.app.handle(req)
            except HttpError as e:
                resp = Response.error(e.status, str(e))
            except TimeoutError:
                resp = Response.error(408, "the request was not received in time")
            except Exception:
                log.exception("HTTP request failed")
                resp = Response.error(500, "internal error")
            head = (
                f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}\r\n"
                f"Content-Type: {resp.content_type}\r\nContent-Length: {len(resp.body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == "HEAD" else head + resp.body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> Request:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise HttpError(413, f"request headers are larger than {MAX_HEADER_BYTES} bytes") from None
        except asyncio.IncompleteReadError:
            raise HttpError(400, "incomplete request") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, "malformed request line")
        req = Request(parts[0].upper(), parts[1])
        for line in lines[1:]:
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise HttpError(400, f"malformed header line {line[:80]!r}")
            req.headers[key.strip().lower()] = value.strip()
        if "chunked" in req.headers.get("transfer-encoding", "").lower():
            raise HttpError(411, "chunked bodies are not supported; send Content-Length")
        length_text = req.headers.get("content-length", "0") or "0"
        if not length_text.isdigit():
            raise HttpError(400, "Content-Length is not a number")
        length = int(length_text)
        if length > self.app.max_body:
            raise HttpError(
                413,
                f"the request body is {length} bytes, over the runner's message size limit of "
                f"{self.app.max_body} bytes (--max-message-size)",
            )
        if length:
            try:
                req.body = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise HttpError(400, "the body is shorter than Content-Length") from None
        return req
