"""The shapes render relies on, checked: in its inputs (before anything runs) and in what functions return.

Kubernetes decodes ``metadata`` into typed fields, so a list where labels go, or a number as a
label value, is an error there; render reads the same fields, and without these checks such input
would end in a Python traceback. A field that is ``null`` is treated as absent, as Kubernetes does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xplane.compose.errors import ComposeError, q
from xplane.fieldtypes import FieldTypeError, obj, object_name, objects, string, string_map, string_values

#: a field of the wrong type (the message names it); every caller in this package turns it into a
#: ComposeError that says which input or which step's answer it was
ShapeError = FieldTypeError


# The helpers below run for every composed resource of every render, on values converted from
# protobuf (exact dicts, lists and strs): each first tries that common case with exact type tests,
# and only otherwise takes the checked path, which accepts subclasses and words the error.


def mapping(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """``parent[key]`` as an object to change: created when absent or null, ShapeError when not an object."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    elif type(value) is not dict:
        value = parent[key] = obj(parent, key, path)
    return value


def string_map_to_change(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """Like :func:`mapping`, for labels and annotations: every value must be a string."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
        return value
    if type(value) is dict and all(type(v) is str for v in value.values()):
        return value
    value = parent[key] = obj(parent, key, path)
    string_values(value, path)
    return value


def object_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    """``parent[key]`` as a list of objects to change (ownerReferences): created when absent or null."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = []
    elif type(value) is not list or any(type(o) is not dict for o in value):
        objects(parent, key, path)  # raises unless an array of objects (of subclasses)
    return value


#: the metadata fields that must be strings, with their paths (built once, not per check)
_META_STRINGS = tuple((f, f"metadata.{f}") for f in ("name", "namespace", "generateName", "uid"))


def check_object(doc: Any) -> None:
    """A Kubernetes object as render reads it: an object whose ``metadata`` fields have their types."""
    if not isinstance(doc, Mapping):
        raise ShapeError("the document", doc, "an object")
    string(doc, "apiVersion", "apiVersion")
    string(doc, "kind", "kind")
    meta = obj(doc, "metadata", "metadata")
    for f, path in _META_STRINGS:
        string(meta, f, path)
    string_map(meta, "labels", "metadata.labels")
    string_map(meta, "annotations", "metadata.annotations")
    objects(meta, "ownerReferences", "metadata.ownerReferences")


def check_xr(xr: Any) -> None:
    """The composite resource: an object, with the spec fields render's pre-checks read."""
    check_object(xr)
    spec = obj(xr, "spec", "spec")
    for where, parent in (("spec.crossplane", obj(spec, "crossplane", "spec.crossplane")), ("spec", spec)):
        selector = obj(parent, "compositionSelector", f"{where}.compositionSelector")
        obj(selector, "matchLabels", f"{where}.compositionSelector.matchLabels")


def check_composition(comp: Any) -> None:
    """The Composition: ``spec``, ``compositeTypeRef`` and every pipeline step's fields render reads."""
    check_object(comp)
    spec = obj(comp, "spec", "spec")
    obj(spec, "compositeTypeRef", "spec.compositeTypeRef")
    for where, step in objects(spec, "pipeline", "spec.pipeline"):
        string(step, "step", f"{where}.step")
        string(obj(step, "functionRef", f"{where}.functionRef"), "name", f"{where}.functionRef.name")
        obj(step, "input", f"{where}.input")
        for at, cred in objects(step, "credentials", f"{where}.credentials"):
            obj(cred, "secretRef", f"{at}.secretRef")
        boot = obj(step, "requirements", f"{where}.requirements")
        for field in ("requiredResources", "requiredSchemas"):
            for at, item in objects(boot, field, f"{where}.requirements.{field}"):
                obj(item, "matchLabels", f"{at}.matchLabels")


def check_xrd(xrd: Any) -> None:
    """An XRD as ``--xrd`` reads it: ``spec.group`` and the versions' ``schema.openAPIV3Schema``."""
    check_object(xrd)
    spec = obj(xrd, "spec", "spec")
    string(spec, "group", "spec.group")
    for where, version in objects(spec, "versions", "spec.versions"):
        string(version, "name", f"{where}.name")
        obj(obj(version, "schema", f"{where}.schema"), "openAPIV3Schema", f"{where}.schema.openAPIV3Schema")


_GVK = "x-kubernetes-group-version-kind"


def check_openapi(doc: Any) -> None:
    """An OpenAPI v3 document of ``--required-schemas``: ``components.schemas``, each with its GVKs."""
    if not isinstance(doc, dict):
        raise ShapeError("the document", doc, "an object")
    schemas = obj(obj(doc, "components", "components"), "schemas", "components.schemas")
    for name, schema in schemas.items():
        if not isinstance(schema, dict):
            raise ShapeError(f"components.schemas.{name}", schema, "an object")
        objects(schema, _GVK, f"components.schemas.{name}.{_GVK}")


def check_secret(secret: Any) -> None:
    """A Secret of ``--function-credentials``: its ``data`` an object of (base64) strings."""
    check_object(secret)
    string_map(secret, "data", "data")


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
