"""The function protocol's generated types: the only module that imports the SDK's protos.

Also the JSON and v1beta1 conversions every kind and the client share.
"""

from __future__ import annotations

from typing import Any

from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from crossplane.function.proto.v1beta1 import run_function_pb2 as fnv1beta1
from crossplane.function.proto.v1beta1 import run_function_pb2_grpc as grpcv1beta1
from google.protobuf import json_format, struct_pb2

from xplane.fn.protojson import message_to_json

__all__ = [
    "dict_to_struct",
    "fnv1",
    "fnv1beta1",
    "from_v1beta1_response",
    "grpcv1",
    "grpcv1beta1",
    "request_from_json",
    "request_to_json",
    "response_from_json",
    "response_to_json",
    "struct_to_dict",
    "to_v1beta1_request",
]


def request_to_json(req: fnv1.RunFunctionRequest) -> bytes:
    """The request as compact protobuf JSON (camelCase field names), UTF-8 encoded."""
    return message_to_json(req)


def response_from_json(data: bytes | str) -> fnv1.RunFunctionResponse:
    """Parse protobuf JSON into a response; unknown fields are ignored. Raises ``ParseError``."""
    rsp = fnv1.RunFunctionResponse()
    json_format.Parse(data, rsp, ignore_unknown_fields=True)
    return rsp


def response_to_json(rsp: fnv1.RunFunctionResponse) -> bytes:
    """The response as compact protobuf JSON, UTF-8 encoded."""
    return message_to_json(rsp)


def request_from_json(data: bytes | str) -> fnv1.RunFunctionRequest:
    """Parse protobuf JSON into a request. Raises ``ParseError``."""
    req = fnv1.RunFunctionRequest()
    json_format.Parse(data, req, ignore_unknown_fields=True)
    return req


def struct_to_dict(s: struct_pb2.Struct) -> dict[str, Any]:
    """A ``Struct`` as a plain dict (numbers are floats, as protobuf stores them)."""
    out: dict[str, Any] = json_format.MessageToDict(s, preserving_proto_field_name=True)
    return out


def dict_to_struct(d: dict[str, Any]) -> struct_pb2.Struct:
    """A plain JSON-like dict as a ``Struct``."""
    s = struct_pb2.Struct()
    s.update(d)
    return s


def to_v1beta1_request(req: fnv1.RunFunctionRequest) -> fnv1beta1.RunFunctionRequest:
    """Re-encode a v1 request as v1beta1 (same wire format), as Crossplane's fallback does."""
    out = fnv1beta1.RunFunctionRequest()
    out.ParseFromString(req.SerializeToString())
    return out


def from_v1beta1_response(rsp: fnv1beta1.RunFunctionResponse) -> fnv1.RunFunctionResponse:
    """Re-encode a v1beta1 response as v1."""
    out = fnv1.RunFunctionResponse()
    out.ParseFromString(rsp.SerializeToString())
    return out
