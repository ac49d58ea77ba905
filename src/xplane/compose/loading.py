"""Render's inputs from files, as classic render's ``load.go`` reads them (§3.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xplane.compose.errors import ComposeError, q
from xplane.compose.shapes import (
    ShapeError,
    check_composition,
    check_object,
    check_openapi,
    check_xr,
    check_xrd,
)
from xplane.fieldtypes import object_name


def _docs(path: Path) -> list[Any]:
    from xplane.xpkg import load_all

    return [d for d in load_all(path.read_bytes(), file=str(path)) if d is not None]


def load_stream(path: Path) -> list[dict[str, Any]]:
    """A file, or a directory's direct ``*.yaml``/``*.yml`` children in name order, as one stream."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".yaml", ".yml"))
        if not files:
            raise ComposeError(f'no YAML files found in "{p}" (.yaml or .yml)')
    else:
        files = [p]
    out: list[dict[str, Any]] = []
    for f in files:
        out.extend(_docs(f))
    return out


def load_xr(path: Path) -> dict[str, Any]:
    """The composite resource (one object)."""
    try:
        docs = _docs(Path(path))
    except Exception as e:
        raise ComposeError(
            f'cannot load composite resource from "{path}": cannot unmarshal composite resource YAML: {e}'
        ) from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ComposeError(
            f'cannot load composite resource from "{path}": cannot unmarshal composite resource YAML'
        )
    try:
        check_xr(docs[0])
    except ShapeError as e:
        raise ComposeError(f'cannot load composite resource from "{path}": {e.message}') from None
    return docs[0]


def load_composition(path: Path) -> dict[str, Any]:
    """The Composition; it must be ``apiextensions.crossplane.io/v1`` ``Composition``."""
    try:
        docs = _docs(Path(path))
    except Exception as e:
        raise ComposeError(f'cannot load Composition from "{path}": {e}') from None
    c = docs[0] if docs and isinstance(docs[0], dict) else {}
    if c.get("apiVersion") != "apiextensions.crossplane.io/v1" or c.get("kind") != "Composition":
        raise ComposeError(
            f'cannot load Composition from "{path}": not a composition: {c.get("kind", "")}/{object_name(c)}'
        )
    try:
        check_composition(c)
    except ShapeError as e:
        raise ComposeError(f'cannot load Composition from "{path}": {e.message}') from None
    return c


def load_functions(path: Path) -> list[dict[str, Any]]:
    """Function objects (``pkg.crossplane.io/v1`` or ``v1beta1``)."""
    try:
        fns = load_stream(Path(path))
    except ComposeError as e:
        raise ComposeError(f'cannot load functions from "{path}": {e}') from None
    for f in fns:
        if (
            not isinstance(f, dict)
            or f.get("apiVersion") not in ("pkg.crossplane.io/v1", "pkg.crossplane.io/v1beta1")
            or f.get("kind") != "Function"
        ):
            kind = f.get("kind", "") if isinstance(f, dict) else ""
            raise ComposeError(
                f'cannot load functions from "{path}": not a function: {kind}/{object_name(f)}'
            )
        try:
            check_object(f)
        except ShapeError as e:
            raise ComposeError(
                f'cannot load functions from "{path}": Function {q(object_name(f))}: {e.message}'
            ) from None
    return fns


def load_schemas(path: Path) -> list[dict[str, Any]]:
    """OpenAPI v3 JSON documents under ``path`` (recursive ``*.json``)."""
    files = sorted(Path(path).rglob("*.json"))
    if not files:
        raise ComposeError(f'no JSON files found in "{path}"')
    out = []
    for f in files:
        try:
            doc = json.loads(f.read_text())
            check_openapi(doc)
        except ShapeError as e:
            raise ComposeError(f'cannot parse OpenAPI JSON from "{f}": {e.message}') from None
        except (ValueError, OSError) as e:
            raise ComposeError(f'cannot parse OpenAPI JSON from "{f}": {e}') from None
        out.append(doc)
    return out


def parse_pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``KEY=VALUE`` flags (one pair per flag)."""
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep:
            raise ComposeError(f"invalid {what} format {json.dumps(v)}, expected key=value")
        out[k] = val
    return out


def build_context(files: dict[str, str], values: dict[str, str]) -> dict[str, Any]:
    """The initial context: ``--context-files`` then ``--context-values`` (values win)."""
    from xplane.xpkg import loads

    ctx: dict[str, Any] = {}
    for k, f in files.items():
        try:
            ctx[k] = loads(Path(f).read_bytes(), file=f)
        except Exception as e:
            raise ComposeError(f"cannot unmarshal YAML/JSON for context key {json.dumps(k)}: {e}") from None
    for k, v in values.items():
        try:
            ctx[k] = loads(v)
        except Exception as e:
            raise ComposeError(f"cannot unmarshal YAML/JSON for context key {json.dumps(k)}: {e}") from None
    return ctx


def apply_xrd_defaults(xr: dict[str, Any], xrd: dict[str, Any]) -> dict[str, Any]:
    """Structural defaults of the XRD version matching the XR's apiVersion, applied to ``xr``."""
    try:
        check_xrd(xrd)
    except ShapeError as e:
        raise ComposeError(f"invalid XRD: {e.message}") from None
    spec = xrd.get("spec") or {}
    for v in spec.get("versions") or ():
        if f"{spec.get('group', '')}/{v.get('name', '')}" == xr.get("apiVersion"):
            schema = (v.get("schema") or {}).get("openAPIV3Schema") or {}
            _default(xr, schema)
            return xr
    raise ComposeError(f"the specified API version '{xr.get('apiVersion', '')}' does not exist in the XRD")


def _default(obj: Any, schema: Any) -> None:
    if not isinstance(schema, dict):  # not a schema (a malformed XRD): nothing to default from
        return
    if isinstance(obj, dict):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        for k, sub in props.items():
            if not isinstance(sub, dict):
                continue
            if k not in obj and "default" in sub:
                obj[k] = json.loads(json.dumps(sub["default"]))
            if k in obj:
                _default(obj[k], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k in obj:
                if k not in props:
                    _default(obj[k], extra)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            _default(item, schema["items"])
