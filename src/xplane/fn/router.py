"""Which loaded function a call goes to, and the one code path every call takes (gRPC and HTTP).

Routing rules, in order:

1. Exactly one function loaded: every call goes to it.
2. The caller named one: metadata key ``x-xplane-function`` (HTTP: the ``{name}`` in the path).
3. The first DNS label of the host (:data:`AUTHORITY_KEYS`; ``function-foo.crossplane-system:9443``
   -> ``function-foo``). A ``function-`` prefix may be present on one side only (``function-foo``
   finds ``foo`` and the other way round). grpcio's asyncio server does not show the HTTP/2
   ``:authority`` to Python, so on gRPC the host comes from a header a proxy or mesh sets.
4. Otherwise :class:`FunctionNotFoundError`, listing what is loaded, with a hint built by
   :func:`routing_hint` from the settings and fields that really exist.

A function's own gRPC port (``grpcPort``, ``FUNCTION_PORTS``; see ``xplane.fn.server``) skips all
of this: every call on it goes to that function, and :meth:`Router.not_loaded` words the
``NOT_FOUND`` while it is not loaded.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING

from xplane.fn.errors import FunctionNotFoundError
from xplane.fn.logs import request_summary, response_summary
from xplane.fn.metrics import CallSeries, Metrics
from xplane.fn.settings import FLAG_ENV
from xplane.fn.spec import GRPC_PORT_FIELD, SPEC_FILE
from xplane.fn.table import FunctionTable, LoadedFunction

if TYPE_CHECKING:
    from xplane.fn.proto import fnv1

__all__ = [
    "AUTHORITY_KEYS",
    "FUNCTION_METADATA_KEY",
    "CallPlan",
    "FunctionNotFoundError",
    "Router",
    "authority_label",
    "routing_hint",
]

log = logging.getLogger(__name__)

FUNCTION_METADATA_KEY = "x-xplane-function"
#: Call metadata keys whose host names the function (``:authority`` only where the server shows it).
AUTHORITY_KEYS = (":authority", "host", "x-forwarded-host")
_SEVERITY_FATAL = 1
#: How much later than asked a caller's gRPC deadline may arrive (the wire format rounds it up).
DEADLINE_ROUNDING = 1.01


def routing_hint() -> str:
    """How a call reaches one of several functions: every routing option there is, by its real name."""
    flag, env = next((flag, env) for key, flag, env in FLAG_ENV if key == "function_ports")
    headers = " or ".join(k for k in AUTHORITY_KEYS if not k.startswith(":"))
    return (
        f"give each function a gRPC port of its own ({GRPC_PORT_FIELD} in its {SPEC_FILE}, or {env} / "
        f"{flag}) and call that port (the only way for Crossplane, which names no function); or send the "
        f"gRPC metadata {FUNCTION_METADATA_KEY}: <name> (xfn call does); or have a proxy or mesh set a "
        f"{headers} header whose first label is the function's name; see Routing in docs/runner.md"
    )


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
        table: FunctionTable,
        metrics: Metrics,
        *,
        default_timeout: float = 30.0,
        debug: bool = False,
    ) -> None:
        self.table = table
        self.metrics = metrics
        self.default_timeout = default_timeout
        self.debug = debug

    def resolve(self, *, name: str | None = None, authority: str | None = None) -> LoadedFunction:
        """The function a call goes to (see the module docstring); raises FunctionNotFoundError."""
        if name is None:
            single = self.table.single
            if single is not None:
                return single
        functions = self.table.functions
        if name is not None:
            entry = functions.get(name)
            if entry is not None:
                return entry
            raise self._not_found(name, f"no function named {name!r} is loaded", by_name=True)
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

    def _not_found(
        self, requested: str | None, message: str, *, by_name: bool = False
    ) -> FunctionNotFoundError:
        loaded = self.table.names()
        self.metrics.count_error(requested or "", "not_found")
        listing = ", ".join(loaded) if loaded else "none"
        errors = self.table.errors
        if requested and requested in errors:
            message += f" (it failed to load: {errors[requested]})"
        if not loaded:
            hint = "no function is loaded: GET /functions shows the load errors"
        elif by_name:
            hint = (
                "a function's name is name: in its function.yaml, else its directory's or file's name; "
                "GET /functions lists them with their load errors"
            )
        else:
            hint = routing_hint()
        return FunctionNotFoundError(
            f"{message}; loaded functions: {listing}", requested=requested, loaded=loaded, hint=hint
        )

    def not_loaded(self, name: str, port: int | None) -> str:
        """The ``NOT_FOUND`` message of a function's own port while that function is not loaded."""
        self.metrics.count_error(name, "not_found")
        loaded = self.table.names()
        message = f"port {port} serves function {name!r}, which is not loaded"
        error = self.table.errors.get(name)
        if error:
            message += f" (it failed to load: {error})"
        return f"{message}; loaded functions: {', '.join(loaded) if loaded else 'none'}"

    def plan(self, entry: LoadedFunction) -> CallPlan:
        """What every call of ``entry`` needs, worked out once (cached on the entry)."""
        plan = entry.plan
        if plan is None or plan.router is not self:
            plan = entry.plan = CallPlan(self, entry)
        return plan

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
        whose kind does not enforce its timeout and that overruns it by more than
        :data:`~xplane.fn.base.DEADLINE_GRACE` is answered FATAL by ``Function.call``). Exceptions
        mean a bug in xplane; they are counted and re-raised for the transport to report.
        """
        plan = entry.plan
        if plan is None or plan.router is not self:
            plan = self.plan(entry)
        timeout = plan.timeout
        caller_first = False
        if deadline is not None:
            # gRPC sends timeouts rounded up to three significant digits, so a caller asking for exactly
            # our timeout shows up here to 1% later: that still counts as the caller's deadline first.
            caller_first = deadline <= timeout * DEADLINE_ROUNDING + 0.001
            if deadline < timeout:
                timeout = deadline if deadline > 0.001 else 0.001
        if self.debug:
            log.debug(
                "request",
                extra={
                    "fields": {"function": plan.name, "transport": transport, "request": request_summary(req)}
                },
            )
        series = plan.series.get(transport)
        if series is None:
            series = plan.series[transport] = self.metrics.series(plan.name, transport)
        metrics = self.metrics
        metrics.inflight += 1
        entry.inflight += 1  # held until the call ends: a retired function closes after its last call
        start = perf_counter()
        try:
            # When the caller's gRPC deadline comes first, gRPC cancels the call then: no timer needed.
            rsp = await plan.call(
                req, timeout=timeout, owned=owned, timer=not caller_first, on_overrun=plan.overrun
            )
        except asyncio.CancelledError:
            metrics.count_error(plan.name, "cancelled")  # the caller went away or its deadline passed
            raise
        except Exception:
            metrics.count_error(plan.name, "internal")
            log.exception("function call failed inside xplane", extra={"fields": {"function": plan.name}})
            raise
        finally:
            elapsed = perf_counter() - start
            metrics.inflight -= 1
            self.table.release(entry)
            series.calls += 1
            series.histogram.observe(elapsed)
        for result in rsp.results:
            if result.severity == _SEVERITY_FATAL:
                metrics.count_error(plan.name, "fatal")
                break
        if self.debug:
            log.debug(
                "response", extra={"fields": {"function": plan.name, "response": response_summary(rsp)}}
            )
        return rsp


class CallPlan:
    """Per-function call data the router works out once: name, timeout, entry point, metric series."""

    __slots__ = ("call", "name", "overrun", "router", "series", "timeout")

    def __init__(self, router: Router, entry: LoadedFunction) -> None:
        function = entry.function
        spec_timeout = function.spec.timeout
        self.router = router
        self.name = entry.name
        self.timeout = float(spec_timeout) if spec_timeout else router.default_timeout
        #: The function's one entry point (``Function.call`` picks run, run_owned and the deadline).
        self.call = function.call
        #: Counts a call that ``Function.call`` cut off at its deadline.
        self.overrun: Callable[[], None] = functools.partial(router.metrics.count_error, self.name, "timeout")
        self.series: dict[str, CallSeries] = {}
