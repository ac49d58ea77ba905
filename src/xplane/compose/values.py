"""Struct <-> plain values, with Kubernetes' number rules (integral floats are integers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2


def struct_from(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A Struct holding ``value``."""
    s = struct_pb2.Struct()
    s.update(value)
    return s


def to_plain(msg: struct_pb2.Struct | struct_pb2.ListValue) -> Any:
    """The plain Python value of a Struct or ListValue; integral numbers become ``int``."""
    if isinstance(msg, struct_pb2.Struct):
        fields = msg.fields
        return {k: _plain(fields[k]) for k in fields}
    return [_plain(v) for v in msg.values]


_which = struct_pb2.Value.WhichOneof  # unbound: no attribute lookup per value


def _plain(v: struct_pb2.Value) -> Any:
    # The hot path of every render: one WhichOneof per value, the commonest kinds first. A map is
    # read key by key: ``.items()`` on protobuf's map is collections.abc's Python ItemsView (2x slower).
    kind = _which(v, "kind")
    if kind == "string_value":
        return v.string_value
    if kind == "struct_value":
        fields = v.struct_value.fields
        return {k: _plain(fields[k]) for k in fields}
    if kind == "number_value":
        n = v.number_value
        return int(n) if n.is_integer() and -(2**63) < n < 2**63 else n
    if kind == "list_value":
        return [_plain(x) for x in v.list_value.values]
    if kind == "bool_value":
        return v.bool_value
    return None


def normalize(value: Any) -> Any:
    """``value`` with integral floats turned into integers (as a Struct round trip would)."""
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value
