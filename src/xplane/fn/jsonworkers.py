"""The runner's JSON worker processes (:mod:`xplane.fn.httpjson`): large ``:run`` bodies are parsed there.

- At most ``size`` workers (``--http-max-concurrent-runs``), each doing one job at a time. They start
  on first need and stop after :data:`IDLE_TIMEOUT` seconds without a job, so a runner that is never
  sent a large body never starts one. Started as function processes are (no ``preexec_fn``, so
  grpcio's fork handlers never run; see ``xplane.fn.kinds.process.spawn_piped``).
- A job that takes longer than :data:`JOB_TIMEOUT` kills its worker. A worker that dies, answers
  out of turn or retires (it grew too large, see ``httpjson``) is replaced on the next job.
- Pipes are read and written on the event loop; the loop never waits on a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
from dataclasses import dataclass, field

from xplane.fn.httpjson import ANSWER, DECODE, ENCODE, JOB, BodyLimits, BodyRefused
from xplane.fn.kinds.process import signal_name, spawn_piped

log = logging.getLogger(__name__)

#: Seconds a job may take before its worker is killed.
JOB_TIMEOUT = 60.0
#: Seconds an idle worker is kept for the next job.
IDLE_TIMEOUT = 60.0
#: Bytes of a worker's stderr kept to explain its death.
STDERR_TAIL = 4096
#: Large payloads cross the event loop in pieces of this size (a 60 MB copy in one go held it 0.2 s).
CHUNK = 1024 * 1024


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytearray:
    """``n`` bytes from ``reader``, copied piece by piece (``readexactly`` copies them all at once).

    Raises :class:`asyncio.IncompleteReadError` when the stream ends first.
    """
    out = bytearray(n)
    view = memoryview(out)
    pos = 0
    while pos < n:
        chunk = await reader.read(min(n - pos, CHUNK))
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(view[:pos]), n)
        view[pos : pos + len(chunk)] = chunk
        pos += len(chunk)
    view.release()
    return out


def write_now(writer: asyncio.StreamWriter, data: bytes | bytearray | memoryview) -> None:
    """``writer.write(data)``, or :class:`ConnectionResetError` once the other end has gone.

    asyncio's own loop drops data written to a closed pipe or socket; uvloop raises RuntimeError.
    Either way the peer is gone, which callers handle as a connection error.
    """
    if writer.is_closing():
        raise ConnectionResetError("the other end closed the connection")
    writer.write(data)


async def write_all(writer: asyncio.StreamWriter, data: bytes | bytearray) -> None:
    """Write ``data`` piece by piece, waiting for the pipe between pieces."""
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        write_now(writer, view[start : start + CHUNK])
        await writer.drain()
    view.release()


class WorkerFailed(Exception):
    """A worker died, hung or answered nonsense; the message says how."""


class _Tail(asyncio.Protocol):
    """Keeps the last bytes a worker wrote to stderr."""

    def __init__(self) -> None:
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data
        del self.data[:-STDERR_TAIL]


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    stderr: _Tail
    transports: list[asyncio.BaseTransport] = field(default_factory=list)
    idle: asyncio.TimerHandle | None = None

    def describe_exit(self) -> str:
        code = self.proc.poll()
        if code is None:
            how = "stopped answering"
        elif code < 0:
            how = f"was killed by {signal_name(-code)}"
        else:
            how = f"exited with code {code}"
        tail = self.stderr.data.decode("utf-8", "replace").strip().splitlines()[-3:]
        return f"the JSON worker (pid {self.proc.pid}) {how}" + (f": {' / '.join(tail)}" if tail else "")


class JsonWorkers:
    """Up to ``size`` worker processes that decode ``:run`` bodies and encode responses."""

    def __init__(
        self,
        limits: BodyLimits,
        *,
        size: int,
        job_timeout: float = JOB_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.limits = limits
        self.size = size
        self.job_timeout = job_timeout
        self.idle_timeout = idle_timeout
        #: Workers started so far (a restart counts again).
        self.started = 0
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._reaping: set[asyncio.Task[None]] = set()

    async def decode_request(self, body: bytes | bytearray) -> bytearray:
        """Protobuf JSON to a serialized ``RunFunctionRequest`` (``httpjson.decode_request``, in a worker).

        Raises :class:`~xplane.fn.httpjson.BodyRefused` for a body over a limit or malformed, and
        :class:`WorkerFailed` when the worker did not answer.
        """
        return await self._job(DECODE, body)

    async def encode_response(self, data: bytes) -> bytearray:
        """A serialized ``RunFunctionResponse`` as protobuf JSON, in a worker."""
        return await self._job(ENCODE, data)

    async def _job(self, op: int, payload: bytes | bytearray) -> bytearray:
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._start()
            if worker.idle is not None:
                worker.idle.cancel()
                worker.idle = None
            self._busy.add(worker)
            keep = False
            try:
                status, retire, out = await asyncio.wait_for(
                    self._exchange(worker, op, payload), self.job_timeout
                )
                keep = not retire
            except TimeoutError:
                raise WorkerFailed(
                    f"the JSON worker (pid {worker.proc.pid}) did not finish within {self.job_timeout:g}s"
                ) from None
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                await self._wait_exit(worker)
                raise WorkerFailed(worker.describe_exit()) from e
            finally:
                self._busy.discard(worker)
                if keep:
                    self._park(worker)
                else:
                    self._discard(worker)
        if status != 200:
            raise BodyRefused(status, out.decode("utf-8", "replace"))
        return out

    async def _exchange(
        self, worker: _Worker, op: int, payload: bytes | bytearray
    ) -> tuple[int, bool, bytearray]:
        write_now(worker.writer, JOB.pack(op, len(payload)))
        await write_all(worker.writer, payload)
        status, retire, size = ANSWER.unpack(await worker.reader.readexactly(ANSWER.size))
        if size > 4 * max(self.limits.max_body, self.limits.max_message_size):
            raise ConnectionError(f"answer of {size} bytes")
        return status, bool(retire), await read_exactly(worker.reader, size)

    async def _start(self) -> _Worker:
        limits = self.limits
        command = [sys.executable, "-P", "-m", "xplane.fn.httpjson"]
        command += ["--max-body", str(limits.max_body), "--max-values", str(limits.max_values)]
        command += ["--max-message-size", str(limits.max_message_size)]
        try:
            proc = spawn_piped(command)
        except OSError as e:
            raise WorkerFailed(f"cannot start a JSON worker ({sys.executable}): {e.strerror or e}") from None
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.started += 1
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16, loop=loop)
        read_t, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), proc.stdout)
        tail = _Tail()
        err_t, _ = await loop.connect_read_pipe(lambda: tail, proc.stderr)
        write_t, write_p = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, proc.stdin)
        writer = asyncio.StreamWriter(write_t, write_p, None, loop)
        log.debug("JSON worker started", extra={"fields": {"pid": proc.pid}})
        return _Worker(proc, reader, writer, tail, [read_t, err_t, write_t])

    def _park(self, worker: _Worker) -> None:
        worker.idle = asyncio.get_running_loop().call_later(self.idle_timeout, self._expire, worker)
        self._idle.append(worker)

    def _expire(self, worker: _Worker) -> None:
        if worker in self._idle:
            self._idle.remove(worker)
            self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        """Close the worker's pipes and kill it (it may have exited already); reaped in the background."""
        if worker.idle is not None:
            worker.idle.cancel()
            worker.idle = None
        for transport in worker.transports:
            transport.close()
        with contextlib.suppress(ProcessLookupError):
            worker.proc.kill()
        task = asyncio.get_running_loop().create_task(self._wait_exit(worker))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    @staticmethod
    async def _wait_exit(worker: _Worker) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(worker.proc.wait, 5)

    async def close(self) -> None:
        """Stop every worker (a job in progress fails with :class:`WorkerFailed`)."""
        for worker in [*self._idle, *self._busy]:
            self._discard(worker)
        self._idle.clear()
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)
