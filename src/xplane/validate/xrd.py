"""XRD → CRD, as Crossplane's ``xcrd.ForCompositeResource`` / ``ForCompositeResourceClaim`` build them.

The CRDs are plain dicts (``apiextensions.k8s.io/v1`` CustomResourceDefinition). An XRD of any
``apiextensions.crossplane.io`` version is read as the v1 struct; a missing ``spec.scope`` is
``LegacyCluster`` (what the v1 struct decodes to, even for a v2 XRD, as upstream's validate does).
"""

from __future__ import annotations

import copy
from typing import Any

from xplane.validate.errors import ValidateError

XRD_GROUP = "apiextensions.crossplane.io"
CATEGORY_COMPOSITE = "composite"
CATEGORY_CLAIM = "claim"
MAX_NAME_LENGTH = 63

_S: dict[str, Any] = {"type": "string"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _ref() -> dict[str, Any]:
    return _obj({"name": dict(_S)}, ["name"])


def _selector() -> dict[str, Any]:
    return _obj({"matchLabels": {"type": "object", "additionalProperties": dict(_S)}}, ["matchLabels"])


def _policy(enum: list[str], default: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "enum": enum}
    if default is not None:
        out["default"] = default
    return out


def _resource_refs(namespaced: bool) -> dict[str, Any]:
    props = {"apiVersion": dict(_S), "name": dict(_S), "kind": dict(_S)}
    if not namespaced:
        props["namespace"] = dict(_S)
    return {
        "type": "array",
        "x-kubernetes-list-type": "atomic",
        "items": _obj(props, ["apiVersion", "kind"]),
    }


def composite_spec_props(scope: str, default_policy: str | None) -> dict[str, Any]:
    """The fields Crossplane adds to an XR's ``spec`` (one ``crossplane`` object unless legacy)."""
    common = {
        "compositionRef": _ref(),
        "compositionSelector": _selector(),
        "compositionRevisionRef": _ref(),
        "compositionRevisionSelector": _selector(),
        "compositionUpdatePolicy": _policy(["Automatic", "Manual"], default_policy),
    }
    if scope != "LegacyCluster":
        common["resourceRefs"] = _resource_refs(scope == "Namespaced")
        return {"crossplane": _obj(common)}
    common["claimRef"] = _obj(
        {k: dict(_S) for k in ("apiVersion", "kind", "namespace", "name")},
        ["apiVersion", "kind", "namespace", "name"],
    )
    common["resourceRefs"] = _resource_refs(False)
    common["writeConnectionSecretToRef"] = _obj(
        {"name": dict(_S), "namespace": dict(_S)}, ["name", "namespace"]
    )
    return common


def _conditions() -> dict[str, Any]:
    return {
        "description": "Conditions of the resource.",
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": _obj(
            {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": dict(_S),
                "reason": dict(_S),
                "status": dict(_S),
                "type": dict(_S),
                "observedGeneration": {"type": "integer", "format": "int64"},
            },
            ["lastTransitionTime", "reason", "status", "type"],
        ),
    }


def composite_status_props(scope: str) -> dict[str, Any]:
    """The fields Crossplane adds to an XR's ``status``."""
    out = {"conditions": _conditions()}
    if scope == "LegacyCluster":
        out["connectionDetails"] = _obj({"lastPublishedTime": {"type": "string", "format": "date-time"}})
        out["claimConditionTypes"] = {"type": "array", "x-kubernetes-list-type": "set", "items": dict(_S)}
    return out


def claim_spec_props(default_update: str | None, default_delete: str | None) -> dict[str, Any]:
    """The fields Crossplane adds to a claim's ``spec``."""
    return {
        "compositionRef": _ref(),
        "compositionSelector": _selector(),
        "compositionRevisionRef": _ref(),
        "compositionRevisionSelector": _selector(),
        "compositionUpdatePolicy": _policy(["Automatic", "Manual"], default_update),
        "compositeDeletePolicy": _policy(["Background", "Foreground"], default_delete),
        "resourceRef": _obj(
            {k: dict(_S) for k in ("apiVersion", "kind", "name")}, ["apiVersion", "kind", "name"]
        ),
        "writeConnectionSecretToRef": _obj({"name": dict(_S)}, ["name"]),
    }


def claim_status_props() -> dict[str, Any]:
    """The fields Crossplane adds to a claim's ``status``."""
    return {
        "conditions": _conditions(),
        "connectionDetails": _obj({"lastPublishedTime": {"type": "string", "format": "date-time"}}),
    }


def base_props() -> dict[str, Any]:
    """``xcrd.BaseProps``: the root every XR and claim schema starts from."""
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": dict(_S),
            "kind": dict(_S),
            "metadata": {"type": "object"},
            "spec": {"type": "object"},
            "status": {"type": "object"},
        },
    }


def _printer_columns(claim: bool, scope: str) -> list[dict[str, Any]]:
    cols: list[dict[str, Any]] = [
        {"name": "SYNCED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Synced')].status"},
        {"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
    ]
    if claim:
        cols.append(
            {
                "name": "CONNECTION-SECRET",
                "type": "string",
                "jsonPath": ".spec.writeConnectionSecretToRef.name",
            }
        )
    else:
        prefix = ".spec" if scope == "LegacyCluster" else ".spec.crossplane"
        cols.append({"name": "COMPOSITION", "type": "string", "jsonPath": f"{prefix}.compositionRef.name"})
        cols.append(
            {
                "name": "COMPOSITIONREVISION",
                "type": "string",
                "jsonPath": f"{prefix}.compositionRevisionRef.name",
                "priority": 1,
            }
        )
    cols.append({"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return cols


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Merge an XRD's ``spec``/``status`` schema into the generated one, as ``genCrdVersion`` does."""
    if src.get("required"):
        dst["required"] = list(dst.get("required") or []) + list(src["required"])
    if src.get("x-kubernetes-validations"):
        dst["x-kubernetes-validations"] = list(dst.get("x-kubernetes-validations") or []) + list(
            src["x-kubernetes-validations"]
        )
    if src.get("oneOf"):
        dst["oneOf"] = list(dst.get("oneOf") or []) + list(src["oneOf"])
    if "description" in src:
        dst["description"] = src["description"]
    if "x-kubernetes-preserve-unknown-fields" in src:
        dst["x-kubernetes-preserve-unknown-fields"] = src["x-kubernetes-preserve-unknown-fields"]
    props = dst.setdefault("properties", {})
    for k, v in (src.get("properties") or {}).items():
        props[k] = copy.deepcopy(v)


def _version(vr: dict[str, Any], xrd_name: str) -> dict[str, Any]:
    raw = ((vr.get("schema") or {}).get("openAPIV3Schema")) or {}
    if not isinstance(raw, dict):
        raise ValidateError(f"XRD {xrd_name} version {vr.get('name')}: openAPIV3Schema is not an object")
    s = copy.deepcopy(raw)
    root = base_props()
    if "description" in s:
        root["description"] = s["description"]
    max_len = MAX_NAME_LENGTH
    old = (((s.get("properties") or {}).get("metadata") or {}).get("properties") or {}).get("name") or {}
    if isinstance(old.get("maxLength"), int) and old["maxLength"] < max_len:
        max_len = old["maxLength"]
    root["properties"]["metadata"]["properties"] = {"name": {"type": "string", "maxLength": max_len}}
    for part in ("spec", "status"):
        _merge(root["properties"][part], (s.get("properties") or {}).get(part) or {})
    if s.get("x-kubernetes-validations"):
        root["x-kubernetes-validations"] = s["x-kubernetes-validations"]
    out: dict[str, Any] = {
        "name": vr.get("name"),
        "served": bool(vr.get("served")),
        "storage": bool(vr.get("referenceable")),
        "schema": {"openAPIV3Schema": root},
        "subresources": {"status": {}},
    }
    if vr.get("deprecated"):
        out["deprecated"] = True
    if vr.get("deprecationWarning") is not None:
        out["deprecationWarning"] = vr["deprecationWarning"]
    out["additionalPrinterColumns"] = list(vr.get("additionalPrinterColumns") or [])
    return out


def scope_of(xrd: dict[str, Any]) -> str:
    """The XRD's scope as Crossplane's v1 struct reads it (absent ⇒ ``LegacyCluster``)."""
    scope = (xrd.get("spec") or {}).get("scope")
    return scope if scope in ("Namespaced", "Cluster", "LegacyCluster") else "LegacyCluster"


def _crd(xrd: dict[str, Any], name: str, names: dict[str, Any], scope: str) -> dict[str, Any]:
    spec = xrd.get("spec") or {}
    meta = xrd.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels.update((spec.get("metadata") or {}).get("labels") or {})
    crd_meta: dict[str, Any] = {"name": name}
    if labels:
        crd_meta["labels"] = labels
    annotations = (spec.get("metadata") or {}).get("annotations")
    if annotations:
        crd_meta["annotations"] = dict(annotations)
    crd_meta["ownerReferences"] = [
        {
            "apiVersion": xrd.get("apiVersion", f"{XRD_GROUP}/v1"),
            "kind": "CompositeResourceDefinition",
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    crd_spec: dict[str, Any] = {
        "group": spec.get("group"),
        "names": names,
        "scope": "Namespaced" if scope == "Namespaced" else "Cluster",
        "versions": [],
    }
    if spec.get("conversion"):
        crd_spec["conversion"] = copy.deepcopy(spec["conversion"])
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": crd_meta,
        "spec": crd_spec,
    }


def _check(xrd: dict[str, Any]) -> tuple[dict[str, Any], str]:
    spec = xrd.get("spec")
    name = (xrd.get("metadata") or {}).get("name", "")
    if not isinstance(spec, dict) or not spec.get("group") or not isinstance(spec.get("names"), dict):
        raise ValidateError(f"XRD {name or '<unnamed>'}: spec.group and spec.names are required")
    if not isinstance(spec.get("versions"), list) or not spec["versions"]:
        raise ValidateError(f"XRD {name or '<unnamed>'}: spec.versions must list at least one version")
    return spec, name


def for_composite_resource(xrd: dict[str, Any]) -> dict[str, Any]:
    """The XR CRD of an XRD (``xcrd.ForCompositeResource``)."""
    spec, name = _check(xrd)
    scope = scope_of(xrd)
    names = copy.deepcopy(spec["names"])
    names["categories"] = [*list(names.get("categories") or []), CATEGORY_COMPOSITE]
    crd = _crd(xrd, name, names, scope)
    policy = spec.get("defaultCompositionUpdatePolicy")
    for vr in spec["versions"]:
        v = _version(vr, name)
        v["additionalPrinterColumns"] += _printer_columns(False, scope)
        root = v["schema"]["openAPIV3Schema"]["properties"]
        root["spec"]["properties"].update(composite_spec_props(scope, policy))
        root["status"]["properties"].update(composite_status_props(scope))
        crd["spec"]["versions"].append(v)
    return crd


def for_composite_resource_claim(xrd: dict[str, Any]) -> dict[str, Any]:
    """The claim CRD of an XRD with ``spec.claimNames`` (``xcrd.ForCompositeResourceClaim``)."""
    spec, name = _check(xrd)
    claim = spec.get("claimNames")
    if not isinstance(claim, dict) or not claim.get("plural") or not claim.get("kind"):
        raise ValidateError(f"XRD {name}: spec.claimNames needs plural and kind")
    xr = spec["names"]
    if claim.get("kind") == xr.get("kind") or claim.get("plural") == xr.get("plural"):
        raise ValidateError(f"XRD {name}: claim names must differ from the composite resource's names")
    names = copy.deepcopy(claim)
    names["categories"] = [*list(names.get("categories") or []), CATEGORY_CLAIM]
    crd = _crd(xrd, f"{claim['plural']}.{spec['group']}", names, "Namespaced")
    for vr in spec["versions"]:
        v = _version(vr, name)
        v["additionalPrinterColumns"] += _printer_columns(True, "Namespaced")
        root = v["schema"]["openAPIV3Schema"]["properties"]
        root["spec"]["properties"].update(
            claim_spec_props(
                spec.get("defaultCompositionUpdatePolicy"), spec.get("defaultCompositeDeletePolicy")
            )
        )
        root["status"]["properties"].update(claim_status_props())
        crd["spec"]["versions"].append(v)
    return crd


def crds_for_xrd(xrd: dict[str, Any]) -> list[dict[str, Any]]:
    """The XR CRD, and the claim CRD when the XRD offers a claim."""
    out = [for_composite_resource(xrd)]
    if (xrd.get("spec") or {}).get("claimNames"):
        out.append(for_composite_resource_claim(xrd))
    return out
