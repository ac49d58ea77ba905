"""Struct <-> plain values (xplane.compose.values): what every render's output is made of."""

from __future__ import annotations

import json
import random
from typing import Any

from google.protobuf import json_format, struct_pb2

from xplane.compose.values import normalize, struct_from, to_plain


def _random_value(rng: random.Random, depth: int) -> Any:
    kinds = ["str", "int", "float", "bool", "null"] + (["dict", "list"] if depth < 5 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(["", "a", "true", "0", "ünïcode", "multi\nline", "x" * rng.randint(1, 40)])
    if kind == "int":
        return rng.randint(-(2**40), 2**40)
    if kind == "float":
        return rng.choice([0.5, -1.25, 1e-9, 3.0e20, 2.5e300])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "dict":
        return {f"k{i}-{rng.randint(0, 99)}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 5))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def test_to_plain_matches_protobufs_own_conversion_on_random_documents() -> None:
    """Against json_format.MessageToDict (protobuf's reference), with integral numbers as ints."""
    rng = random.Random(12)
    for _ in range(300):
        doc = {f"top{i}": _random_value(rng, 0) for i in range(rng.randint(0, 6))}
        s = struct_from(doc)
        want = normalize(json_format.MessageToDict(s))
        got = to_plain(s)
        assert got == want
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)  # ints stay ints
        assert got == normalize(doc)


def test_integral_numbers_become_ints_and_others_stay_floats() -> None:
    s = struct_from({"i": 3, "f": 3.0, "half": 2.5, "neg": -7.0, "big": 2.0**70, "tiny": 1e-300})
    out = to_plain(s)
    assert out == {"i": 3, "f": 3, "half": 2.5, "neg": -7, "big": 2.0**70, "tiny": 1e-300}
    assert type(out["f"]) is int and type(out["neg"]) is int
    assert type(out["big"]) is float  # outside int64: Kubernetes keeps it a float, so do we


def test_empty_and_nested_containers() -> None:
    s = struct_from({"e": {}, "l": [], "n": [[{"x": None}], {"y": [True, False]}]})
    assert to_plain(s) == {"e": {}, "l": [], "n": [[{"x": None}], {"y": [True, False]}]}


def test_a_list_value_converts_too() -> None:
    lv = struct_pb2.ListValue()
    lv.extend(["a", 1, 1.5, None, {"k": "v"}])
    assert to_plain(lv) == ["a", 1, 1.5, None, {"k": "v"}]


def test_a_value_with_no_kind_set_is_null() -> None:
    s = struct_pb2.Struct()
    s.fields["unset"].SetInParent()  # a Value whose oneof holds nothing
    assert to_plain(s) == {"unset": None}


def test_normalize_is_what_a_struct_round_trip_does() -> None:
    value = {"a": [1.0, 2.5, {"b": 4.0}], 7: True, "c": None, "d": "4.0"}
    assert normalize(value) == {"a": [1, 2.5, {"b": 4}], "7": True, "c": None, "d": "4.0"}
    assert normalize({"x": [1.0, 2.0**70]}) == to_plain(struct_from({"x": [1.0, 2.0**70]}))
