"""The shapes of the CRDs and XRDs validate reads (their metadata, names and versions), checked first.

Kubernetes decodes these documents into typed fields and refuses one with a field of the wrong
type; so does validate, naming the field (``CRD NAME: spec.versions is an object; want an array``),
and the document is reported as an extension that could not be read. A CRD's schemas are checked as
they are indexed (:func:`xplane.validate.structural.structural_errors`, the same walk that finds
structural problems); an XRD's before they are turned into its CRDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xplane.fieldtypes import FieldTypeError, field, obj, object_name, objects, string, string_map, strings
from xplane.validate.errors import ValidateError
from xplane.validate.structural import check_schema_shape


def _names(spec: Mapping[str, Any], key: str) -> None:
    names = obj(spec, key, f"spec.{key}")
    for f in ("kind", "plural", "singular", "listKind"):
        string(names, f, f"spec.{key}.{f}")
    for f in ("shortNames", "categories"):
        if names.get(f) is not None:
            strings(names[f], f"spec.{key}.{f}")


def _boolean(parent: Mapping[str, Any], key: str, path: str) -> None:
    field(parent, key, path, bool, "a boolean")


def _document(doc: Any, version_keys: tuple[str, ...], *, check_schemas: bool) -> None:
    if not isinstance(doc, Mapping):
        raise FieldTypeError("the document", doc, "an object")
    meta = obj(doc, "metadata", "metadata")
    string(meta, "name", "metadata.name")
    string(meta, "uid", "metadata.uid")
    string_map(meta, "labels", "metadata.labels")
    string_map(meta, "annotations", "metadata.annotations")
    spec = obj(doc, "spec", "spec")
    string(spec, "group", "spec.group")
    string(spec, "scope", "spec.scope")
    _names(spec, "names")
    for at, v in objects(spec, "versions", "spec.versions"):
        string(v, "name", f"{at}.name")
        for key in version_keys:
            _boolean(v, key, f"{at}.{key}")
        schema = obj(v, "schema", f"{at}.schema")
        if check_schemas and schema.get("openAPIV3Schema") is not None:
            check_schema_shape(schema["openAPIV3Schema"], f"{at}.schema.openAPIV3Schema")
        objects(v, "additionalPrinterColumns", f"{at}.additionalPrinterColumns")


def check_crd(crd: Any) -> None:
    """Raise :class:`ValidateError` (``CRD NAME: PATH is X; want Y``) for a CRD validate cannot read."""
    try:
        # its schemas are checked as they are indexed (structural_errors: one walk for both)
        _document(crd, ("served", "storage"), check_schemas=False)
        obj(obj(crd, "spec", "spec"), "validation", "spec.validation")
    except FieldTypeError as e:
        raise ValidateError(f"CRD {object_name(crd) or '<unnamed>'}: {e.message}") from None


def check_xrd(xrd: Any) -> None:
    """Raise :class:`ValidateError` (``XRD NAME: PATH is X; want Y``) for an XRD validate cannot read."""
    try:
        # its schemas are read to make its CRDs: checked first
        _document(xrd, ("served", "referenceable", "deprecated"), check_schemas=True)
        spec = xrd.get("spec") or {}
        if spec.get("claimNames") is not None:
            _names(spec, "claimNames")
        meta = obj(spec, "metadata", "spec.metadata")
        string_map(meta, "labels", "spec.metadata.labels")
        string_map(meta, "annotations", "spec.metadata.annotations")
        obj(spec, "conversion", "spec.conversion")
        string(spec, "defaultCompositionUpdatePolicy", "spec.defaultCompositionUpdatePolicy")
        string(spec, "defaultCompositeDeletePolicy", "spec.defaultCompositeDeletePolicy")
        if spec.get("connectionSecretKeys") is not None:
            strings(spec["connectionSecretKeys"], "spec.connectionSecretKeys")
        for at, v in objects(spec, "versions", "spec.versions"):
            string(v, "deprecationWarning", f"{at}.deprecationWarning")
    except FieldTypeError as e:
        raise ValidateError(f"XRD {object_name(xrd) or '<unnamed>'}: {e.message}") from None
