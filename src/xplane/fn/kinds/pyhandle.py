"""One Python worker process as the runner sees it (``isolation: process``, see :mod:`.pyprocess`).

A :class:`WorkerHandle` owns the worker's pipes on an event loop, the futures of its in-flight calls,
the tail of its stderr, and its exit: a dead worker fails each in-flight call with one
:class:`WorkerGone` naming the exit code or signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

from xplane.fn.base import DEADLINE_GRACE, trim
from xplane.fn.errors import FunctionLoadError
from xplane.fn.kinds.process import signal_name
from xplane.fn.kinds.pyworker import (
    CANCEL,
    CANCELLED,
    LOAD_ERROR,
    READY,
    RESULT,
    STUCK,
    FrameDecoder,
    FrameError,
    encode_frame,
)

if TYPE_CHECKING:
    from xplane.fn.kinds.pyprocess import PythonProcessFunction

log = logging.getLogger("xplane.fn.kinds.pyprocess")

#: Bytes of a worker's stderr kept for error messages (the tail).
STDERR_RING = 64 * 1024
#: Characters of that tail a FATAL message carries.
STDERR_IN_MESSAGE = 2000
#: Why a worker stopped when its function was closed (not a failure worth a warning).
CLOSED_REASON = "function closed"


def log_fields(level: int, message: str, **fields: Any) -> None:
    """Log ``message`` with structured ``fields`` (the runner's JSON log shows them as keys)."""
    log.log(level, message, extra={"fields": fields})


class WorkerGone(Exception):
    """The worker died or was killed before it answered; the message says how."""


class Unavailable(Exception):
    """No worker can take the call (restart backoff, failed start, closed function)."""


class _PipeReader(asyncio.Protocol):
    def __init__(self, on_data: Any, closed: asyncio.Future[None]) -> None:
        self.on_data = on_data
        self.closed = closed

    def data_received(self, data: bytes) -> None:
        self.on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class WorkerHandle:
    """One worker process: its pipes on an event loop, its in-flight calls, its stderr tail."""

    def __init__(self, owner: PythonProcessFunction, proc: subprocess.Popen[bytes]) -> None:
        self.owner = owner
        self.name = owner.name
        self.proc = proc
        self.pid = proc.pid
        self.loop: asyncio.AbstractEventLoop | None = None
        self.decoder = FrameDecoder(owner.max_payload)
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.cancelling: dict[int, asyncio.TimerHandle] = {}
        self.stderr = bytearray()
        self._partial_line = bytearray()
        self.ready_info: dict[str, Any] | None = None
        self.ready: asyncio.Future[dict[str, Any]] | None = None
        self.kill_reason: str | None = None
        self.death: str | None = None
        self.retiring = False
        self._stdin: asyncio.WriteTransport | None = None
        self._stdout_closed: asyncio.Future[None] | None = None
        self._stderr_closed: asyncio.Future[None] | None = None
        self.monitor: asyncio.Task[None] | None = None

    @property
    def dead(self) -> bool:
        return self.death is not None

    # -- stderr ----------------------------------------------------------------------------------
    def on_stderr(self, data: bytes) -> None:
        ring = self.stderr
        ring += data
        if len(ring) > STDERR_RING:
            del ring[: len(ring) - STDERR_RING]
        if log.isEnabledFor(logging.DEBUG):
            buf = self._partial_line
            buf += data
            *lines, rest = buf.split(b"\n")
            for line in lines:
                log_fields(
                    logging.DEBUG,
                    "function stderr",
                    function=self.name,
                    pid=self.pid,
                    line=line.decode(errors="replace"),
                )
            self._partial_line = bytearray(rest[-STDERR_RING:])

    def stderr_tail(self) -> str:
        return trim(self.stderr.decode("utf-8", errors="replace"), STDERR_IN_MESSAGE)

    # -- start -----------------------------------------------------------------------------------
    def wait_ready_blocking(self, timeout: float) -> dict[str, Any]:
        """Read the first frame without an event loop (at load time). Raises FunctionLoadError."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        out_fd, err_fd = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(out_fd, selectors.EVENT_READ)
            sel.register(err_fd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._load_failure(f"did not finish loading within {timeout:g}s")
                for key, _ in sel.select(remaining):
                    data = os.read(key.fd, 65536)
                    if key.fd == err_fd:
                        if data:
                            self.on_stderr(data)
                        else:
                            sel.unregister(err_fd)
                        continue
                    if not data:
                        self.proc.wait(5)
                        raise self._load_failure(
                            self._exit_description(self.proc.returncode) + " while loading"
                        )
                    try:
                        frames = self.decoder.feed(data)
                    except FrameError as e:
                        raise self._load_failure(f"sent a malformed frame while loading ({e})") from None
                    if frames:
                        return self._first_frame(*frames[0])

    def _first_frame(self, frame_type: int, _call_id: int, payload: bytes) -> dict[str, Any]:
        try:
            info = json.loads(payload)
        except ValueError:
            raise self._load_failure(f"sent an unreadable frame of type {frame_type} while loading") from None
        if frame_type == READY:
            self.ready_info = info
            return dict(info)
        if frame_type == LOAD_ERROR:
            raise FunctionLoadError(str(info.get("message")), hint=info.get("hint"))
        raise self._load_failure(f"sent frame type {frame_type} before it was ready")

    def _load_failure(self, what: str) -> FunctionLoadError:
        tail = self.stderr_tail()
        return FunctionLoadError(
            f"the Python worker {what}" + (f": {tail}" if tail else ""), path=self.owner.spec.path
        )

    async def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Put the pipes on ``loop`` and start watching for the worker's exit."""
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.loop = loop
        self._stdout_closed = loop.create_future()
        self._stderr_closed = loop.create_future()
        if self.ready_info is None:
            self.ready = loop.create_future()
        self._stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, proc.stdin)
        stdout_closed, stderr_closed = self._stdout_closed, self._stderr_closed
        await loop.connect_read_pipe(lambda: _PipeReader(self._on_stdout, stdout_closed), proc.stdout)
        await loop.connect_read_pipe(lambda: _PipeReader(self.on_stderr, stderr_closed), proc.stderr)
        self.monitor = loop.create_task(self._watch())

    # -- frames ----------------------------------------------------------------------------------
    def send(self, frame_type: int, call_id: int, payload: bytes = b"") -> None:
        stdin = self._stdin
        if self.dead or stdin is None or stdin.is_closing():
            raise WorkerGone(self.death or "worker is gone")
        stdin.write(encode_frame(frame_type, call_id, payload))

    def _on_stdout(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FrameError as e:
            self.kill(f"worker was killed: it sent a malformed frame ({e})")
            return
        for frame_type, call_id, payload in frames:
            if frame_type == RESULT:
                fut = self.pending.pop(call_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(payload)
                self.check_drained()
            elif frame_type == CANCELLED:
                handle = self.cancelling.pop(call_id, None)
                if handle is not None:
                    handle.cancel()
            elif frame_type == STUCK:
                self.owner.on_stuck(self, payload.decode("utf-8", errors="replace"))
            elif frame_type in (READY, LOAD_ERROR) and self.ready is not None and not self.ready.done():
                try:
                    self.ready.set_result(self._first_frame(frame_type, call_id, payload))
                except FunctionLoadError as e:
                    self.ready.set_exception(e)
            else:
                self.kill(f"worker was killed: unexpected frame type {frame_type}")

    def forget(self, call_id: int) -> None:
        """Stop waiting for ``call_id`` (answered elsewhere: timeout, failure)."""
        self.pending.pop(call_id, None)
        self.check_drained()

    def cancel_call(self, call_id: int) -> None:
        """The caller went away: tell the worker, and kill it if it does not stop the call in time."""
        self.pending.pop(call_id, None)
        try:
            self.send(CANCEL, call_id)
        except WorkerGone:
            return
        assert self.loop is not None
        self.cancelling[call_id] = self.loop.call_later(DEADLINE_GRACE, self._cancel_ignored, call_id)
        self.check_drained()

    def _cancel_ignored(self, call_id: int) -> None:
        self.cancelling.pop(call_id, None)
        self.kill(f"worker was killed: it did not stop a cancelled call within {DEADLINE_GRACE:g}s")

    def check_drained(self) -> None:
        if self.retiring and not self.pending and not self.dead:
            self.kill(self.kill_reason or "worker was retired")

    # -- stop ------------------------------------------------------------------------------------
    def kill(self, reason: str) -> None:
        """SIGKILL the process group; the watcher then fails what is in flight with ``reason``."""
        if self.kill_reason is None:
            self.kill_reason = reason
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: int) -> None:
        if self.proc.returncode is None:  # not reaped: the pid (and group id) is still ours
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    async def _exited(self, timeout: float) -> bool:
        """Whether the process exited within ``timeout`` (left unreaped, so its group id stays ours)."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            except ChildProcessError:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def _watch(self) -> None:
        assert self._stdout_closed is not None and self._stderr_closed is not None
        await self._stdout_closed
        if not await self._exited(2.0):
            self.kill("worker was killed: it closed its protocol pipe")
            await self._exited(5.0)
        self._signal_group(signal.SIGKILL)  # anything the function started in the worker's group
        code = self.proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_closed), 0.5)
        if self._stdin is not None:
            self._stdin.close()
        self._died(code)

    def _exit_description(self, code: int | None) -> str:
        if code is None:
            return "worker is gone"
        if self.owner.sandbox == "bwrap" and 128 < code < 128 + 65:
            code = -(code - 128)  # bwrap reports a child killed by a signal as 128 + signal
        if code < 0:
            what = f"worker was killed by {signal_name(-code)}"
            if -code == signal.SIGKILL:
                what += " (killed, perhaps out of memory)"
            return what
        return f"worker exited with code {code}"

    def _died(self, code: int | None) -> None:
        reason = self.kill_reason or self._exit_description(code)
        tail = self.stderr_tail()
        self.death = reason + (f"; stderr: {tail}" if tail and self.kill_reason is None else "")
        error = WorkerGone(self.death)
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(error)
        self.pending.clear()
        for handle in self.cancelling.values():
            handle.cancel()
        self.cancelling.clear()
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(self._load_failure(reason + " while loading"))
        self.owner.on_worker_exit(self)

    async def terminate(self, grace: float) -> None:
        """Stop the worker: EOF and SIGTERM, SIGKILL after ``grace`` seconds; reap it."""
        if self.kill_reason is None:
            self.kill_reason = CLOSED_REASON
        on_my_loop = self.loop is not None and self.monitor is not None and self.loop is running_loop()
        if on_my_loop and self._stdin is not None:
            self._stdin.close()
        elif self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._signal_group(signal.SIGTERM)
        if not await self._exited(grace):
            self._signal_group(signal.SIGKILL)
            await self._exited(5.0)
        if on_my_loop and self.monitor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.monitor), 5.0)
        else:
            self.abandon()

    def abandon(self) -> None:
        """Kill and reap without an event loop (the loop it was on is gone, or never was)."""
        self.kill(self.kill_reason or "worker was stopped")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.death is None:
            self.death = self.kill_reason or "worker was stopped"
            self.owner.on_worker_exit(self)


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
