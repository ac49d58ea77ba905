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

from xplane.validate.errors import SchemaShapeError, ValidateError
from xplane.validate.structural import check_schema_shape, string_array


def _object(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    v = parent.get(key)
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise SchemaShapeError(path, v, "an object")
    return v


def _strings(parent: Mapping[str, Any], keys: tuple[str, ...], path: str) -> None:
    for key in keys:
        v = parent.get(key)
        if v is not None and not isinstance(v, str):
            raise SchemaShapeError(f"{path}{key}", v, "a string")


def _names(spec: Mapping[str, Any], key: str) -> None:
    names = _object(spec, key, f"spec.{key}")
    _strings(names, ("kind", "plural", "singular", "listKind"), f"spec.{key}.")
    for arr in ("shortNames", "categories"):
        if names.get(arr) is not None:
            string_array(names[arr], f"spec.{key}.{arr}")


def _string_map(parent: Mapping[str, Any], key: str, path: str) -> None:
    for k, v in _object(parent, key, path).items():
        if not isinstance(v, str):
            raise SchemaShapeError(f"{path}.{k}", v, "a string")


def _document(doc: Any, version_keys: tuple[str, ...], *, check_schemas: bool) -> None:
    if not isinstance(doc, Mapping):
        raise SchemaShapeError("the document", doc, "an object")
    meta = _object(doc, "metadata", "metadata")
    _strings(meta, ("name", "uid"), "metadata.")
    _string_map(meta, "labels", "metadata.labels")
    _string_map(meta, "annotations", "metadata.annotations")
    spec = _object(doc, "spec", "spec")
    _strings(spec, ("group", "scope"), "spec.")
    _names(spec, "names")
    versions = spec.get("versions")
    if versions is not None and not isinstance(versions, list):
        raise SchemaShapeError("spec.versions", versions, "an array")
    for i, v in enumerate(versions or ()):
        at = f"spec.versions[{i}]"
        if not isinstance(v, Mapping):
            raise SchemaShapeError(at, v, "an object")
        _strings(v, ("name",), f"{at}.")
        for key in version_keys:
            if v.get(key) is not None and not isinstance(v[key], bool):
                raise SchemaShapeError(f"{at}.{key}", v[key], "a boolean")
        schema = _object(v, "schema", f"{at}.schema")
        if check_schemas and schema.get("openAPIV3Schema") is not None:
            check_schema_shape(schema["openAPIV3Schema"], f"{at}.schema.openAPIV3Schema")
        columns = v.get("additionalPrinterColumns")
        if columns is not None and not (
            isinstance(columns, list) and all(isinstance(c, Mapping) for c in columns)
        ):
            raise SchemaShapeError(f"{at}.additionalPrinterColumns", columns, "an array of objects")


def check_crd(crd: Any) -> None:
    """Raise :class:`ValidateError` (``CRD NAME: PATH is X; want Y``) for a CRD validate cannot read."""
    try:
        # its schemas are checked as they are indexed (structural_errors: one walk for both)
        _document(crd, ("served", "storage"), check_schemas=False)
        _object(crd.get("spec") or {}, "validation", "spec.validation")
    except SchemaShapeError as e:
        raise ValidateError(f"CRD {_name(crd)}: {e.message}") from None


def check_xrd(xrd: Any) -> None:
    """Raise :class:`ValidateError` (``XRD NAME: PATH is X; want Y``) for an XRD validate cannot read."""
    try:
        # its schemas are read to make its CRDs: checked first
        _document(xrd, ("served", "referenceable", "deprecated"), check_schemas=True)
        spec = xrd.get("spec") or {}
        if spec.get("claimNames") is not None:
            _names(spec, "claimNames")
        meta = _object(spec, "metadata", "spec.metadata")
        _string_map(meta, "labels", "spec.metadata.labels")
        _string_map(meta, "annotations", "spec.metadata.annotations")
        _object(spec, "conversion", "spec.conversion")
        _strings(spec, ("defaultCompositionUpdatePolicy", "defaultCompositeDeletePolicy"), "spec.")
        if spec.get("connectionSecretKeys") is not None:
            string_array(spec["connectionSecretKeys"], "spec.connectionSecretKeys")
        for i, v in enumerate(spec.get("versions") or ()):
            if v.get("deprecationWarning") is not None and not isinstance(v["deprecationWarning"], str):
                raise SchemaShapeError(
                    f"spec.versions[{i}].deprecationWarning", v["deprecationWarning"], "a string"
                )
    except SchemaShapeError as e:
        raise ValidateError(f"XRD {_name(xrd)}: {e.message}") from None


def _name(doc: Any) -> str:
    meta = doc.get("metadata") if isinstance(doc, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) and name else "<unnamed>"
