"""Python functions, in process: an SDK ``FunctionRunner`` servicer or a plain (async) callable.

A function directory is imported as a package of a unique name (``_xplane_fn_<name>_<hash>_<n>``),
so its relative imports work: ``function/fn.py`` (function-template-python's layout) is the module
``<package>.function.fn`` and its ``from .helpers import x`` finds ``function/helpers.py``. The
package's modules stay in ``sys.modules`` (a call may import lazily) until the function is closed.
The directory is also on ``sys.path`` while the function imports, for ``import helpers``; modules
imported that way are taken out of ``sys.modules`` again. So two functions with a ``helpers.py``
each, or a reload, never see each other's code. A single-file function is a module, not a package.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import itertools
import logging
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from xplane.fn.base import Function, FunctionSpec, fatal_response
from xplane.fn.errors import FunctionLoadError
from xplane.fn.logs import forget_function_package, name_function_package, route_structlog
from xplane.fn.proto import fnv1, grpcv1, grpcv1beta1

log = logging.getLogger(__name__)

_counter = itertools.count(1)
_import_lock = threading.Lock()
_CALLABLE_NAMES = ("run_function", "RunFunction", "run")
#: Threads each function may run synchronous code in at once (a hung call holds one until it returns).
SYNC_WORKERS = 4


class CallContext:
    """A minimal stand-in for ``grpc.aio.ServicerContext`` handed to SDK ``RunFunction(req, context)``."""

    def __init__(self, timeout: float, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self._deadline = time.monotonic() + timeout
        self._metadata = tuple(metadata)

    def time_remaining(self) -> float:
        """Seconds left before the call's deadline."""
        return max(0.0, self._deadline - time.monotonic())

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata (empty when called in process)."""
        return self._metadata

    def peer(self) -> str:
        """The caller; in process."""
        return "local"

    async def abort(self, code: Any, details: str = "") -> None:
        """Abort the call: becomes a FATAL result."""
        raise _Abort(f"{getattr(code, 'name', code)}: {details}")

    def set_code(self, code: Any) -> None:
        """Accepted and ignored."""

    def set_details(self, details: str) -> None:
        """Accepted and ignored."""


class _Abort(Exception):
    pass


def _package_name(spec: FunctionSpec, path: Path) -> str:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() else "_" for c in spec.name)
    return f"_xplane_fn_{safe}_{digest}_{next(_counter)}"


def _under(mod: types.ModuleType, root: Path) -> bool:
    f = getattr(mod, "__file__", None)
    if not f:
        return False
    try:
        return Path(f).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def _mine(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _module_parts(spec: FunctionSpec, target: Path) -> tuple[Path, list[str]] | None:
    """The package root and the entry module's dotted parts below it; ``None`` for a single file.

    The function directory is the package (``function/fn.py`` -> ``["function", "fn"]``). An
    entrypoint whose path has a dot in a directory or module name cannot be a dotted module name:
    then its own directory is the package.
    """
    if not spec.path.is_dir():
        return None
    rel = target.relative_to(spec.path)
    parts = [*rel.parts[:-1], rel.stem] if rel.name != "__init__.py" else list(rel.parts[:-1])
    if any("." in part for part in parts):
        return target.parent, [] if rel.name == "__init__.py" else [rel.stem]
    return spec.path, parts


def _install_package(package: str, root: Path) -> types.ModuleType:
    """Put the package ``package`` for directory ``root`` in ``sys.modules``, running its ``__init__.py``."""
    init = root / "__init__.py"
    mspec: importlib.machinery.ModuleSpec | None
    if init.is_file():
        mspec = importlib.util.spec_from_file_location(
            package, init, submodule_search_locations=[str(root.resolve())]
        )
        if mspec is None or mspec.loader is None:
            raise FunctionLoadError(f"cannot import {init}", path=init)
    else:  # a namespace package: the directory without code of its own
        mspec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        mspec.submodule_search_locations = [str(root.resolve())]
    module = importlib.util.module_from_spec(mspec)
    sys.modules[package] = module
    if mspec.loader is not None and init.is_file():
        mspec.loader.exec_module(module)
    return module


def _import_single_file(name: str, target: Path) -> types.ModuleType:
    mspec = importlib.util.spec_from_file_location(name, target)
    if mspec is None or mspec.loader is None:
        raise FunctionLoadError(f"cannot import {target}", path=target)
    module = importlib.util.module_from_spec(mspec)
    sys.modules[name] = module
    mspec.loader.exec_module(module)
    return module


def import_function_module(spec: FunctionSpec) -> types.ModuleType:
    """Import the function's module, inside a package of a unique name. Raises FunctionLoadError.

    The package is the first part of the module's name; :func:`forget_function_modules` takes its
    modules out of ``sys.modules``.
    """
    entry = (spec.entrypoint or "").split(":", 1)[0] or None
    target = spec.directory / entry if entry else spec.path
    if target.is_dir():
        target = target / "__init__.py"
    if not target.is_file():
        raise FunctionLoadError(f"entrypoint {target} does not exist", path=spec.path, field="entrypoint")
    layout = _module_parts(spec, target)
    owned = spec.directory.resolve()
    roots = list(dict.fromkeys([str(target.parent.resolve()), str(owned)]))
    package = _package_name(spec, target)
    with _import_lock:
        importlib.invalidate_caches()  # files added since the last load (a reload) must be found
        before = set(sys.modules)
        sys.path[0:0] = roots
        try:
            if layout is None:
                module = _import_single_file(package, target)
            else:
                root, parts = layout
                module = _install_package(package, root)
                if parts:
                    module = importlib.import_module(".".join([package, *parts]))
        except BaseException as e:
            for added in set(sys.modules) - before:
                if _mine(added, package):
                    del sys.modules[added]
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            hint = "".join(tb[-3:]).strip()[-1500:]
            if layout is None and isinstance(e, ImportError) and "no known parent package" in str(e):
                hint += "\na single-file function is a module, not a package: put it in a directory to import relatively"
            raise FunctionLoadError(
                f"importing failed: {type(e).__name__}: {e}", path=target, hint=hint
            ) from (e if isinstance(e, Exception) else None)
        finally:
            for r in roots:
                with contextlib.suppress(ValueError):
                    sys.path.remove(r)
            # Modules the function imported absolutely from its own directory (``import helpers``)
            # stay reachable through it, but leave the global table so another function (or this
            # one, reloaded) imports its own copies.
            for added in set(sys.modules) - before:
                mod = sys.modules.get(added)
                if not _mine(added, package) and mod is not None and _under(mod, owned):
                    del sys.modules[added]
    name_function_package(package, spec.name)
    return module


def forget_function_modules(module: types.ModuleType) -> None:
    """Take the modules of the function whose module is ``module`` out of ``sys.modules``."""
    package = module.__name__.split(".", 1)[0]  # every module of a function is inside its package
    with _import_lock:
        for name in [n for n in sys.modules if _mine(n, package)]:
            del sys.modules[name]
    forget_function_package(package)


def _find_target(module: types.ModuleType, spec: FunctionSpec) -> tuple[str, Any]:
    wanted = spec.options.get("object")
    if spec.entrypoint and ":" in spec.entrypoint:
        wanted = spec.entrypoint.split(":", 1)[1]
    if wanted:
        if not hasattr(module, wanted):
            raise FunctionLoadError(
                f"{module.__file__} has no attribute {wanted!r}", path=spec.path, field="object"
            )
        return wanted, getattr(module, wanted)
    if hasattr(module, "FunctionRunner"):
        return "FunctionRunner", module.FunctionRunner
    bases = (grpcv1.FunctionRunnerServiceServicer, grpcv1beta1.FunctionRunnerServiceServicer)
    servicers = [
        (n, v)
        for n, v in vars(module).items()
        if isinstance(v, type) and issubclass(v, bases) and v not in bases and v.__module__ == module.__name__
    ]
    if len(servicers) == 1:
        return servicers[0]
    for n in _CALLABLE_NAMES:
        if callable(getattr(module, n, None)):
            return n, getattr(module, n)
    raise FunctionLoadError(
        "no function found: define class FunctionRunner (an SDK FunctionRunnerServiceServicer) "
        f"or a callable named one of {', '.join(_CALLABLE_NAMES)}",
        path=module.__file__ or spec.path,
        hint="or name the object with 'object:' in function.yaml or 'entrypoint: fn.py:my_function'",
    )


def _fatal(req: fnv1.RunFunctionRequest, tag: str, message: str) -> fnv1.RunFunctionResponse:
    rsp = fatal_response(req, message)
    rsp.meta.tag = tag
    return rsp


class PythonFunction(Function):
    """An in-process Python function."""

    #: The kind answers FATAL at the call's timeout itself (``Function.call`` adds no deadline).
    enforces_timeout = True

    def __init__(self, spec: FunctionSpec) -> None:
        super().__init__(spec)
        self.module = import_function_module(spec)
        try:
            self._init_target(spec)
        except BaseException:
            forget_function_modules(self.module)
            raise

    def _init_target(self, spec: FunctionSpec) -> None:
        attr, target = _find_target(self.module, spec)
        self._servicer_style = False
        if isinstance(target, type):
            try:
                target = target()
            except Exception as e:
                raise FunctionLoadError(
                    f"creating {attr}() failed: {type(e).__name__}: {e}", path=self.module.__file__
                ) from e
        method = getattr(target, "RunFunction", None)
        if method is not None and callable(method):
            self._call: Callable[..., Any] = method
            self._servicer_style = True
        elif callable(target):
            self._call = target
        else:
            raise FunctionLoadError(f"{attr} is not callable", path=self.module.__file__)
        self._is_async = inspect.iscoroutinefunction(self._call) or inspect.iscoroutinefunction(
            getattr(self._call, "__call__", None)  # noqa: B004 - async __call__ objects
        )
        self._slots = threading.BoundedSemaphore(SYNC_WORKERS)
        self.object_name = attr
        # The SDK logs through structlog, which the function imported (and may have configured).
        route_structlog(reason=f"function {spec.name!r}")

    async def close(self) -> None:
        """Take the function's modules out of ``sys.modules`` (its threads are daemons)."""
        forget_function_modules(self.module)

    @property
    def is_async(self) -> bool:
        """Whether calls run on the event loop (``async``) rather than in the function's threads."""
        return self._is_async

    async def _in_thread(self, args: tuple[Any, ...]) -> Any:
        # Daemon threads, not a ThreadPoolExecutor: the interpreter joins executor threads at exit, so
        # one hung synchronous function would keep the runner from ever shutting down.
        while not self._slots.acquire(blocking=False):
            await asyncio.sleep(0.005)  # all slots held by running (maybe hung) calls; the timeout applies
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def deliver(result: Any, error: BaseException | None) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

        def work() -> None:
            try:
                result, error = self._call(*args), None
            except BaseException as e:
                result, error = None, e
            finally:
                self._slots.release()
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(deliver, result, error)

        threading.Thread(target=work, name=f"fn-{self.name}", daemon=True).start()
        return await fut

    async def _invoke(self, req: fnv1.RunFunctionRequest, timeout: float) -> Any:
        args: tuple[Any, ...] = (req, CallContext(timeout)) if self._servicer_style else (req,)
        result = await self._in_thread(args)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Call the function with its own copy of the request; exceptions and timeouts become FATAL."""
        own = fnv1.RunFunctionRequest()
        own.CopyFrom(req)
        return await self.run_owned(own, timeout=timeout)

    async def run_owned(
        self, req: fnv1.RunFunctionRequest, *, timeout: float, timer: bool = True
    ) -> fnv1.RunFunctionResponse:
        """Like :meth:`run` for a request made for this call alone: the function may change it.

        The gRPC server parses a fresh request per call, so it skips the copy (as the SDK does).
        ``timer=False`` when the transport itself cancels the call at ``timeout`` (the caller's
        gRPC deadline): the answer is then the caller's DEADLINE_EXCEEDED, as from the SDK's server.
        """
        tag = req.meta.tag  # read before the call: the function may change ``req``
        try:
            # Async functions are awaited right here: each extra coroutine layer costs on every call.
            if self._is_async:
                call = self._call(req, CallContext(timeout)) if self._servicer_style else self._call(req)
            else:
                call = self._invoke(req, timeout)
            if timer:
                async with asyncio.timeout(timeout):
                    result = await call
            else:
                result = await call
        except TimeoutError:
            return _fatal(req, tag, f"function {self.name!r} timed out after {timeout:g}s")
        except _Abort as e:
            return _fatal(req, tag, f"function {self.name!r} aborted the call: {e}")
        except Exception as e:
            log.info("function raised", extra={"fields": {"function": self.name}}, exc_info=True)
            return _fatal(req, tag, f"function {self.name!r} raised {type(e).__name__}: {e}")
        rsp = self._coerce(req, result)
        if not rsp.meta.tag:
            rsp.meta.tag = tag
        return rsp

    def _coerce(self, req: fnv1.RunFunctionRequest, result: Any) -> fnv1.RunFunctionResponse:
        if isinstance(result, fnv1.RunFunctionResponse):
            return result
        if isinstance(result, Message) and result.DESCRIPTOR.name == "RunFunctionResponse":
            out = fnv1.RunFunctionResponse()
            out.ParseFromString(result.SerializeToString())  # e.g. a v1beta1 response
            return out
        return fatal_response(
            req, f"function {self.name!r} returned {type(result).__name__}, not a RunFunctionResponse"
        )
