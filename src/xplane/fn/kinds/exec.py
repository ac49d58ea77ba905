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

from google.protobuf import json_format

from xplane.fn.base import Function, FunctionSpec, ensure_tag, fatal_response, trim
from xplane.fn.errors import FunctionLoadError
from xplane.fn.kinds import functionio, sandbox
from xplane.fn.proto import fnv1, request_to_json, response_from_json

log = logging.getLogger(__name__)

#: Default cap on stdout and on stderr, each (the old xfn used 100 MiB; responses are far smaller).
DEFAULT_OUTPUT_BYTES = 64 * 1024 * 1024
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_STDERR_IN_MESSAGE = 2000


class _OutputTooLarge(Exception):
    def __init__(self, stream: str, limit: int) -> None:
        super().__init__(stream)
        self.stream = stream
        self.limit = limit


async def _read_capped(stream: asyncio.StreamReader | None, limit: int, name: str) -> bytes:
    if stream is None:
        return b""
    buf = bytearray()
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise _OutputTooLarge(name, limit)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


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
        log.info(
            "executable function %s: sandbox=%s protocol=%s",
            spec.name,
            self.sandbox,
            self.protocol,
            extra={"fields": {"function": spec.name, "sandbox": self.sandbox, "protocol": self.protocol}},
        )

    def environment(self) -> dict[str, str]:
        """The process environment: PATH, HOME, LANG and the declared env (nothing else leaks in)."""
        env = {
            "PATH": os.environ.get("PATH", DEFAULT_PATH),
            "HOME": "/tmp" if self.sandbox == "bwrap" else os.environ.get("HOME", "/tmp"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        env.update(self.spec.env)
        return env

    def command(self) -> list[str]:
        """The full command line, sandbox included."""
        return sandbox.wrap(
            [str(self.executable), *self.args],
            mode=self.sandbox,
            workdir=self.workdir,
            network=self.network,
            binds=[self.executable.parent],
        )

    def _preexec(self) -> None:  # runs in the child between fork and exec (only with a memory limit)
        assert self.memory is not None
        resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

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
            proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(),
                cwd=self.workdir,
                start_new_session=True,
                # Without preexec_fn CPython can vfork, which is much cheaper from a large process.
                preexec_fn=self._preexec if self.memory is not None else None,
                close_fds=True,
            )
        except OSError as e:
            return fatal_response(req, f"function {self.name!r}: cannot start {self.executable}: {e}")
        try:
            async with asyncio.timeout(timeout):
                out, err = await self._communicate(proc, data)
                code = await proc.wait()
        except TimeoutError:
            await self._kill(proc)
            return fatal_response(
                req, f"function {self.name!r} timed out after {timeout:g}s (process killed)"
            )
        except _OutputTooLarge as e:
            await self._kill(proc)
            return fatal_response(
                req, f"function {self.name!r} wrote more than {e.limit} bytes to {e.stream} (process killed)"
            )
        except BaseException:
            await self._kill(proc)
            raise
        stderr = err.decode("utf-8", errors="replace")
        if self.sandbox == "bwrap" and 128 < code < 128 + 65:
            code = -(code - 128)  # bwrap reports a child killed by a signal as 128 + signal
        if code != 0:
            if code < 0:
                what = f"was killed by {_signal_name(-code)}"
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
        if stderr.strip():
            log.debug(
                "function stderr", extra={"fields": {"function": self.name, "stderr": trim(stderr, 2000)}}
            )
        return ensure_tag(req, rsp)

    async def _communicate(self, proc: asyncio.subprocess.Process, data: bytes) -> tuple[bytes, bytes]:
        async def feed() -> bytes:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(data)
                await proc.stdin.drain()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.close()
            return b""

        tasks = [
            asyncio.ensure_future(feed()),
            asyncio.ensure_future(_read_capped(proc.stdout, self.output_bytes, "stdout")),
            asyncio.ensure_future(_read_capped(proc.stderr, self.output_bytes, "stderr")),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()  # re-raise the first failure (output too large)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return tasks[1].result(), tasks[2].result()

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):  # drain so the transport closes on this loop
            await asyncio.wait_for(proc.communicate(), 5)
