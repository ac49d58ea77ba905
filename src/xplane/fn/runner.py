"""The runner: loads functions, serves them over gRPC and HTTP, reloads them, shuts down cleanly.

Start order keeps start-to-ready short and honest: the HTTP server first (so ``/health`` answers
while functions load), then the functions, then gRPC; ``/ready`` turns 200 when gRPC is serving at
least one function. Functions' own gRPC ports (port routing, ``xplane.fn.server.FunctionPorts``)
open with the main gRPC server and follow every reload. SIGTERM flips readiness off, stops
accepting calls, lets in-flight calls finish (``SHUTDOWN_GRACE`` seconds) and closes every function.

``CROSSPLANE_API_URL``: Crossplane calls the runner, so the runner needs no Kubernetes API access.
When the variable is set, ``/ready`` reports whether that URL answers (any HTTP status counts),
without making readiness depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.fn.http import HttpApp, HttpServer, RunLimits
from xplane.fn.metrics import Metrics
from xplane.fn.router import Router
from xplane.fn.server import FunctionPorts, FunctionServer, load_server_credentials
from xplane.fn.settings import RunnerConfigError, Settings, check_function_ports
from xplane.fn.sources import FunctionSource, LocalSource, Snapshot, make_source
from xplane.fn.table import DiscoverFn, FunctionTable
from xplane.fn.urls import redact_url, split_credentials

if TYPE_CHECKING:
    from xplane.fn.proto import fnv1
    from xplane.fn.tlsreload import ReloadingCredentials

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
API_CHECK_INTERVAL = 10.0


class Runner:
    """One runner process's servers and functions; drive it with :meth:`start` and :meth:`stop`."""

    def __init__(
        self, settings: Settings, *, source: FunctionSource | None = None, discover: DiscoverFn | None = None
    ) -> None:
        self.settings = settings
        self.source = source or make_source(
            settings.load_mode,
            functions_dir=settings.functions_dir,
            http_url=settings.http_url,
            timeout=settings.timeout,
        )
        self.metrics = Metrics()
        self.table = FunctionTable(self.source, discover=discover)
        self.router = Router(self.table, self.metrics, default_timeout=settings.timeout, debug=settings.debug)
        self.grpc = FunctionServer(self.router, max_message_size=settings.max_message_size)
        self.ports = FunctionPorts(
            self.router,
            host=settings.grpc_addr.host,
            max_message_size=settings.max_message_size,
            static=dict(settings.function_ports),
            reserved=settings.reserved_ports(),
            grace=SHUTDOWN_GRACE,
        )
        self.table.check = self.ports.conflicts
        self.table.after_refresh = self.ports.after_refresh
        self.table.status_extra = self.ports.status
        self.http = HttpServer(
            HttpApp(self.router, ready=self.readiness, limits=RunLimits.from_settings(settings))
        )
        self.serving = False
        self.stopping = False
        self.started_at = time.monotonic()
        self.ready_after: float | None = None
        self._watch: asyncio.Task[None] | None = None
        self._api_check: tuple[float, dict[str, Any]] | None = None
        #: The watched TLS files (after :meth:`start`, unless ``--insecure``).
        self.tls: ReloadingCredentials | None = None

    @property
    def grpc_port(self) -> int | None:
        """The bound gRPC port (after :meth:`start`)."""
        return self.grpc.port

    @property
    def function_ports(self) -> dict[str, int]:
        """Function name -> its own bound gRPC port (``grpcPort`` or ``FUNCTION_PORTS``)."""
        return {server.pinned or "": port for port, server in self.ports.servers.items()}

    @property
    def http_port(self) -> int | None:
        """The bound HTTP port (after :meth:`start`)."""
        return self.http.port

    def credentials(self) -> ReloadingCredentials | None:
        """mTLS credentials that follow rotation, or ``None`` with ``--insecure`` (wins over the certs dir)."""
        s = self.settings
        if s.insecure:
            if s.tls_certs_dir is not None:
                log.warning(
                    "--insecure given: serving gRPC without TLS, ignoring TLS_SERVER_CERTS_DIR",
                    extra={"fields": {"tlsCertsDir": str(s.tls_certs_dir)}},
                )
            return None
        if s.tls_certs_dir is None:
            raise RunnerConfigError(
                "no TLS certificates for the gRPC server",
                hint="set TLS_SERVER_CERTS_DIR to a directory holding tls.crt, tls.key and ca.crt, "
                "or pass --insecure",
            )
        return load_server_credentials(s.tls_certs_dir)

    async def start(self) -> None:
        """Start HTTP, load functions, start gRPC, begin watching the source for changes."""
        s = self.settings
        creds = self.tls = self.credentials()  # fail on bad TLS settings before binding anything
        reserved = self.ports.reserved
        check_function_ports(s.function_ports, reserved, origin="FUNCTION_PORTS / --function-ports")
        http_port = await self.http.start(s.listen_addr.host, s.listen_addr.port)
        try:
            reserved[http_port] = "the HTTP port (--listen-addr)"
            check_function_ports(s.function_ports, reserved, origin="FUNCTION_PORTS / --function-ports")
            await self.table.refresh()
            grpc_port = await self.grpc.start(str(s.grpc_addr), creds.for_server() if creds else None)
            reserved[grpc_port] = "the main gRPC port (--grpc-addr)"
            await self.ports.start(creds.for_server if creds else None)
        except BaseException:
            await self.ports.stop(0)
            await self.grpc.stop(0)
            await self.http.stop()
            raise
        await self.grpc.set_serving(True)
        await self.ports.set_serving(True)
        self.serving = True
        self.ready_after = time.monotonic() - self.started_at
        if s.reload_interval > 0:
            self._watch = asyncio.get_running_loop().create_task(self.table.watch(s.reload_interval))
        log.info(
            "xfn serving",
            extra={
                "fields": {
                    "grpc": f"{s.grpc_addr.host}:{grpc_port}",
                    "http": f"{s.listen_addr.host}:{http_port}",
                    "tls": creds is not None,
                    "source": self.source.describe(),
                    "functions": self.table.names(),
                    "loadErrors": self.table.errors,
                    "maxMessageSize": s.max_message_size,
                    "functionPorts": self.function_ports,
                    "eventLoop": type(asyncio.get_running_loop()).__module__.split(".")[0],
                }
            },
        )

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the runner is ready for calls, and why (what ``/ready`` shows)."""
        table = self.table
        details: dict[str, Any] = {"functions": table.names(), "loadErrors": table.errors}
        if table.source_error:
            details["sourceError"] = table.source_error
        ok = self.serving and not self.stopping and table.loaded_once and bool(table.functions)
        if not ok:
            details["reason"] = (
                "shutting down" if self.stopping else "starting" if not self.serving else "no function loaded"
            )
        if self.ports.servers or self.ports.bind_errors:
            details["functionPorts"] = self.function_ports
        if self.tls is not None:
            self.tls.check()  # a rotation shows here even before a new connection picks it up
            details["tls"] = self.tls.status()
        if self.settings.crossplane_api_url:
            details["crossplaneApi"] = await self._check_api()
        return ok, details

    async def _check_api(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._api_check is not None and now - self._api_check[0] < API_CHECK_INTERVAL:
            return self._api_check[1]
        url = str(self.settings.crossplane_api_url)
        result = await asyncio.to_thread(probe_url, url)
        self._api_check = (now, result)
        return result

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop serving: readiness off, finish in-flight calls within ``grace``, close everything."""
        self.stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await asyncio.gather(self.grpc.stop(grace), self.ports.stop(grace))
        await self.http.stop()
        await self.table.close()
        self.serving = False


def probe_url(url: str, timeout: float = 2.0) -> dict[str, Any]:
    """Whether ``url`` answers HTTP at all (any status counts); the URL is shown redacted."""
    import httpx  # here, not at the top: 5-11 MiB that a runner without CROSSPLANE_API_URL never needs

    shown = redact_url(url)
    try:
        target, auth = split_credentials(url)
        with httpx.stream("GET", target, auth=auth, timeout=timeout, follow_redirects=True) as resp:
            return {"url": shown, "reachable": True, "status": resp.status_code}
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as e:
        return {"url": shown, "reachable": False, "error": str(e) or type(e).__name__}


async def serve_async(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run a runner until ``stop`` is set or SIGTERM/SIGINT arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    runner = Runner(settings)
    await runner.start()
    try:
        await stop.wait()
        log.info("xfn shutting down", extra={"fields": {"grace": SHUTDOWN_GRACE}})
    finally:
        await runner.stop()


def serve(settings: Settings) -> None:
    """Blocking entry point of ``xfn serve`` (on the event loop ``settings.event_loop`` picks)."""
    factory, _ = loop_factory(settings.event_loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve_async(settings))


def loop_factory(choice: str) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """The event-loop factory for ``--event-loop`` (``None``: asyncio's default) and its name.

    uvloop runs grpc.aio's per-call callbacks for less CPU than asyncio's own loop (about 4% per
    ``RunFunction`` call in ``bench/fn_bench.py``); ``auto`` uses it when it is installed.
    """
    if choice == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise RunnerConfigError(
                "--event-loop uvloop: uvloop is not installed", hint="pip install uvloop, or use asyncio"
            ) from None
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


class _OnceSource(LocalSource):
    """The directory ``xfn run`` loads from, looked at once (no tree walk: it may be any directory)."""

    def poll(self, current: Snapshot | None) -> Snapshot | None:
        return Snapshot(self.root, "once") if current is None else None


async def run_request(
    functions_dir: Path,
    name: str,
    request: fnv1.RunFunctionRequest,
    *,
    timeout: float = 30.0,
    discover: DiscoverFn | None = None,
) -> fnv1.RunFunctionResponse:
    """Load function ``name`` from ``functions_dir`` (or one function directory) and run ``request`` on it.

    Only that function is loaded (:func:`xplane.fn.loader.load_named`): the other entries are read
    for their names only, and what is wrong with them is logged at DEBUG. Raises
    :class:`~xplane.fn.errors.FunctionLoadError` naming the function and the reason it did not load,
    or :class:`~xplane.fn.errors.FunctionNotFoundError`. ``discover`` replaces the loader (tests).
    """
    if discover is None:
        from xplane.fn.loader import load_named

        function = await asyncio.to_thread(load_named, functions_dir, name)

        def discover(_root: Path) -> dict[str, Any]:
            return {name: function}

    table = FunctionTable(_OnceSource(functions_dir), discover=discover)
    router = Router(table, Metrics(), default_timeout=timeout)
    try:
        await table.refresh()
        if table.source_error:
            raise RunnerConfigError(table.source_error)
        if name not in table.functions and name in table.errors:
            raise RunnerConfigError(f"function {name!r} failed to load: {table.errors[name]}")
        entry = router.resolve(name=name)
        return await router.run(entry, request, transport="local")
    finally:
        await table.close()
