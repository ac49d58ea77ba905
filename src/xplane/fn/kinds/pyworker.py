"""The worker process of a Python function with ``isolation: process``: ``python -m xplane.fn.kinds.pyworker``.

The worker sets its own limits, imports the function with the in-process kind's code
(:class:`~xplane.fn.kinds.python.PythonFunction`), and then serves calls from the runner over its
original stdin/stdout, which it first moves to private descriptors: fd 0 becomes ``/dev/null`` and
fd 1 a copy of stderr, so a function's ``print()`` (or anything it writes to stdout) lands in the
stderr log instead of corrupting the protocol.

Protocol: binary frames, each a fixed header (payload length u32, call id u64, frame type u8;
big-endian) and the payload, whose length is checked against a cap (``--max-payload``; the gRPC
server enforces the runner's ``--max-message-size`` before a request gets here).

====================  =========  =============================================================
frame                 direction  payload
====================  =========  =============================================================
``READY``             w -> r     JSON ``{"pid", "object", "async"}``: the function loaded
``LOAD_ERROR``        w -> r     JSON ``{"message", "hint"}``: it did not; the worker exits
``CALL``              r -> w     timeout (f64 seconds) + serialized ``RunFunctionRequest``
``RESULT``            w -> r     serialized ``RunFunctionResponse`` (failures are FATAL results)
``CANCEL``            r -> w     empty: the caller went away; cancel the call
``CANCELLED``         w -> r     empty: the cancelled call has stopped
``STUCK``             w -> r     UTF-8 text: synchronous calls outlived their timeout (restart me)
====================  =========  =============================================================

Calls run concurrently on one asyncio loop; synchronous functions run in the in-process kind's
threads, as they do in process. The worker exits when the runner closes its end of the pipe.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import logging
import os
import resource
import struct
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xplane.fn.kinds.python import PythonFunction

HEADER = struct.Struct(">IQB")
TIMEOUT = struct.Struct(">d")
READY, LOAD_ERROR, CALL, RESULT, CANCEL, CANCELLED, STUCK = range(1, 8)
FRAME_TYPES = frozenset(range(1, 8))
#: Seconds a timed-out or cancelled synchronous call's thread may take to finish before it is stuck.
STUCK_GRACE = 0.5

log = logging.getLogger(__name__)


class FrameError(Exception):
    """The peer sent something that is not a frame (bad type or a length over the cap)."""


def encode_frame(frame_type: int, call_id: int, payload: bytes = b"") -> bytes:
    """One frame: header and payload."""
    return HEADER.pack(len(payload), call_id, frame_type) + payload


class FrameDecoder:
    """Splits a byte stream into ``(type, id, payload)`` frames; raises FrameError on garbage."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Add ``data``; return the frames it completed, in order."""
        buf = self._buf
        buf += data
        frames: list[tuple[int, int, bytes]] = []
        start = 0
        size = HEADER.size
        while len(buf) - start >= size:
            length, call_id, frame_type = HEADER.unpack_from(buf, start)
            if frame_type not in FRAME_TYPES:
                raise FrameError(f"unknown frame type {frame_type}")
            if length > self.max_payload:
                raise FrameError(f"frame of {length} bytes is over the limit of {self.max_payload} bytes")
            end = start + size + length
            if len(buf) < end:
                break
            frames.append((frame_type, call_id, bytes(buf[start + size : end])))
            start = end
        if start:
            del buf[:start]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received that do not make a whole frame yet."""
        return len(self._buf)


def _thread_name(fn: PythonFunction) -> str:
    return f"fn-{fn.name}"  # the name PythonFunction gives the threads of synchronous calls


class WorkerServer(asyncio.Protocol):
    """Serves the runner's frames on the worker's loop (reads the request pipe)."""

    def __init__(self, fn: PythonFunction, out: asyncio.WriteTransport, max_payload: int) -> None:
        self.fn = fn
        self.out = out
        self.max_payload = max_payload
        self.decoder = FrameDecoder(max_payload)
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.sync_inflight = 0
        self.stuck_reported = False

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FrameError as e:
            log.error("bad frame from the runner: %s", e)
            self._finish()
            return
        for frame_type, call_id, payload in frames:
            if frame_type == CALL:
                self.tasks[call_id] = self.loop.create_task(self._call(call_id, payload))
            elif frame_type == CANCEL:
                task = self.tasks.get(call_id)
                if task is None:
                    self._send(CANCELLED, call_id)  # already answered; the runner ignores the result
                else:
                    task.cancel()

    def eof_received(self) -> bool | None:
        self._finish()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def _send(self, frame_type: int, call_id: int, payload: bytes = b"") -> None:
        if not self.out.is_closing():
            self.out.write(encode_frame(frame_type, call_id, payload))

    async def _call(self, call_id: int, payload: bytes) -> None:
        from xplane.fn.base import fatal_response
        from xplane.fn.proto import fnv1

        (timeout,) = TIMEOUT.unpack_from(payload)
        req = fnv1.RunFunctionRequest()
        sync = not self.fn.is_async
        started = self.loop.time()
        if sync:
            self.sync_inflight += 1
        overran = False
        try:
            req.ParseFromString(payload[TIMEOUT.size :])
            rsp = await self.fn.call(req, timeout=timeout, owned=True)
        except asyncio.CancelledError:
            overran = True
            self._send(CANCELLED, call_id)
            return
        except BaseException as e:  # SystemExit, KeyboardInterrupt, a DecodeError: never leave a call hanging
            rsp = fatal_response(req, f"function {self.fn.name!r} raised {type(e).__name__}: {e}")
        finally:
            self.tasks.pop(call_id, None)
            if sync:
                self.sync_inflight -= 1
                if overran or self.loop.time() - started >= timeout:
                    self.loop.call_later(STUCK_GRACE, self._check_stuck)
        data = rsp.SerializeToString()
        if len(data) > self.max_payload:
            data = fatal_response(
                req,
                f"function {self.fn.name!r} returned a response of {len(data)} bytes, over the "
                f"limit of {self.max_payload} bytes",
            ).SerializeToString()
        self._send(RESULT, call_id, data)

    def _check_stuck(self) -> None:
        """Report synchronous calls whose threads outlived their call: only a restart frees them."""
        name = _thread_name(self.fn)
        alive = sum(1 for t in threading.enumerate() if t.name == name and t.is_alive())
        orphans = alive - self.sync_inflight  # threads no call waits for any more
        if orphans > 0 and not self.stuck_reported:
            self.stuck_reported = True
            self._send(STUCK, 0, f"{orphans} synchronous call(s) still running after their timeout".encode())


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m xplane.fn.kinds.pyworker")
    p.add_argument("--name", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--entrypoint")
    p.add_argument("--object")
    p.add_argument("--memory", type=int)
    p.add_argument("--max-payload", type=int, required=True)
    return p.parse_args(argv)


def _address_space() -> int:
    """Bytes of address space this process maps now (VmSize), 0 when unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _load(args: argparse.Namespace) -> PythonFunction:
    from xplane.fn.base import FunctionSpec
    from xplane.fn.errors import FunctionLoadError
    from xplane.fn.kinds.python import PythonFunction

    options: dict[str, Any] = {"object": args.object} if args.object else {}
    spec = FunctionSpec(
        name=args.name, kind="python", path=Path(args.path), entrypoint=args.entrypoint, options=options
    )
    if args.memory:
        used = _address_space()
        if used and used >= args.memory:
            raise FunctionLoadError(
                f"limits.memory ({args.memory} bytes) is below what the Python worker itself maps "
                f"({used} bytes) before importing the function",
                path=spec.path,
                field="limits.memory",
                hint="raise limits.memory (a Python worker needs at least ~150Mi)",
            )
        resource.setrlimit(resource.RLIMIT_AS, (args.memory, args.memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return PythonFunction(spec)


def _load_error(e: BaseException) -> bytes:
    from xplane.errors import XplaneError

    if isinstance(e, XplaneError):
        return json.dumps({"message": e.message, "hint": e.hint}).encode()
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:]).strip()[-1500:]
    return json.dumps({"message": f"loading failed: {type(e).__name__}: {e}", "hint": tb}).encode()


async def _serve(fn: PythonFunction, requests_fd: int, responses_fd: int, max_payload: int) -> None:
    loop = asyncio.get_running_loop()
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(responses_fd, "wb", buffering=0))
    ready = {"pid": os.getpid(), "object": fn.object_name, "async": fn.is_async}
    out.write(encode_frame(READY, 0, json.dumps(ready).encode()))
    server: WorkerServer | None = None

    def make() -> WorkerServer:
        nonlocal server
        server = WorkerServer(fn, out, max_payload)
        return server

    await loop.connect_read_pipe(make, os.fdopen(requests_fd, "rb", buffering=0))
    assert server is not None
    await server.done


def main(argv: list[str] | None = None) -> None:
    """Set limits, load the function, report READY (or LOAD_ERROR) and serve until the runner hangs up."""
    args = _parse_args(argv)
    # The protocol gets private descriptors; fd 0 reads nothing and fd 1 writes to stderr.
    requests_fd, responses_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    faulthandler.enable(file=sys.stderr)  # a segfault leaves a Python traceback in the stderr tail
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        fn = _load(args)
    except BaseException as e:
        os.write(responses_fd, encode_frame(LOAD_ERROR, 0, _load_error(e)))
        os._exit(1)
    code = 0
    try:
        asyncio.run(_serve(fn, requests_fd, responses_fd, args.max_payload))
    except BaseException:
        traceback.print_exc()
        code = 2
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)  # hung threads of synchronous calls must not keep the worker alive


if __name__ == "__main__":
    main()
