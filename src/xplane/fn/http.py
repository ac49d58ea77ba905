"""The runner's HTTP side on ``--listen-addr``: probes, metrics, the function list, and HTTP calls.

| method and path | answer |
|---|---|
| ``GET /health`` | 200 while the process and its event loop are alive (liveness) |
| ``GET /ready`` | 200 once functions are loaded and gRPC is serving, else 503 (readiness) |
| ``GET /metrics`` | Prometheus text format (see :mod:`xplane.fn.metrics`) |
| ``GET /functions`` | JSON: every function (or load error), kind, source, path, version |
| ``POST /functions/{name}:run`` | body: a ``RunFunctionRequest`` as protobuf JSON; answer: the response |

A small HTTP/1.1 server on ``asyncio`` streams, so the runner needs no web framework: ``h11`` parses
each request (request line, headers, body framing) and frames the answer. One request per
connection, bodies by ``Content-Length`` only (a chunked body is answered 411). What ``h11`` finds
malformed is answered with the status it suggests (400; 431 for a head over
:data:`MAX_HEADER_BYTES`; 501 for an unknown transfer coding), and so is what it lets through but
this server refuses: a second ``Content-Length`` even with the same value (400; ``h11`` refuses a
second ``Host`` and a missing one itself) and an HTTP version other than 1.x (505). The head must arrive within ``read_timeout`` of the
connection's start and the body by the same deadline, however slowly it drips in.

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
from typing import Any, cast

import h11

from xplane.fn.httpjson import BodyLimits, BodyRefused, decode_request, parse_request
from xplane.fn.jsonworkers import CHUNK, JsonWorkers, WorkerFailed, write_now
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
#: Bytes per second all such drains together read at most (paced on the event loop): a client that
#: sends a refused body of a few MiB still gets its answer, while clients streaming refused bodies
#: flat out cost the loop a few percent of a CPU instead of keeping it reading a GB/s.
DRAIN_RATE = 32 * 1024 * 1024
_RUN_PATH = re.compile(r"^/functions/([A-Za-z0-9][A-Za-z0-9._-]*):run$")
#: ``Content-Length`` field lines of a request head (``h11`` merges repeated equal ones into one).
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
#: Bytes read from a connection at a time.
_READ_SIZE = 64 * 1024
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
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
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


class _DrainPace:
    """Paces every drain of refused bodies together to :data:`DRAIN_RATE` bytes per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next_free = 0.0

    async def spend(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more fit the shared rate."""
        now = asyncio.get_running_loop().time()
        start = max(now, self.next_free)
        self.next_free = start + nbytes / self.rate
        if start > now:
            await asyncio.sleep(start - now)


_DRAIN_PACE = _DrainPace(DRAIN_RATE)


async def _discard(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client still sends until it stops (the caller bounds the time)."""
    while chunk := await reader.read(65536):
        await _DRAIN_PACE.spend(len(chunk))


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
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        req: Request | None = None
        resp: Response | None = None
        unread = [0]  # body bytes the client sent or announced that nobody read
        try:
            try:
                deadline = asyncio.get_running_loop().time() + self.read_timeout
                req = await asyncio.wait_for(_read_head(conn, reader), self.read_timeout)
                sockname = writer.get_extra_info("sockname")
                req.local_host = str(sockname[0]) if isinstance(sockname, tuple) else ""
                unread[0] = req.content_length
                req.read_body = functools.partial(_read_body, conn, req, reader, writer, deadline, unread)
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
            await asyncio.wait_for(_write_response(conn, writer, req, resp), self.read_timeout)
            if (unread[0] or req is None) and writer.can_write_eof():
                # A body refused unread, or a request refused before its end: take in what the client
                # still sends (up to LINGER seconds, at DRAIN_RATE) so that it reads the answer, not a reset.
                writer.write_eof()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_discard(reader), LINGER)
        except (OSError, TimeoutError):  # ConnectionError, and ENOTCONN once the peer is gone
            pass
        finally:
            if resp is not None and resp.sent is not None:
                resp.sent()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def _refused(error: h11.RemoteProtocolError) -> HttpError:
    """The answer to a request ``h11`` found malformed, with the status it suggests."""
    if error.error_status_hint == 431:
        return HttpError(431, f"request headers are larger than {MAX_HEADER_BYTES} bytes")
    return HttpError(error.error_status_hint, f"malformed request: {error}")


async def _read_head(conn: h11.Connection, reader: asyncio.StreamReader) -> Request:
    """Read until ``h11`` has a whole request head; check what it leaves to the server."""
    received = bytearray()  # everything fed to h11 so far: at most MAX_HEADER_BYTES + one read
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as e:
            raise _refused(e) from None
        if event is h11.NEED_DATA:
            data = await reader.read(_READ_SIZE)
            received += data
            conn.receive_data(data)  # b"": the client closed its side
        elif isinstance(event, h11.Request):
            break
        else:  # ConnectionClosed: the client left without sending a request
            raise ConnectionResetError("the client closed the connection before its request")
    head = bytes(received[: len(received) - len(conn.trailing_data[0])])
    if len(head) > MAX_HEADER_BYTES:  # h11 checks only what is still incomplete after each read
        raise HttpError(431, f"request headers are larger than {MAX_HEADER_BYTES} bytes")
    if not event.http_version.startswith(b"1."):
        raise HttpError(505, f"HTTP/{event.http_version.decode()} is not served here; use HTTP/1.1")
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) > 1 or b"," in b"".join(lengths):
        raise HttpError(400, "more than one Content-Length")
    headers: dict[str, str] = {}
    for raw_name, raw_value in event.headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value  # RFC 9110 5.3
    if "transfer-encoding" in headers:
        raise HttpError(411, "chunked bodies are not supported; send Content-Length")
    return Request(
        event.method.decode("latin-1").upper(),
        event.target.decode("latin-1"),
        headers,
        content_length=int(headers.get("content-length") or 0),
    )


async def _read_body(
    conn: h11.Connection,
    req: Request,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    deadline: float,
    unread: list[int],
) -> bytes | bytearray:
    """The body, by ``deadline`` (the read timeout, counted from the connection's start)."""
    if not req.content_length:
        return b""
    if conn.they_are_waiting_for_100_continue:
        write_now(writer, conn.send(h11.InformationalResponse(status_code=100, headers=[])))
    unread[0] = 0
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(_receive_body(conn, reader, req.content_length), max(remaining, 0.001))
    except TimeoutError:
        raise HttpError(408, "the request body was not received in time") from None


async def _receive_body(conn: h11.Connection, reader: asyncio.StreamReader, length: int) -> bytearray:
    """``length`` body bytes, copied piece by piece into one buffer (``h11`` checks the framing)."""
    out = bytearray(length)
    pos = 0
    with memoryview(out) as view:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                raise HttpError(400, "the body is shorter than Content-Length") from None
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(CHUNK))
            elif isinstance(event, h11.Data):
                view[pos : pos + len(event.data)] = event.data
                pos += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return out


async def _write_response(
    conn: h11.Connection, writer: asyncio.StreamWriter, req: Request | None, resp: Response
) -> None:
    """The answer's head as ``h11`` frames it, then the body (none for HEAD), piece by piece."""
    headers = [
        ("Content-Type", resp.content_type),
        ("Content-Length", str(len(resp.body))),
        *resp.headers,
        ("Connection", "close"),
    ]
    reason = _REASONS.get(resp.status, "Status")
    write_now(writer, conn.send(h11.Response(status_code=resp.status, headers=headers, reason=reason)))
    if req is not None and req.method == "HEAD":
        return
    with memoryview(resp.body) as view:
        for start in range(0, len(view), CHUNK):
            # h11 passes a Data event's bytes through untouched; any bytes-like object will do.
            piece = cast(bytes, view[start : start + CHUNK])
            for data in conn.send_with_data_passthrough(h11.Data(data=piece)) or ():
                write_now(writer, data)
            await writer.drain()
