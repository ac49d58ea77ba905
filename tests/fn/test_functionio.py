"""FunctionIO (the old xfn's YAML) to and from the current protocol."""

from __future__ import annotations

import pytest
import yaml

from tests.fn.conftest import make_request
from xplane.fn.kinds.functionio import FunctionIOError, dump_request, parse_response, request_to_functionio
from xplane.fn.proto import fnv1, struct_to_dict


def test_request_to_functionio() -> None:
    req = make_request(replicas=2)
    req.desired.resources["db"].resource.update({"kind": "DB"})
    req.desired.resources["db"].connection_details["user"] = b"admin"
    doc = yaml.safe_load(dump_request(req))
    assert doc["config"] == {"replicas": 2}
    assert doc["observed"]["composite"]["resource"]["metadata"]["name"] == "my-xr"
    assert doc["observed"]["composite"]["connectionDetails"] == [{"name": "password", "value": "s3cret"}]
    assert doc["observed"]["resources"] == [
        {"name": "old", "resource": {"apiVersion": "v1", "kind": "ConfigMap"}}
    ]
    # No desired XR yet: old functions get the observed one to edit.
    assert doc["desired"]["composite"]["resource"]["kind"] == "XBucket"
    assert doc["desired"]["resources"] == [
        {"name": "db", "resource": {"kind": "DB"}, "connectionDetails": [{"name": "user", "value": "admin"}]}
    ]
    assert doc["results"] == []
    assert "apiVersion" not in doc and "kind" not in doc


def test_functionio_to_response() -> None:
    req = make_request(tag="t")
    out = request_to_functionio(req)
    out["desired"]["composite"]["resource"]["status"] = {"ready": True}
    out["desired"]["resources"] = [
        {
            "name": "a",
            "resource": {"kind": "A"},
            "readinessChecks": [{"type": "None"}],
            "connectionDetails": [
                {"name": "k", "value": "v"},
                {"name": "derived", "fromConnectionSecretKey": "x"},
            ],
        },
        {
            "name": "b",
            "resource": {"kind": "B"},
            "readinessChecks": [{"type": "MatchString", "fieldPath": "x"}],
        },
    ]
    out["results"] = [
        {"severity": "Warning", "message": "careful"},
        {"severity": "Normal", "message": "done"},
    ]
    out["apiVersion"], out["kind"] = "apiextensions.crossplane.io/v1alpha1", "FunctionIO"
    rsp = parse_response(yaml.safe_dump(out).encode(), req)
    assert rsp.meta.tag == "t"
    assert struct_to_dict(rsp.desired.composite.resource)["status"] == {"ready": True}
    assert rsp.desired.resources["a"].ready == fnv1.READY_TRUE
    assert dict(rsp.desired.resources["a"].connection_details) == {"k": b"v"}
    assert rsp.desired.resources["b"].ready == fnv1.READY_UNSPECIFIED
    assert [(r.severity, r.message) for r in rsp.results] == [
        (fnv1.SEVERITY_WARNING, "careful"), (fnv1.SEVERITY_NORMAL, "done")]  # fmt: skip
    assert rsp.context == req.context


def test_untouched_seeded_composite_is_not_copied() -> None:
    req = make_request()
    rsp = parse_response(dump_request(req), req)
    assert not rsp.desired.HasField("composite") or not rsp.desired.composite.resource


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just a string", "not a FunctionIO mapping"),
        ("kind: Pod\n", "expected FunctionIO"),
        ("desired: {resources: {a: 1}}\n", "desired.resources must be a list"),
        ("desired: {resources: [{resource: {}}]}\n", "needs a name"),
        ("results: [{severity: Panic, message: x}]\n", "must be Fatal, Warning or Normal"),
        ("a: [unclosed\n", "not YAML"),
    ],
)
def test_bad_functionio(text: str, message: str) -> None:
    with pytest.raises(FunctionIOError, match=message):
        parse_response(text.encode(), make_request())
