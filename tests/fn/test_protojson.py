"""The fast protobuf JSON encoder gives the JSON value ``json_format.MessageToJson`` gives."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, duration_pb2, json_format, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xplane.fn.proto import fnv1, request_to_json, response_to_json
from xplane.fn.protojson import message_to_json


def reference(msg: Message) -> Any:
    return json.loads(json_format.MessageToJson(msg))


def fast(msg: Message) -> Any:
    return json.loads(message_to_json(msg))


# -- values a Struct can hold ---------------------------------------------------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**53), max_value=2**53).map(float),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
names = st.text(min_size=1, max_size=10)


@st.composite
def requests(draw: st.DrawFn) -> fnv1.RunFunctionRequest:
    req = fnv1.RunFunctionRequest()
    req.meta.tag = draw(st.text(max_size=10))
    req.meta.capabilities.extend(draw(st.lists(st.integers(0, 5), max_size=3)))  # 5: not a known value
    req.observed.composite.resource.update(draw(objects))
    for k, v in draw(st.dictionaries(names, st.binary(max_size=16), max_size=3)).items():
        req.observed.composite.connection_details[k] = v
    for name in draw(st.lists(names, max_size=3)):
        res = req.desired.resources[name]
        res.resource.update(draw(objects))
        res.ready = draw(st.sampled_from([0, 1, 2, 7]))
    if draw(st.booleans()):
        req.input.update(draw(objects))
    if draw(st.booleans()):
        req.context.update(draw(objects))
    for name in draw(st.lists(names, max_size=2)):
        req.extra_resources[name].items.add().resource.update(draw(objects))
    for name in draw(st.lists(names, max_size=2)):
        data = req.credentials[name].credential_data.data
        for k, v in draw(st.dictionaries(names, st.binary(max_size=16), max_size=2)).items():
            data[k] = v
    return req


@st.composite
def responses(draw: st.DrawFn) -> fnv1.RunFunctionResponse:
    rsp = fnv1.RunFunctionResponse()
    rsp.meta.tag = draw(st.text(max_size=10))
    rsp.meta.ttl.FromSeconds(draw(st.integers(0, 10**6)))
    if draw(st.booleans()):
        rsp.meta.ttl.nanos = draw(st.integers(0, 999_999_999))
    for _ in range(draw(st.integers(0, 3))):
        r = rsp.results.add()
        r.severity = draw(st.integers(0, 4))
        r.message = draw(st.text(max_size=20))
        if draw(st.booleans()):
            r.reason = draw(st.text(max_size=8))
            r.target = draw(st.integers(0, 3))
    for _ in range(draw(st.integers(0, 2))):
        c = rsp.conditions.add()
        c.type = draw(names)
        c.status = draw(st.integers(0, 3))
    for name in draw(st.lists(names, max_size=2)):
        sel = rsp.requirements.extra_resources[name]
        sel.api_version, sel.kind = "v1", "ConfigMap"
        if draw(st.booleans()):
            sel.match_name = draw(names)
        else:
            for k, v in draw(st.dictionaries(names, names, max_size=2)).items():
                sel.match_labels.labels[k] = v
    rsp.desired.composite.resource.update(draw(objects))
    rsp.context.update(draw(objects))
    return rsp


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_requests_encode_as_json_format_does(req: fnv1.RunFunctionRequest) -> None:
    assert fast(req) == reference(req)
    assert json.loads(request_to_json(req)) == reference(req)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses())
def test_responses_encode_as_json_format_does(rsp: fnv1.RunFunctionResponse) -> None:
    assert fast(rsp) == reference(rsp)
    assert json.loads(response_to_json(rsp)) == reference(rsp)


def test_a_rich_proto2_message_encodes_as_json_format_does() -> None:
    # enums, int32, bools, nested and repeated messages, options: the SDK's own descriptor
    proto = descriptor_pb2.FileDescriptorProto()
    fnv1.DESCRIPTOR.CopyToProto(proto)
    assert fast(proto) == reference(proto)
    assert "messageType" in fast(proto)


@pytest.mark.parametrize(
    "msg",
    [
        duration_pb2.Duration(seconds=90, nanos=500_000_000),
        timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=1000),
        wrappers_pb2.Int64Value(value=2**62),
        wrappers_pb2.BytesValue(value=b"\x00\xff"),
        wrappers_pb2.DoubleValue(value=math.inf),
        wrappers_pb2.FloatValue(value=1.1),  # 32-bit float: json_format's shortest form, via fallback
        struct_pb2.Value(null_value=struct_pb2.NULL_VALUE),
        struct_pb2.ListValue(values=[struct_pb2.Value(number_value=1.5), struct_pb2.Value(bool_value=True)]),
    ],
    ids=lambda m: type(m).__name__,
)
def test_well_known_types(msg: Message) -> None:
    assert fast(msg) == reference(msg)


def test_numbers_json_format_refuses_fail_the_same_way() -> None:
    req = fnv1.RunFunctionRequest()
    req.input.fields["x"].number_value = math.nan
    with pytest.raises(json_format.SerializeToJsonError) as ours:
        message_to_json(req)
    with pytest.raises(json_format.SerializeToJsonError) as theirs:
        json_format.MessageToJson(req)
    assert str(ours.value) == str(theirs.value) and "NaN" in str(ours.value)


def test_64_bit_integers_and_bytes_take_their_json_forms() -> None:
    msg = wrappers_pb2.UInt64Value(value=2**64 - 1)
    assert message_to_json(msg) == b'"18446744073709551615"'
    req = fnv1.RunFunctionRequest()
    req.observed.composite.connection_details["password"] = b"s3cr\x00t"
    assert fast(req)["observed"]["composite"]["connectionDetails"]["password"] == "czNjcgB0"
