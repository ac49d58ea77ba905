"""Running a Function from its package, without Docker: pull, unpack, start under bubblewrap (docs/render.md).

:class:`PackageRunner` pulls the Function's package (``spec.package``, or the
``render.crossplane.io/runtime-docker-image`` annotation's image) through xplane's cache and
registry client, unpacks its layers into a content-addressed rootfs (:mod:`xplane.compose.rootfs`)
and starts :class:`FunctionProcess` es: the image's Entrypoint plus ``--insecure`` and
``--address=127.0.0.1:PORT`` in a ``bwrap`` sandbox (read-only rootfs as ``/``, private ``/tmp``,
``/proc`` and ``/dev``; new user, PID, IPC, UTS and cgroup namespaces; no capabilities; killed with
xplane). The sandbox keeps the host's network namespace: the host must reach the function's port,
and a ``--unshare-net`` namespace has a loopback of its own that the host cannot reach; the
function listens on 127.0.0.1 only.

Readiness is a gRPC connect (HTTP/2 handshake) bounded by the caller's deadline, raced against the
process's exit (a pidfd): never a sleep. stderr is kept in a bounded ring for error messages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.compose.errors import ComposeError, q
from xplane.compose.rootfs import RootfsLimits, ensure_rootfs, rootfs_path

if TYPE_CHECKING:
    from xplane.fn import FunctionClient
    from xplane.oci import RegistryClient

IMAGE_ANNOTATION = "render.crossplane.io/runtime-docker-image"
PULL_POLICY_ANNOTATION = "render.crossplane.io/runtime-docker-pull-policy"
ENV_ANNOTATION = "render.crossplane.io/runtime-docker-env"
CLEANUP_ANNOTATION = "render.crossplane.io/runtime-docker-cleanup"
PULL_POLICIES = ("Always", "Never", "IfNotPresent")
CLEANUPS = ("Remove", "Stop", "Orphan")
BWRAP = "/usr/bin/bwrap"
STDERR_TAIL_BYTES = 4096
STOP_GRACE_S = 2.0
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class PackageSpec:
    """How to run one Function from its package, from the Function object and its annotations."""

    name: str
    image: str
    pull_policy: str = "IfNotPresent"
    env: tuple[tuple[str, str], ...] = ()
    cleanup: str = "Remove"


def package_spec(name: str, fn_obj: Mapping[str, Any], annotations: Mapping[str, str]) -> PackageSpec:
    """The :class:`PackageSpec` of a Function object; raises ComposeError naming a bad annotation."""
    image = annotations.get(IMAGE_ANNOTATION) or str((fn_obj.get("spec") or {}).get("package") or "")
    if not image:
        raise ComposeError(
            f"cannot run Function {q(name)}: it has no spec.package and no {q(IMAGE_ANNOTATION)} annotation",
            hint="give the Function a spec.package, or --functions-dir DIR holding a function of that name",
        )
    policy = annotations.get(PULL_POLICY_ANNOTATION) or "IfNotPresent"
    if policy not in PULL_POLICIES:
        raise ComposeError(
            f"unsupported {q(PULL_POLICY_ANNOTATION)} annotation value {q(policy)} (unknown pull policy)"
        )
    cleanup = annotations.get(CLEANUP_ANNOTATION) or "Remove"
    if cleanup not in CLEANUPS:
        raise ComposeError(
            f"unsupported {q(CLEANUP_ANNOTATION)} annotation value {q(cleanup)} (unknown cleanup policy)"
        )
    env = []
    for item in (annotations.get(ENV_ANNOTATION) or "").split(","):
        key, eq, value = item.partition("=")
        if eq and key.strip():  # entries without "=" are ignored, as upstream
            env.append((key.strip(), value))
    return PackageSpec(name, image, policy, tuple(env), cleanup)


@dataclass(frozen=True)
class Prepared:
    """A pulled and unpacked function image."""

    image: str
    rootfs: Path
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str
    unpacked: bool  # False when an earlier unpack was reused


def _image_env(config: Mapping[str, Any], extra: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, eq, value = str(item).partition("=")
        if eq:
            env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(dict(extra))
    return tuple(env.items())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FunctionProcess:
    """One sandboxed function server on 127.0.0.1:``port``, with the tail of its stderr."""

    def __init__(self, name: str, image: str, argv: Sequence[str], port: int) -> None:
        self.name = name
        self.image = image
        self.argv = list(argv)
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_bytes = 0
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self._client: FunctionClient | None = None

    def start(self) -> None:
        """Start the sandbox (returns at once; see :meth:`wait_ready`)."""
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as e:
            raise ComposeError(f"cannot start function {self.name} ({self.image}): {e.strerror or e}") from e
        threading.Thread(target=self._drain, name=f"stderr-{self.name}", daemon=True).start()

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        with contextlib.suppress(OSError, ValueError):
            while chunk := os.read(fd, 4096):
                with self._lock:
                    self._tail.append(chunk)
                    self._tail_bytes += len(chunk)
                    while self._tail_bytes > STDERR_TAIL_BYTES and len(self._tail) > 1:
                        self._tail_bytes -= len(self._tail.popleft())
        with contextlib.suppress(OSError):
            self.proc.stderr.close()

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

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the server accepts an HTTP/2 connection, it exits, or ``timeout`` passes."""
        import grpc

        if self.ready:
            return
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        pidfd = os.pidfd_open(self.proc.pid)

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, on_exit)
        options = [("grpc.initial_reconnect_backoff_ms", 20), ("grpc.max_reconnect_backoff_ms", 100)]
        channel = grpc.aio.insecure_channel(self.address, options=options)
        ready = asyncio.ensure_future(channel.channel_ready())
        try:
            done, _ = await asyncio.wait(
                {ready, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            ready.cancel()
            await channel.close()
        if exited in done or self.exit_code() is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(1.0)
            raise ComposeError(
                f"function {self.name} ({self.image}) stopped before it served{self.describe_failure()}"
            )
        if ready not in done:
            raise ComposeError(
                f"function {self.name} ({self.image}) did not accept connections on {self.address} within "
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
        """SIGTERM, then SIGKILL after a grace period; the sandbox dies with its bwrap."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def sandbox_argv(bwrap: str, prepared: Prepared, port: int) -> list[str]:
    """The ``bwrap`` command line that runs ``prepared``'s entrypoint on 127.0.0.1:``port``."""
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


class PackageRunner:
    """Pulls, unpacks and starts package functions; holds warm processes (``keep_warm``, Orphan).

    ``client_factory`` makes the registry client when a pull must contact a registry (the CLI's,
    with every credential source and per-registry TLS). ``close()`` stops every process it holds.
    """

    def __init__(
        self,
        *,
        cache_root: Path | None = None,
        client_factory: Callable[[], RegistryClient] | None = None,
        keep_warm: bool = False,
        bwrap: str | None = None,
        limits: RootfsLimits | None = None,
    ) -> None:
        self.cache_root = cache_root
        self.client_factory = client_factory
        self.keep_warm = keep_warm
        self.bwrap = bwrap
        self.limits = limits
        self._warm: dict[tuple[object, ...], FunctionProcess] = {}
        self._lock = threading.Lock()

    def _bwrap(self, name: str) -> str:
        found = self.bwrap or shutil.which("bwrap") or (BWRAP if os.path.exists(BWRAP) else None)
        if not found:
            raise ComposeError(
                f"cannot run Function {q(name)} from its package: bubblewrap (bwrap) is not installed",
                hint="apt-get install bubblewrap (scripts/setup.sh does), or give --functions-dir",
            )
        return found

    def prepare(self, spec: PackageSpec) -> Prepared:
        """Pull ``spec.image`` under its pull policy and unpack it (both reused when cached)."""
        from xplane.oci import ImageCache, OCIError, pull

        cache = ImageCache(self.cache_root)
        try:
            image = pull(spec.image, policy=spec.pull_policy, cache=cache, client_factory=self.client_factory)
        except OCIError as e:
            hint = f"{e.hint}; " if e.hint else ""
            raise ComposeError(
                f"cannot run Function {q(spec.name)} from its package {spec.image}: cannot pull it: {e.message}",
                hint=f"{hint}or give --functions-dir DIR holding a function of that name",
            ) from None
        config = image.config.get("config") or {}
        entrypoint = [str(a) for a in config.get("Entrypoint") or []]
        argv = entrypoint or [str(a) for a in config.get("Cmd") or []]
        if not argv:
            raise ComposeError(
                f"cannot run Function {q(spec.name)}: its image {spec.image} has no Entrypoint or Cmd",
                hint="was the package built with an embedded runtime image (--embed-runtime-image)?",
            )
        digest = image.config_descriptor.digest if image.config_descriptor else image.manifest_digest
        layers = [image.layer_path(i) for i in range(len(image.layers))]
        rootfs, unpacked = ensure_rootfs(
            layers, rootfs_path(cache.root, str(digest)), label=spec.image, limits=self.limits
        )
        return Prepared(
            spec.image,
            rootfs,
            tuple(argv),
            _image_env(config, spec.env),
            str(config.get("WorkingDir") or "/"),
            unpacked,
        )

    def process(self, spec: PackageSpec, prepared: Prepared) -> FunctionProcess:
        """A running (maybe warm) process for ``prepared``; started here, not yet known ready."""
        key = (prepared.rootfs, prepared.argv, prepared.env, prepared.workdir)
        with self._lock:
            warm = self._warm.get(key)
            if warm is not None and warm.exit_code() is None:
                return warm
            port = _free_port()
            proc = FunctionProcess(
                spec.name, spec.image, sandbox_argv(self._bwrap(spec.name), prepared, port), port
            )
            proc.start()
            if self.keep_warm or spec.cleanup == "Orphan":
                self._warm[key] = proc
            return proc

    def discard(self, proc: FunctionProcess) -> None:
        """Stop ``proc`` and forget it, warm or not (it failed: the next render starts a new one)."""
        with self._lock:
            self._warm = {k: p for k, p in self._warm.items() if p is not proc}
        proc.stop()

    def release(self, spec: PackageSpec, proc: FunctionProcess) -> None:
        """The render is done with ``proc``: stop it unless it is kept warm."""
        with self._lock:
            if proc in self._warm.values():
                return
        proc.stop()

    def close(self) -> None:
        """Stop every process this runner keeps."""
        with self._lock:
            procs, self._warm = list(self._warm.values()), {}
        for proc in procs:
            proc.stop()

    def __enter__(self) -> PackageRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
