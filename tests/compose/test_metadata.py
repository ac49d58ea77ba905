"""Render's composed-resource metadata (functions.md §3.6 item 2): ``ComposedMetadata``."""

from __future__ import annotations

from typing import Any

import pytest

from xplane.compose import ComposeError
from xplane.compose.classic import COMPOSITE_LABEL, RESOURCE_NAME_ANNOTATION, ComposedMetadata
from xplane.compose.shapes import ShapeError

XR: dict[str, Any] = {
    "apiVersion": "example.org/v1",
    "kind": "XBucket",
    "metadata": {"name": "my-xr", "uid": "uid-1"},
}
OWNER = {
    "apiVersion": "example.org/v1",
    "kind": "XBucket",
    "name": "my-xr",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def meta(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = doc["metadata"]
    return out


def test_a_bare_resource_gets_generate_name_label_annotation_and_owner() -> None:
    out = ComposedMetadata(XR, {}).apply({"kind": "Thing"}, "bucket")
    assert out == {
        "kind": "Thing",
        "metadata": {
            "generateName": "my-xr-",
            "annotations": {RESOURCE_NAME_ANNOTATION: "bucket"},
            "labels": {COMPOSITE_LABEL: "my-xr"},
            "ownerReferences": [OWNER],
        },
    }


def test_the_composite_label_of_the_xr_is_the_prefix_and_claim_labels_need_both() -> None:
    xr = {
        **XR,
        "metadata": {
            **XR["metadata"],
            "labels": {COMPOSITE_LABEL: "parent", "crossplane.io/claim-name": "c"},
        },
    }
    only_name = ComposedMetadata(xr, {}).apply({}, "a")
    assert meta(only_name)["generateName"] == "parent-"
    assert meta(only_name)["labels"] == {COMPOSITE_LABEL: "parent"}
    xr["metadata"]["labels"]["crossplane.io/claim-namespace"] = "team"
    both = ComposedMetadata(xr, {}).apply({}, "a")
    assert meta(both)["labels"] == {
        COMPOSITE_LABEL: "parent",
        "crossplane.io/claim-name": "c",
        "crossplane.io/claim-namespace": "team",
    }


def test_names_are_kept_from_the_observed_resource_and_the_namespace_from_the_xr() -> None:
    xr = {**XR, "metadata": {**XR["metadata"], "namespace": "ns"}}
    observed = {"a": {"metadata": {"name": "a-abcde", "generateName": "my-xr-", "namespace": "old"}}}
    out = ComposedMetadata(xr, observed).apply({"metadata": {"labels": {"x": "y"}}}, "a")
    assert meta(out)["name"] == "a-abcde"
    assert meta(out)["generateName"] == "my-xr-"
    assert meta(out)["namespace"] == "ns"
    assert meta(out)["labels"] == {"x": "y", COMPOSITE_LABEL: "my-xr"}
    named = ComposedMetadata(XR, {}).apply({"metadata": {"name": "fixed"}}, "b")
    assert "generateName" not in meta(named)


def test_every_resource_gets_an_owner_reference_of_its_own() -> None:
    cm = ComposedMetadata(XR, {})
    a, b = cm.apply({}, "a"), cm.apply({}, "b")
    meta(a)["ownerReferences"][0]["name"] = "changed"
    assert meta(b)["ownerReferences"] == [OWNER]
    assert cm.apply({}, "c")["metadata"]["ownerReferences"] == [OWNER]


def test_owner_references_the_function_set() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "uid-2"}
    cm = ComposedMetadata(XR, {})
    kept = cm.apply({"metadata": {"ownerReferences": [other]}}, "a")
    assert meta(kept)["ownerReferences"] == [other, OWNER]
    already = cm.apply({"metadata": {"ownerReferences": [dict(OWNER)]}}, "b")
    assert meta(already)["ownerReferences"] == [OWNER]
    foreign = {**other, "controller": True}
    for refs in ([foreign], [dict(OWNER), foreign], [foreign, dict(OWNER)]):
        with pytest.raises(ComposeError, match='already controlled by ConfigMap "cm"'):
            cm.apply({"metadata": {"ownerReferences": refs}}, "c")


class Label(str):
    """A str subclass, as a library caller might hand over: accepted like a str."""


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([], "metadata is an array; want an object"),
        ({"name": 3}, "metadata.name is an integer; want a string"),
        ({"labels": ["a"]}, "metadata.labels is an array; want an object"),
        ({"labels": {"a": "b", "tier": 1}}, "metadata.labels.tier is an integer; want a string"),
        ({"annotations": {"a": None}}, "metadata.annotations.a is null; want a string"),
        ({"ownerReferences": {}}, "metadata.ownerReferences is an object; want an array"),
        ({"ownerReferences": ["x"]}, r"metadata.ownerReferences\[0\] is a string; want an object"),
    ],
)
def test_metadata_of_the_wrong_type_names_the_field(metadata: Any, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        ComposedMetadata(XR, {}).apply({"metadata": metadata}, "a")


def test_null_fields_read_as_absent_and_subclasses_are_accepted() -> None:
    doc = {"metadata": {"labels": None, "annotations": {"k": Label("v")}, "ownerReferences": None}}
    out = ComposedMetadata(XR, {}).apply(doc, "a")
    assert meta(out)["labels"] == {COMPOSITE_LABEL: "my-xr"}
    assert meta(out)["annotations"] == {"k": "v", RESOURCE_NAME_ANNOTATION: "a"}
    assert meta(out)["ownerReferences"] == [OWNER]
