"""Schemas by GVK, and the per-resource algorithm of ``crossplane beta validate`` (spec §4.5).

:class:`SchemaSet` indexes every version of every CRD (an XRD first becomes its CRDs, see
:mod:`.xrd`); the last CRD seen for a GVK wins. :func:`validate_resources` checks each resource in
input order: missing schema, defaulting, OpenAPI validation, unknown fields, CEL. The result is a
:class:`Report` with upstream's text lines and the v2.3 JSON/YAML shape.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xplane.fieldtypes import FieldTypeError
from xplane.validate.cel import CelValidator
from xplane.validate.docshape import check_crd, check_xrd
from xplane.validate.errors import INVALID, FieldError, ValidateError
from xplane.validate.schema import check, copy_json
from xplane.validate.structural import structural_errors
from xplane.validate.xrd import XRD_GROUP, crds_for_xrd

CRD_KIND = ("apiextensions.k8s.io", "CustomResourceDefinition")
XRD_KIND = (XRD_GROUP, "CompositeResourceDefinition")
COMPOSITION = ("apiextensions.crossplane.io/v1", "Composition")
NAME_ANNOTATION = "crossplane.io/composition-resource-name"

VALID = "valid"
INVALID_STATUS = "invalid"
MISSING = "missingSchema"


def group_of(api_version: str) -> str:
    """The group of an ``apiVersion`` (``""`` for the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def gvk_string(api_version: str, kind: str) -> str:
    """Go's ``GroupVersionKind.String()``: ``<group>/<version>, Kind=<Kind>`` (core: ``/v1, ...``)."""
    version = api_version.rsplit("/", 1)[-1]
    return f"{group_of(api_version)}/{version}, Kind={kind}"


@dataclass
class CompiledSchema:
    """One CRD version's schema, with its CEL rules compiled on first use."""

    crd: str
    schema: Mapping[str, Any]
    problems: tuple[str, ...] = ()
    _cel: CelValidator | None = field(default=None, repr=False)

    @property
    def cel(self) -> CelValidator:
        """The CEL validator of this schema (built once)."""
        if self._cel is None:
            self._cel = CelValidator(self.schema)
        return self._cel


class SchemaSet:
    """CRD schemas by (group, version, kind)."""

    def __init__(self) -> None:
        self._by_gvk: dict[tuple[str, str, str], CompiledSchema] = {}
        self.crd_names: list[str] = []

    def __len__(self) -> int:
        return len(self._by_gvk)

    def add(self, doc: Mapping[str, Any]) -> bool:
        """Add a CRD or an XRD (as its CRDs); False for any other kind of document.

        A CRD or XRD with a field of the wrong type (a schema that is a list, ``required`` holding
        a number, ...) raises :class:`ValidateError` naming the field, and nothing of it is added.
        """
        gk = (group_of(str(doc.get("apiVersion", ""))), doc.get("kind"))
        if gk == CRD_KIND:
            check_crd(doc)
            self.add_crd(doc)
            return True
        if gk == XRD_KIND:
            check_xrd(doc)
            for crd in crds_for_xrd(dict(doc)):
                self.add_crd(crd)
            return True
        return False

    def add_crd(self, crd: Mapping[str, Any]) -> None:
        """Index every version of a CRD (``spec.validation`` wins over the per-version schema).

        A schema field of the wrong type raises :class:`ValidateError` and no version is indexed.
        """
        spec = crd.get("spec")
        name = str((crd.get("metadata") or {}).get("name", ""))
        if not isinstance(spec, Mapping) or not isinstance(spec.get("names"), Mapping):
            raise ValidateError(f"CRD {name or '<unnamed>'}: spec.names is required")
        group, kind = str(spec.get("group", "")), str(spec["names"].get("kind", ""))
        top = (spec.get("validation") or {}).get("openAPIV3Schema")
        found: dict[tuple[str, str, str], CompiledSchema] = {}
        for i, v in enumerate(spec.get("versions") or ()):
            schema = top or ((v.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object"}
            where = "spec.validation.openAPIV3Schema" if top else f"spec.versions[{i}].schema.openAPIV3Schema"
            try:
                problems = tuple(structural_errors(schema, where))
            except FieldTypeError as e:
                raise ValidateError(f"CRD {name or '<unnamed>'}: {e.message}") from None
            found[(group, str(v.get("name", "")), kind)] = CompiledSchema(name, schema, problems)
        self._by_gvk.update(found)
        self.crd_names.append(name)

    def lookup(self, api_version: str, kind: str) -> CompiledSchema | None:
        """The schema of a GVK, or None."""
        version = api_version.rsplit("/", 1)[-1]
        return self._by_gvk.get((group_of(api_version), version, kind))


@dataclass
class Resource:
    """A resource to validate and where it came from (``file:line``, for messages)."""

    obj: dict[str, Any]
    where: str = ""

    @property
    def api_version(self) -> str:
        """``apiVersion``."""
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        """``kind``."""
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        """``metadata.name``, else the composition-resource-name annotation (render output)."""
        meta = self.obj.get("metadata") or {}
        if not isinstance(meta, Mapping):
            return ""
        name = meta.get("name")
        if name:
            return str(name)
        return str((meta.get("annotations") or {}).get(NAME_ANNOTATION, ""))

    @property
    def namespace(self) -> str:
        """``metadata.namespace``."""
        meta = self.obj.get("metadata") or {}
        return str(meta.get("namespace", "")) if isinstance(meta, Mapping) else ""


@dataclass
class Result:
    """The outcome for one resource."""

    resource: Resource
    status: str
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def gvk(self) -> str:
        """The resource's GVK as upstream prints it."""
        return gvk_string(self.resource.api_version, self.resource.kind)

    def lines(self, *, skip_success: bool = False) -> list[str]:
        """Upstream's text lines for this resource (no duplicates)."""
        r = self.resource
        if self.status == MISSING:
            return [f"[!] could not find CRD/XRD for: {self.gvk}"]
        out = [f"[!] failed to apply defaults for {self.gvk}, {r.name}: {w}" for w in self.warnings]
        for e in self.errors:
            what = "CEL validation error" if e.kind == "cel" else "schema validation error"
            out.append(f"[x] {what} {self.gvk}, {r.name} : {e}")
        if self.status == VALID and not skip_success:
            out.append(f"[✓] {self.gvk}, {r.name} validated successfully")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The v2.3 JSON shape of one resource."""
        r = self.resource
        out: dict[str, Any] = {"apiVersion": r.api_version, "kind": r.kind, "name": r.name}
        if r.namespace:
            out["namespace"] = r.namespace
        status = "defaultingFailed" if self.status == VALID and self.warnings else self.status
        out["status"] = status
        errs = [e.to_dict() for e in self.errors]
        errs += [{"type": "defaulting", "message": w} for w in self.warnings]
        if errs:
            out["errors"] = errs
        if r.where:
            out["source"] = r.where
        return out


@dataclass
class Report:
    """Every result, in input order, and the counts."""

    results: list[Result] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Resources checked."""
        return len(self.results)

    @property
    def invalid(self) -> int:
        """Failure cases."""
        return sum(1 for r in self.results if r.status == INVALID_STATUS)

    @property
    def missing(self) -> int:
        """Missing schemas."""
        return sum(1 for r in self.results if r.status == MISSING)

    @property
    def valid(self) -> int:
        """Success cases (total - failures - missing; a defaulting failure alone is a success)."""
        return self.total - self.invalid - self.missing

    def summary_line(self) -> str:
        """``Total <N> resources: <M> missing schemas, <S> success cases, <F> failure cases``."""
        return (
            f"Total {self.total} resources: {self.missing} missing schemas, "
            f"{self.valid} success cases, {self.invalid} failure cases"
        )

    def lines(self, *, skip_success: bool = False) -> list[str]:
        """Every text line, the summary last."""
        out: list[str] = []
        for r in self.results:
            out.extend(r.lines(skip_success=skip_success))
        out.append(self.summary_line())
        return out

    def to_dict(self) -> dict[str, Any]:
        """The v2.3 JSON/YAML shape."""
        return {
            "summary": {
                "total": self.total,
                "valid": self.valid,
                "invalid": self.invalid,
                "missingSchemas": self.missing,
            },
            "resources": [r.to_dict() for r in self.results],
        }


def _dedupe(errors: Iterable[FieldError]) -> list[FieldError]:
    seen: set[str] = set()
    out: list[FieldError] = []
    for e in errors:
        key = f"{e.kind}:{e}"
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def validate_resource(schemas: SchemaSet, res: Resource) -> Result:
    """Check one resource (defaults are applied to a copy; the input is not changed)."""
    cs = schemas.lookup(res.api_version, res.kind)
    if cs is None:
        return Result(res, MISSING)
    obj = copy_json(res.obj)
    warnings: list[str] = []
    errors: list[FieldError] = []
    for p in cs.problems:
        text = f'CustomResourceDefinition.apiextensions.k8s.io "{cs.crd}" is invalid: {p}'
        errors.append(FieldError("", INVALID, text=text))
    try:
        schema_errors, walk = check(cs.schema, obj)
    except (TypeError, ValueError, AttributeError) as e:  # a default that does not fit: validate without
        warnings.append(str(e))
        obj = copy_json(res.obj)
        schema_errors, walk = check(cs.schema, obj, defaults=False)
    errors.extend(schema_errors)
    for p in walk.unknown:
        last = p.rsplit(".", 1)[-1]
        errors.append(FieldError(p, INVALID, last, f'unknown field: "{last}"', "unknownField"))
    if not cs.problems:
        errors.extend(cs.cel.validate_sites(walk.cel_sites))
    errors = _dedupe(errors)
    return Result(res, INVALID_STATUS if errors else VALID, errors, warnings)


def expand_composition_inputs(resources: Iterable[Resource]) -> list[Resource]:
    """Each Composition's pipeline ``input`` objects, placed before the Composition (spec §4.2)."""
    out: list[Resource] = []
    for res in resources:
        if (res.api_version, res.kind) == COMPOSITION:
            pipeline = (res.obj.get("spec") or {}).get("pipeline") or []
            for i, step in enumerate(pipeline if isinstance(pipeline, list) else []):
                inp = step.get("input") if isinstance(step, Mapping) else None
                if isinstance(inp, dict):
                    where = f"{res.where} (pipeline[{i}] {step.get('step', '')})".strip()
                    out.append(Resource(inp, where))
        out.append(res)
    return out


def validate_resources(schemas: SchemaSet, resources: Iterable[Resource]) -> Report:
    """Validate every resource, Composition function inputs included, in input order.

    The cyclic garbage collector is paused meanwhile: the walks allocate only acyclic values, and
    collections would otherwise traverse every (large) schema again and again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return Report([validate_resource(schemas, r) for r in expand_composition_inputs(resources)])
    finally:
        if enabled:
            gc.enable()
