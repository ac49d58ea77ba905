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

``:run`` is the one route that takes a large body, and the listener has no authentication, so it
is guarded (:class:`RunLimits`): by default only connections made *to* a loopback address may
call it (``--http-run``). The server's own address is checked, not the peer's: a sidecar proxy
that forwards traffic from outside arrives on the pod's address, whatever its source address is.
A call waits for one of ``--http-max-concurrent-runs`` slots before its body is read, and holds
it until its answer is written. Its body is bounded by ``--http-max-body`` before it is read and
by ``--http-max-json-values`` before it is parsed; bodies and responses over :data:`INLINE_JSON`
are converted in worker processes (:mod:`xplane.fn.httpjson`), so ``/health``, ``/ready`` and
gRPC keep answering while a large body is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from xplane.fn.httpjson import BodyLimits, BodyRefused, decode_request, parse_request
from xplane.fn.jsonworkers import JsonWorkers, WorkerFailed, read_exactly, write_all
from xplane.fn.protojson import message_to_json
from xplane.fn.router import FunctionNotFoundError, Router
from xplane.fn.settings import RunnerConfigError, Settings
from xplane.fn.table import LoadedFunction

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
#: Bodies up to this size are read with the request; larger ones only by ``:run`` (others get 413).
SMALL_BODY = 64 * 1024
#: ``:run`` bodies and responses up to this size are converted on the event loop (at most ~5 ms of
#: ``json_format``); larger ones in a JSON worker process.
INLINE_JSON = 32 * 1024
#: Seconds a ``:run`` call waits for a free slot before it is answered 503.
SLOT_WAIT = 10.0
#: Seconds the server keeps reading (and dropping) a body it refused, so the client gets the answer.
LINGER = 2.0
_RUN_PATH = re.compile(r"^/functions/([A-Za-z0-9][A-Za-z0-9._-]*):run$")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


async def _no_body() -> bytes | bytearray:
    return b""


@dataclass
class Request:
    """One parsed HTTP request; a body over :data:`SMALL_BODY` is read only by :attr:`read_body`."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | bytearray = b""
    content_length: int = 0
    #: The address the client connected *to* (the server's side of the connection).
    local_host: str = ""
    read_body: Callable[[], Awaitable[bytes | bytearray]] = _no_body


@dataclass
class Response:
    """What a route answers; ``sent`` is called once the answer is written (or could not be)."""

    status: int
    body: bytes | bytearray
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    sent: Callable[[], None] | None = None

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


@dataclass(frozen=True)
class RunLimits:
    """Who may call ``POST /functions/{name}:run``, how many at once, and what a body may hold."""

    access: str  # "loopback", "any" or "off" (--http-run)
    max_concurrent: int
    body: BodyLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> RunLimits:
        """The limits the runner's flags and environment set."""
        return cls(
            settings.http_run,
            settings.http_max_concurrent_runs,
            BodyLimits(settings.http_max_body, settings.http_max_json_values, settings.max_message_size),
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (IPv4-mapped IPv6 included)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


class HttpApp:
    """The routes; ``ready`` reports readiness and its details (see the runner)."""

    def __init__(self, router: Router, *, ready: ReadyFn, limits: RunLimits) -> None:
        self.router = router
        self.ready = ready
        self.limits = limits
        self.workers = JsonWorkers(limits.body, size=limits.max_concurrent)
        self._slots = asyncio.Semaphore(limits.max_concurrent)
        #: Seconds a ``:run`` call waits for a free slot before it is answered 503.
        self.slot_wait = SLOT_WAIT

    async def close(self) -> None:
        """Stop the JSON workers."""
        await self.workers.close()

    async def handle(self, req: Request) -> Response:
        """Answer one request."""
        path = req.path.split("?", 1)[0]
        m = _RUN_PATH.match(path)
        if m:
            if req.method != "POST":
                return Response.error(405, f"use POST for {path}")
            return await self._run(m.group(1), req)
        if req.content_length > SMALL_BODY:
            return Response.error(413, f"{path} takes no request body")
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
            table = self.router.table
            text = self.router.metrics.render(loaded=table.names(), load_errors=len(table.errors))
            return Response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/functions":
            if (bad := self._get_only(req)) is not None:
                return bad
            table = self.router.table
            return Response.json(
                200,
                {
                    "source": table.source.describe(),
                    "sourceError": table.source_error,
                    "functions": table.status(),
                },
            )
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

    def _refused(self, path: str, req: Request) -> Response | None:
        """The answer to a ``:run`` call that ``--http-run`` does not allow, else ``None``."""
        access = self.limits.access
        if access == "any" or (access == "loopback" and is_loopback(req.local_host)):
            return None
        if access == "off":
            return Response.error(404, f"POST {path} is turned off on this runner (--http-run off)")
        return Response.error(
            403,
            f"POST {path} is served only on connections to a loopback address (--http-run loopback)",
            hint="call it from the runner's own host or pod (kubectl port-forward reaches it), "
            "or set --http-run any (HTTP_RUN=any) to serve it to every network that reaches "
            "--listen-addr; it has no authentication",
        )

    async def _run(self, name: str, req: Request) -> Response:
        path = req.path.split("?", 1)[0]
        if (refused := self._refused(path, req)) is not None:
            return refused
        try:
            entry = self.router.resolve(name=name, authority=req.headers.get("host"))
        except FunctionNotFoundError as e:
            return Response.error(404, e.message, loaded=e.loaded)
        limit = self.limits.body.max_body
        if req.content_length > limit:
            self.router.metrics.count_error(name, "too_large")
            return Response.error(
                413,
                f"the request body for function {name!r} is {req.content_length} bytes, over the "
                f"runner's HTTP body limit of {limit} bytes (--http-max-body)",
            )
        try:
            await asyncio.wait_for(self._slots.acquire(), self.slot_wait)
        except TimeoutError:
            busy = Response.error(
                503,
                f"{self.limits.max_concurrent} HTTP runs are in progress and none finished within "
                f"{self.slot_wait:g}s (--http-max-concurrent-runs); try again",
            )
            busy.headers = (("Retry-After", "1"),)
            return busy
        try:
            resp = await self._run_in_slot(entry, name, req)
        except BaseException:
            self._slots.release()
            raise
        resp.sent = self._slots.release
        return resp

    async def _run_in_slot(self, entry: LoadedFunction, name: str, req: Request) -> Response:
        metrics = self.router.metrics
        body = req.body if len(req.body) == req.content_length else await req.read_body()
        data: bytes | bytearray
        try:
            if len(body) <= INLINE_JSON:
                data = decode_request(body, self.limits.body)
            else:
                data = await self.workers.decode_request(body)
            del body
            request = parse_request(data)
            del data
        except BodyRefused as e:
            metrics.count_error(name, "invalid" if e.status == 400 else "too_large")
            what = "malformed RunFunctionRequest JSON" if e.status == 400 else "the request is too large"
            return Response.error(e.status, f"{what} for function {name!r}: {e}")
        except WorkerFailed as e:
            log.error("JSON worker failed", extra={"fields": {"function": name, "error": str(e)}})
            return Response.error(503, f"xplane could not decode the request for function {name!r}: {e}")
        try:
            rsp = await self.router.run(entry, request, transport="http", owned=True)
        except Exception as e:
            return Response.error(500, f"xplane failed to run function {name!r}: {e}")
        del request
        size = rsp.ByteSize()
        if size > self.limits.body.max_message_size:
            metrics.count_error(name, "too_large")
            return Response.error(
                500,
                f"the response of function {name!r} is {size} bytes, over the runner's message size "
                f"limit of {self.limits.body.max_message_size} bytes (--max-message-size)",
            )
        if size <= INLINE_JSON:
            return Response(200, message_to_json(rsp) + b"\n")
        try:
            out = await self.workers.encode_response(rsp.SerializeToString())
        except (WorkerFailed, BodyRefused) as e:
            return Response.error(500, f"xplane could not encode the response of function {name!r}: {e}")
        out += b"\n"
        return Response(200, out)


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


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
        """Stop listening, close the listening socket and stop the JSON workers."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        await self.app.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req: Request | None = None
        resp: Response | None = None
        unread = [0]  # body bytes the client sent or announced that nobody read
        try:
            try:
                deadline = asyncio.get_running_loop().time() + self.read_timeout
                req = await asyncio.wait_for(self._read(reader), self.read_timeout)
                sockname = writer.get_extra_info("sockname")
                req.local_host = str(sockname[0]) if isinstance(sockname, tuple) else ""
                unread[0] = req.content_length
                req.read_body = functools.partial(self._read_body, req, reader, writer, deadline, unread)
                if req.content_length <= SMALL_BODY:
                    req.body = await req.read_body()
                resp = await self.app.handle(req)
            except HttpError as e:
                resp = Response.error(e.status, str(e))
            except TimeoutError:
                resp = Response.error(408, "the request was not received in time")
            except Exception:
                log.exception("HTTP request failed")
                resp = Response.error(500, "internal error")
            extra = "".join(f"{k}: {v}\r\n" for k, v in resp.headers)
            head = (
                f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}\r\n"
                f"Content-Type: {resp.content_type}\r\nContent-Length: {len(resp.body)}\r\n{extra}"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head)
            body = b"" if req is not None and req.method == "HEAD" else resp.body
            await asyncio.wait_for(write_all(writer, body), self.read_timeout)
            if unread[0] and writer.can_write_eof():
                # A body refused unread: take in what the client still sends (up to LINGER seconds)
                # so that it reads the answer instead of a connection reset.
                writer.write_eof()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_discard(reader), LINGER)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            if resp is not None and resp.sent is not None:
                resp.sent()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    @staticmethod
    async def _read_body(
        req: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        deadline: float,
        unread: list[int],
    ) -> bytes | bytearray:
        """The body, by ``deadline`` (the read timeout, counted from the connection's start)."""
        length = req.content_length
        if not length:
            return b""
        if req.headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        unread[0] = 0
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(read_exactly(reader, length), max(remaining, 0.001))
        except asyncio.IncompleteReadError:
            raise HttpError(400, "the body is shorter than Content-Length") from None
        except TimeoutError:
            raise HttpError(408, "the request body was not received in time") from None

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
        if not length_text.isdigit() or len(length_text) > 18:
            raise HttpError(400, "Content-Length is not a number")
        req.content_length = int(length_text)
        return req
