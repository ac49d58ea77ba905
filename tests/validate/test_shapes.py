"""CRDs and XRDs with fields of the wrong type: refused with the field named, nothing of them indexed,
and never a Python error from the walks that validate, default, prune or convert."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from tests.support.mutate import mutate
from tests.validate.test_validator import crd
from tests.validate.test_xrd import xrd
from xplane.validate import Resource, SchemaSet, ValidateError, validate_resources

NAME = "buckets.s3.example.org"
SPEC = "spec.versions[0].schema.openAPIV3Schema.properties[spec]"


def _spec_schema(doc: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda s: s["properties"].update(forProvider=[1]),
            f"{SPEC}.properties[forProvider] is an array; want an object (a schema)",
        ),
        (lambda s: s.update(required=["forProvider", 3]), f"{SPEC}.required[1] is an integer; want a string"),
        (
            lambda s: s.update(required="forProvider"),
            f"{SPEC}.required is a string; want an array of strings",
        ),
        (lambda s: s.update(maxProperties="3"), f"{SPEC}.maxProperties is a string; want an integer"),
        (lambda s: s.update(maxProperties=True), f"{SPEC}.maxProperties is a boolean; want an integer"),
        (lambda s: s.update(minimum="1"), f"{SPEC}.minimum is a string; want a number"),
        (lambda s: s.update(nullable="yes"), f"{SPEC}.nullable is a string; want a boolean"),
        (lambda s: s.update(properties=[]), f"{SPEC}.properties is an array; want an object"),
        (
            lambda s: s.update(items=[{"type": "string"}]),
            f"{SPEC}.items is an array; want an object (a schema, not an array of them)",
        ),
        (
            lambda s: s.update(allOf={"type": "object"}),
            f"{SPEC}.allOf is an object; want an array of schemas",
        ),
        (
            lambda s: s.update(anyOf=[{"required": 1}]),
            f"{SPEC}.anyOf[0].required is an integer; want an array of strings",
        ),
        (lambda s: s.update({"not": "x"}), f"{SPEC}.not is a string; want an object (a schema)"),
        (
            lambda s: s.update(additionalProperties=[1]),
            f"{SPEC}.additionalProperties is an array; want an object (a schema)",
        ),
        (lambda s: s.update(enum="a"), f"{SPEC}.enum is a string; want an array"),
        (
            lambda s: s["properties"]["forProvider"].update({"x-kubernetes-validations": ["self.x"]}),
            f"{SPEC}.properties[forProvider].x-kubernetes-validations[0] is a string; want an object",
        ),
        (
            lambda s: s["properties"]["forProvider"].update({"x-kubernetes-validations": [{"rule": 1}]}),
            f"{SPEC}.properties[forProvider].x-kubernetes-validations[0].rule is an integer; want a string",
        ),
    ],
)
def test_a_crd_schema_of_the_wrong_shape_is_refused_naming_the_field(change: Any, problem: str) -> None:
    doc = crd()
    change(_spec_schema(doc))
    schemas = SchemaSet()
    with pytest.raises(ValidateError) as e:
        schemas.add(doc)
    assert e.value.message == f"CRD {NAME}: {problem}"
    assert schemas.lookup("s3.example.org/v1", "Bucket") is None and len(schemas) == 0


def test_no_version_of_a_crd_is_indexed_when_one_is_malformed() -> None:
    doc = crd()
    good = copy.deepcopy(doc["spec"]["versions"][0])
    good["name"] = "v2"
    good["schema"]["openAPIV3Schema"]["properties"]["spec"]["maxLength"] = "x"
    doc["spec"]["versions"].append(good)
    schemas = SchemaSet()
    with pytest.raises(ValidateError, match=r"spec.versions\[1\]"):
        schemas.add(doc)
    assert len(schemas) == 0


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["spec"].update(versions={"v1": {}}), "spec.versions is an object; want an array"),
        (lambda d: d["spec"].update(names=["XNet"]), "spec.names is an array; want an object"),
        (lambda d: d["spec"]["names"].update(kind=1), "spec.names.kind is an integer; want a string"),
        (lambda d: d["spec"].update(claimNames="Net"), "spec.claimNames is a string; want an object"),
        (
            lambda d: d["metadata"]["labels"].update(l=2),
            "metadata.labels.l is an integer; want a string",
        ),
        (
            lambda d: d["spec"].update(connectionSecretKeys=[1]),
            "spec.connectionSecretKeys[0] is an integer; want a string",
        ),
        (
            lambda d: d["spec"]["versions"][0].update(served="yes"),
            "spec.versions[0].served is a string; want a boolean",
        ),
        (
            lambda d: _spec_schema(d).update(required=[{"a": 1}]),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].required[0] is an object; want a string",
        ),
        (
            lambda d: _spec_schema(d).update(properties={"cidr": "string"}),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[cidr] is a string; "
            "want an object (a schema)",
        ),
    ],
)
def test_an_xrd_of_the_wrong_shape_is_refused_before_it_becomes_crds(change: Any, problem: str) -> None:
    doc = xrd(claim=True)
    change(doc)
    schemas = SchemaSet()
    with pytest.raises(ValidateError) as e:
        schemas.add(doc)
    assert e.value.message == f"XRD xnets.example.org: {problem}"
    assert len(schemas) == 0


def test_the_documents_shapes_checked_are_still_accepted_when_right() -> None:
    schemas = SchemaSet()
    assert schemas.add(crd()) and schemas.add(xrd(claim=True))
    claim = {"apiVersion": "example.org/v1", "kind": "Net", "metadata": {"name": "n", "namespace": "a"}}
    report = validate_resources(schemas, [Resource({**claim, "spec": {"cidr": ""}})])
    assert report.invalid == 1  # the XRD's CEL rule still runs


def test_random_wrong_types_in_crds_xrds_and_resources_end_in_a_report_or_a_validate_error() -> None:
    """Any field replaced by a value of another type (or removed): a report, or the document refused."""
    resources = [
        {
            "apiVersion": "s3.example.org/v1",
            "kind": "Bucket",
            "metadata": {"name": "b"},
            "spec": {"forProvider": {"region": "eu", "acl": "public"}},
        },
        {
            "apiVersion": "example.org/v1",
            "kind": "Net",
            "metadata": {"name": "n", "namespace": "a"},
            "spec": {"cidr": "x"},
        },
    ]
    rng = random.Random(13)
    refused = reported = 0
    for _ in range(400):
        docs = [crd(), xrd(claim=True)]
        objs = copy.deepcopy(resources)
        mutate(rng, docs + objs)
        schemas = SchemaSet()
        for d in docs:
            try:
                schemas.add(d)
            except ValidateError as e:
                assert e.message
                refused += 1
        report = validate_resources(schemas, [Resource(o, "x") for o in objs])
        report.lines()
        report.to_dict()
        reported += 1
    assert refused and reported == 400
