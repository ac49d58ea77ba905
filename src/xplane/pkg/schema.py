"""What the API server does with Crossplane's package kinds before storing them: CRD defaults, a strict
schema check, and the CEL rule on ``spec.package`` (as a warning).

Crossplane's CRDs (``apis/pkg/v1``, ``v1beta1``; spec/packages.md §4.2, §4.4, §5.6) give the
defaults (``packagePullPolicy: IfNotPresent``, ``revisionActivationPolicy: Automatic``,
``revisionHistoryLimit: 1``, ``ignoreCrossplaneConstraints``/``skipDependencyResolution: false``,
``runtimeConfigRef: {name: default}`` with its apiVersion/kind defaults) and the fields each kind's
``spec`` has. The store knows no schemas: :func:`admit` is its ``admission`` hook (defaults, then
types and unknown fields as :class:`~xplane.store.InvalidError`); :func:`check_package_object` reports the same
problems without raising, for ``xp apply`` to validate every document before writing any.

The CEL rule upstream puts on ``spec.package`` (a fully qualified reference with a tag or digest)
would refuse names xplane installs from its cache (``packagePullPolicy: Never`` with
``platform-ref-aws``): :func:`package_warnings` says so, and the object is accepted.

No I/O: ``Store.open(admission=admit)`` for every writer of package objects (the CLI and the
control plane), and ``xp apply`` checks every document with :func:`check_package_object` before writing any.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xplane.errors import json_type
from xplane.pkg.names import CEL_MESSAGE, PACKAGE_RULE, PKG_GROUP

if TYPE_CHECKING:
    from xplane.store import Kind

STRING, INTEGER, BOOLEAN, ANY, STRING_MAP = "string", "integer", "boolean", "any", "stringmap"
Schema = Any  # a type name above, a dict of field -> Schema (an object), or [Schema] (a list)

_NAME_REF = {"name": STRING}
_RUNTIME_REF = {"apiVersion": STRING, "kind": STRING, "name": STRING}
_PACKAGE = {
    "package": STRING,
    "revisionActivationPolicy": STRING,
    "revisionHistoryLimit": INTEGER,
    "packagePullSecrets": [_NAME_REF],
    "packagePullPolicy": STRING,
    "ignoreCrossplaneConstraints": BOOLEAN,
    "skipDependencyResolution": BOOLEAN,
    "commonLabels": STRING_MAP,
    "commonAnnotations": STRING_MAP,
}
_REVISION = {
    "desiredState": STRING,
    "image": STRING,
    "revision": INTEGER,
    "packagePullSecrets": [_NAME_REF],
    "packagePullPolicy": STRING,
    "ignoreCrossplaneConstraints": BOOLEAN,
    "skipDependencyResolution": BOOLEAN,
    "commonLabels": STRING_MAP,
    "commonAnnotations": STRING_MAP,
}
_RUNTIME = {"runtimeConfigRef": _RUNTIME_REF}
_TLS = {"tlsServerSecretName": STRING, "tlsClientSecretName": STRING}
_IMAGE_CONFIG = {
    "matchImages": [{"type": STRING, "prefix": STRING}],
    "registry": {"authentication": {"pullSecretRef": _NAME_REF}},
    "rewriteImage": {"prefix": STRING},
    "verification": ANY,
    "runtime": {"configRef": _RUNTIME_REF},
}
_RUNTIME_CONFIG = {"deploymentTemplate": ANY, "serviceTemplate": ANY, "serviceAccountTemplate": ANY}

_PULL_POLICIES = ("IfNotPresent", "Always", "Never")
_ACTIVATION = ("Automatic", "Manual")
_PACKAGE_DEFAULTS: dict[str, Any] = {
    "packagePullPolicy": "IfNotPresent",
    "revisionActivationPolicy": "Automatic",
    "revisionHistoryLimit": 1,
    "ignoreCrossplaneConstraints": False,
    "skipDependencyResolution": False,
}
_REVISION_DEFAULTS: dict[str, Any] = {
    "packagePullPolicy": "IfNotPresent",
    "ignoreCrossplaneConstraints": False,
    "skipDependencyResolution": False,
}
_RUNTIME_REF_DEFAULTS = {"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "DeploymentRuntimeConfig"}

#: Upstream's CEL rule on ``spec.package`` and its message (spec/packages.md §4.2).
PACKAGE_RULE_MESSAGE = CEL_MESSAGE


@dataclass(frozen=True)
class KindSchema:
    """The ``spec`` of one package kind: its fields, the required ones, defaults and enums."""

    spec: dict[str, Schema]
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    runtime_ref: bool = False
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)


_PKG_ENUMS: dict[str, tuple[str, ...]] = {
    "packagePullPolicy": _PULL_POLICIES,
    "revisionActivationPolicy": _ACTIVATION,
}
_REV_ENUMS: dict[str, tuple[str, ...]] = {"packagePullPolicy": _PULL_POLICIES}
SCHEMAS: dict[str, KindSchema] = {
    "Configuration": KindSchema(_PACKAGE, ("package",), _PACKAGE_DEFAULTS, enums=_PKG_ENUMS),
    "Provider": KindSchema(
        {**_PACKAGE, **_RUNTIME}, ("package",), _PACKAGE_DEFAULTS, runtime_ref=True, enums=_PKG_ENUMS
    ),
    "Function": KindSchema(
        {**_PACKAGE, **_RUNTIME}, ("package",), _PACKAGE_DEFAULTS, runtime_ref=True, enums=_PKG_ENUMS
    ),
    "ConfigurationRevision": KindSchema(_REVISION, (), _REVISION_DEFAULTS, enums=_REV_ENUMS),
    "ProviderRevision": KindSchema(
        {**_REVISION, **_RUNTIME, **_TLS}, (), _REVISION_DEFAULTS, runtime_ref=True, enums=_REV_ENUMS
    ),
    "FunctionRevision": KindSchema(
        {**_REVISION, **_RUNTIME, **_TLS}, (), _REVISION_DEFAULTS, runtime_ref=True, enums=_REV_ENUMS
    ),
    "ImageConfig": KindSchema(_IMAGE_CONFIG, ("matchImages",)),
    "DeploymentRuntimeConfig": KindSchema(_RUNTIME_CONFIG),
}
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")


@dataclass
class Problems:
    """What :func:`check` found: unknown fields (kubectl's strict decoding) and invalid values."""

    unknown: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.unknown or self.invalid)

    def causes(self) -> list[str]:
        """Every problem as one cause of an ``is invalid`` message."""
        return [f'unknown field "{p}"' for p in self.unknown] + self.invalid


def schema_for(kind: Kind) -> KindSchema | None:
    """The schema of a package kind, or None for kinds xplane keeps without one."""
    return SCHEMAS.get(kind.kind) if kind.group == PKG_GROUP else None


def _wrong_type(path: str, value: Any, want: str) -> str:
    got = json_type(value)
    return f'{path}: Invalid value: "{got}": {path} in body must be of type {want}: "{got}"'


def _walk(value: Any, schema: Schema, path: str, out: Problems) -> None:
    if schema == ANY or value is None:
        return
    if isinstance(schema, dict):
        if not isinstance(value, Mapping):
            out.invalid.append(_wrong_type(path, value, "object"))
            return
        for key, sub in value.items():
            if key not in schema:
                out.unknown.append(f"{path}.{key}")
            else:
                _walk(sub, schema[key], f"{path}.{key}", out)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            out.invalid.append(_wrong_type(path, value, "array"))
            return
        for i, item in enumerate(value):
            _walk(item, schema[0], f"{path}[{i}]", out)
    elif schema == STRING_MAP:
        if not isinstance(value, Mapping):
            out.invalid.append(_wrong_type(path, value, "object"))
        else:
            for key, sub in value.items():
                if not isinstance(sub, str):
                    out.invalid.append(_wrong_type(f"{path}.{key}", sub, "string"))
    elif json_type(value) != schema:
        out.invalid.append(_wrong_type(path, value, schema))


def check_package_object(kind: Kind, obj: Mapping[str, Any]) -> Problems:
    """Unknown fields and invalid values of a package-kind object (nothing for other kinds).

    Run it after :func:`apply_defaults` to judge what would be stored; before, to judge what the
    user wrote (a missing defaulted field is then not a problem).
    """
    out = Problems()
    schema = schema_for(kind)
    if schema is None:
        return out
    out.unknown += [k for k in obj if k not in _TOP_LEVEL]
    spec = obj.get("spec")
    if spec is None:
        out.invalid += [f"spec.{k}: Required value" for k in schema.required]
        return out
    _walk(spec, schema.spec, "spec", out)
    if isinstance(spec, Mapping):
        out.invalid += [f"spec.{k}: Required value" for k in schema.required if spec.get(k) is None]
        for key, allowed in schema.enums.items():
            v = spec.get(key)
            if isinstance(v, str) and v not in allowed:
                listed = ", ".join(f'"{a}"' for a in allowed)
                out.invalid.append(f'spec.{key}: Unsupported value: "{v}": supported values: {listed}')
        if kind.kind == "ImageConfig" and spec.get("matchImages") == []:
            out.invalid.append(
                "spec.matchImages: Invalid value: 0: spec.matchImages in body should have at least 1 items"
            )
    return out


def apply_defaults(kind: Kind, obj: dict[str, Any]) -> None:
    """Fill in the CRD's defaults in place (a field that is absent or null gets its default)."""
    schema = schema_for(kind)
    if schema is None:
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for key, value in schema.defaults.items():
        if spec.get(key) is None:
            spec[key] = value
    if schema.runtime_ref:
        ref = spec.get("runtimeConfigRef")
        if ref is None:
            ref = spec["runtimeConfigRef"] = {"name": "default"}
        if isinstance(ref, dict):
            for key, value in _RUNTIME_REF_DEFAULTS.items():
                if ref.get(key) is None:
                    ref[key] = value
    if kind.kind == "ImageConfig":
        for match in spec.get("matchImages") or ():
            if isinstance(match, dict) and match.get("type") is None:
                match["type"] = "Prefix"


def package_warnings(kind: Kind, obj: Mapping[str, Any]) -> list[str]:
    """What upstream would refuse but xplane accepts: ``spec.package`` against the CEL rule."""
    if kind.group != PKG_GROUP or kind.kind not in ("Configuration", "Provider", "Function"):
        return []
    spec = obj.get("spec")
    package = spec.get("package") if isinstance(spec, Mapping) else None
    if not isinstance(package, str) or PACKAGE_RULE.match(package):
        return []
    return [
        f'spec.package "{package}": Crossplane would reject it ({PACKAGE_RULE_MESSAGE}); '
        "xplane accepts it and installs it from the cache or the registry it names"
    ]


def admit(kind: Kind, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The store's ``admission`` hook for package kinds: default, then refuse what the schema refuses."""
    del old
    if schema_for(kind) is None:
        return
    apply_defaults(kind, new)
    problems = check_package_object(kind, new)
    if problems:
        from xplane.store import InvalidError

        name = (new.get("metadata") or {}).get("name") or ""
        raise InvalidError(kind.group_kind, str(name), problems.causes())


__all__ = [
    "PACKAGE_RULE",
    "PACKAGE_RULE_MESSAGE",
    "SCHEMAS",
    "KindSchema",
    "Problems",
    "admit",
    "apply_defaults",
    "check_package_object",
    "package_warnings",
    "schema_for",
]
