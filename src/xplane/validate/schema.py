"""Structural-schema validation, pruning and defaulting with Kubernetes' semantics.

``validate`` follows ``apiextensions-apiserver``'s ``ValidateCustomResource`` (kube-openapi's
validator, its errors mapped to ``field.Error`` as ``kubeOpenAPIResultToFieldErrors`` does);
``prune`` reports the paths the API server would drop; ``default`` fills in ``default`` values.
Schemas are plain dicts (``openAPIV3Schema``), walked as they are: nothing to compile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from xplane.errors import json_type
from xplane.validate.errors import (
    DUPLICATE,
    TOO_LONG,
    TOO_MANY,
    FieldError,
    go_float,
    go_quote,
    invalid,
    not_supported,
    required,
)
from xplane.validate.formats import check_format

Schema = Mapping[str, Any]
_META_KEYS = ("apiVersion", "kind", "metadata")


def child(path: str, name: str) -> str:
    """``field.Path.Child``."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    """``field.Path.Index``."""
    return f"{path}[{i}]"


_SUBTREE: dict[tuple[int, str], tuple[Schema, bool]] = {}


def subtree_has(node: Schema, key: str) -> bool:
    """Whether ``node`` or a schema below it has ``key`` (memoised per node: walks skip bare subtrees)."""
    hit = _SUBTREE.get((id(node), key))
    if hit is not None and hit[0] is node:
        return hit[1]
    found = key in node
    if not found:
        props = node.get("properties")
        if props:
            found = any(isinstance(x, dict) and subtree_has(x, key) for x in props.values())
        if not found:
            items, addl = node.get("items"), node.get("additionalProperties")
            found = (isinstance(items, dict) and subtree_has(items, key)) or (
                isinstance(addl, dict) and subtree_has(addl, key)
            )
    _SUBTREE[(id(node), key)] = (node, found)
    return found


def copy_json(v: Any) -> Any:
    """A deep copy of decoded JSON (dicts, lists, scalars): several times faster than ``deepcopy``."""
    if isinstance(v, dict):
        return {k: copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_json(x) for x in v]
    return v


def _num(v: Any) -> str:
    return go_float(float(v)) if isinstance(v, float) else str(v)


def _type_ok(t: str, v: Any) -> bool:
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return True


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate(schema: Schema, value: Any, path: str = "") -> list[FieldError]:
    """Every OpenAPI error of ``value`` against ``schema``, as ``field.Error`` values."""
    out: list[FieldError] = []
    _validate(schema, value, path, out)
    return out


@dataclass
class Walk:
    """What one pass over a resource collects besides OpenAPI errors (see :func:`check`)."""

    unknown: list[str] = field(default_factory=list)
    cel_sites: list[tuple[Schema, Any, str]] = field(default_factory=list)
    defaults: bool = True


_NODE_DEFAULTS: dict[int, tuple[Schema, tuple[tuple[str, Any, bool], ...]]] = {}


def _defaults_of(s: Schema) -> tuple[tuple[str, Any, bool], ...]:
    hit = _NODE_DEFAULTS.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1]
    props: Mapping[str, Any] = s.get("properties") or {}
    found = tuple((k, ps["default"], bool(ps.get("nullable"))) for k, ps in props.items() if "default" in ps)
    _NODE_DEFAULTS[id(s)] = (s, found)
    return found


def check(schema: Schema, obj: Any, *, defaults: bool = True) -> tuple[list[FieldError], Walk]:
    """Default, validate and find unknown fields of a resource in one pass; ``obj`` is changed in place.

    Defaults of an object's properties are applied before the object is checked, so what is
    validated is the defaulted object (as the API server defaults, then validates). The walk also
    collects the values that carry CEL rules (``Walk.cel_sites``, evaluated after the pass, on the
    defaulted values). Below a value of the wrong type nothing is reported as unknown.
    """
    out: list[FieldError] = []
    w = Walk(defaults=defaults)
    _validate(schema, obj, "", out, w, True)
    return out, w


_SCALAR_ONLY = frozenset({"type", "description", "properties", "items", "additionalProperties", "title"})
_PLAIN: dict[int, tuple[Schema, bool]] = {}


def _plain(s: Schema) -> bool:
    hit = _PLAIN.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1]
    plain = s.keys() <= _SCALAR_ONLY
    _PLAIN[id(s)] = (s, plain)
    return plain


_LEAF_KEYS = frozenset({"type", "description", "title"})
_LEAF_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}
_LEAF: dict[int, tuple[Schema, tuple[type, ...] | None]] = {}


def _bare_scalar_types(s: Any) -> tuple[type, ...] | None:
    """For a bare scalar schema (a type and prose only), the Python types that pass it unchecked.

    A value whose ``type()`` is one of them has nothing to report, default, prune or evaluate, so
    the walk skips the call; anything else (a float for ``integer``, None, another type) goes
    through :func:`_validate` for its exact error text.
    """
    if not isinstance(s, Mapping):
        return None
    t = s.get("type")
    return _LEAF_TYPES.get(t) if isinstance(t, str) and s.keys() <= _LEAF_KEYS else None


def _leaf_types(s: Schema) -> tuple[type, ...] | None:
    """:func:`_bare_scalar_types`, remembered per schema node."""
    hit = _LEAF.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1]
    types = _bare_scalar_types(s)
    _LEAF[id(s)] = (s, types)
    return types


def _validate(
    s: Schema, v: Any, path: str, out: list[FieldError], unk: Walk | None = None, root: bool = False
) -> None:
    name = path or "body"
    if v is None:
        if s.get("nullable") or (s.get("x-kubernetes-preserve-unknown-fields") and not s.get("type")):
            return
        t = s.get("type")
        if s.get("x-kubernetes-int-or-string"):
            out.append(invalid(path, "null", f'{name} in body must be of type integer,string: "null"'))
        elif t:
            out.append(invalid(path, "null", f'{name} in body must be of type {t}: "null"'))
        return
    if s.get("x-kubernetes-int-or-string"):
        if not (_type_ok("integer", v) or isinstance(v, str)):
            tn = json_type(v)
            out.append(invalid(path, tn, f"{name} in body must be of type integer,string: {go_quote(tn)}"))
            return
    else:
        t = s.get("type")
        if t and not _type_ok(t, v):
            tn = json_type(v)
            out.append(invalid(path, tn, f"{name} in body must be of type {t}: {go_quote(tn)}"))
            return
    if unk is not None and "x-kubernetes-validations" in s:
        unk.cel_sites.append((s, v, path))
    if _plain(s):  # only a type (and properties/items): nothing else to check at this node
        if type(v) is dict:
            _object(s, v, path, name, out, unk, root)
        elif type(v) is list:
            _array(s, v, path, name, out, unk)
        return
    if isinstance(v, str):
        fmt = s.get("format")
        if fmt and not check_format(fmt, v):
            out.append(invalid(path, v, f"{name} in body must be of type {fmt}: {go_quote(v)}"))
        n = len(v)
        if "maxLength" in s and n > s["maxLength"]:
            out.append(FieldError(path, TOO_LONG, v, f"may not be more than {s['maxLength']} bytes"))
        if "minLength" in s and n < s["minLength"]:
            out.append(invalid(path, v, f"{name} in body should be at least {s['minLength']} chars long"))
        pat = s.get("pattern")
        if pat and not _regex(pat).search(v):
            out.append(invalid(path, v, f"{name} in body should match '{pat}'"))
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        _numbers(s, v, path, name, out)
    enum = s.get("enum")
    if enum is not None and not any(_equal(v, e) for e in enum):
        out.append(not_supported(path, v, list(enum)))
    if isinstance(v, list):
        _array(s, v, path, name, out, unk)
    elif isinstance(v, dict):
        _object(s, v, path, name, out, unk, root)
    for key in ("allOf", "anyOf", "oneOf"):
        subs = s.get(key)
        if subs:
            _combinator(key, subs, v, path, name, out)
    if "not" in s and not validate(s["not"], v, path):
        out.append(invalid(path, v, f"{name} in body must not validate the schema (not)"))


def _numbers(s: Schema, v: float, path: str, name: str, out: list[FieldError]) -> None:
    if "maximum" in s:
        m = s["maximum"]
        if s.get("exclusiveMaximum") and v >= m:
            out.append(invalid(path, v, f"{name} in body should be less than {_num(float(m))}"))
        elif v > m:
            out.append(invalid(path, v, f"{name} in body should be less than or equal to {_num(float(m))}"))
    if "minimum" in s:
        m = s["minimum"]
        if s.get("exclusiveMinimum") and v <= m:
            out.append(invalid(path, v, f"{name} in body should be greater than {_num(float(m))}"))
        elif v < m:
            out.append(
                invalid(path, v, f"{name} in body should be greater than or equal to {_num(float(m))}")
            )
    mo = s.get("multipleOf")
    if mo:
        q = v / mo
        if not float(q).is_integer():
            out.append(invalid(path, v, f"{name} in body should be a multiple of {_num(float(mo))}"))


def _array(s: Schema, v: list[Any], path: str, name: str, out: list[FieldError], unk: Walk | None) -> None:
    n = len(v)
    if "maxItems" in s and n > s["maxItems"]:
        out.append(FieldError(path, TOO_MANY, n, f"must have at most {s['maxItems']} items"))
    if "minItems" in s and n < s["minItems"]:
        out.append(invalid(path, n, f"{name} in body should have at least {s['minItems']} items"))
    if s.get("uniqueItems"):
        seen: list[Any] = []
        for x in v:
            if any(_equal(x, y) for y in seen):
                out.append(invalid(path, v, f"{name} in body shouldn't contain duplicates"))
                break
            seen.append(x)
    items = s.get("items")
    if isinstance(items, Mapping):
        leaf = _leaf_types(items)
        for i, x in enumerate(v):
            if leaf is None or type(x) not in leaf:
                _validate(items, x, index(path, i), out, unk)
    lt = s.get("x-kubernetes-list-type")
    if lt == "set":
        for i, x in enumerate(v):
            if any(_equal(x, y) for y in v[:i]):
                out.append(FieldError(index(path, i), DUPLICATE, x))
    elif lt == "map":
        keys = s.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[dict[str, Any]] = []
        for i, x in enumerate(v):
            if not isinstance(x, dict):
                continue
            k = {key: x[key] for key in keys if key in x}
            if k in seen_keys:
                out.append(FieldError(index(path, i), DUPLICATE, k))
            else:
                seen_keys.append(k)


class _ObjectPlan:
    """What an object schema node asks, read once per node (walks visit the same nodes again and again)."""

    __slots__ = (
        "addl",
        "defaults",
        "embedded",
        "leaves",
        "max_props",
        "min_props",
        "node",
        "preserve",
        "props",
        "required",
    )

    def __init__(self, s: Schema) -> None:
        self.node = s
        self.props: Mapping[str, Any] = s.get("properties") or {}
        self.addl = s.get("additionalProperties")
        self.defaults = _defaults_of(s) if self.props else ()
        self.max_props = s.get("maxProperties")
        self.min_props = s.get("minProperties")
        self.required = tuple(s.get("required") or ())
        self.embedded = bool(s.get("x-kubernetes-embedded-resource"))
        self.preserve = self.addl is True or bool(s.get("x-kubernetes-preserve-unknown-fields"))
        # bare scalar properties: the Python types that pass them with nothing to report or collect
        self.leaves: dict[str, tuple[type, ...]] = {}
        for k, ps in self.props.items():
            types = _bare_scalar_types(ps)
            if types is not None:
                self.leaves[k] = types


_OBJECT_PLANS: dict[int, _ObjectPlan] = {}


def _object_plan(s: Schema) -> _ObjectPlan:
    plan = _OBJECT_PLANS.get(id(s))
    if plan is None or plan.node is not s:
        plan = _OBJECT_PLANS[id(s)] = _ObjectPlan(s)
    return plan


def _object(
    s: Schema, v: dict[str, Any], path: str, name: str, out: list[FieldError], unk: Walk | None, root: bool
) -> None:
    plan = _object_plan(s)
    if unk is not None and unk.defaults:
        for k, dv, nullable in plan.defaults:
            if k not in v or (v[k] is None and not nullable):
                v[k] = copy_json(dv)
    n = len(v)
    if plan.max_props is not None and n > plan.max_props:
        out.append(invalid(path, n, f"{name} in body should have at most {plan.max_props} properties"))
    if plan.min_props is not None and n < plan.min_props:
        out.append(invalid(path, n, f"{name} in body should have at least {plan.min_props} properties"))
    for r in plan.required:
        if r not in v:
            out.append(required(child(path, r)))
    if plan.embedded:
        for r in ("apiVersion", "kind"):
            if r not in v:
                out.append(required(child(path, r)))
    props = plan.props
    leaves = plan.leaves
    addl = plan.addl
    embedded = root or plan.embedded
    keep = unk is None or plan.preserve
    for k, x in v.items():
        leaf = leaves.get(k)
        if leaf is not None and type(x) in leaf and not (embedded and k in _META_KEYS):
            continue  # a bare scalar of the right type: nothing to check
        ps = props.get(k)
        if embedded and k in _META_KEYS:  # kept by pruning; ObjectMeta's own fields are not checked here
            if ps is not None:
                _validate(ps, x, child(path, k), out)
            continue
        if ps is not None:
            _validate(ps, x, child(path, k), out, unk)
        elif isinstance(addl, Mapping):
            _validate(addl, x, child(path, k), out, unk)
        elif not keep and unk is not None:
            unk.unknown.append(child(path, k))


def _combinator(key: str, subs: list[Schema], v: Any, path: str, name: str, out: list[FieldError]) -> None:
    results: list[list[FieldError]] = [validate(sub, v, path) for sub in subs]
    if key == "allOf":
        for r in results:
            out.extend(r)
    elif key == "anyOf":
        if all(results):
            out.append(invalid(path, v, f"{name} in body must validate at least one schema (anyOf)"))
            best: list[FieldError] = min(results, key=len)
            out.extend(best)
    else:
        ok = sum(1 for r in results if not r)
        if ok != 1:
            out.append(invalid(path, v, f"{name} in body must validate one and only one schema (oneOf)"))
            if ok == 0:
                fewest: list[FieldError] = min(results, key=len)
                out.extend(fewest)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def prune(schema: Schema, obj: Any, path: str = "", *, root: bool = True) -> list[str]:
    """The paths of ``obj``'s fields the API server would prune (nothing is changed)."""
    out: list[str] = []
    _prune(schema, obj, path, out, root=root)
    return out


def _prune(s: Schema, v: Any, path: str, out: list[str], *, root: bool = False) -> None:
    if isinstance(v, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props: Mapping[str, Any] = s.get("properties") or {}
        addl = s.get("additionalProperties")
        preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
        for k, x in v.items():
            if (root or embedded) and k in _META_KEYS:
                if k == "metadata" and embedded and not root and isinstance(x, dict):
                    continue
                if k != "metadata" or root:
                    continue
            p = child(path, k)
            if k in props:
                _prune(props[k], x, p, out)
            elif isinstance(addl, Mapping):
                _prune(addl, x, p, out)
            elif addl is True or preserve:
                continue
            else:
                out.append(p)
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, Mapping):
            for i, x in enumerate(v):
                _prune(items, x, index(path, i), out)


def default(schema: Schema, obj: Any) -> Any:
    """Fill in ``default`` values of absent fields in place (``structuraldefaulting.Default``)."""
    if not subtree_has(schema, "default"):
        return obj
    if isinstance(obj, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        for k, ps in props.items():
            if (k not in obj and "default" in ps) or (
                obj.get(k, 0) is None and "default" in ps and not ps.get("nullable")
            ):
                obj[k] = copy_json(ps["default"])
        for k, x in obj.items():
            if k in props:
                default(props[k], x)
            elif isinstance(schema.get("additionalProperties"), Mapping):
                default(schema["additionalProperties"], x)
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for x in obj:
                default(items, x)
    return obj


# The names the package exports (``validate``/``prune``/``default`` are too generic outside it).
validate_schema = validate
prune_paths = prune
apply_defaults = default
