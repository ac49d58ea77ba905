"""The shapes render relies on, checked: in its inputs (before anything runs) and in what functions return.

Kubernetes decodes ``metadata`` into typed fields, so a list where labels go, or a number as a
label value, is an error there; render reads the same fields, and without these checks such input
would end in a Python traceback. A field that is ``null`` is treated as absent, as Kubernetes does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xplane.compose.errors import ComposeError, q
from xplane.errors import a_json_type


class ShapeError(ComposeError):
    """A field of an object has the wrong type; ``path`` names it (``metadata.labels``)."""

    def __init__(self, path: str, value: Any, want: str) -> None:
        super().__init__(f"{path} is {a_json_type(value)}; want {want}")
        self.path = path


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


def _obj(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    """``parent[key]``, which must be an object when present; ``{}`` when absent or null."""
    value: dict[str, Any] = _optional(parent, key, path, dict, "an object") or {}
    return value


def _str(parent: Mapping[str, Any], key: str, path: str) -> None:
    _optional(parent, key, path, str, "a string")


def _items(parent: Mapping[str, Any], key: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    """The objects of the array ``parent[key]`` (absent or null: none), each with its path."""
    out = []
    for i, item in enumerate(_optional(parent, key, path, list, "an array") or ()):
        if not isinstance(item, dict):
            raise ShapeError(f"{path}[{i}]", item, "an object")
        out.append((f"{path}[{i}]", item))
    return out


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
    spec = _obj(xr, "spec", "spec")
    for where, parent in (("spec.crossplane", _obj(spec, "crossplane", "spec.crossplane")), ("spec", spec)):
        selector = _obj(parent, "compositionSelector", f"{where}.compositionSelector")
        _obj(selector, "matchLabels", f"{where}.compositionSelector.matchLabels")


def check_composition(comp: Any) -> None:
    """The Composition: ``spec``, ``compositeTypeRef`` and every pipeline step's fields render reads."""
    check_object(comp)
    spec = _obj(comp, "spec", "spec")
    _obj(spec, "compositeTypeRef", "spec.compositeTypeRef")
    for where, step in _items(spec, "pipeline", "spec.pipeline"):
        _str(step, "step", f"{where}.step")
        _str(_obj(step, "functionRef", f"{where}.functionRef"), "name", f"{where}.functionRef.name")
        _obj(step, "input", f"{where}.input")
        for at, cred in _items(step, "credentials", f"{where}.credentials"):
            _obj(cred, "secretRef", f"{at}.secretRef")
        boot = _obj(step, "requirements", f"{where}.requirements")
        for field in ("requiredResources", "requiredSchemas"):
            for at, item in _items(boot, field, f"{where}.requirements.{field}"):
                _obj(item, "matchLabels", f"{at}.matchLabels")


def check_xrd(xrd: Any) -> None:
    """An XRD as ``--xrd`` reads it: ``spec.group`` and the versions' ``schema.openAPIV3Schema``."""
    check_object(xrd)
    spec = _obj(xrd, "spec", "spec")
    _str(spec, "group", "spec.group")
    for where, version in _items(spec, "versions", "spec.versions"):
        _str(version, "name", f"{where}.name")
        _obj(_obj(version, "schema", f"{where}.schema"), "openAPIV3Schema", f"{where}.schema.openAPIV3Schema")


_GVK = "x-kubernetes-group-version-kind"


def check_openapi(doc: Any) -> None:
    """An OpenAPI v3 document of ``--required-schemas``: ``components.schemas``, each with its GVKs."""
    if not isinstance(doc, dict):
        raise ShapeError("the document", doc, "an object")
    schemas = _obj(_obj(doc, "components", "components"), "schemas", "components.schemas")
    for name, schema in schemas.items():
        if not isinstance(schema, dict):
            raise ShapeError(f"components.schemas.{name}", schema, "an object")
        _items(schema, _GVK, f"components.schemas.{name}.{_GVK}")


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
            raise ComposeError(f"invalid {what}: {e.message}") from None

    each("composite resource", check_xr, xr)
    each("Composition", check_composition, composition)
    for i, f in enumerate(functions):
        try:
            check_object(f)
        except ShapeError as e:
            name = object_name(f)
            raise ComposeError(f"invalid Function {q(name) if name else i + 1}: {e.message}") from None
    for what, objs in resources.items():
        for i, o in enumerate(objs):
            each(f"{what} {i + 1}", check_object, o)
    for i, s in enumerate(credentials):
        each(f"Secret {i + 1} of the function credentials", check_secret, s)
    for i, d in enumerate(schemas):
        each(f"OpenAPI document {i + 1} of the required schemas", check_openapi, d)
