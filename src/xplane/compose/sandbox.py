"""A function server in a bubblewrap sandbox: its command line, process, network relay and readiness.

:func:`sandbox_argv` is the ``bwrap`` command line (read-only rootfs as ``/``, private ``/tmp``,
``/proc`` and ``/dev``; new user, PID, IPC, UTS and cgroup namespaces, and a network namespace of
its own when asked; no capabilities; killed with xplane). :class:`FunctionProcess` runs it, keeps
the tail of its stderr, and with a network namespace of its own starts
:mod:`xplane.compose.netrelay`, which joins it (``setns``), so that xplane reaches the function
at a unix socket. :func:`own_network_unavailable` says whether this machine allows that.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.compose.errors import ComposeError

if TYPE_CHECKING:
    from xplane.fn import FunctionClient

NETWORK_ANNOTATION = "render.xplane.io/network"
SANDBOX_PORT = 9443  # where the function listens in its own network namespace (the SDKs' default)
RELAY_SCRIPT = Path(__file__).with_name("netrelay.py")
INFO_LIMIT = 64 * 1024
STDERR_TAIL_BYTES = 4096
STOP_GRACE_S = 2.0


@dataclass(frozen=True)
class Prepared:
    """A pulled and unpacked function image."""

    image: str
    rootfs: Path
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str
    unpacked: bool  # False when an earlier unpack was reused


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _read_fd(fd: int, *, until: bytes | None = None, limit: int = INFO_LIMIT) -> bytes:
    """What ``fd`` gives until end of file, ``until`` or ``limit`` bytes: read on the event loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    data = bytearray()
    os.set_blocking(fd, False)

    def on_readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        data.extend(chunk)
        if not done.done() and (not chunk or len(data) > limit or (until is not None and until in data)):
            done.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
    return bytes(data)


class FunctionProcess:
    """One sandboxed function server at ``address``, with the tail of its stderr.

    With ``relay_dir`` the sandbox has a network namespace of its own (``bwrap --unshare-net
    --info-fd``): :meth:`wait_ready` learns the sandbox's PID from bwrap, starts the relay in its
    namespace, and ``address`` is the relay's unix socket in ``relay_dir``.
    """

    def __init__(
        self, name: str, image: str, argv: Sequence[str], address: str, *, relay_dir: Path | None = None
    ) -> None:
        self.name = name
        self.image = image
        self.argv = list(argv)
        self.address = address
        self.relay_dir = relay_dir
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_bytes = 0
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.relay: subprocess.Popen[bytes] | None = None
        self._info_fd: int | None = None
        self.ready = False
        self._client: FunctionClient | None = None

    def start(self) -> None:
        """Start the sandbox (returns at once; see :meth:`wait_ready`)."""
        pass_fds: tuple[int, ...] = ()
        argv = self.argv
        if self.relay_dir is not None:
            self._info_fd, info_w = os.pipe()
            pass_fds = (info_w,)
            argv = [argv[0], "--info-fd", str(info_w), *argv[1:]]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=pass_fds,
            )
        except OSError as e:
            raise ComposeError(f"cannot start function {self.name} ({self.image}): {e.strerror or e}") from e
        finally:
            for fd in pass_fds:
                os.close(fd)
        threading.Thread(target=self._drain, name=f"stderr-{self.name}", daemon=True).start()

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        with contextlib.suppress(OSError, ValueError):
            while chunk := os.read(fd, 4096):
                self._keep(chunk)
        with contextlib.suppress(OSError):
            self.proc.stderr.close()

    def _keep(self, chunk: bytes) -> None:
        with self._lock:
            self._tail.append(chunk)
            self._tail_bytes += len(chunk)
            while self._tail_bytes > STDERR_TAIL_BYTES and len(self._tail) > 1:
                self._tail_bytes -= len(self._tail.popleft())

    async def _sandbox_pid(self) -> int:
        """The PID (in xplane's namespace) of the sandbox's first process, from bwrap's ``--info-fd``."""
        assert self._info_fd is not None
        fd, self._info_fd = self._info_fd, None
        try:
            data = await _read_fd(fd)
        finally:
            os.close(fd)
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                assert self.proc is not None
                self.proc.wait(1.0)
            raise ComposeError(
                f"function {self.name} ({self.image}): the sandbox did not start{self.describe_failure()}"
            ) from None

    async def _start_relay(self) -> None:
        assert self.relay_dir is not None
        pid = await self._sandbox_pid()
        argv = [
            sys.executable, "-I", "-S", str(RELAY_SCRIPT),
            "--pid", str(pid), str(self.relay_dir / "grpc.sock"), str(SANDBOX_PORT),
        ]  # fmt: skip
        try:
            self.relay = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as e:
            raise ComposeError(
                f"cannot reach function {self.name} ({self.image}) in its network namespace: "
                f"cannot start the relay: {e.strerror or e}",
                hint=f"set the {NETWORK_ANNOTATION}: Host annotation to share the host's network",
            ) from e

    async def _relay_says_ready(self) -> None:
        """Until the relay writes ``ready`` (the function accepted a connection in its namespace), or
        closes its stdout (its exit is noticed apart)."""
        assert self.relay is not None and self.relay.stdout is not None
        await _read_fd(self.relay.stdout.fileno(), until=b"ready")

    def _relay_failure(self) -> ComposeError:
        assert self.relay is not None and self.relay.stderr is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.relay.wait(1.0)
        os.set_blocking(self.relay.stderr.fileno(), False)
        with contextlib.suppress(OSError, TypeError):
            self._keep(b"relay: " + (self.relay.stderr.read(STDERR_TAIL_BYTES) or b""))
        return ComposeError(
            f"cannot reach function {self.name} ({self.image}) in its network namespace: the relay "
            f"exited with code {self.relay.returncode}{self.describe_failure()}",
            hint=f"set the {NETWORK_ANNOTATION}: Host annotation on the Function to share the host's network",
        )

    def stderr_tail(self) -> str:
        """The last few KiB the function wrote to stderr (decoded leniently)."""
        with self._lock:
            data = b"".join(self._tail)[-STDERR_TAIL_BYTES:]
        return data.decode("utf-8", "replace").strip()

    def exit_code(self) -> int | None:
        """The process's exit code, or None while it runs."""
        return None if self.proc is None else self.proc.poll()

    def describe_failure(self) -> str:
        """``exited with code N`` (when it did) and the stderr tail, for an error message."""
        code = self.exit_code()
        text = f"; it exited with code {code}" if code is not None else ""
        tail = self.stderr_tail()
        return f"{text}; stderr: {tail[-1500:]}" if tail else f"{text}; stderr: (empty)"

    @property
    def client(self) -> FunctionClient:
        """A plaintext :class:`xplane.fn.FunctionClient` for this server."""
        if self._client is None:
            from xplane.fn import FunctionClient

            self._client = FunctionClient(self.address)
        return self._client

    async def _handshake(self) -> None:
        """Until a gRPC channel to ``address`` is ready (connects, retrying on gRPC's short backoff)."""
        import grpc

        options = [("grpc.initial_reconnect_backoff_ms", 20), ("grpc.max_reconnect_backoff_ms", 100)]
        channel = grpc.aio.insecure_channel(self.address, options=options)
        try:
            await channel.channel_ready()
        finally:
            await channel.close()

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the server accepts an HTTP/2 connection, it exits, or ``timeout`` passes.

        In a network namespace of its own: learn the sandbox's PID, start the relay, wait for its
        ``ready``, then the handshake through it. Each phase races the processes' exits (pidfds).
        """
        if self.ready:
            return
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        exited: asyncio.Future[str] = loop.create_future()
        pidfds: list[int] = []

        def watch(proc: subprocess.Popen[bytes], what: str) -> None:
            pidfd = os.pidfd_open(proc.pid)
            pidfds.append(pidfd)

            def on_exit() -> None:
                if not exited.done():
                    exited.set_result(what)

            loop.add_reader(pidfd, on_exit)

        async def finished(step: Coroutine[Any, Any, None]) -> bool:
            """Whether ``step`` finished (its error raised) before an exit or the deadline."""
            task = asyncio.ensure_future(step)
            try:
                remaining = max(0.0, deadline - loop.time())
                racing: set[asyncio.Future[Any]] = {task, exited}
                await asyncio.wait(racing, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if task.cancelled():
                return False
            task.result()
            return True

        watch(self.proc, "sandbox")
        try:
            served = True
            if self.relay_dir is not None:
                served = self.relay is not None or await finished(self._start_relay())
                if served and self.relay is not None:
                    watch(self.relay, "relay")
                    served = await finished(self._relay_says_ready())
            served = served and await finished(self._handshake())
        finally:
            for pidfd in pidfds:
                loop.remove_reader(pidfd)
                os.close(pidfd)
        if self.exit_code() is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(1.0)
            raise ComposeError(
                f"function {self.name} ({self.image}) stopped before it served{self.describe_failure()}"
            )
        if self.relay is not None and self.relay.poll() is not None:
            raise self._relay_failure()
        if not served:
            where = f"on {self.address}"
            if self.relay_dir is not None:
                where = f"on 127.0.0.1:{SANDBOX_PORT} (the sandbox's own loopback)"
            raise ComposeError(
                f"function {self.name} ({self.image}) did not accept connections {where} within "
                f"{timeout:.3g}s{self.describe_failure()}",
                hint="does the image take --insecure and --address=HOST:PORT, as functions built with the "
                "SDKs do? otherwise raise --timeout",
            )
        self.ready = True

    async def close_client(self) -> None:
        """Close the gRPC channel (bound to the render's event loop); the process keeps running."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; the sandbox dies with its bwrap. Relay too."""
        for proc in (self.proc, self.relay):
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        if self.relay is not None:
            for stream in (self.relay.stdin, self.relay.stdout, self.relay.stderr):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        if self._info_fd is not None:
            os.close(self._info_fd)
            self._info_fd = None
        if self.relay_dir is not None:
            shutil.rmtree(self.relay_dir, ignore_errors=True)


def sandbox_argv(bwrap: str, prepared: Prepared, port: int, *, own_network: bool = False) -> list[str]:
    """The ``bwrap`` command line that runs ``prepared``'s entrypoint on 127.0.0.1:``port``.

    ``own_network`` adds ``--unshare-net``: the sandbox's 127.0.0.1 is then its own loopback.
    """
    argv = [
        bwrap,
        "--ro-bind", str(prepared.rootfs), "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--clearenv",
    ]  # fmt: skip
    if own_network:
        argv.append("--unshare-net")
    for key, value in prepared.env:
        argv += ["--setenv", key, value]
    argv += [
        "--chdir",
        prepared.workdir or "/",
        "--",
        *prepared.argv,
        "--insecure",
        f"--address=127.0.0.1:{port}",
    ]
    return argv


_own_network_probe: dict[str, str | None] = {}
_probe_lock = threading.Lock()


def own_network_unavailable(bwrap: str) -> str | None:
    """Why sandboxes cannot have a network namespace of their own here, or None when they can.

    Tried once per process: ``bwrap --unshare-user --unshare-net`` running ``true`` (containers may
    forbid new user or network namespaces).
    """
    with _probe_lock:
        if bwrap not in _own_network_probe:
            reason: str | None = None
            probe = [bwrap, "--ro-bind", "/", "/", "--unshare-user", "--unshare-net", "--", "true"]
            try:
                done = subprocess.run(probe, capture_output=True, timeout=10, check=False)
                if done.returncode != 0:
                    reason = (
                        done.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit {done.returncode}"
                    )
            except (OSError, subprocess.TimeoutExpired) as e:
                reason = str(e)
            _own_network_probe[bwrap] = reason
        return _own_network_probe[bwrap]
