"""The gRPC side of the runner: ``FunctionRunnerService`` v1 and v1beta1, health, reflection, mTLS.

Both services share one handler working on raw bytes: v1 and v1beta1 messages are byte-for-byte the
same on the wire, so a v1beta1 call is parsed as v1 with no conversion round trip, and a request
that does not parse is answered ``INVALID_ARGUMENT`` instead of grpc's generic ``INTERNAL``.

Port routing: besides the main server (``--grpc-addr``, routed by metadata or host), a function
can have a port of its own (``grpcPort`` in ``function.yaml`` or ``FUNCTION_PORTS``). Each such port
is a separate server, same TLS, limits, health and reflection, whose handler is *pinned* to one
function: every call on it goes to that function whatever its host or metadata.
:class:`FunctionPorts` opens and closes these servers as functions come and go.

Message sizes: the receive limit is enforced by grpc itself (``RESOURCE_EXHAUSTED``: "Received
message larger than max (N vs. LIMIT)"); a response over the limit is refused here with a message
naming ``--max-message-size``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from xplane.fn.router import AUTHORITY_KEYS, FUNCTION_METADATA_KEY, FunctionNotFoundError, Router
from xplane.fn.settings import RunnerConfigError
from xplane.fn.tlsreload import CredentialsFactory, ReloadingCredentials

if TYPE_CHECKING:
    from grpc_health.v1._async import HealthServicer

    from xplane.fn.base import Function

log = logging.getLogger(__name__)

V1_SERVICE = "apiextensions.fn.proto.v1.FunctionRunnerService"
V1BETA1_SERVICE = "apiextensions.fn.proto.v1beta1.FunctionRunnerService"
HEALTH_SERVICE = "grpc.health.v1.Health"


def load_server_credentials(tls_dir: Path) -> ReloadingCredentials:
    """mTLS credentials from ``tls.crt``, ``tls.key`` and ``ca.crt`` (client certs required), re-read on rotation.

    Bad files at start are a :class:`~xplane.fn.settings.RunnerConfigError`; see :mod:`xplane.fn.tlsreload`.
    """
    return ReloadingCredentials.load(tls_dir)


def _metadata_value(context: grpc.aio.ServicerContext[Any, Any], keys: tuple[str, ...]) -> str | None:
    for item in context.invocation_metadata() or ():
        key, value = item[0], item[1]
        if key in keys:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class FunctionServer:
    """A ``grpc.aio`` server routing ``RunFunction`` calls to the loaded functions."""

    def __init__(self, router: Router, *, max_message_size: int, pinned: str | None = None) -> None:
        self.router = router
        self.max_message_size = max_message_size
        #: The function every call goes to (a function's own port), or ``None`` to route per call.
        self.pinned = pinned
        self.server: grpc.aio.Server | None = None
        self.health: HealthServicer | None = None
        self.port: int | None = None

    async def start(self, address: str, credentials: grpc.ServerCredentials | None) -> int:
        """Bind ``address`` (secure when ``credentials``, which no other server may share); returns the port."""
        from grpc_health.v1 import health_pb2_grpc
        from grpc_health.v1._async import HealthServicer
        from grpc_reflection.v1alpha import reflection

        options = [
            ("grpc.max_receive_message_length", self.max_message_size),
            ("grpc.max_send_message_length", self.max_message_size),
            ("grpc.so_reuseport", 0),
        ]
        server = grpc.aio.server(options=options)
        for service, version in ((V1_SERVICE, "grpc-v1"), (V1BETA1_SERVICE, "grpc-v1beta1")):
            handler = grpc.unary_unary_rpc_method_handler(self._handler(version))
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"RunFunction": handler}),)
            )
            add_registered = getattr(server, "add_registered_method_handlers", None)
            if add_registered is not None:
                add_registered(service, {"RunFunction": handler})
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (V1_SERVICE, V1BETA1_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), server
        )
        try:
            if credentials is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, credentials)
        except RuntimeError as e:
            raise RunnerConfigError(
                f"cannot listen for gRPC on {address}: {e}",
                hint="is another process using the port? see --grpc-addr"
                if self.pinned is None
                else f"is another process using the port of function {self.pinned!r}? "
                "see grpcPort in its function.yaml or FUNCTION_PORTS",
            ) from None
        await server.start()
        self.server, self.port = server, int(port)
        return int(port)

    async def set_serving(self, serving: bool) -> None:
        """Report SERVING / NOT_SERVING through gRPC health for the server and both services."""
        if self.health is None:
            return
        from grpc_health.v1 import health_pb2

        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", V1_SERVICE, V1BETA1_SERVICE):
            await self.health.set(service, status)

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight calls finish within ``grace`` seconds, then stop."""
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(grace)

    def _pick_routed(self) -> Callable[[Any], tuple[Any, str]]:
        """Entry picker of the main port: the single loaded function, else routing by metadata/host."""
        router = self.router
        table = router.table

        def pick(context: Any) -> tuple[Any, str]:
            single = table.single  # one function loaded: no routing work at all
            if single is not None:
                return single, ""
            try:
                entry = router.resolve(
                    name=_metadata_value(context, (FUNCTION_METADATA_KEY,)),
                    authority=_metadata_value(context, AUTHORITY_KEYS),
                )
            except FunctionNotFoundError as e:
                return None, str(e)
            return entry, ""

        return pick

    def _pick_pinned(self) -> Callable[[Any], tuple[Any, str]]:
        """Entry picker of a function's own port: every call goes to :attr:`pinned`."""
        router = self.router
        functions = router.table.functions

        def pick(context: Any) -> tuple[Any, str]:
            name = self.pinned or ""
            entry = functions.get(name)
            if entry is None:
                return None, router.not_loaded(name, self.port)
            return entry, ""

        return pick

    def _handler(self, transport: str) -> Any:
        """The RunFunction handler: pick the function, parse, run, serialise, enforce the size limit."""
        from xplane.fn.proto import fnv1

        parse = fnv1.RunFunctionRequest.FromString
        router = self.router
        run = router.run
        limit = self.max_message_size
        pick = self._pick_routed() if self.pinned is None else self._pick_pinned()

        async def run_function(data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            entry, not_found = pick(context)
            if entry is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, not_found)
            try:
                req = parse(data)
            except Exception as e:  # protobuf raises DecodeError (and friends) on garbage
                router.metrics.count_error(entry.name, "invalid")
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"malformed RunFunctionRequest for function {entry.name!r}: {e}",
                )
            try:
                rsp = await run(
                    entry, req, transport=transport, deadline=context.time_remaining(), owned=True
                )
            except Exception as e:
                await context.abort(
                    grpc.StatusCode.INTERNAL, f"xplane failed to run function {entry.name!r}: {e}"
                )
            out: bytes = rsp.SerializeToString()
            if len(out) > limit:
                router.metrics.count_error(entry.name, "too_large")
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the response of function {entry.name!r} is {len(out)} bytes, over the runner's "
                    f"message size limit of {limit} bytes (--max-message-size)",
                )
            return out

        return run_function


def declared_port(function: Function) -> int | None:
    """The ``grpcPort`` a function's ``function.yaml`` asks for, if any."""
    port = function.spec.options.get("grpc_port")
    return port if isinstance(port, int) and not isinstance(port, bool) else None


class FunctionPorts:
    """The servers of functions' own gRPC ports, opened and closed as functions come and go.

    ``static`` ports (``FUNCTION_PORTS``) stay open for the runner's life, answering ``NOT_FOUND``
    while their function is not loaded, and win over ``grpcPort``. A ``grpcPort`` port is open while
    its function is loaded (a stale version counts) and closes, letting its calls finish, when the
    function goes. A port that fails to bind is reported per function and retried on every reload.
    """

    def __init__(
        self,
        router: Router,
        *,
        host: str,
        max_message_size: int,
        static: Mapping[str, int],
        reserved: Mapping[int, str] | None = None,
        grace: float = 5.0,
    ) -> None:
        self.router = router
        self.host = host
        self.max_message_size = max_message_size
        self.static = dict(static)
        #: Ports no function may take (main gRPC, HTTP), with what they are, for error messages.
        self.reserved: dict[int, str] = dict(reserved or {})
        self.grace = grace
        self.servers: dict[int, FunctionServer] = {}
        self.bind_errors: dict[int, tuple[str, str]] = {}  # port -> (function, message)
        #: Makes each port's own TLS credentials (``None``: plaintext); see ``xplane.fn.tlsreload``.
        self.credentials: CredentialsFactory | None = None
        self.active = False
        self.serving = False
        self._stopping: set[asyncio.Task[None]] = set()

    # -- what should be open ---------------------------------------------------------------------
    def wanted(self) -> dict[int, str]:
        """Port -> function name for every port that should be open now."""
        ports = {port: name for name, port in self.static.items()}
        for name, entry in self.router.table.functions.items():
            if name not in self.static:
                port = declared_port(entry.function)
                if port is not None and port not in ports:
                    ports[port] = name
        return ports

    def conflicts(
        self, candidates: Mapping[str, Function], current: Mapping[str, Function]
    ) -> dict[str, str]:
        """The function table's check: functions whose ``grpcPort`` is taken (a load error each).

        A port already held by a serving function stays with it; the newcomers are refused.
        """
        taken: dict[int, str] = dict(self.reserved)
        for name, static_port in self.static.items():
            taken.setdefault(static_port, f"the port of function {name!r} (FUNCTION_PORTS)")
        errors: dict[str, str] = {}
        claims: dict[int, list[str]] = {}
        for name in sorted(candidates):
            if name in self.static:
                continue
            port = declared_port(candidates[name])
            if port is None:
                continue
            if port in taken:
                errors[name] = f"grpcPort {port} is {taken[port]}; pick another port"
                continue
            claims.setdefault(port, []).append(name)
        for port, names in claims.items():
            if len(names) < 2:
                continue
            holders = [n for n in names if n in current and declared_port(current[n]) == port]
            keep = holders[0] if holders else None
            for name in names:
                if name != keep:
                    others = ", ".join(repr(n) for n in names if n != name)
                    errors[name] = f"grpcPort {port} is also claimed by function {others}; pick another port"
        return errors

    def status(self, name: str) -> dict[str, Any]:
        """The ``/functions`` fields for ``name``: ``grpcPort`` and, if it failed, ``grpcPortError``."""
        out: dict[str, Any] = {}
        for port, server in self.servers.items():
            if server.pinned == name:
                out["grpcPort"] = port
        for port, (function, message) in self.bind_errors.items():
            if function == name:
                out.setdefault("grpcPort", port)
                out["grpcPortError"] = message
        return out

    # -- opening and closing -----------------------------------------------------------------------
    async def start(self, credentials: CredentialsFactory | None) -> None:
        """Open every wanted port (each with ``credentials()``, or plaintext when ``None``).

        A ``FUNCTION_PORTS`` port that cannot bind is a config error.
        """
        self.credentials = credentials
        self.active = True
        await self.reconcile()
        failed = {p: m for p, (name, m) in self.bind_errors.items() if self.static.get(name) == p}
        if failed:
            message = next(iter(failed.values()))
            raise RunnerConfigError(message, hint="FUNCTION_PORTS names a port that is in use")

    async def after_refresh(self, changed: bool) -> None:
        """The function table's hook: follow a changed set of functions, and retry ports that failed."""
        if self.active and (changed or self.bind_errors):
            await self.reconcile()

    async def reconcile(self) -> None:
        """Open, re-pin and close servers so that exactly :meth:`wanted` is served."""
        wanted = self.wanted()
        for port in [p for p in self.servers if p not in wanted]:
            gone = self.servers.pop(port)
            log.info("function port closed", extra={"fields": {"function": gone.pinned, "port": port}})
            self._stop_later(gone)
        self.bind_errors = {p: e for p, e in self.bind_errors.items() if wanted.get(p) == e[0]}
        for port, name in wanted.items():
            server = self.servers.get(port)
            if server is not None:
                server.pinned = name  # the port moved to another function: new calls go there
                continue
            await self._open(port, name)

    async def _open(self, port: int, name: str) -> None:
        server = FunctionServer(self.router, max_message_size=self.max_message_size, pinned=name)
        address = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        try:
            await server.start(address, self.credentials() if self.credentials is not None else None)
        except RunnerConfigError as e:
            message = f"function {name!r}: {e.message}"
            if self.bind_errors.get(port) != (name, message):
                log.error("function port failed", extra={"fields": {"function": name, "port": port}})
            self.bind_errors[port] = (name, message)
            await server.stop(0)
            return
        self.bind_errors.pop(port, None)
        self.servers[port] = server
        await server.set_serving(self.serving)
        log.info("function port open", extra={"fields": {"function": name, "port": port}})

    def _stop_later(self, server: FunctionServer) -> None:
        task = asyncio.get_running_loop().create_task(server.stop(self.grace))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def set_serving(self, serving: bool) -> None:
        """gRPC health of every function port."""
        self.serving = serving
        for server in list(self.servers.values()):
            await server.set_serving(serving)

    async def stop(self, grace: float) -> None:
        """Stop every function port, letting in-flight calls finish within ``grace`` seconds."""
        self.active = False
        servers = list(self.servers.values())
        self.servers.clear()
        await asyncio.gather(*(s.stop(grace) for s in servers), *self._stopping, return_exceptions=True)
