"""Structural-schema validation: every keyword passing and failing, with Kubernetes' error texts."""

from __future__ import annotations

from typing import Any

import pytest

from xplane.validate import apply_defaults, prune_paths, validate_schema


def errs(schema: dict[str, Any], value: Any) -> list[str]:
    root = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"x": schema}}}}
    return [str(e) for e in validate_schema(root, {"spec": {"x": value}})]


CASES: list[tuple[dict[str, Any], Any, Any, str]] = [
    (
        {"type": "integer"},
        3,
        "string",
        'spec.x: Invalid value: "string": spec.x in body must be of type integer: "string"',
    ),
    (
        {"type": "integer"},
        3.0,
        1.5,
        'spec.x: Invalid value: "number": spec.x in body must be of type integer: "number"',
    ),
    (
        {"type": "string"},
        "a",
        True,
        'spec.x: Invalid value: "boolean": spec.x in body must be of type string: "boolean"',
    ),
    (
        {"type": "object"},
        {},
        [],
        'spec.x: Invalid value: "array": spec.x in body must be of type object: "array"',
    ),
    (
        {"type": "string"},
        "a",
        None,
        'spec.x: Invalid value: "null": spec.x in body must be of type string: "null"',
    ),
    (
        {"type": "string", "nullable": True},
        None,
        1,
        'spec.x: Invalid value: "integer": spec.x in body must be of type string: "integer"',
    ),
    (
        {"x-kubernetes-int-or-string": True},
        "80%",
        True,
        'spec.x: Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean"',
    ),
    (
        {"type": "string", "enum": ["a", "b"]},
        "a",
        "c",
        'spec.x: Unsupported value: "c": supported values: "a", "b"',
    ),
    ({"type": "integer", "enum": [1, 2]}, 1, 3, 'spec.x: Unsupported value: 3: supported values: "1", "2"'),
    (
        {"type": "string", "pattern": "^[a-z]+$"},
        "ab",
        "A",
        "spec.x: Invalid value: \"A\": spec.x in body should match '^[a-z]+$'",
    ),
    (
        {"type": "string", "minLength": 2},
        "ab",
        "a",
        'spec.x: Invalid value: "a": spec.x in body should be at least 2 chars long',
    ),
    ({"type": "string", "maxLength": 2}, "ab", "abc", "spec.x: Too long: may not be more than 2 bytes"),
    (
        {"type": "integer", "minimum": 2},
        2,
        1,
        "spec.x: Invalid value: 1: spec.x in body should be greater than or equal to 2",
    ),
    (
        {"type": "integer", "minimum": 2, "exclusiveMinimum": True},
        3,
        2,
        "spec.x: Invalid value: 2: spec.x in body should be greater than 2",
    ),
    (
        {"type": "number", "maximum": 2.5},
        2.5,
        3.5,
        "spec.x: Invalid value: 3.5: spec.x in body should be less than or equal to 2.5",
    ),
    (
        {"type": "integer", "maximum": 2, "exclusiveMaximum": True},
        1,
        2,
        "spec.x: Invalid value: 2: spec.x in body should be less than 2",
    ),
    (
        {"type": "integer", "multipleOf": 5},
        10,
        7,
        "spec.x: Invalid value: 7: spec.x in body should be a multiple of 5",
    ),
    (
        {"type": "array", "minItems": 1, "items": {"type": "string"}},
        ["a"],
        [],
        "spec.x: Invalid value: 0: spec.x in body should have at least 1 items",
    ),
    (
        {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        ["a"],
        ["a", "b"],
        "spec.x: Too many: 2: must have at most 1 items",
    ),
    (
        {"type": "object", "minProperties": 1},
        {"a": 1},
        {},
        "spec.x: Invalid value: 0: spec.x in body should have at least 1 properties",
    ),
    (
        {"type": "object", "maxProperties": 1},
        {"a": 1},
        {"a": 1, "b": 2},
        "spec.x: Invalid value: 2: spec.x in body should have at most 1 properties",
    ),
    (
        {"type": "object", "required": ["region"], "properties": {"region": {"type": "string"}}},
        {"region": "r"},
        {},
        "spec.x.region: Required value",
    ),
    (
        {"type": "string", "format": "date-time"},
        "2024-01-02T03:04:05Z",
        "yesterday",
        'spec.x: Invalid value: "yesterday": spec.x in body must be of type date-time: "yesterday"',
    ),
    (
        {"type": "string", "format": "ipv4"},
        "10.0.0.1",
        "10.0.0.300",
        'spec.x: Invalid value: "10.0.0.300": spec.x in body must be of type ipv4: "10.0.0.300"',
    ),
    (
        {"type": "string", "format": "uuid"},
        "123e4567-e89b-12d3-a456-426614174000",
        "nope",
        'spec.x: Invalid value: "nope": spec.x in body must be of type uuid: "nope"',
    ),
    (
        {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        ["a", "b"],
        ["a", "b", "a"],
        'spec.x[2]: Duplicate value: "a"',
    ),
    (
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}},
        },
        [{"name": "a", "v": 1}, {"name": "b", "v": 1}],
        [{"name": "a", "v": 1}, {"name": "a", "v": 2}],
        'spec.x[1]: Duplicate value: map[string]interface {}{"name":"a"}',
    ),
    (
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        },
        {"apiVersion": "v1", "kind": "ConfigMap"},
        {"kind": "ConfigMap"},
        "spec.x.apiVersion: Required value",
    ),
    (
        {"type": "array", "items": {"type": "integer"}},
        [1],
        [1, "a"],
        'spec.x[1]: Invalid value: "string": spec.x[1] in body must be of type integer: "string"',
    ),
]


@pytest.mark.parametrize(("schema", "good", "bad", "message"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_keyword_passes_and_fails_with_kubernetes_text(
    schema: dict[str, Any], good: Any, bad: Any, message: str
) -> None:
    assert errs(schema, good) == []
    assert errs(schema, bad) == [message]


def test_unknown_fields_are_pruned_paths_except_where_preserved() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "known": {"type": "string"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "map": {
                        "type": "object",
                        "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}},
                    },
                    "list": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"a": {"type": "string"}}},
                    },
                    "tpl": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {"spec": {"type": "object"}},
                    },
                },
            }
        },
    }
    obj = {
        "apiVersion": "x/v1",
        "kind": "K",
        "metadata": {"name": "n", "labels": {"a": "b"}},
        "spec": {
            "known": "k",
            "extra": 1,
            "free": {"anything": {"goes": 1}},
            "map": {"k": {"a": "x", "b": "y"}},
            "list": [{"a": "x"}, {"zz": 1}],
            "tpl": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c"},
                "spec": {},
                "data": {},
            },
        },
    }
    assert prune_paths(schema, obj) == ["spec.extra", "spec.map.k.b", "spec.list[1].zz", "spec.tpl.data"]


def test_defaults_fill_absent_fields_deeply_and_in_list_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "default": {},
                "properties": {
                    "size": {"type": "integer", "default": 5},
                    "opts": {"type": "object", "default": {"a": 1}},
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"w": {"type": "integer", "default": 1}}},
                    },
                },
            }
        },
    }
    obj: dict[str, Any] = {"spec": {"items": [{}, {"w": 3}]}}
    apply_defaults(schema, obj)
    assert obj == {"spec": {"items": [{"w": 1}, {"w": 3}], "size": 5, "opts": {"a": 1}}}
    empty: dict[str, Any] = {}
    apply_defaults(schema, empty)
    assert empty == {"spec": {"size": 5, "opts": {"a": 1}}}
