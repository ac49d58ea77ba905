"""XRD → CRD conversion as Crossplane's xcrd package does it (functions.md §4.4)."""

from __future__ import annotations

from typing import Any

import pytest

from xplane.validate import ValidateError, crds_for_xrd, for_composite_resource, for_composite_resource_claim


def xrd(
    scope: str | None = None, *, claim: bool = False, api: str = "apiextensions.crossplane.io/v2", **spec: Any
) -> dict[str, Any]:
    s: dict[str, Any] = {
        "group": "example.org",
        "names": {"kind": "XNet", "plural": "xnets"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "referenceable": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "A network.",
                        "x-kubernetes-validations": [{"rule": "has(self.spec)"}],
                        "properties": {
                            "metadata": {
                                "type": "object",
                                "properties": {"name": {"type": "string", "maxLength": 20}},
                            },
                            "spec": {
                                "type": "object",
                                "description": "Desired.",
                                "required": ["cidr"],
                                "x-kubernetes-validations": [{"rule": "self.cidr != ''"}],
                                "properties": {"cidr": {"type": "string"}},
                            },
                            "status": {"type": "object", "properties": {"id": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
        **spec,
    }
    if scope is not None:
        s["scope"] = scope
    if claim:
        s["claimNames"] = {"kind": "Net", "plural": "nets"}
    return {
        "apiVersion": api,
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": "xnets.example.org", "labels": {"l": "1"}},
        "spec": s,
    }


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_namespaced_v2_xrd_gets_one_crossplane_object_without_resource_ref_namespaces() -> None:
    crd = for_composite_resource(xrd("Namespaced"))
    assert crd["metadata"]["name"] == "xnets.example.org"
    assert crd["metadata"]["labels"] == {"l": "1"}
    assert crd["metadata"]["ownerReferences"][0]["kind"] == "CompositeResourceDefinition"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["categories"] == ["composite"]
    v = crd["spec"]["versions"][0]
    assert (v["served"], v["storage"], v["subresources"]) == (True, True, {"status": {}})
    assert [c["name"] for c in v["additionalPrinterColumns"]] == [
        "SYNCED",
        "READY",
        "COMPOSITION",
        "COMPOSITIONREVISION",
        "AGE",
    ]
    s = schema_of(crd)
    assert s["required"] == ["spec"]
    assert s["description"] == "A network."
    assert s["x-kubernetes-validations"] == [{"rule": "has(self.spec)"}]
    assert s["properties"]["metadata"] == {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}},
    }
    spec = s["properties"]["spec"]
    assert spec["required"] == ["cidr"] and spec["description"] == "Desired."
    assert spec["x-kubernetes-validations"] == [{"rule": "self.cidr != ''"}]
    assert set(spec["properties"]) == {"cidr", "crossplane"}
    cp = spec["properties"]["crossplane"]["properties"]
    assert set(cp) == {
        "compositionRef",
        "compositionSelector",
        "compositionRevisionRef",
        "compositionRevisionSelector",
        "compositionUpdatePolicy",
        "resourceRefs",
    }
    assert "namespace" not in cp["resourceRefs"]["items"]["properties"]
    assert cp["resourceRefs"]["x-kubernetes-list-type"] == "atomic"
    assert cp["compositionUpdatePolicy"] == {"type": "string", "enum": ["Automatic", "Manual"]}
    status = s["properties"]["status"]["properties"]
    assert set(status) == {"id", "conditions"}
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["conditions"]["items"]["required"] == ["lastTransitionTime", "reason", "status", "type"]


def test_cluster_scope_keeps_resource_ref_namespaces_and_default_policy() -> None:
    crd = for_composite_resource(xrd("Cluster", defaultCompositionUpdatePolicy="Manual"))
    assert crd["spec"]["scope"] == "Cluster"
    cp = schema_of(crd)["properties"]["spec"]["properties"]["crossplane"]["properties"]
    assert "namespace" in cp["resourceRefs"]["items"]["properties"]
    assert cp["compositionUpdatePolicy"]["default"] == "Manual"


@pytest.mark.parametrize("scope", [None, "LegacyCluster"])
def test_legacy_or_missing_scope_puts_the_fields_directly_under_spec(scope: str | None) -> None:
    crd = for_composite_resource(xrd(scope, api="apiextensions.crossplane.io/v1"))
    assert crd["spec"]["scope"] == "Cluster"
    spec = schema_of(crd)["properties"]["spec"]["properties"]
    assert {"claimRef", "writeConnectionSecretToRef", "compositionRef", "resourceRefs"} <= set(spec)
    assert "crossplane" not in spec
    assert spec["writeConnectionSecretToRef"]["required"] == ["name", "namespace"]
    status = schema_of(crd)["properties"]["status"]["properties"]
    assert status["claimConditionTypes"]["x-kubernetes-list-type"] == "set"
    assert "lastPublishedTime" in status["connectionDetails"]["properties"]


def test_metadata_name_max_length_is_63_unless_the_xrd_says_less() -> None:
    x = xrd("Namespaced")
    del x["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"]
    assert (
        schema_of(for_composite_resource(x))["properties"]["metadata"]["properties"]["name"]["maxLength"]
        == 63
    )


def test_claim_crd_is_namespaced_with_claim_fields() -> None:
    x = xrd(None, claim=True, api="apiextensions.crossplane.io/v1", defaultCompositeDeletePolicy="Foreground")
    xr, claim = crds_for_xrd(x)
    assert xr["metadata"]["name"] == "xnets.example.org"
    assert claim["metadata"]["name"] == "nets.example.org"
    assert claim["spec"]["scope"] == "Namespaced"
    assert claim["spec"]["names"] == {"kind": "Net", "plural": "nets", "categories": ["claim"]}
    spec = schema_of(claim)["properties"]["spec"]["properties"]
    assert {"compositeDeletePolicy", "resourceRef", "writeConnectionSecretToRef", "cidr"} <= set(spec)
    assert spec["compositeDeletePolicy"] == {
        "type": "string",
        "enum": ["Background", "Foreground"],
        "default": "Foreground",
    }
    assert spec["writeConnectionSecretToRef"]["required"] == ["name"]


def test_claim_names_equal_to_the_xr_names_are_refused() -> None:
    x = xrd(None, claim=True)
    x["spec"]["claimNames"] = {"kind": "XNet", "plural": "xnets"}
    with pytest.raises(ValidateError, match="must differ"):
        for_composite_resource_claim(x)
