"""The gRPC side of the runner: ``FunctionRunnerService`` v1 and v1beta1, health, reflection, mTLS.

Both services share one handler working on raw bytes: v1 and v1beta1 messages are byte-for-byte the
same on the wire, so a v1beta1 call is parsed as v1 with no conversion round trip, and a request
that does not parse is answered ``INVALID_ARGUMENT`` instead of grpc's generic ``INTERNAL``.

Message sizes: the receive limit is enforced by grpc itself (``RESOURCE_EXHAUSTED``: "Received
message larger than max (N vs. LIMIT)"); a response over the limit is refused here with a message
naming ``--max-message-size``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from xplane.fn.router import FUNCTION_METADATA_KEY, FunctionNotFoundError, Router
from xplane.fn.settings import RunnerConfigError

if TYPE_CHECKING:
    from grpc_health.v1._async import HealthServicer

log = logging.getLogger(__name__)

V1_SERVICE = "apiextensions.fn.proto.v1.FunctionRunnerService"
V1BETA1_SERVICE = "apiextensions.fn.proto.v1beta1.FunctionRunnerService"
HEALTH_SERVICE = "grpc.health.v1.Health"
_AUTHORITY_KEYS = (":authority", "host", "x-forwarded-host")


def load_server_credentials(tls_dir: Path) -> grpc.ServerCredentials:
    """mTLS server credentials from ``tls.crt``, ``tls.key`` and ``ca.crt`` (client certs required)."""
    files: dict[str, bytes] = {}
    for name in ("tls.crt", "tls.key", "ca.crt"):
        path = tls_dir / name
        try:
            files[name] = path.read_bytes()
        except OSError as e:
            raise RunnerConfigError(
                f"cannot read {path}: {e.strerror or e}",
                hint="TLS_SERVER_CERTS_DIR must hold tls.crt, tls.key and ca.crt; or pass --insecure",
            ) from None
        if not files[name].strip():
            raise RunnerConfigError(f"{path} is empty", hint="mount the function's TLS Secret there")
    return grpc.ssl_server_credentials(
        [(files["tls.key"], files["tls.crt"])], root_certificates=files["ca.crt"], require_client_auth=True
    )


def _metadata_value(context: grpc.aio.ServicerContext[Any, Any], keys: tuple[str, ...]) -> str | None:
    for item in context.invocation_metadata() or ():
        key, value = item[0], item[1]
        if key in keys:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class FunctionServer:
    """A ``grpc.aio`` server routing ``RunFunction`` calls to the registry's functions."""

    def __init__(self, router: Router, *, max_message_size: int) -> None:
        self.router = router
        self.max_message_size = max_message_size
        self.server: grpc.aio.Server | None = None
        self.health: HealthServicer | None = None
        self.port: int | None = None

    async def start(self, address: str, credentials: grpc.ServerCredentials | None) -> int:
        """Bind ``address`` (secure when ``credentials``), start serving; returns the bound port."""
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
                hint="is another process using the port? see --grpc-addr",
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

    def _handler(self, transport: str) -> Any:
        from xplane.fn.proto import fnv1

        parse = fnv1.RunFunctionRequest.FromString
        router = self.router
        registry = router.registry
        run = router.run
        limit = self.max_message_size

        async def run_function(data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            single = registry.single  # one function loaded: no routing work at all
            if single is not None:
                entry = single
            else:
                try:
                    entry = router.resolve(
                        name=_metadata_value(context, (FUNCTION_METADATA_KEY,)),
                        authority=_metadata_value(context, _AUTHORITY_KEYS),
                    )
                except FunctionNotFoundError as e:
                    await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
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
