"""Where a pipeline's functions run: the runtime interface and xplane's runtimes.

A :class:`Runtime` answers ``RunFunctionRequest`` s for one Function object. ``InProcess`` wraps an
``xplane.fn`` function loaded from a functions directory (python incl. SDK-written, exec, Wasm,
remote); ``Development`` calls an already-running gRPC server; ``Package`` runs the Function's
package image in a bubblewrap sandbox (:mod:`xplane.compose.packagerun`). Which one a Function gets follows
the ``render.crossplane.io/runtime`` annotation (docs/render.md).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.compose.errors import ComposeError, q

if TYPE_CHECKING:
    from xplane.compose.packagerun import PackageRunner, PackageSpec
    from xplane.compose.sandbox import FunctionProcess, Prepared
    from xplane.fn import Function, FunctionClient, fnv1

RUNTIME_ANNOTATION = "render.crossplane.io/runtime"
TARGET_ANNOTATION = "render.crossplane.io/runtime-development-target"
DEFAULT_TARGET = "localhost:9443"
#: xplane's own annotation: the step timeout of every step calling this Function (docs/render.md).
STEP_TIMEOUT_ANNOTATION = "render.xplane.io/step-timeout"


class Runtime(abc.ABC):
    """One Function's way of answering requests."""

    name: str
    #: Whether :meth:`run` answers (or fails) by its ``timeout`` itself; otherwise the pipeline
    #: stops waiting a little past it.
    enforces_deadline: bool = False

    @abc.abstractmethod
    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Answer one request within ``timeout`` seconds; raise :class:`ComposeError` on transport failure.

        ``req`` is the runtime's own: the pipeline builds one per call and never reads it again.
        """

    async def start(self, *, timeout: float) -> None:  # noqa: B027 (a default hook)
        """Be ready to answer within ``timeout`` seconds (start a process); before each step's calls."""

    async def close(self) -> None:  # noqa: B027 (a default hook)
        """Release what the runtime holds (idempotent)."""

    def describe(self) -> str:
        """A short human description for error messages."""
        return self.name


class InProcess(Runtime):
    """A function loaded by ``xplane.fn`` and called in this process, no server."""

    enforces_deadline = True  # Function.call: the kind answers FATAL at the deadline, or xfn does

    def __init__(self, name: str, function: Function) -> None:
        self.name = name
        self.function = function

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        # the request is ours to give (made for this call): no copy, as xfn's gRPC server does
        return await self.function.call(req, timeout=timeout, owned=True)

    async def close(self) -> None:
        await self.function.close()

    def describe(self) -> str:
        return f"{self.name} ({self.function.spec.kind} function at {self.function.spec.path})"


class Development(Runtime):
    """An already-running function server (``--insecure``); nothing is started or stopped."""

    enforces_deadline = True  # the gRPC call's deadline

    def __init__(self, name: str, target: str) -> None:
        from xplane.fn import FunctionClient

        self.name = name
        self.target = target
        self.client: FunctionClient = FunctionClient(target)

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        from xplane.fn import FunctionError

        try:
            return await self.client.run(req, timeout=timeout)
        except FunctionError as e:
            raise ComposeError(
                f"cannot call function {self.name} at {self.target}: {e.message}", hint=e.hint
            ) from None

    async def close(self) -> None:
        await self.client.close()

    def describe(self) -> str:
        return f"{self.name} (Development runtime at {self.target})"


class Package(Runtime):
    """A Function run from its package image in a bubblewrap sandbox (started on first use)."""

    enforces_deadline = True  # readiness and the gRPC call are bounded by the deadline

    def __init__(self, name: str, runner: PackageRunner, spec: PackageSpec, prepared: Prepared) -> None:
        self.name = name
        self.runner = runner
        self.spec = spec
        self.prepared = prepared
        self.process: FunctionProcess | None = None

    async def _started(self, deadline: float) -> FunctionProcess:
        import time

        if self.process is None:
            self.process = self.runner.process(self.spec, self.prepared)
        proc = self.process
        try:
            await proc.wait_ready(max(0.001, deadline - time.monotonic()))
        except BaseException:
            self.process = None
            await proc.close_client()
            self.runner.discard(proc)
            raise
        return proc

    async def start(self, *, timeout: float) -> None:
        """Start the function's process (first use) and wait until it serves: the render's time."""
        import time

        await self._started(time.monotonic() + timeout)

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        import time

        from xplane.fn import FunctionError

        deadline = time.monotonic() + timeout
        proc = await self._started(deadline)
        try:
            return await proc.client.run(req, timeout=max(0.001, deadline - time.monotonic()))
        except FunctionError as e:
            if proc.exit_code() is not None:  # it died: a warm runner must not hand it out again
                self.runner.discard(proc)
            raise ComposeError(
                f"cannot call function {self.name} ({self.spec.image}) at {proc.address}: {e.message}"
                f"{proc.describe_failure()}",
                hint=e.hint,
            ) from None

    async def close(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            await proc.close_client()
            self.runner.release(self.spec, proc)

    def describe(self) -> str:
        return f"{self.name} (package {self.spec.image}, sandboxed)"


def function_annotations(fn_obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The Function object's annotations (empty when it has none)."""
    meta = fn_obj.get("metadata") or {}
    return meta.get("annotations") or {}


def function_timeouts(functions: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Step timeouts (seconds) from the Functions' ``render.xplane.io/step-timeout`` annotations, by name.

    A value is a duration (``30s``, ``1m30s``, ``500ms``) or seconds (``2.5``); one that does not
    parse, or is not positive, is an error naming the Function.
    """
    out: dict[str, float] = {}
    for obj in functions:
        raw = function_annotations(obj).get(STEP_TIMEOUT_ANNOTATION)
        if raw is None:
            continue
        from xplane.errors import XplaneError  # here: most renders have no such annotation
        from xplane.fn import parse_duration

        name = str((obj.get("metadata") or {}).get("name", ""))
        where = f"Function {q(name)}: annotation {q(STEP_TIMEOUT_ANNOTATION)}"
        try:
            value = parse_duration(raw, where)
        except XplaneError as e:
            raise ComposeError(str(e.message), hint="use a duration such as 30s, 1m or 500ms") from None
        if value <= 0:
            raise ComposeError(f"{where}: {str(raw)!r} must be positive")
        out[name] = value
    return out


def declared_timeouts(runtimes: Mapping[str, Runtime]) -> dict[str, float]:
    """Step timeouts (seconds) the in-process functions declare in their ``function.yaml`` (``timeout:``)."""
    out: dict[str, float] = {}
    for name, rt in runtimes.items():
        if isinstance(rt, InProcess) and rt.function.spec.timeout:
            out[name] = float(rt.function.spec.timeout)
    return out


def open_runtimes(
    functions: list[Mapping[str, Any]],
    *,
    functions_dir: Path | None = None,
    packages: PackageRunner | None = None,
) -> dict[str, Runtime]:
    """One runtime per Function object, keyed by ``metadata.name``.

    ``Development`` (annotation) dials the target; xplane's ``InProcess`` loads the function of the
    same name from ``functions_dir`` with ``xplane.fn``. ``Docker`` (the default) does the same
    when ``functions_dir`` holds a function of that name, and otherwise, given ``packages``, runs
    the Function's package (pulled and unpacked here; started on first call). With neither, a
    Docker Function cannot run here: that is an error naming it.
    """
    out: dict[str, Runtime] = {}
    try:
        for obj in functions:
            name = str((obj.get("metadata") or {}).get("name", ""))
            ann = function_annotations(obj)
            kind = ann.get(RUNTIME_ANNOTATION, "") or "Docker"
            if kind == "Development":
                out[name] = Development(name, ann.get(TARGET_ANNOTATION) or DEFAULT_TARGET)
            elif kind == "Docker" and packages is not None:
                out[name] = _in_process_or_package(name, obj, ann, functions_dir, packages)
            elif kind in ("Docker", "InProcess"):
                out[name] = _in_process(name, functions_dir)
            else:
                raise ComposeError(
                    f"unsupported {q(RUNTIME_ANNOTATION)} annotation value {q(kind)} (unknown runtime)"
                )
    except BaseException:
        for rt in out.values():
            _close_now(rt)
        raise
    return out


def _in_process(name: str, functions_dir: Path | None) -> Runtime:
    from xplane.fn import FunctionError, load_named

    if functions_dir is None:
        raise ComposeError(
            f"cannot run Function {q(name)}: it uses the Docker runtime and xplane runs no containers",
            hint="give --functions-dir DIR holding a function of that name, or annotate the Function "
            f"with {RUNTIME_ANNOTATION}: Development",
        )
    try:
        return InProcess(name, load_named(functions_dir, name))
    except FunctionError as e:
        raise ComposeError(
            f"cannot load Function {q(name)} from {functions_dir}: {e.message}", hint=e.hint
        ) from None


def _in_process_or_package(
    name: str,
    obj: Mapping[str, Any],
    ann: Mapping[str, str],
    functions_dir: Path | None,
    packages: PackageRunner,
) -> Runtime:
    from xplane.compose.packagerun import package_spec
    from xplane.fn import FunctionError, FunctionNotFoundError, load_named

    if functions_dir is not None:
        try:
            return InProcess(name, load_named(functions_dir, name))
        except FunctionNotFoundError:
            pass  # not there: its package runs instead
        except FunctionError as e:
            raise ComposeError(
                f"cannot load Function {q(name)} from {functions_dir}: {e.message}", hint=e.hint
            ) from None
    spec = package_spec(name, obj, ann)
    return Package(name, packages, spec, packages.prepare(spec))


def _close_now(rt: Runtime) -> None:
    import asyncio
    import contextlib

    with contextlib.suppress(Exception):  # closing after another error: that error is the one to report
        asyncio.run(rt.close())
