"""The gRPC side: v1 and v1beta1 clients, routing, health, reflection, faults, message sizes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.fn.runner_fixtures import RunnerThread, running, test_settings, write_function, xr_request
from xplane.fn.proto import fnv1, fnv1beta1, grpcv1, grpcv1beta1


@pytest.fixture
def one(tmp_path: Path) -> Iterator[RunnerThread]:
    write_function(tmp_path, "function-hello", message="hi")
    with running(test_settings(tmp_path)) as rt:
        yield rt


@pytest.fixture
def two(tmp_path: Path) -> Iterator[RunnerThread]:
    write_function(tmp_path, "function-a", message="A")
    write_function(tmp_path, "b", message="B")
    with running(test_settings(tmp_path)) as rt:
        yield rt


def test_v1_client_gets_the_response_and_tag(one: RunnerThread) -> None:
    with grpc.insecure_channel(one.grpc_target) as ch:
        rsp = grpcv1.FunctionRunnerServiceStub(ch).RunFunction(xr_request("abc"), timeout=10)
    assert rsp.meta.tag == "abc"
    assert [r.message for r in rsp.results] == ["hi from function-hello"]
    assert rsp.results[0].severity == fnv1.SEVERITY_NORMAL


def test_v1beta1_client_is_served_by_the_same_function(one: RunnerThread) -> None:
    req = fnv1beta1.RunFunctionRequest.FromString(xr_request("beta").SerializeToString())
    with grpc.insecure_channel(one.grpc_target) as ch:
        rsp = grpcv1beta1.FunctionRunnerServiceStub(ch).RunFunction(req, timeout=10)
    assert isinstance(rsp, fnv1beta1.RunFunctionResponse)
    assert rsp.meta.tag == "beta"
    assert rsp.results[0].message == "hi from function-hello"
    assert rsp.desired == req.desired


def test_health_and_reflection(one: RunnerThread) -> None:
    with grpc.insecure_channel(one.grpc_target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "apiextensions.fn.proto.v1.FunctionRunnerService"):
            got = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert got.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        answers = list(
            stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        )
    names = {s.name for s in answers[0].list_services_response.service}
    assert {
        "apiextensions.fn.proto.v1.FunctionRunnerService",
        "apiextensions.fn.proto.v1beta1.FunctionRunnerService",
        "grpc.health.v1.Health",
    } <= names


def test_one_function_takes_every_call_whatever_the_metadata(one: RunnerThread) -> None:
    with grpc.insecure_channel(one.grpc_target) as ch:
        rsp = grpcv1.FunctionRunnerServiceStub(ch).RunFunction(
            xr_request(), metadata=(("x-xplane-function", "other"),), timeout=10
        )
    assert rsp.results[0].message == "hi from function-hello"


def test_several_functions_route_by_metadata_key(two: RunnerThread) -> None:
    with grpc.insecure_channel(two.grpc_target) as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        a = stub.RunFunction(xr_request(), metadata=(("x-xplane-function", "function-a"),), timeout=10)
        b = stub.RunFunction(xr_request(), metadata=(("x-xplane-function", "b"),), timeout=10)
    assert a.results[0].message == "A from function-a"
    assert b.results[0].message == "B from b"


def test_several_functions_route_by_authority_host(two: RunnerThread) -> None:
    # grpcio's asyncio server does not expose the HTTP/2 :authority; a proxy-set host header is used.
    with grpc.insecure_channel(two.grpc_target) as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        a = stub.RunFunction(
            xr_request(), metadata=(("x-forwarded-host", "a.crossplane-system:9443"),), timeout=10
        )
        b = stub.RunFunction(xr_request(), metadata=(("x-forwarded-host", "function-b.ns.svc"),), timeout=10)
    assert a.results[0].message == "A from function-a"
    assert b.results[0].message == "B from b"


def test_unroutable_call_is_not_found_listing_the_loaded_functions(two: RunnerThread) -> None:
    with grpc.insecure_channel(two.grpc_target) as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        with pytest.raises(grpc.RpcError) as nokey:
            stub.RunFunction(xr_request(), timeout=10)
        with pytest.raises(grpc.RpcError) as wrong:
            stub.RunFunction(xr_request(), metadata=(("x-xplane-function", "nope"),), timeout=10)
    assert nokey.value.code() == grpc.StatusCode.NOT_FOUND
    assert "loaded functions: b, function-a" in nokey.value.details()
    assert wrong.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'nope'" in wrong.value.details() and "b, function-a" in wrong.value.details()


def test_malformed_request_is_invalid_argument_and_runner_stays_healthy(one: RunnerThread) -> None:
    with grpc.insecure_channel(one.grpc_target) as ch:
        raw = ch.unary_unary("/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction")
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\xff\xff\xff\xff garbage", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "malformed RunFunctionRequest" in err.value.details()
        ok = grpcv1.FunctionRunnerServiceStub(ch).RunFunction(xr_request(), timeout=10)
    assert ok.results[0].message == "hi from function-hello"


def test_oversized_request_is_refused_naming_the_limit(tmp_path: Path) -> None:
    write_function(tmp_path, "f")
    with (
        running(test_settings(tmp_path, max_message_size=64 * 1024)) as rt,
        grpc.insecure_channel(rt.grpc_target) as ch,
    ):
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        big = xr_request()
        big.input.update({"blob": "x" * 100_000})
        with pytest.raises(grpc.RpcError) as err:
            stub.RunFunction(big, timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(64 * 1024) in err.value.details()
        assert stub.RunFunction(xr_request(), timeout=10).results[0].message == "hello from f"


def test_oversized_response_is_refused_naming_the_flag(tmp_path: Path) -> None:
    write_function(tmp_path, "f", pad=200_000)
    with (
        running(test_settings(tmp_path, max_message_size=64 * 1024)) as rt,
        grpc.insecure_channel(rt.grpc_target) as ch,
        pytest.raises(grpc.RpcError) as err,
    ):
        grpcv1.FunctionRunnerServiceStub(ch).RunFunction(xr_request(), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-message-size" in err.value.details() and "65536 bytes" in err.value.details()


def test_a_larger_limit_lets_a_5mb_request_through(tmp_path: Path) -> None:
    write_function(tmp_path, "f")
    with (
        running(test_settings(tmp_path, max_message_size=16 * 1024 * 1024)) as rt,
        grpc.insecure_channel(rt.grpc_target, options=[("grpc.max_receive_message_length", -1)]) as ch,
    ):
        big = xr_request()
        big.desired.composite.resource.update({"blob": "y" * (5 * 1024 * 1024)})
        rsp = grpcv1.FunctionRunnerServiceStub(ch).RunFunction(big, timeout=20)
    assert rsp.desired.composite.resource["blob"] == "y" * (5 * 1024 * 1024)


def test_xplane_side_failure_is_internal_and_other_functions_keep_serving(tmp_path: Path) -> None:
    write_function(tmp_path, "bad", **{"raise": True})
    write_function(tmp_path, "good", message="fine")
    with running(test_settings(tmp_path)) as rt, grpc.insecure_channel(rt.grpc_target) as ch:
        stub = grpcv1.FunctionRunnerServiceStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.RunFunction(xr_request(), metadata=(("x-xplane-function", "bad"),), timeout=10)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "'bad'" in err.value.details()
        good = stub.RunFunction(xr_request(), metadata=(("x-xplane-function", "good"),), timeout=10)
    assert good.results[0].message == "fine from good"


def test_hanging_function_gets_a_fatal_result_after_its_deadline(tmp_path: Path) -> None:
    write_function(tmp_path, "slow", delay=30)
    with running(test_settings(tmp_path, timeout=0.2)) as rt, grpc.insecure_channel(rt.grpc_target) as ch:
        rsp = grpcv1.FunctionRunnerServiceStub(ch).RunFunction(xr_request("late"), timeout=10)
    assert rsp.meta.tag == "late"
    assert rsp.results[0].severity == fnv1.SEVERITY_FATAL
    assert "did not answer within 0.2s" in rsp.results[0].message


def test_callers_deadline_shortens_the_function_timeout(tmp_path: Path) -> None:
    write_function(tmp_path, "slow", delay=30)
    with running(test_settings(tmp_path)) as rt, grpc.insecure_channel(rt.grpc_target) as ch:
        with pytest.raises(grpc.RpcError) as err:
            grpcv1.FunctionRunnerServiceStub(ch).RunFunction(xr_request(), timeout=0.3)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
