"""The shapes render relies on, checked: in its inputs (before anything runs) and in what functions return.

Kubernetes decodes ``metadata`` into typed fields, so a list where labels go, or a number as a
label value, is an error there; render reads the same fields, and without these checks such input
would end in a Python traceback. A field that is ``null`` is treated as absent, as Kubernetes does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xplane.compose.errors import ComposeError, q
from xplane.errors import json_type


class ShapeError(ComposeError):
    """A field of an object has the wrong type; ``path`` names it (``metadata.labels``)."""

    def __init__(self, path: str, value: Any, want: str) -> None:
        super().__init__(f"{path} is {kind_of(value)}; want {want}")
        self.path = path
        self.problem = self.message


def kind_of(value: Any) -> str:
    """``an array``, ``a string``, ``null``: a value's JSON type with its article, for messages."""
    name = json_type(value)
    return name if name == "null" else f"{'an' if name[0] in 'aio' else 'a'} {name}"


def mapping(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """``parent[key]`` as an object to change: created when absent or null, ShapeError when not an object."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    elif not isinstance(value, dict):
        raise ShapeError(path, value, "an object")
    return value


def string_map(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """Like :func:`mapping`, for labels and annotations: every value must be a string."""
    value = mapping(parent, key, path)
    for k, v in value.items():
        if not isinstance(v, str):
            raise ShapeError(f"{path}.{k}", v, "a string")
    return value


def object_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    """``parent[key]`` as a list of objects to change (ownerReferences): created when absent or null."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = []
    elif not isinstance(value, list):
        raise ShapeError(path, value, "an array")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ShapeError(f"{path}[{i}]", item, "an object")
    return value


def _optional(obj: Mapping[str, Any], key: str, path: str, types: type | tuple[type, ...], want: str) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, types):
        raise ShapeError(path, value, want)
    return value


def _check_string_map(obj: Mapping[str, Any], key: str, path: str) -> None:
    value = _optional(obj, key, path, dict, "an object")
    for k, v in (value or {}).items():
        if not isinstance(v, str):
            raise ShapeError(f"{path}.{k}", v, "a string")


def object_name(obj: Any) -> str:
    """``metadata.name`` when the object has one (a string), else ``""``: safe on any value."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


_META_STRINGS = ("name", "namespace", "generateName", "uid")


def check_object(obj: Any) -> None:
    """A Kubernetes object as render reads it: an object whose ``metadata`` fields have their types."""
    if not isinstance(obj, Mapping):
        raise ShapeError("the document", obj, "an object")
    for field in ("apiVersion", "kind"):
        value = obj.get(field)
        if value is not None and not isinstance(value, str):
            raise ShapeError(field, value, "a string")
    meta = obj.get("metadata")
    if meta is None:  # (this is the hot path of every render's input check: few calls)
        return
    if not isinstance(meta, dict):
        raise ShapeError("metadata", meta, "an object")
    for field in _META_STRINGS:
        value = meta.get(field)
        if value is not None and not isinstance(value, str):
            raise ShapeError(f"metadata.{field}", value, "a string")
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None:
            if not isinstance(value, dict):
                raise ShapeError(f"metadata.{field}", value, "an object")
            for k, v in value.items():
                if not isinstance(v, str):
                    raise ShapeError(f"metadata.{field}.{k}", v, "a string")
    owners = meta.get("ownerReferences")
    if owners is not None:
        if not isinstance(owners, list):
            raise ShapeError("metadata.ownerReferences", owners, "an array")
        for i, o in enumerate(owners):
            if not isinstance(o, dict):
                raise ShapeError(f"metadata.ownerReferences[{i}]", o, "an object")


def check_xr(xr: Any) -> None:
    """The composite resource: an object, with the spec fields render's pre-checks read."""
    check_object(xr)
    spec = _optional(xr, "spec", "spec", dict, "an object") or {}
    cp = _optional(spec, "crossplane", "spec.crossplane", dict, "an object") or {}
    for where, parent in (("spec.crossplane", cp), ("spec", spec)):
        sel = _optional(parent, "compositionSelector", f"{where}.compositionSelector", dict, "an object")
        if sel:
            _optional(sel, "matchLabels", f"{where}.compositionSelector.matchLabels", dict, "an object")


def check_composition(comp: Any) -> None:
    """The Composition: ``spec``, ``compositeTypeRef`` and every pipeline step's fields render reads."""
    check_object(comp)
    spec = _optional(comp, "spec", "spec", dict, "an object") or {}
    _optional(spec, "compositeTypeRef", "spec.compositeTypeRef", dict, "an object")
    steps = _optional(spec, "pipeline", "spec.pipeline", list, "an array") or []
    for i, step in enumerate(steps):
        where = f"spec.pipeline[{i}]"
        if not isinstance(step, dict):
            raise ShapeError(where, step, "an object")
        _optional(step, "step", f"{where}.step", str, "a string")
        ref = _optional(step, "functionRef", f"{where}.functionRef", dict, "an object") or {}
        _optional(ref, "name", f"{where}.functionRef.name", str, "a string")
        _optional(step, "input", f"{where}.input", dict, "an object")
        creds = _optional(step, "credentials", f"{where}.credentials", list, "an array") or []
        for j, cred in enumerate(creds):
            if not isinstance(cred, dict):
                raise ShapeError(f"{where}.credentials[{j}]", cred, "an object")
            _optional(cred, "secretRef", f"{where}.credentials[{j}].secretRef", dict, "an object")
        boot = _optional(step, "requirements", f"{where}.requirements", dict, "an object") or {}
        for field in ("requiredResources", "requiredSchemas"):
            items = _optional(boot, field, f"{where}.requirements.{field}", list, "an array") or []
            for j, item in enumerate(items):
                at = f"{where}.requirements.{field}[{j}]"
                if not isinstance(item, dict):
                    raise ShapeError(at, item, "an object")
                _optional(item, "matchLabels", f"{at}.matchLabels", dict, "an object")


def check_xrd(xrd: Any) -> None:
    """An XRD as ``--xrd`` reads it: ``spec.group`` and the versions' ``schema.openAPIV3Schema``."""
    check_object(xrd)
    spec = _optional(xrd, "spec", "spec", dict, "an object") or {}
    _optional(spec, "group", "spec.group", str, "a string")
    versions = _optional(spec, "versions", "spec.versions", list, "an array") or []
    for i, v in enumerate(versions):
        where = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            raise ShapeError(where, v, "an object")
        _optional(v, "name", f"{where}.name", str, "a string")
        schema = _optional(v, "schema", f"{where}.schema", dict, "an object") or {}
        _optional(schema, "openAPIV3Schema", f"{where}.schema.openAPIV3Schema", dict, "an object")


def check_openapi(doc: Any) -> None:
    """An OpenAPI v3 document of ``--required-schemas``: ``components.schemas``, each with its GVKs."""
    if not isinstance(doc, dict):
        raise ShapeError("the document", doc, "an object")
    components = _optional(doc, "components", "components", dict, "an object") or {}
    schemas = _optional(components, "schemas", "components.schemas", dict, "an object") or {}
    for name, schema in schemas.items():
        where = f"components.schemas.{name}"
        if not isinstance(schema, dict):
            raise ShapeError(where, schema, "an object")
        gvks = (
            _optional(
                schema,
                "x-kubernetes-group-version-kind",
                f"{where}.x-kubernetes-group-version-kind",
                list,
                "an array",
            )
            or []
        )
        for i, g in enumerate(gvks):
            if not isinstance(g, dict):
                raise ShapeError(f"{where}.x-kubernetes-group-version-kind[{i}]", g, "an object")


def check_secret(secret: Any) -> None:
    """A Secret of ``--function-credentials``: its ``data`` an object of (base64) strings."""
    check_object(secret)
    _check_string_map(secret, "data", "data")


def check_inputs(
    xr: Any,
    composition: Any,
    functions: Sequence[Any],
    resources: Mapping[str, Sequence[Any]],
    credentials: Sequence[Any],
    schemas: Sequence[Any] = (),
) -> None:
    """Every input of a render, each error naming the input (``observed resource 2: ...``)."""

    def each(what: str, check: Any, value: Any) -> None:
        try:
            check(value)
        except ShapeError as e:
            raise ComposeError(f"invalid {what}: {e.problem}") from None

    each("composite resource", check_xr, xr)
    each("Composition", check_composition, composition)
    for i, f in enumerate(functions):
        try:
            check_object(f)
        except ShapeError as e:
            name = object_name(f)
            raise ComposeError(f"invalid Function {q(name) if name else i + 1}: {e.problem}") from None
    for what, objs in resources.items():
        for i, o in enumerate(objs):
            each(f"{what} {i + 1}", check_object, o)
    for i, s in enumerate(credentials):
        each(f"Secret {i + 1} of the function credentials", check_secret, s)
    for i, d in enumerate(schemas):
        each(f"OpenAPI document {i + 1} of the required schemas", check_openapi, d)
