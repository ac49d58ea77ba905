"""Port routing: a function's own gRPC port (``grpcPort`` / ``FUNCTION_PORTS``) serves only that function.

Real runners on loopback, real grpc clients (v1 and v1beta1) on every port, mTLS with test-made
certificates, reloads driven by real file changes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import shutil
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.fn.runner_fixtures import (
    CLOSED,
    RunnerThread,
    ScriptedFunction,
    running,
    scripted_discover,
    test_settings,
    write_function,
    xr_request,
)
from tests.support.certs import TLSCerts
from tests.support.procs import free_port
from xplane.fn.errors import FunctionLoadError
from xplane.fn.proto import fnv1beta1, grpcv1, grpcv1beta1
from xplane.fn.runner import Runner
from xplane.fn.settings import Address, RunnerConfigError, Settings
from xplane.fn.spec import load_spec_file

FIXTURES = Path(__file__).parent / "fixtures"


def port_discover(root: Path) -> dict[str, Any]:
    """Scripted functions whose ``grpcPort`` in function.json lands where function.yaml puts it."""
    found: dict[str, Any] = scripted_discover(root)
    for fn in found.values():
        if isinstance(fn, ScriptedFunction) and "grpcPort" in fn.config:
            fn.spec = dataclasses.replace(fn.spec, options={"grpc_port": int(fn.config["grpcPort"])})
    return found


def call(
    port: int,
    *,
    name: str | None = None,
    creds: grpc.ChannelCredentials | None = None,
    timeout: float = 10,
) -> str:
    """One v1 call on ``port``; the first result's message."""
    md = (("x-xplane-function", name),) if name else None
    target = f"localhost:{port}" if creds else f"127.0.0.1:{port}"
    channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    with channel:
        rsp = grpcv1.FunctionRunnerServiceStub(channel).RunFunction(
            xr_request(), metadata=md, timeout=timeout
        )
    return str(rsp.results[0].message)


def call_error(port: int, **kw: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(port, **kw)
    return err.value


def functions(rt: RunnerThread) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{rt.http_base}/functions", timeout=5) as resp:
        return {f["name"]: f for f in json.loads(resp.read())["functions"]}


def remove(root: Path, name: str) -> None:
    shutil.rmtree(root / name)


@contextlib.contextmanager
def runner(root: Path, **overrides: Any) -> Iterator[RunnerThread]:
    with running(test_settings(root, **overrides), discover=port_discover) as rt:
        yield rt


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


# -- settings and function.yaml --------------------------------------------------------------------


def test_function_ports_setting_env_beats_flag_and_validates() -> None:
    s = Settings.load({"function_ports": "a=9501"}, {"FUNCTION_PORTS": " b=9502 , function-c=9503 "})
    assert s.function_ports == (("b", 9502), ("function-c", 9503))
    assert Settings.load({"function_ports": "a=9501"}, {}).function_ports == (("a", 9501),)
    assert Settings.load({}, {}).function_ports == ()
    bad = {
        "a": "not name=port",
        "a=x": "not a port",
        "a=70000": "not a port",
        "a=9501,b=9501": "port 9501 is given to two functions",
        "a=9501,a=9502": "two ports",
        "a=9443": "main gRPC port",
        "a=8080": "HTTP port",
        "bad name!=9501": "not a function name",
    }
    for value, message in bad.items():
        with pytest.raises(RunnerConfigError, match=message) as err:
            Settings.load({}, {"FUNCTION_PORTS": value})
        assert "FUNCTION_PORTS" in str(err.value)
    with pytest.raises(RunnerConfigError, match="--function-ports"):
        Settings.load({"function_ports": "a=b"}, {})


def test_grpc_port_in_function_yaml(tmp_path: Path) -> None:
    spec_file = tmp_path / "function.yaml"
    spec_file.write_text("kind: remote\nremote: {address: 'x:1'}\ngrpcPort: 9501\n")
    assert load_spec_file(spec_file, base=tmp_path).options["grpc_port"] == 9501
    spec_file.write_text("kind: remote\nremote: {address: 'x:1'}\n")
    assert "grpc_port" not in load_spec_file(spec_file, base=tmp_path).options
    for bad in ("0", "65536", "true", "nine", "[9501]"):
        spec_file.write_text(f"kind: remote\nremote: {{address: 'x:1'}}\ngrpcPort: {bad}\n")
        with pytest.raises(FunctionLoadError, match="grpcPort"):
            load_spec_file(spec_file, base=tmp_path)


# -- serving -----------------------------------------------------------------------------------------


def test_each_port_serves_its_function_whatever_the_metadata(tmp_path: Path, ports: tuple[int, int]) -> None:
    pa, pb = ports
    write_function(tmp_path, "function-a", message="A", grpcPort=pa)
    write_function(tmp_path, "function-b", message="B", grpcPort=pb)
    write_function(tmp_path, "c", message="C")
    with runner(tmp_path) as rt:
        assert rt.runner.function_ports == {"function-a": pa, "function-b": pb}
        assert call(pa) == "A from function-a"
        assert call(pa, name="function-b") == "A from function-a"  # the port wins over metadata
        assert call(pb) == "B from function-b"
        req = fnv1beta1.RunFunctionRequest.FromString(xr_request("beta").SerializeToString())
        with grpc.insecure_channel(f"127.0.0.1:{pb}") as ch:
            rsp = grpcv1beta1.FunctionRunnerServiceStub(ch).RunFunction(req, timeout=10)
        assert isinstance(rsp, fnv1beta1.RunFunctionResponse)
        assert rsp.meta.tag == "beta" and rsp.results[0].message == "B from function-b"
        # the main port keeps routing by metadata, and still refuses a call that names nothing
        main = rt.runner.grpc_port
        assert main is not None
        assert call(main, name="c") == "C from c"
        assert call(main, name="function-a") == "A from function-a"
        assert call_error(main).code() == grpc.StatusCode.NOT_FOUND
        listed = functions(rt)
        assert (listed["function-a"]["grpcPort"], listed["function-b"]["grpcPort"]) == (pa, pb)
        assert "grpcPort" not in listed["c"]
        text = rt.call(metrics_text(rt))
    assert 'xfn_function_calls_total{function="function-a",transport="grpc-v1"} 3' in text
    assert 'xfn_function_calls_total{function="function-b",transport="grpc-v1beta1"} 1' in text


async def metrics_text(rt: RunnerThread) -> str:
    table = rt.runner.table
    return rt.runner.metrics.render(loaded=table.names(), load_errors=len(table.errors))


def test_function_port_has_health_and_reflection(tmp_path: Path, ports: tuple[int, int]) -> None:
    write_function(tmp_path, "a", grpcPort=ports[0])
    write_function(tmp_path, "b")
    with runner(tmp_path) as rt, grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as ch:
        got = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert got.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        answers = list(
            stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        )
        names = {s.name for s in answers[0].list_services_response.service}
        assert "apiextensions.fn.proto.v1.FunctionRunnerService" in names
        rt.call(rt.runner.ports.set_serving(False))
        got = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert got.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_function_port_keeps_the_message_size_limit(tmp_path: Path, ports: tuple[int, int]) -> None:
    write_function(tmp_path, "a", grpcPort=ports[0], pad=8000)
    write_function(tmp_path, "b")
    with runner(tmp_path, max_message_size=4096):
        err = call_error(ports[0])
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-message-size" in str(err.details())


def test_mtls_on_a_function_port(tmp_path: Path, tls_certs: TLSCerts, ports: tuple[int, int]) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    for src, dst in (
        (tls_certs.server_cert, "tls.crt"),
        (tls_certs.server_key, "tls.key"),
        (tls_certs.ca_cert, "ca.crt"),
    ):
        shutil.copy(src, tls / dst)
    fns = tmp_path / "fns"
    write_function(fns, "a", message="secure", grpcPort=ports[0])
    write_function(fns, "b")
    good = grpc.ssl_channel_credentials(
        tls_certs.ca_pem, tls_certs.client_key.read_bytes(), tls_certs.client_cert.read_bytes()
    )
    with runner(fns, insecure=False, tls_certs_dir=tls):
        assert call(ports[0], creds=good) == "secure from a"
        assert call_error(ports[0], creds=grpc.ssl_channel_credentials(tls_certs.ca_pem)).code() == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert call_error(ports[0]).code() == grpc.StatusCode.UNAVAILABLE  # plaintext


def test_real_loader_reads_grpc_port_from_function_yaml(tmp_path: Path, ports: tuple[int, int]) -> None:
    shutil.copytree(FIXTURES / "python" / "sdk_fn", tmp_path / "function-sdk")
    (tmp_path / "function-sdk" / "function.yaml").write_text(f"kind: python\ngrpcPort: {ports[0]}\n")
    shutil.copytree(FIXTURES / "python" / "sdk_fn", tmp_path / "function-other")
    with running(test_settings(tmp_path), discover=None) as rt:
        assert rt.runner.function_ports == {"function-sdk": ports[0]}
        assert call(ports[0]).startswith("composed bucket for my-xr")


# -- reloads -----------------------------------------------------------------------------------------


def test_reload_opens_and_closes_ports_without_dropping_calls(tmp_path: Path, ports: tuple[int, int]) -> None:
    pa, pb = ports
    write_function(tmp_path, "a", message="A", grpcPort=pa, delay=0.8)
    write_function(tmp_path, "b", message="B")
    with runner(tmp_path) as rt, concurrent.futures.ThreadPoolExecutor(2) as pool:
        on_a = pool.submit(call, pa)  # in flight on the port that is about to close
        time.sleep(0.3)
        remove(tmp_path, "a")
        write_function(tmp_path, "b", message="B2", grpcPort=pb, delay=0.5)
        assert rt.refresh() is True
        assert rt.runner.function_ports == {"b": pb}
        on_b = pool.submit(call, pb)
        time.sleep(0.1)
        write_function(tmp_path, "c", message="C")  # a reload while b's call runs on its port
        assert rt.refresh() is True
        assert on_a.result(10) == "A from a"
        assert on_b.result(10) == "B2 from b"
        assert call_error(pa, timeout=2).code() == grpc.StatusCode.UNAVAILABLE
        assert "a@A" in CLOSED
        # b loses its port when function.yaml drops it; the main port still reaches it
        write_function(tmp_path, "b", message="B3")
        rt.refresh()
        assert rt.runner.function_ports == {}
        assert call_error(pb, timeout=2).code() == grpc.StatusCode.UNAVAILABLE
        assert call(rt.runner.grpc_port or 0, name="b") == "B3 from b"


def test_a_port_moves_to_another_function(tmp_path: Path, ports: tuple[int, int]) -> None:
    write_function(tmp_path, "a", message="A", grpcPort=ports[0])
    write_function(tmp_path, "b", message="B", grpcPort=ports[1])
    with runner(tmp_path) as rt:
        write_function(tmp_path, "a", message="A", grpcPort=ports[1], version="2")
        write_function(tmp_path, "b", message="B", grpcPort=ports[0], version="2")
        rt.refresh()
        assert rt.runner.function_ports == {"a": ports[1], "b": ports[0]}
        assert (call(ports[0]), call(ports[1])) == ("B from b", "A from a")


def test_a_function_broken_on_reload_keeps_its_port(tmp_path: Path, ports: tuple[int, int]) -> None:
    write_function(tmp_path, "a", message="good", grpcPort=ports[0])
    write_function(tmp_path, "b")
    with runner(tmp_path) as rt:
        write_function(tmp_path, "a", broken="SyntaxError: nope")
        rt.refresh()
        assert call(ports[0]) == "good from a"
        assert functions(rt)["a"]["status"] == "stale"


# -- FUNCTION_PORTS ----------------------------------------------------------------------------------


def test_static_port_answers_not_found_until_its_function_loads(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    pa, pb = ports
    write_function(tmp_path, "a", broken="ImportError: no module named nope")
    write_function(tmp_path, "b", message="B", grpcPort=free_port())  # FUNCTION_PORTS wins over grpcPort
    write_function(tmp_path, "c")
    with runner(tmp_path, function_ports=(("a", pa), ("b", pb))) as rt:
        err = call_error(pa)
        assert err.code() == grpc.StatusCode.NOT_FOUND
        details = str(err.details())
        assert f"port {pa} serves function 'a', which is not loaded" in details
        assert "ImportError" in details and "loaded functions: b, c" in details
        assert call(pb) == "B from b"
        assert rt.runner.function_ports == {"a": pa, "b": pb}
        write_function(tmp_path, "a", message="A")
        rt.refresh()
        assert call(pa) == "A from a"
        assert functions(rt)["a"]["grpcPort"] == pa
        assert 'xfn_function_errors_total{function="a",reason="not_found"} 1' in rt.call(metrics_text(rt))


def test_static_port_on_the_http_port_is_a_config_error(tmp_path: Path) -> None:
    http = free_port()
    write_function(tmp_path, "a")
    settings = test_settings(tmp_path, listen_addr=Address("127.0.0.1", http), function_ports=(("a", http),))
    rt = RunnerThread(settings, discover=port_discover)
    try:
        with pytest.raises(RunnerConfigError, match=f"port {http} of function 'a' is the HTTP port"):
            rt.call(rt.runner.start())
    finally:
        rt.stop()


def test_static_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    write_function(tmp_path, "a")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        rt = RunnerThread(test_settings(tmp_path, function_ports=(("a", busy),)), discover=port_discover)
        try:
            with pytest.raises(RunnerConfigError, match=f"function 'a'.*{busy}"):
                rt.call(rt.runner.start())
        finally:
            rt.stop()


# -- conflicts ---------------------------------------------------------------------------------------


def test_duplicate_grpc_ports_are_load_errors(tmp_path: Path, ports: tuple[int, int]) -> None:
    pa, pb = ports
    write_function(tmp_path, "a", message="A", grpcPort=pa)
    write_function(tmp_path, "b", message="B", grpcPort=pa)
    write_function(tmp_path, "c", message="C", grpcPort=pb)
    with runner(tmp_path) as rt:
        errors = rt.runner.table.errors
        assert "grpcPort" in errors["a"] and "'b'" in errors["a"]
        assert "grpcPort" in errors["b"] and "'a'" in errors["b"]
        assert rt.runner.table.names() == ["c"]
        assert call_error(pa, timeout=2).code() == grpc.StatusCode.UNAVAILABLE
        # fix b: both load; then a newcomer claiming a held port is refused, the holder keeps it
        write_function(tmp_path, "b", message="B", grpcPort=free_port())
        rt.refresh()
        assert rt.runner.table.errors == {} and call(pa) == "A from a"
        write_function(tmp_path, "d", message="D", grpcPort=pa)
        rt.refresh()
        assert "grpcPort" in rt.runner.table.errors["d"] and "'a'" in rt.runner.table.errors["d"]
        assert set(rt.runner.table.errors) == {"d"}  # the holder keeps its port, unblamed
        assert call(pa) == "A from a"
        assert functions(rt)["d"]["status"] == "error"


def test_grpc_port_on_a_taken_runner_port_is_a_load_error(tmp_path: Path, ports: tuple[int, int]) -> None:
    grpc_main, http = free_port(), free_port()
    write_function(tmp_path, "a", grpcPort=grpc_main)
    write_function(tmp_path, "b", grpcPort=http)
    write_function(tmp_path, "c", grpcPort=ports[0])
    write_function(tmp_path, "d")
    settings = dict(
        grpc_addr=Address("127.0.0.1", grpc_main),
        listen_addr=Address("127.0.0.1", http),
        function_ports=(("d", ports[0]),),
    )
    with runner(tmp_path, **settings) as rt:
        errors = rt.runner.table.errors
        assert "main gRPC port (--grpc-addr)" in errors["a"]
        assert "HTTP port (--listen-addr)" in errors["b"]
        assert "port of function 'd' (FUNCTION_PORTS)" in errors["c"]
        assert rt.runner.function_ports == {"d": ports[0]}


def test_a_port_that_cannot_bind_is_reported_and_retried(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = blocker.getsockname()[1]
    write_function(tmp_path, "a", message="A", grpcPort=busy)
    write_function(tmp_path, "b")
    try:
        with runner(tmp_path) as rt:
            listed = functions(rt)["a"]
            assert listed["status"] == "ready" and listed["grpcPort"] == busy
            assert "cannot listen" in listed["grpcPortError"]
            blocker.close()
            rt.refresh()  # nothing changed in the source: the port is retried anyway
            assert call(busy) == "A from a"
            assert "grpcPortError" not in functions(rt)["a"]
    finally:
        blocker.close()


def test_runner_exposes_ports_in_ready(tmp_path: Path, ports: tuple[int, int]) -> None:
    write_function(tmp_path, "a", grpcPort=ports[0])
    write_function(tmp_path, "b")
    with runner(tmp_path) as rt:
        ok, details = rt.call(rt.runner.readiness())
    assert ok and details["functionPorts"] == {"a": ports[0]}


def test_stop_closes_every_port(tmp_path: Path, ports: tuple[int, int]) -> None:
    write_function(tmp_path, "a", grpcPort=ports[0])
    write_function(tmp_path, "b")
    with runner(tmp_path) as rt:
        assert call(ports[0]) == "hello from a"
        rt.call(rt.runner.stop(grace=0.5))
        assert call_error(ports[0], timeout=2).code() == grpc.StatusCode.UNAVAILABLE
        assert isinstance(rt.runner, Runner) and rt.runner.ports.servers == {}


def test_the_commented_port_routing_services_are_valid() -> None:
    text = (Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "service.yaml").read_text()
    commented = text.split("# ---", 1)[1]
    body = "\n".join(line.removeprefix("#").removeprefix(" ") for line in commented.splitlines())
    docs = [d for d in yaml.safe_load_all("---\n" + body) if d]
    assert len(docs) >= 2
    targets = {}
    for svc in docs:
        assert svc["kind"] == "Service" and "clusterIP" not in svc["spec"]  # headless would skip targetPort
        (port,) = svc["spec"]["ports"]
        assert port["port"] == 9443 and isinstance(port["targetPort"], int)
        targets[svc["metadata"]["name"]] = port["targetPort"]
    example = ",".join(f"{name}={port}" for name, port in targets.items())
    assert f"FUNCTION_PORTS={example}" in text
    assert dict(Settings.load({}, {"FUNCTION_PORTS": example}).function_ports) == targets
