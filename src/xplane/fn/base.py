"""The function seam: :class:`FunctionSpec`, the :class:`Function` every kind implements, FATAL helpers.

A kind turns every failure of the function itself (raise, crash, non-zero exit, garbage output,
timeout, memory) into a response carrying one FATAL result; only bugs in xplane raise.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, final

from xplane.fn.proto import fnv1

#: Kinds a function can be.
KINDS = ("python", "exec", "wasm", "remote")

#: Longest message a FATAL result carries (stderr, exception text) before it is trimmed.
MAX_MESSAGE_CHARS = 4096
#: Extra time a function gets over its deadline before the runner answers FATAL on its behalf.
DEADLINE_GRACE = 1.0


@dataclass(frozen=True)
class FunctionSpec:
    """A parsed ``function.yaml``, or what the loader inferred from the files by convention.

    ``limits`` uses normalised keys: ``memory`` (bytes), ``fuel`` (wasm instructions),
    ``output_bytes`` (cap on stdout and on stderr). ``options`` holds kind-specific settings
    (``sandbox``, ``args``, ``network``, ``preopen``, ``remote``, ``object``, ``version``).
    """

    name: str
    kind: str
    path: Path
    entrypoint: str | None = None
    protocol: str | None = None
    timeout: float | None = None
    limits: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        """The directory relative entrypoints resolve against."""
        return self.path if self.path.is_dir() else self.path.parent

    def entrypoint_path(self) -> Path:
        """The entrypoint file (``path`` itself when the function is a single file)."""
        if self.entrypoint is None:
            return self.path
        return self.directory / self.entrypoint


class Function(abc.ABC):
    """A loaded function of one kind: the whole interface a kind implements, with its defaults.

    The hooks, in the order a function's life uses them (all but :meth:`__init__` run on the event
    loop, so none may block it):

    - ``__init__(spec)`` (required): load the function, once, in the loader's worker thread; may
      block (import, compile, start a worker). Raise :class:`~xplane.fn.errors.FunctionLoadError`.
    - :meth:`run` (required): one call whose request the caller keeps.
    - :attr:`enforces_timeout` (default ``False``): which of the two call paths the kind takes (see
      :meth:`call`). Read on every call; a class attribute, so a kind's class says its path.
    - :meth:`run_owned` (default: :meth:`run`): one call whose request is the function's alone.
    - :meth:`status` (default: nothing): extra ``GET /functions`` fields.
    - :meth:`close` (default: nothing): release what the function holds.

    Callers do not choose among :meth:`run` and :meth:`run_owned` or set deadlines themselves:
    :meth:`call` does, so the runner's gRPC and HTTP servers, ``xfn run`` and an in-process render
    all take the same path with no server around (``load_function(path).call(req, timeout=5)``).
    """

    spec: FunctionSpec

    #: ``False`` (the default; exec, wasm, remote): :meth:`call` runs the function under a deadline of
    #: ``timeout`` + :data:`DEADLINE_GRACE` and, when that passes, cancels the call and answers FATAL on
    #: the function's behalf; the kind should still stop its own work at ``timeout``, which is what
    #: the message of a well-behaved kind then says. ``True`` (python in-process and in a worker):
    #: the kind answers FATAL at ``timeout`` itself, so :meth:`call` adds no deadline of its own, and
    #: :meth:`run_owned` must honour ``timer``.
    enforces_timeout: ClassVar[bool] = False

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        # Hashed at load time: the version of the code that was loaded, even if files change later.
        self._version: str | None = spec.options.get("version") or content_hash(spec.path)

    @property
    def name(self) -> str:
        """The function's name (routing key)."""
        return self.spec.name

    @property
    def version(self) -> str | None:
        """The declared ``version`` from function.yaml, else a short hash of the function's files.

        Worked out once at load; read by ``/functions`` and on every reload (cheap).
        """
        return self._version

    @abc.abstractmethod
    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Run one request within ``timeout`` seconds; function failures come back as FATAL results.

        Called concurrently, once per call, on the event loop. ``req`` stays the caller's: a kind
        that hands it to code that may change it copies it first. Every failure of the function
        (raise, crash, exit code, garbage output, timeout, memory) is a response with one FATAL
        result (:func:`fatal_response`); an exception means a bug in xplane.
        """

    async def run_owned(
        self, req: fnv1.RunFunctionRequest, *, timeout: float, timer: bool = True
    ) -> fnv1.RunFunctionResponse:
        """Like :meth:`run` for a request made for this call alone: the function may change it.

        Called instead of :meth:`run` when the transport parsed ``req`` for this call (gRPC, HTTP),
        so a kind that would copy the request in :meth:`run` overrides this to skip the copy (as
        the SDK's own server does). ``timer=False`` (only for kinds that :attr:`enforces_timeout`):
        the caller cancels the call at ``timeout`` itself (its gRPC deadline), so the kind need not
        start a timer of its own. The default calls :meth:`run`.
        """
        return await self.run(req, timeout=timeout)

    @final
    def call(
        self,
        req: fnv1.RunFunctionRequest,
        *,
        timeout: float,
        owned: bool = False,
        timer: bool = True,
        on_overrun: Callable[[], None] | None = None,
    ) -> Awaitable[fnv1.RunFunctionResponse]:
        """Run one call on the path :attr:`enforces_timeout` picks; every caller of a function uses this.

        ``owned``: ``req`` was made for this call alone (:meth:`run_owned` gets it), else
        :meth:`run` does. A kind that enforces its timeout gets that call as it is; any other kind
        gets it under a deadline of ``timeout`` + :data:`DEADLINE_GRACE`, past which the call is
        cancelled and answered FATAL (``on_overrun`` is called first, e.g. to count a timeout).
        Not a coroutine function: on the first path the awaitable is the kind's own coroutine, so
        the call costs no frame of its own.
        """
        if owned:
            running = self.run_owned(req, timeout=timeout, timer=timer)
        else:
            running = self.run(req, timeout=timeout)
        if self.enforces_timeout:
            return running
        return _within_grace(self.name, running, req, timeout, on_overrun)

    def status(self) -> Mapping[str, Any]:
        """Kind-specific fields ``GET /functions`` adds for this function (e.g. its worker process).

        Called on the event loop for every ``GET /functions``: answer from what is at hand, with no
        I/O. The default adds nothing.
        """
        return {}

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the function holds (processes, channels, threads, modules). Idempotent.

        Called once the function is retired (replaced, removed, or the runner stops) and its last
        in-flight call has finished. The default holds nothing.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.name!r} kind={self.spec.kind} path={self.spec.path}>"


async def _within_grace(
    name: str,
    running: Awaitable[fnv1.RunFunctionResponse],
    req: fnv1.RunFunctionRequest,
    timeout: float,
    on_overrun: Callable[[], None] | None,
) -> fnv1.RunFunctionResponse:
    """``running``, cancelled and answered FATAL if it outlives ``timeout`` by :data:`DEADLINE_GRACE`."""
    try:
        async with asyncio.timeout(timeout + DEADLINE_GRACE):
            return await running
    except TimeoutError:
        if on_overrun is not None:
            on_overrun()
        return fatal_response(req, f"function {name!r} did not answer within {timeout:g}s")


def trim(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Strip ``text`` and keep at most ``limit`` characters (the tail, where errors usually are)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3) :]


def fatal_response(req: fnv1.RunFunctionRequest, message: str) -> fnv1.RunFunctionResponse:
    """A response with the request's tag and one FATAL result; desired and context pass through."""
    rsp = fnv1.RunFunctionResponse()
    rsp.meta.tag = req.meta.tag
    rsp.desired.CopyFrom(req.desired)
    if req.HasField("context"):
        rsp.context.CopyFrom(req.context)
    rsp.results.add(severity=fnv1.SEVERITY_FATAL, message=trim(message))
    return rsp


def ensure_tag(req: fnv1.RunFunctionRequest, rsp: fnv1.RunFunctionResponse) -> fnv1.RunFunctionResponse:
    """Fill ``meta.tag`` from the request when a function left it empty."""
    if not rsp.meta.tag:
        rsp.meta.tag = req.meta.tag
    return rsp


#: Directories that are caches or tooling, never part of a function (not hashed, not watched).
SKIP_DIRS = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache"})


def content_hash(path: Path) -> str:
    """A short sha256 over a file, or over a directory's file names and contents (sorted)."""
    h = hashlib.sha256()
    try:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                for f in sorted(files):
                    p = Path(root) / f
                    h.update(str(p.relative_to(path)).encode() + b"\0")
                    with p.open("rb") as fh:
                        while chunk := fh.read(1 << 16):
                            h.update(chunk)
        else:
            h.update(path.read_bytes())
    except OSError:
        return "unknown"
    return h.hexdigest()[:12]
