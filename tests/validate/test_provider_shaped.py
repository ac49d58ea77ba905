"""A provider-sized CRD set shaped like Upbound's generated providers (``spec.forProvider`` /
``initProvider``, ``deletionPolicy`` and ``managementPolicies`` with defaults and enums, references
and selectors, ``status.atProvider`` and conditions as a map-list), many resources against it."""

from __future__ import annotations

import random
from typing import Any

from tests.validate.test_validator import crd
from xplane.validate import Resource, SchemaSet, validate_resources

SCALARS = ("string", "integer", "number", "boolean")


def _parameters(rng: random.Random, n: int) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for i in range(n):
        t = SCALARS[i % len(SCALARS)]
        props[f"field{i}"] = {"type": t, "description": f"field {i} of the resource"}
    props["tags"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "x-kubernetes-map-type": "granular",
    }
    props["rules"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "priority": {"type": "number", "minimum": 0}},
        },
    }
    props["regionRef"] = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "policy": {
                "type": "object",
                "properties": {
                    "resolution": {"type": "string", "enum": ["Required", "Optional"], "default": "Required"}
                },
            },
        },
    }
    return props


def provider_crd(rng: random.Random, i: int) -> dict[str, Any]:
    params = _parameters(rng, rng.randint(8, 30))
    spec = {
        "type": "object",
        "required": ["forProvider"],
        "x-kubernetes-validations": [
            {
                "rule": "!('*' in self.managementPolicies || 'Create' in self.managementPolicies) || has(self.forProvider.field0)",
                "message": "spec.forProvider.field0 is a required parameter",
            }
        ],
        "properties": {
            "deletionPolicy": {"type": "string", "enum": ["Orphan", "Delete"], "default": "Delete"},
            "managementPolicies": {
                "type": "array",
                "default": ["*"],
                "items": {
                    "type": "string",
                    "enum": ["Observe", "Create", "Update", "Delete", "LateInitialize", "*"],
                },
            },
            "forProvider": {"type": "object", "properties": params},
            "initProvider": {"type": "object", "properties": params},
            "providerConfigRef": {
                "type": "object",
                "default": {"name": "default"},
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
            },
        },
    }
    status = {
        "type": "object",
        "properties": {
            "atProvider": {"type": "object", "properties": {**params, "id": {"type": "string"}}},
            "conditions": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": {
                    "type": "object",
                    "required": ["lastTransitionTime", "reason", "status", "type"],
                    "properties": {
                        "lastTransitionTime": {"type": "string", "format": "date-time"},
                        "reason": {"type": "string"},
                        "status": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    }
    openapi = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    }
    return crd(f"Thing{i}", f"svc{i % 40}.aws.example.io", "v1beta1", openapi=openapi)


def value_for(schema: dict[str, Any], i: int) -> Any:
    return {"string": f"v{i}", "integer": i, "number": i + 0.5, "boolean": i % 2 == 0}[schema["type"]]


def resource(crd: dict[str, Any], name: str, fields: int) -> dict[str, Any]:
    spec = crd["spec"]
    params = spec["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "forProvider"
    ]
    scalars = [(k, s) for k, s in params["properties"].items() if s.get("type") in SCALARS]
    return {
        "apiVersion": f"{spec['group']}/v1beta1",
        "kind": spec["names"]["kind"],
        "metadata": {"name": name},
        "spec": {
            "forProvider": {k: value_for(s, i) for i, (k, s) in enumerate(scalars[:fields])}
            | {"tags": {"team": "platform"}, "regionRef": {"name": "eu"}},
        },
    }


def test_a_provider_sized_set_counts_and_texts() -> None:
    rng = random.Random(5)
    crds = [provider_crd(rng, i) for i in range(300)]
    schemas = SchemaSet()
    for c in crds:
        assert schemas.add(c)
    assert len(schemas) == 300
    resources = [resource(crds[i % 300], f"r{i}", 6) for i in range(600)]
    # five kinds of mistakes, each on its own resource
    bad_type = resources[1]["spec"]["forProvider"]
    bad_type["field1"] = "seven"  # field1 is an integer
    resources[2]["spec"]["forProvider"]["colour"] = "red"  # unknown
    del resources[3]["spec"]["forProvider"]["field0"]  # CEL: required while managed
    resources[4]["spec"]["deletionPolicy"] = "Keep"  # enum
    resources[5]["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Available",
                "lastTransitionTime": "2026-12-05T10:00:00Z",
            },
            {"type": "Ready", "status": "False", "reason": "Creating", "lastTransitionTime": "yesterday"},
        ]
    }
    resources.append({**resource(crds[0], "nope", 3), "kind": "NotAKind"})
    before = repr(resources)
    report = validate_resources(schemas, [Resource(r) for r in resources])
    assert repr(resources) == before  # defaults went to copies
    assert (report.total, report.valid, report.invalid, report.missing) == (601, 595, 5, 1)
    lines = report.lines(skip_success=True)
    gvk = lambda i: f"svc{i % 40}.aws.example.io/v1beta1, Kind=Thing{i}"  # noqa: E731
    assert lines == [
        f'[x] schema validation error {gvk(1)}, r1 : spec.forProvider.field1: Invalid value: "string": '
        'spec.forProvider.field1 in body must be of type integer: "string"',
        f'[x] schema validation error {gvk(2)}, r2 : spec.forProvider.colour: Invalid value: "colour": '
        'unknown field: "colour"',
        f'[x] CEL validation error {gvk(3)}, r3 : spec: Invalid value: "object": '
        "spec.forProvider.field0 is a required parameter",
        f'[x] schema validation error {gvk(4)}, r4 : spec.deletionPolicy: Unsupported value: "Keep": '
        'supported values: "Orphan", "Delete"',
        # the OpenAPI errors first, then list-type uniqueness (as the API server appends them)
        f"[x] schema validation error {gvk(5)}, r5 : status.conditions[1].lastTransitionTime: Invalid value: "
        '"yesterday": status.conditions[1].lastTransitionTime in body must be of type date-time: "yesterday"',
        f"[x] schema validation error {gvk(5)}, r5 : status.conditions[1]: Duplicate value: "
        'map[string]interface {}{"type":"Ready"}',  # Go's %#v, as field.Duplicate prints it
        "[!] could not find CRD/XRD for: svc0.aws.example.io/v1beta1, Kind=NotAKind",
        "Total 601 resources: 1 missing schemas, 595 success cases, 5 failure cases",
    ]
