"""A CRD schema read once when it is indexed: why it is not structural, and whether it can be read.

Kubernetes decodes ``openAPIV3Schema`` into typed ``JSONSchemaProps``, so a list where a schema
goes, a string where ``maxLength`` goes or a number in ``required`` is refused with the CRD. The
walks that validate, default and prune resources read the same fields; :func:`structural_errors`
checks them in the same pass that finds the structural problems, and raises
:class:`FieldTypeError` naming the field instead of letting a walk fail later.
"""

from __future__ import annotations

from typing import Any

from xplane.fieldtypes import FieldTypeError, strings
from xplane.validate.errors import go_quote

# what each schema keyword must hold (keywords not listed, e.g. default and example, hold anything)
(
    _STR,
    _INT,
    _NUM,
    _BOOL,
    _ARRAY,
    _STR_ARRAY,
    _SCHEMAS_BY_NAME,
    _ITEMS,
    _SCHEMA_OR_BOOL,
    _SCHEMA,
    _SCHEMA_LIST,
) = range(11)
_RULES = 11
_KINDS: dict[str, int] = {
    **dict.fromkeys(
        (
            "type",
            "format",
            "pattern",
            "title",
            "description",
            "x-kubernetes-list-type",
            "x-kubernetes-map-type",
        ),
        _STR,
    ),
    **dict.fromkeys(
        ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties"), _INT
    ),
    **dict.fromkeys(("maximum", "minimum", "multipleOf"), _NUM),
    **dict.fromkeys(
        (
            "exclusiveMaximum",
            "exclusiveMinimum",
            "uniqueItems",
            "nullable",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource",
            "x-kubernetes-int-or-string",
        ),
        _BOOL,
    ),
    "enum": _ARRAY,
    **dict.fromkeys(("required", "x-kubernetes-list-map-keys"), _STR_ARRAY),
    "properties": _SCHEMAS_BY_NAME,
    "patternProperties": _SCHEMAS_BY_NAME,
    "items": _ITEMS,
    "additionalProperties": _SCHEMA_OR_BOOL,
    "additionalItems": _SCHEMA_OR_BOOL,
    "not": _SCHEMA,
    **dict.fromkeys(("allOf", "anyOf", "oneOf"), _SCHEMA_LIST),
    "x-kubernetes-validations": _RULES,
}
_SIMPLE: dict[int, tuple[type | tuple[type, ...], str]] = {
    _STR: (str, "a string"),
    _INT: (int, "an integer"),
    _NUM: ((int, float), "a number"),
    _BOOL: (bool, "a boolean"),
    _ARRAY: (list, "an array"),
}
_RULE_STRINGS = ("rule", "message", "messageExpression", "reason", "fieldPath")


def structural_errors(schema: Any, path: str = "openAPIV3Schema") -> list[str]:
    """Why a schema is not structural (a short list of the API server's reasons; empty if it is).

    A field of the wrong type raises :class:`FieldTypeError` (the schema cannot be used at all).
    """
    errs: list[str] = []
    _walk(schema, path, errs, top=True)
    return errs


def check_schema_shape(schema: Any, path: str = "openAPIV3Schema") -> None:
    """Only the types of a schema's fields (an XRD's, before it becomes a CRD): FieldTypeError."""
    _walk(schema, path, None)


def _walk(s: Any, path: str, errs: list[str] | None, *, top: bool = False) -> None:
    """One node and everything under it; ``errs`` collects structural problems (None: types only).

    Structural rules apply down properties, items and additionalProperties; the subschemas of
    allOf/anyOf/oneOf/not (value validations, with rules of their own) get the type checks only.
    The path is spelled out only for a node's children and for an error.
    """
    if not isinstance(s, dict):
        raise FieldTypeError(path, s, "an object (a schema)")
    if errs is not None:
        if (
            not s.get("type")
            and not s.get("x-kubernetes-int-or-string")
            and not s.get("x-kubernetes-preserve-unknown-fields")
        ):
            errs.append(f"{path}.type: Required value: must not be empty for specified object fields")
        if top and s.get("type") not in (None, "object"):
            errs.append(
                f"{path}.type: Invalid value: {go_quote(str(s.get('type')))}: must be object at the root"
            )
    for key, v in s.items():
        kind = _KINDS.get(key)
        if kind is None or v is None:
            continue
        simple = _SIMPLE.get(kind)
        if simple is not None:
            types, want = simple
            if not isinstance(v, types) or (isinstance(v, bool) and kind != _BOOL):
                raise FieldTypeError(f"{path}.{key}", v, want)
        elif kind == _SCHEMAS_BY_NAME:
            if not isinstance(v, dict):
                raise FieldTypeError(f"{path}.{key}", v, "an object")
            sub_errs = errs if key == "properties" else None
            for name, sub in v.items():
                _walk(sub, f"{path}.{key}[{name}]", sub_errs)
        elif kind == _ITEMS:
            if isinstance(v, list):  # JSONSchemaPropsOrArray's array form: not structural
                raise FieldTypeError(f"{path}.items", v, "an object (a schema, not an array of them)")
            _walk(v, f"{path}.items", errs)
        elif kind == _SCHEMA_OR_BOOL:
            if not isinstance(v, bool):
                _walk(v, f"{path}.{key}", errs if key == "additionalProperties" else None)
        elif kind == _SCHEMA:
            _walk(v, f"{path}.{key}", None)
        elif kind == _SCHEMA_LIST:
            if not isinstance(v, list):
                raise FieldTypeError(f"{path}.{key}", v, "an array of schemas")
            for i, sub in enumerate(v):
                _walk(sub, f"{path}.{key}[{i}]", None)
        elif kind == _STR_ARRAY:
            strings(v, f"{path}.{key}")
        else:
            _rules(v, f"{path}.{key}")


def _rules(v: Any, path: str) -> None:
    if not isinstance(v, list):
        raise FieldTypeError(path, v, "an array")
    for i, rule in enumerate(v):
        at = f"{path}[{i}]"
        if not isinstance(rule, dict):
            raise FieldTypeError(at, rule, "an object")
        for key in _RULE_STRINGS:
            if rule.get(key) is not None and not isinstance(rule[key], str):
                raise FieldTypeError(f"{at}.{key}", rule[key], "a string")
        if rule.get("optionalOldSelf") is not None and not isinstance(rule["optionalOldSelf"], bool):
            raise FieldTypeError(f"{at}.optionalOldSelf", rule["optionalOldSelf"], "a boolean")
