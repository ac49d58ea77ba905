"""Python functions in their own worker process (``isolation: process``): the runner's side.

A :class:`PythonProcessFunction` keeps one long-lived worker (:mod:`xplane.fn.kinds.pyworker`) per
function and multiplexes calls over its pipes, so a function that segfaults, calls ``os._exit``,
runs out of memory or hangs a thread costs a FATAL result and a worker restart, never the runner.

- The worker starts at load time (an import error is a load error, as in process) in its own
  process group, with a clean environment (PATH, HOME, LANG and the function's ``env``); it sets
  ``limits.memory`` (RLIMIT_AS) on itself before importing the function.
- The load runs in the loader's worker thread, so the worker is started with ``subprocess.Popen``
  and its pipes are put on the event loop (``connect_read_pipe``/``connect_write_pipe``) by the first
  call; restarts happen on the loop. A function is served from one event loop at a time: moved to
  another (``asyncio.run`` per call), it starts a fresh worker there.
- The worker answers FATAL at the call's timeout itself. A worker that does not answer within the
  timeout plus :data:`~xplane.fn.base.DEADLINE_GRACE` is killed (process group), as is one whose
  synchronous calls outlive their timeout (after its other calls finish).
- A dead worker fails each of its in-flight calls with one FATAL naming the exit code or signal and
  the tail of its stderr; the next call starts a new worker, at most once per
  :data:`RESPAWN_INTERVAL` after the first restart (calls in between get the last death reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

import xplane
from xplane.fn.base import DEADLINE_GRACE, Function, FunctionSpec, fatal_response, trim
from xplane.fn.errors import FunctionLoadError
from xplane.fn.kinds import sandbox
from xplane.fn.kinds.process import base_environment, spawn_piped
from xplane.fn.kinds.pyhandle import (
    CLOSED_REASON,
    Unavailable,
    WorkerGone,
    WorkerHandle,
    log_fields,
    running_loop,
)
from xplane.fn.kinds.pyworker import (
    CALL,
    TIMEOUT,
)
from xplane.fn.proto import fnv1

#: Seconds a worker may take to import the function and report ready.
LOAD_TIMEOUT = 60.0
#: After the first restart, at most one worker start per this many seconds (a crash loop must not spin).
RESPAWN_INTERVAL = 1.0
#: Seconds between SIGTERM and SIGKILL when a function closes.
TERM_GRACE = 2.0
#: Cap on a frame's payload. The gRPC server enforces ``--max-message-size`` on requests and
#: responses; this only bounds what a corrupt stream could make either side wait for (protobuf's
#: own 2 GiB limit).
MAX_FRAME_PAYLOAD = 2**31 - 1
_MOVED = "worker was replaced: the function moved to another event loop"
_SRC_ROOT = str(Path(xplane.__file__).resolve().parents[1])


class PythonProcessFunction(Function):
    """A Python function served by its own worker process (see the module docstring)."""

    #: The worker answers FATAL at the call's timeout (``Function.call`` adds no deadline).
    enforces_timeout = True
    #: Cap on a frame's payload (request or response); see :data:`MAX_FRAME_PAYLOAD`.
    max_payload: int = MAX_FRAME_PAYLOAD

    def __init__(self, spec: FunctionSpec) -> None:
        super().__init__(spec)
        self.memory: int | None = spec.limits.get("memory")
        #: ``bwrap`` or ``none``: opt-in for python workers (``sandbox: auto|bwrap``), unlike exec.
        self.sandbox = sandbox.resolve_mode(
            spec.options.get("sandbox", "none"), function=spec.name, path=spec.path
        )
        self.network = bool(spec.options.get("network", False))
        self._ids = itertools.count(1)
        self._workers: set[WorkerHandle] = set()
        self._worker: WorkerHandle | None = None
        self._spawning: asyncio.Task[WorkerHandle] | None = None
        self._last_restart: float | None = None
        self._last_death: str | None = None
        self._closed = False
        #: Workers started so far (the first at load time).
        self.starts = 0
        worker = self._popen(FunctionLoadError)
        try:
            info = worker.wait_ready_blocking(LOAD_TIMEOUT)
        except BaseException:
            worker.abandon()
            raise
        self.object_name = str(info.get("object"))
        self._started(worker)

    # -- the worker ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The pid of the worker serving calls now, if one is."""
        worker = self._worker
        return None if worker is None or worker.dead else worker.pid

    def status(self) -> dict[str, Any]:
        """What ``/functions`` adds for this function: its isolation and its worker."""
        out: dict[str, Any] = {"isolation": "process", "workerPid": self.pid, "workerStarts": self.starts}
        if self._last_death:
            out["lastWorkerExit"] = trim(self._last_death, 500)
        return out

    def environment(self) -> dict[str, str]:
        """PATH, HOME, LANG and the declared env; xplane's own source root on PYTHONPATH."""
        env = base_environment(home="/tmp" if self.sandbox == "bwrap" else None)
        env.update(self.spec.env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (self.spec.env.get("PYTHONPATH"), _SRC_ROOT) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.memory is not None:
            env.setdefault("MALLOC_ARENA_MAX", "2")  # each thread's malloc arena reserves 64 MiB of RLIMIT_AS
        return env

    def command(self) -> list[str]:
        """The worker's command line (``-P``: the working directory is not put on ``sys.path``)."""
        spec = self.spec
        cmd = [sys.executable, "-P", "-m", "xplane.fn.kinds.pyworker", "--name", spec.name]
        cmd += ["--path", str(spec.path.resolve()), "--max-payload", str(self.max_payload)]
        if spec.entrypoint:
            cmd += ["--entrypoint", spec.entrypoint]
        if spec.options.get("object"):
            cmd += ["--object", str(spec.options["object"])]
        if self.memory is not None:
            cmd += ["--memory", str(self.memory)]
        return sandbox.wrap(
            cmd,
            mode=self.sandbox,
            workdir=spec.directory.resolve(),
            network=self.network,
            binds=self._python_binds() if self.sandbox == "bwrap" else (),
        )

    @staticmethod
    def _python_binds() -> list[Path]:
        """What the worker's Python needs that the sandbox's private /tmp would hide (a venv under /tmp)."""
        wanted = [sys.prefix, sys.base_prefix, sys.exec_prefix, _SRC_ROOT, *sys.path]
        found = [Path(p).resolve() for p in wanted if p and os.path.isdir(p)]
        return [p for p in dict.fromkeys(found) if p.parts[:2] == ("/", "tmp")]

    def _popen(self, error: type[Exception]) -> WorkerHandle:
        try:
            proc = spawn_piped(self.command(), env=self.environment(), cwd=self.spec.directory.resolve())
        except OSError as e:
            raise error(f"cannot start the Python worker of function {self.name!r}: {e}") from e
        worker = WorkerHandle(self, proc)
        self._workers.add(worker)
        return worker

    def _started(self, worker: WorkerHandle) -> None:
        self._worker = worker
        self.starts += 1
        memory = self.memory if self.memory is not None else "unlimited"
        log_fields(
            logging.INFO,
            "python worker started",
            function=self.name,
            pid=worker.pid,
            isolation="process",
            sandbox=self.sandbox,
            memory=memory,
        )

    async def _ready_worker(self, loop: asyncio.AbstractEventLoop) -> WorkerHandle:
        spawning = self._spawning
        if spawning is not None and spawning.get_loop() is loop:
            return await asyncio.shield(spawning)
        if self._closed:
            raise Unavailable(f"function {self.name!r} is closed")
        worker = self._worker
        adopt: WorkerHandle | None = None
        if worker is not None and worker.loop is None and not worker.dead:
            adopt = worker  # started at load time; its pipes go on this loop
        elif worker is not None and worker.loop is not loop and not worker.dead:
            self._worker = None
            worker.kill_reason = _MOVED
            worker.abandon()
        elif worker is not None and not worker.dead and not worker.retiring:
            return worker
        else:
            now = time.monotonic()
            last = self._last_restart
            if last is not None and now - last < RESPAWN_INTERVAL:
                raise Unavailable(
                    f"function {self.name!r} {self._last_death or 'worker is down'}; "
                    f"its worker restarts at most once every {RESPAWN_INTERVAL:g}s"
                )
            self._last_restart = now
        task = loop.create_task(self._start(loop, adopt))
        self._spawning = task
        task.add_done_callback(self._spawn_done)
        return await asyncio.shield(task)

    def _spawn_done(self, task: asyncio.Task[WorkerHandle]) -> None:
        if self._spawning is task:
            self._spawning = None
        if not task.cancelled():
            task.exception()  # retrieved: the callers got it through shield()

    async def _start(self, loop: asyncio.AbstractEventLoop, adopt: WorkerHandle | None) -> WorkerHandle:
        worker = adopt if adopt is not None else self._popen(Unavailable)
        try:
            await worker.attach(loop)
            if worker.ready is not None:
                async with asyncio.timeout(LOAD_TIMEOUT):
                    await asyncio.shield(worker.ready)
        except (FunctionLoadError, TimeoutError, OSError) as e:
            worker.kill("worker failed to start")
            reason = f"worker failed to start: {e}"
            self._last_death = reason
            raise Unavailable(f"function {self.name!r} {reason}") from None
        if self._closed:
            await worker.terminate(TERM_GRACE)
            raise Unavailable(f"function {self.name!r} is closed")
        if adopt is None:
            self._started(worker)
        return worker

    # -- events from workers ---------------------------------------------------------------------
    def on_worker_exit(self, worker: WorkerHandle) -> None:
        """A worker is gone (reaped): forget it; the next call starts another."""
        self._workers.discard(worker)
        if self._worker is worker:
            self._worker = None
            self._last_death = worker.death
        if (
            not self._closed
            and worker.ready_info is not None
            and worker.kill_reason not in (CLOSED_REASON, _MOVED)
        ):
            reason = trim(worker.death or "", 500)
            log_fields(
                logging.WARNING, "python worker exited", function=self.name, pid=worker.pid, reason=reason
            )

    def on_stuck(self, worker: WorkerHandle, what: str) -> None:
        """The worker holds threads of timed-out synchronous calls: retire it once its calls finish."""
        reason = f"worker was restarted: {what}"
        log_fields(logging.WARNING, "python worker retired", function=self.name, pid=worker.pid, reason=what)
        worker.retiring = True
        worker.kill_reason = worker.kill_reason or reason
        if self._worker is worker:
            self._worker = None
            self._last_death = reason
        worker.check_drained()

    # -- calls -----------------------------------------------------------------------------------
    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Send one request to the worker; every failure (crash, hang, timeout) is a FATAL result."""
        return await self.run_owned(req, timeout=timeout)

    async def run_owned(
        self, req: fnv1.RunFunctionRequest, *, timeout: float, timer: bool = True
    ) -> fnv1.RunFunctionResponse:
        """As :meth:`run`; the worker parses its own copy, so the request is never changed.

        ``timer=False``: the caller's gRPC deadline cancels the call at ``timeout`` (the worker is
        told to stop the call; it keeps serving), so the worker's own timer is set a grace later.
        """
        loop = asyncio.get_running_loop()
        worker = self._worker
        if worker is None or worker.loop is not loop or worker.dead or worker.retiring:
            try:
                worker = await self._ready_worker(loop)
            except Unavailable as e:
                return fatal_response(req, str(e))
        payload = req.SerializeToString()
        if len(payload) + TIMEOUT.size > self.max_payload:
            return fatal_response(
                req, f"request of {len(payload)} bytes is over the worker's limit of {self.max_payload} bytes"
            )
        call_id = next(self._ids)
        fut: asyncio.Future[bytes] = loop.create_future()
        worker.pending[call_id] = fut
        try:
            worker.send(CALL, call_id, TIMEOUT.pack(timeout if timer else timeout + DEADLINE_GRACE) + payload)
            if timer:
                async with asyncio.timeout(timeout + DEADLINE_GRACE):
                    data = await fut
            else:
                data = await fut
        except TimeoutError:
            worker.forget(call_id)
            worker.kill(
                f"worker was killed: another call did not answer within {timeout + DEADLINE_GRACE:g}s"
            )
            return fatal_response(
                req, f"function {self.name!r} did not answer within {timeout:g}s; worker restarted"
            )
        except WorkerGone as e:
            worker.forget(call_id)
            return fatal_response(req, f"function {self.name!r}: {e}")
        except asyncio.CancelledError:
            worker.cancel_call(call_id)
            raise
        rsp = fnv1.RunFunctionResponse()
        try:
            rsp.ParseFromString(data)
        except DecodeError as e:
            return fatal_response(
                req, f"function {self.name!r}: the worker sent an unreadable response ({e})"
            )
        return rsp

    async def close(self) -> None:
        """Stop every worker of this function: SIGTERM, SIGKILL after a grace, reaped. Idempotent."""
        self._closed = True
        spawning = self._spawning
        if spawning is not None and spawning.get_loop() is running_loop():
            with contextlib.suppress(BaseException):
                await asyncio.shield(spawning)
        workers = list(self._workers)
        self._worker = None
        await asyncio.gather(*(w.terminate(TERM_GRACE) for w in workers), return_exceptions=True)
