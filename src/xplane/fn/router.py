"""Which loaded function a call goes to, and the one code path every call takes (gRPC and HTTP).

Routing rules, in order:

1. Exactly one function loaded: every call goes to it.
2. The caller named one: metadata key ``x-xplane-function`` (HTTP: the ``{name}`` in the path).
3. The first DNS label of the ``:authority`` host (in a cluster, the Service named after the
   Function: ``function-foo.crossplane-system:9443`` -> ``function-foo``). A ``function-`` prefix
   may be present on one side only (``function-foo`` finds ``foo`` and the other way round).
4. Otherwise :class:`FunctionNotFoundError`, listing what is loaded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import TYPE_CHECKING

from xplane.errors import XplaneError
from xplane.fn.logs import request_summary, response_summary
from xplane.fn.metrics import Metrics
from xplane.fn.registry import FunctionRegistry, LoadedFunction

if TYPE_CHECKING:
    from xplane.fn.proto import fnv1

log = logging.getLogger(__name__)

FUNCTION_METADATA_KEY = "x-xplane-function"
_SEVERITY_FATAL = 1
#: Extra time a function gets over its deadline before the runner answers FATAL on its behalf.
DEADLINE_GRACE = 1.0
#: How much later than asked a caller's gRPC deadline may arrive (the wire format rounds it up).
DEADLINE_ROUNDING = 1.01


class FunctionNotFoundError(XplaneError):
    """No loaded function matches the call."""

    exit_code = 3

    def __init__(self, message: str, *, requested: str | None, loaded: list[str]) -> None:
        super().__init__(message)
        self.requested = requested
        self.loaded = loaded


def authority_label(authority: str | None) -> str | None:
    """The first DNS label of an ``:authority`` (``svc.ns:9443`` -> ``svc``); ``None`` for IPs."""
    if not authority:
        return None
    host = authority.strip()
    if "://" in host:
        host = host.split("://", 1)[1].lstrip("/")
    if host.startswith("["):  # [v6]:port
        return None
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if not host or host == "localhost":
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    label = host.split(".", 1)[0].lower()
    return label or None


class Router:
    """Finds the function for a call and runs it with deadline, metrics and debug logging."""

    def __init__(
        self,
        registry: FunctionRegistry,
        metrics: Metrics,
        *,
        default_timeout: float = 30.0,
        debug: bool = False,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.default_timeout = default_timeout
        self.debug = debug

    def resolve(self, *, name: str | None = None, authority: str | None = None) -> LoadedFunction:
        """The function a call goes to (see the module docstring); raises FunctionNotFoundError."""
        functions = self.registry.functions
        if len(functions) == 1 and name is None:
            return next(iter(functions.values()))
        if name is not None:
            entry = functions.get(name)
            if entry is not None:
                return entry
            raise self._not_found(name, f"no function named {name!r} is loaded")
        label = authority_label(authority)
        if label is not None:
            for candidate in (label, label.removeprefix("function-"), f"function-{label}"):
                entry = functions.get(candidate)
                if entry is not None:
                    return entry
            raise self._not_found(label, f"no function matches the authority {authority!r}")
        if not functions:
            raise self._not_found(None, "no function is loaded")
        raise self._not_found(
            None,
            f"{len(functions)} functions are loaded and the call did not say which one it is for",
        )

    def _not_found(self, requested: str | None, message: str) -> FunctionNotFoundError:
        loaded = self.registry.names()
        self.metrics.count_error(requested or "", "not_found")
        listing = ", ".join(loaded) if loaded else "none"
        errors = self.registry.errors
        if requested and requested in errors:
            message += f" (it failed to load: {errors[requested]})"
        err = FunctionNotFoundError(
            f"{message}; loaded functions: {listing}", requested=requested, loaded=loaded
        )
        err.hint = f"set the gRPC metadata key {FUNCTION_METADATA_KEY} or call through a Service named after the function"
        return err

    async def run(
        self,
        entry: LoadedFunction,
        req: fnv1.RunFunctionRequest,
        *,
        transport: str,
        deadline: float | None = None,
        owned: bool = False,
    ) -> fnv1.RunFunctionResponse:
        """Run one request on ``entry``. ``deadline`` is the caller's remaining time in seconds.

        ``owned`` says the request was made for this call alone (the gRPC server parsed it), so a
        function may be handed it without a protective copy, as the SDK's own server does.

        Function failures come back as FATAL results (the function kinds see to that; a function
        that overruns its deadline by more than a second is answered FATAL here, unless its kind
        enforces the deadline itself). Exceptions mean a bug in xplane; they are counted and
        re-raised for the transport to report.
        """
        name = entry.name
        spec_timeout = getattr(getattr(entry.function, "spec", None), "timeout", None)
        timeout = float(spec_timeout) if spec_timeout else self.default_timeout
        # gRPC sends timeouts rounded up to three significant digits, so a caller asking for exactly
        # our timeout shows up here to 1% later: that still counts as the caller's deadline coming first.
        caller_first = deadline is not None and deadline <= timeout * DEADLINE_ROUNDING + 0.001
        if deadline is not None and deadline < timeout:
            timeout = max(deadline, 0.001)
        if self.debug:
            log.debug(
                "request",
                extra={"fields": {"function": name, "transport": transport, "request": request_summary(req)}},
            )
        metrics = self.metrics
        metrics.inflight += 1
        start = time.perf_counter()
        try:
            with self.registry.using(entry) as function:
                run_owned = getattr(function, "run_owned", None) if owned else None
                if run_owned is not None:
                    # The kind enforces the timeout itself, with no copy of the request. When the
                    # caller's gRPC deadline comes first, gRPC cancels the call then; no timer needed.
                    rsp: fnv1.RunFunctionResponse = await run_owned(
                        req, timeout=timeout, timer=not caller_first
                    )
                elif getattr(function, "enforces_timeout", False):
                    rsp = await function.run(req, timeout=timeout)
                else:
                    try:
                        async with asyncio.timeout(timeout + DEADLINE_GRACE):
                            rsp = await function.run(req, timeout=timeout)
                    except TimeoutError:
                        metrics.count_error(name, "timeout")
                        from xplane.fn.base import fatal_response

                        rsp = fatal_response(req, f"function {name!r} did not answer within {timeout:g}s")
        except asyncio.CancelledError:
            metrics.count_error(name, "cancelled")  # the caller went away or its deadline passed
            raise
        except Exception:
            metrics.count_error(name, "internal")
            log.exception("function call failed inside xplane", extra={"fields": {"function": name}})
            raise
        finally:
            metrics.inflight -= 1
            metrics.observe_call(name, transport, time.perf_counter() - start)
        for result in rsp.results:
            if result.severity == _SEVERITY_FATAL:
                metrics.count_error(name, "fatal")
                break
        if self.debug:
            log.debug("response", extra={"fields": {"function": name, "response": response_summary(rsp)}})
        return rsp
