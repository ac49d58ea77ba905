"""Executable functions (any language): one process per call, request on stdin, response on stdout.

Protocols: ``json`` (protobuf JSON of RunFunctionRequest/Response) and ``functionio`` (the old xfn's
FunctionIO YAML, see :mod:`xplane.fn.kinds.functionio`). Each call gets a clean environment (PATH,
HOME, LANG and the declared ``env``), its own process group (killed on timeout), an RLIMIT_AS memory
limit when one is declared, capped stdout/stderr, and bubblewrap when available.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import subprocess

from google.protobuf import json_format

from xplane.fn.base import Function, FunctionSpec, ensure_tag, fatal_response, trim
from xplane.fn.errors import FunctionLoadError
from xplane.fn.kinds import functionio, sandbox
from xplane.fn.kinds.process import base_environment, signal_name, spawn_piped
from xplane.fn.proto import fnv1, request_to_json, response_from_json

log = logging.getLogger(__name__)

#: Default cap on stdout and on stderr, each (the old xfn used 100 MiB; responses are far smaller).
DEFAULT_OUTPUT_BYTES = 64 * 1024 * 1024
_STDERR_IN_MESSAGE = 2000


class _OutputTooLarge(Exception):
    def __init__(self, stream: str, limit: int) -> None:
        super().__init__(stream)
        self.stream = stream
        self.limit = limit


_PIPE_CHUNK = 65536
#: ``os.pidfd_open`` (Linux >= 5.3) lets the event loop see a child's exit without a watcher thread.
_HAS_PIDFD = hasattr(os, "pidfd_open")


class _Child:
    """One spawned process, its pipes and its exit, all watched on the event loop.

    asyncio's own subprocess support (``create_subprocess_exec``) costs about 150 us more per call on
    Python 3.11: a child-watcher thread per process, a transport and a protocol per pipe, a task per
    stream. Here the pipes are plain non-blocking fds with loop readers, and the exit is seen through
    a pidfd (or, where there is none, a worker thread that waits for it).
    """

    def __init__(self, proc: subprocess.Popen[bytes], limit: int) -> None:
        self.proc = proc
        self.limit = limit
        self.loop = asyncio.get_running_loop()
        self._out = bytearray()
        self._err = bytearray()
        self._pending = 0
        self._done: asyncio.Future[None] = self.loop.create_future()
        self._readers: list[int] = []
        self._writer: int | None = None
        self._data = memoryview(b"")
        self._pidfd: int | None = None
        if _HAS_PIDFD:
            with contextlib.suppress(OSError):  # e.g. ENOSYS under an old kernel or a seccomp filter
                self._pidfd = os.pidfd_open(proc.pid)

    async def communicate(self, data: bytes) -> tuple[bytes, bytes, int]:
        """Feed ``data`` to stdin, collect stdout and stderr (capped), wait for the exit code."""
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._watch(proc.stdout.fileno(), self._out, "stdout")
        self._watch(proc.stderr.fileno(), self._err, "stderr")
        self._pending += 1
        if self._pidfd is not None:
            self._readers.append(self._pidfd)
            self.loop.add_reader(self._pidfd, self._on_exit)
        else:
            waiter = self.loop.run_in_executor(None, proc.wait)
            waiter.add_done_callback(lambda _: self._finish_one())
        self._data = memoryview(data)
        os.set_blocking(proc.stdin.fileno(), False)
        self._feed()
        await self._done
        code = proc.returncode
        assert code is not None
        return bytes(self._out), bytes(self._err), code

    def _watch(self, fd: int, buf: bytearray, name: str) -> None:
        os.set_blocking(fd, False)
        self._pending += 1
        self._readers.append(fd)
        self.loop.add_reader(fd, self._on_readable, fd, buf, name)

    def _on_readable(self, fd: int, buf: bytearray, name: str) -> None:
        try:
            chunk = os.read(fd, _PIPE_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            buf += chunk
            if len(buf) > self.limit and not self._done.done():
                self._done.set_exception(_OutputTooLarge(name, self.limit))
            return
        self.loop.remove_reader(fd)
        self._readers.remove(fd)
        self._finish_one()

    def _on_exit(self) -> None:
        assert self._pidfd is not None
        self.loop.remove_reader(self._pidfd)
        self._readers.remove(self._pidfd)
        self.proc.poll()
        self._finish_one()

    def _finish_one(self) -> None:
        self._pending -= 1
        if self._pending == 0 and not self._done.done():
            if self.proc.returncode is None:
                self.proc.poll()
            self._done.set_result(None)

    def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        fd = stdin.fileno()
        try:
            while self._data:
                n = os.write(fd, self._data[:_PIPE_CHUNK])
                self._data = self._data[n:]
        except BlockingIOError:
            if self._writer is None:
                self._writer = fd
                self.loop.add_writer(fd, self._feed)
            return
        except OSError:  # EPIPE and friends: the process stopped reading; its exit status tells why
            pass
        self._stop_feeding()

    def _stop_feeding(self) -> None:
        if self._writer is not None:
            self.loop.remove_writer(self._writer)
            self._writer = None
        self._data = memoryview(b"")
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

    async def kill(self) -> None:
        """SIGKILL the process group and reap the process (waits at most 5 s)."""
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 5)

    def close(self) -> None:
        """Stop watching and close every fd (idempotent)."""
        for fd in self._readers:
            self.loop.remove_reader(fd)
        self._readers.clear()
        self._stop_feeding()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if not self._done.done():
            self._done.cancel()
        elif not self._done.cancelled():
            self._done.exception()  # mark retrieved: no "exception was never retrieved" warning


def memory_limited(command: list[str], limit: int) -> tuple[list[str], bool]:
    """``command`` under an RLIMIT_AS of ``limit`` bytes (and no core dumps), set before it runs.

    util-linux's ``prlimit`` sets the limits and execs the command in the same process, so exit
    codes and signals are the command's own. Returns ``(command, True)``; without ``prlimit`` the
    command unchanged and ``False``: the caller then caps the process right after the spawn
    (:func:`limit_memory`), which a program that allocates at once may outrun.
    """
    exe = sandbox.which("prlimit")
    if exe is None:
        return command, False
    return [exe, f"--as={limit}", "--core=0", "--", *command], True


def limit_memory(pid: int, limit: int) -> None:
    """Cap a just-started process's address space (RLIMIT_AS) and turn off its core dumps."""
    try:
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
        resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))
    except ProcessLookupError:  # it has already exited: nothing to cap
        pass
    except PermissionError:  # e.g. a setuid bwrap: say so instead of failing every call
        log.warning("cannot set the memory limit of pid %d (permission denied); it runs without one", pid)


class ExecFunction(Function):
    """An executable speaking ``json`` or ``functionio`` on stdin/stdout."""

    def __init__(self, spec: FunctionSpec) -> None:
        super().__init__(spec)
        exe = spec.entrypoint_path()
        if not exe.is_file():
            raise FunctionLoadError(f"executable {exe} does not exist", path=spec.path, field="entrypoint")
        if not os.access(exe, os.X_OK):
            raise FunctionLoadError(
                f"{exe} is not executable", path=spec.path, field="entrypoint", hint=f"chmod +x {exe}"
            )
        self.executable = exe.resolve()
        self.protocol = spec.protocol or "json"
        if self.protocol not in ("json", "functionio"):
            raise FunctionLoadError(f"unknown protocol {self.protocol!r}", path=spec.path, field="protocol")
        self.args: list[str] = list(spec.options.get("args") or [])
        self.network = bool(spec.options.get("network", False))
        self.memory: int | None = spec.limits.get("memory")
        self.output_bytes: int = spec.limits.get("output_bytes") or DEFAULT_OUTPUT_BYTES
        self.sandbox = sandbox.resolve_mode(spec.options.get("sandbox"), function=spec.name, path=spec.path)
        self.workdir = spec.directory.resolve()
        own = [str(self.executable), *self.args]
        self._limited, self._limit_in_command = (
            memory_limited(own, self.memory) if self.memory is not None else (own, False)
        )
        self._interpreter_binds = (
            sandbox.interpreter_binds(self.executable) if self.sandbox == "bwrap" else []
        )
        log.info(
            "executable function %s: sandbox=%s protocol=%s",
            spec.name,
            self.sandbox,
            self.protocol,
            extra={"fields": {"function": spec.name, "sandbox": self.sandbox, "protocol": self.protocol}},
        )

    def environment(self) -> dict[str, str]:
        """The process environment: PATH, HOME, LANG and the declared env (nothing else leaks in)."""
        env = base_environment(home="/tmp" if self.sandbox == "bwrap" else None)
        env.update(self.spec.env)
        return env

    def command(self) -> list[str]:
        """The full command line: the memory limit inside the sandbox, the sandbox around it."""
        return sandbox.wrap(
            self._limited,
            mode=self.sandbox,
            workdir=self.workdir,
            network=self.network,
            binds=[self.executable.parent, *self._interpreter_binds],
        )

    def encode(self, req: fnv1.RunFunctionRequest) -> bytes:
        """The bytes written to the process's stdin."""
        if self.protocol == "functionio":
            return functionio.dump_request(req)
        return request_to_json(req)

    def decode(self, req: fnv1.RunFunctionRequest, out: bytes) -> fnv1.RunFunctionResponse:
        """Parse stdout; raises ValueError (or a subclass) on garbage."""
        if self.protocol == "functionio":
            return functionio.parse_response(out, req)
        if not out.strip():
            raise ValueError("empty output")
        return response_from_json(out)

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Spawn the executable for one request; every failure becomes a FATAL result."""
        data = self.encode(req)
        try:
            proc = spawn_piped(self.command(), env=self.environment(), cwd=self.workdir)
            if self.memory is not None and not self._limit_in_command:
                limit_memory(proc.pid, self.memory)
        except OSError as e:
            return fatal_response(req, f"function {self.name!r}: cannot start {self.executable}: {e}")
        child = _Child(proc, self.output_bytes)
        try:
            async with asyncio.timeout(timeout):
                out, err, code = await child.communicate(data)
        except TimeoutError:
            await child.kill()
            return fatal_response(
                req, f"function {self.name!r} timed out after {timeout:g}s (process killed)"
            )
        except _OutputTooLarge as e:
            await child.kill()
            return fatal_response(
                req, f"function {self.name!r} wrote more than {e.limit} bytes to {e.stream} (process killed)"
            )
        except BaseException:
            await child.kill()
            raise
        finally:
            child.close()
        stderr = err.decode("utf-8", errors="replace")
        if self.sandbox == "bwrap" and 128 < code < 128 + 65:
            code = -(code - 128)  # bwrap reports a child killed by a signal as 128 + signal
        if code != 0:
            if code < 0:
                what = f"was killed by {signal_name(-code)}"
                if self.memory is not None and -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
                    what += f" (memory limit {self.memory} bytes?)"
            else:
                what = f"exited with code {code}"
            tail = trim(stderr, _STDERR_IN_MESSAGE)
            return fatal_response(req, f"function {self.name!r} {what}" + (f": {tail}" if tail else ""))
        try:
            rsp = self.decode(req, out)
        except (ValueError, json_format.ParseError) as e:
            excerpt = trim(out.decode("utf-8", errors="replace")[:300], 300)
            return fatal_response(
                req,
                f"function {self.name!r} wrote invalid {self.protocol} output: {e}; output began: {excerpt!r}",
            )
        if stderr.strip() and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "function stderr", extra={"fields": {"function": self.name, "stderr": trim(stderr, 2000)}}
            )
        return ensure_tag(req, rsp)
