"""Protobuf messages to JSON, fast: the same JSON as ``json_format.MessageToJson``, several times quicker.

Every exec, wasm and HTTP-remote call encodes its ``RunFunctionRequest`` as protobuf JSON, and
``json_format`` walks it in pure Python with many checks per field (about 65 µs for a 2 KB request,
a third of the exec kind's overhead over a bare spawn). This walker works out once per field what
its JSON needs (name, converter) and hands plain Python values to ``orjson``.

The output is the JSON *value* ``json_format.MessageToJson(msg)`` produces (lowerCamelCase names,
fields at their default omitted, 64-bit integers as strings, enums by name, bytes as base64,
``Struct``/``Value``/``ListValue``, ``Duration``, ``Timestamp``, ``FieldMask`` and the wrapper types
in their JSON forms); whitespace and key order may differ. Anything unusual (``Any``, a non-finite
number in a ``Value``, which ``json_format`` refuses) falls back to ``json_format`` itself, so it
fails or succeeds exactly as ``json_format`` does.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["message_to_json"]

Convert = Callable[[Any], Any]


class _Fallback(Exception):
    """This message needs ``json_format`` (a case the fast walker does not cover)."""


def message_to_json(msg: Message) -> bytes:
    """``msg`` as compact protobuf JSON, UTF-8 encoded (the value ``json_format.MessageToJson`` gives)."""
    try:
        out: bytes = orjson.dumps(_message(msg))
        return out
    except _Fallback:
        text: str = json_format.MessageToJson(msg, indent=None)
        return text.encode()


# -- messages --------------------------------------------------------------------------------------
_plans: dict[Descriptor, Callable[[Message], Any]] = {}


def _message(msg: Message) -> Any:
    desc = msg.DESCRIPTOR
    plan = _plans.get(desc)
    if plan is None:
        plan = _plans[desc] = _plan(desc)
    return plan(msg)


def _plan(desc: Descriptor) -> Callable[[Message], Any]:
    special = _WELL_KNOWN.get(desc.full_name)
    if special is not None:
        return special
    if desc.full_name.startswith("google.protobuf."):
        return _fallback  # Any and anything else well-known not handled here
    fields: dict[FieldDescriptor, tuple[str, Convert]] = {}

    def convert(msg: Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field, value in msg.ListFields():
            entry = fields.get(field)
            if entry is None:
                if field.is_extension:
                    raise _Fallback
                entry = fields[field] = (field.json_name, _field_converter(field))
            name, conv = entry
            out[name] = conv(value)
        return out

    return convert


def _field_converter(field: FieldDescriptor) -> Convert:
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_conv = _scalar_converter(field.message_type.fields_by_name["value"])
        key_conv = _map_key(key_field)
        return lambda m: {key_conv(k): value_conv(v) for k, v in m.items()}
    one = _scalar_converter(field)
    if _is_repeated(field):
        return lambda values: [one(v) for v in values]
    return one


def _is_repeated(field: FieldDescriptor) -> bool:
    label = getattr(field, "is_repeated", None)
    if isinstance(label, bool):
        return label
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _map_key(field: FieldDescriptor) -> Convert:
    if field.type == FieldDescriptor.TYPE_BOOL:
        return lambda k: "true" if k else "false"
    if field.type == FieldDescriptor.TYPE_STRING:
        return _same
    return str


_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
    FieldDescriptor.TYPE_SINT64,
}


def _scalar_converter(field: FieldDescriptor) -> Convert:
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE or t == FieldDescriptor.TYPE_GROUP:
        return _message
    if t == FieldDescriptor.TYPE_ENUM:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return _none
        names = {v.number: v.name for v in field.enum_type.values}
        return lambda n: names.get(n, n)
    if t in _INT64:
        return str
    if t == FieldDescriptor.TYPE_BYTES:
        return _base64
    if t == FieldDescriptor.TYPE_DOUBLE:
        return _double
    if t == FieldDescriptor.TYPE_FLOAT:
        return _float32
    return _same  # string, bool, 32-bit integers


def _same(v: Any) -> Any:
    return v


def _none(_v: Any) -> None:
    return None


def _base64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _non_finite(f: float) -> str:
    return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")


def _double(f: float) -> Any:
    return f if math.isfinite(f) else _non_finite(f)


def _float32(f: float) -> Any:
    if not math.isfinite(f):
        return _non_finite(f)
    raise _Fallback  # json_format prints 32-bit floats in their shortest form; rare here: let it


def _fallback(_msg: Message) -> Any:
    raise _Fallback


# -- well-known types --------------------------------------------------------------------------------
def _value(v: Message) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "struct_value":
        return _struct(v.struct_value)
    if kind == "number_value":
        n = v.number_value
        if n - n != 0:  # inf or NaN: json_format refuses these, so fail the same way
            raise _Fallback
        return n
    if kind == "bool_value":
        return v.bool_value
    if kind == "list_value":
        return _list(v.list_value)
    if kind == "null_value":
        return None
    raise _Fallback  # a Value with no kind set: json_format decides


def _struct(s: Message) -> dict[str, Any]:
    value = _value
    return {k: value(v) for k, v in s.fields.items()}


def _list(lv: Message) -> list[Any]:
    return [_value(v) for v in lv.values]


def _json_string(m: Message) -> str:
    return str(m.ToJsonString())


def _wrapper(conv: Convert) -> Callable[[Message], Any]:
    return lambda m: conv(m.value)


_WELL_KNOWN: dict[str, Callable[[Message], Any]] = {
    "google.protobuf.Struct": _struct,
    "google.protobuf.Value": _value,
    "google.protobuf.ListValue": _list,
    "google.protobuf.Duration": _json_string,
    "google.protobuf.Timestamp": _json_string,
    "google.protobuf.FieldMask": _json_string,
    "google.protobuf.Empty": lambda _m: {},
    "google.protobuf.StringValue": _wrapper(_same),
    "google.protobuf.BoolValue": _wrapper(_same),
    "google.protobuf.Int32Value": _wrapper(_same),
    "google.protobuf.UInt32Value": _wrapper(_same),
    "google.protobuf.Int64Value": _wrapper(str),
    "google.protobuf.UInt64Value": _wrapper(str),
    "google.protobuf.DoubleValue": _wrapper(_double),
    "google.protobuf.BytesValue": _wrapper(_base64),
}
