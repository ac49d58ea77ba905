"""Package metadata (``crossplane.yaml``): ``meta.pkg.crossplane.io`` Configuration, Provider, Function.

All meta versions (v1, v1beta1 Function, v1alpha1 Configuration/Provider) share one spec shape, so
they parse into the same value types; ``api_version`` records which one was written. Decoding is
non-strict like Crossplane's (unknown fields are dropped, ``null`` means absent) but a field of the
wrong type is an error, as it is for Go's JSON decoder: an unquoted ``version: 1.0`` in YAML is a
number, and Crossplane rejects the package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from xplane.xpkg.errors import MetaError
from xplane.xpkg.objects import META_GROUP, META_KINDS
from xplane.xpkg.semver import is_digest_constraint

PKG_API_VERSION = "pkg.crossplane.io/v1"
PACKAGE_TYPES = ("Configuration", "Provider", "Function")

CAPABILITY_COMPOSITION = "composition"
CAPABILITY_OPERATION = "operation"
CAPABILITY_SAFE_START = "safe-start"

ANNOTATION_MAINTAINER = "meta.crossplane.io/maintainer"
ANNOTATION_SOURCE = "meta.crossplane.io/source"
ANNOTATION_LICENSE = "meta.crossplane.io/license"
ANNOTATION_DESCRIPTION = "meta.crossplane.io/description"
ANNOTATION_README = "meta.crossplane.io/readme"

ERR_INVALID_DEPENDENCY = (
    "encountered an invalid dependency: package dependencies must specify either a valid type, "
    "or an explicit apiVersion, kind, and package"
)

_FUZZ = re.compile(r"[^a-zA-Z0-9]+")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _opt_str(d: Mapping[str, Any], key: str, path: str) -> str | None:
    value = d.get(key)
    if value is None or isinstance(value, str):
        return value
    hint = f'quote it: {key}: "{value}"' if isinstance(value, int | float | bool) else None
    raise MetaError(f"{_join(path, key)}: cannot unmarshal {_json_type(value)} into a string", hint=hint)


def _mapping(d: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MetaError(f"{_join(path, key)}: cannot unmarshal {_json_type(value)} into an object")
    return value


def _list(d: Mapping[str, Any], key: str, path: str) -> Sequence[Any] | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise MetaError(f"{_join(path, key)}: cannot unmarshal {_json_type(value)} into an array")
    return value


def _str_map(d: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    out = {}
    for k, v in _mapping(d, key, path).items():
        if v is not None and not isinstance(v, str):
            raise MetaError(
                f"{_join(path, key)}[{k!s}]: cannot unmarshal {_json_type(v)} into a string",
                hint=f'quote the value: {k}: "{v}"',
            )
        out[str(k)] = v or ""
    return out


@dataclass(frozen=True)
class ResolvedDependency:
    """A dependency as Crossplane writes it into the Lock (``v1beta1.Dependency``).

    Exactly one of (``api_version`` + ``kind``) or ``type`` is set: ``type`` comes from the
    deprecated one-field forms (``provider:``, ``configuration:``, ``function:``).
    """

    package: str
    constraints: str
    api_version: str | None = None
    kind: str | None = None
    type: str | None = None

    @property
    def package_api_version(self) -> str:
        """The apiVersion of the package object to create (``pkg.crossplane.io/v1`` for typed forms)."""
        return self.api_version if self.api_version is not None else PKG_API_VERSION

    @property
    def package_kind(self) -> str:
        """The kind of the package object to create: the explicit kind, else the type."""
        return self.kind if self.kind is not None else (self.type or "")

    @property
    def is_digest(self) -> bool:
        """True when the constraint is a digest, compared by string equality."""
        return is_digest_constraint(self.constraints)


@dataclass(frozen=True)
class Dependency:
    """One ``spec.dependsOn`` entry, exactly as written (``None`` = field absent)."""

    version: str = ""
    api_version: str | None = None
    kind: str | None = None
    package: str | None = None
    provider: str | None = None
    configuration: str | None = None
    function: str | None = None

    @classmethod
    def from_dict(cls, d: Any, *, path: str = "spec.dependsOn[0]") -> Dependency:
        """Decode one entry; raise :class:`MetaError` when a field has the wrong type."""
        if not isinstance(d, Mapping):
            raise MetaError(f"{path}: cannot unmarshal {_json_type(d)} into an object")
        return cls(
            version=_opt_str(d, "version", path) or "",
            api_version=_opt_str(d, "apiVersion", path),
            kind=_opt_str(d, "kind", path),
            package=_opt_str(d, "package", path),
            provider=_opt_str(d, "provider", path),
            configuration=_opt_str(d, "configuration", path),
            function=_opt_str(d, "function", path),
        )

    def to_dict(self) -> dict[str, str]:
        """The entry as YAML/JSON, with only the fields that were set."""
        pairs = [
            ("apiVersion", self.api_version),
            ("kind", self.kind),
            ("package", self.package),
            ("configuration", self.configuration),
            ("provider", self.provider),
            ("function", self.function),
        ]
        out = {k: v for k, v in pairs if v is not None}
        out["version"] = self.version
        return out

    def resolve(self) -> ResolvedDependency:
        """Apply Crossplane's precedence: apiVersion+kind+package, then configuration, provider, function.

        Raise :class:`MetaError` with upstream's message when none of the forms is complete.
        """
        if self.api_version is not None and self.kind is not None and self.package is not None:
            return ResolvedDependency(
                self.package, self.version, api_version=self.api_version, kind=self.kind
            )
        for typ, pkg in (
            ("Configuration", self.configuration),
            ("Provider", self.provider),
            ("Function", self.function),
        ):
            if pkg is not None:
                return ResolvedDependency(pkg, self.version, type=typ)
        raise MetaError(
            ERR_INVALID_DEPENDENCY,
            hint="write apiVersion: pkg.crossplane.io/v1, kind: Provider|Configuration|Function and "
            "package: <registry>/<org>/<name> (or the deprecated provider:/configuration:/function: field)",
        )

    @property
    def reference(self) -> str | None:
        """The package reference this entry will resolve to, or ``None`` if it is invalid."""
        try:
            return self.resolve().package
        except MetaError:
            return None

    @property
    def is_digest(self) -> bool:
        """True when ``version`` is a digest (``sha256:<64 hex>``)."""
        return is_digest_constraint(self.version)


@dataclass(frozen=True)
class CrossplaneConstraints:
    """``spec.crossplane``: a semver constraint on the Crossplane version."""

    version: str


@dataclass(frozen=True)
class PackageMeta:
    """The meta object of a package. Use :meth:`from_dict`; subclasses name the package type."""

    package_type: ClassVar[str] = ""

    api_version: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    crossplane: CrossplaneConstraints | None = None
    depends_on: tuple[Dependency, ...] = ()
    capabilities: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        """``Configuration``, ``Provider`` or ``Function``."""
        return self.package_type

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PackageMeta:
        """Decode a meta document into :class:`Configuration`, :class:`Provider` or :class:`Function`.

        Raise :class:`MetaError` when the document is not a meta package kind or a field has the
        wrong type.
        """
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if (
            not isinstance(api_version, str)
            or not isinstance(kind, str)
            or kind not in META_KINDS.get(api_version, ())
        ):
            known = ", ".join(f"{v} {k}" for v, ks in META_KINDS.items() for k in sorted(ks))
            raise MetaError(f"{api_version}/{kind} is not a package meta type", hint=f"known: {known}")
        sub = _BY_KIND[kind]
        if cls is not PackageMeta and cls is not sub:
            raise MetaError(f"package meta type is not {cls.package_type}")
        metadata = _mapping(doc, "metadata", "")
        spec = _mapping(doc, "spec", "")
        name = _opt_str(metadata, "name", "metadata") or ""
        crossplane = None
        if spec.get("crossplane") is not None:
            cp = _mapping(spec, "crossplane", "spec")
            crossplane = CrossplaneConstraints(_opt_str(cp, "version", "spec.crossplane") or "")
        deps = _list(spec, "dependsOn", "spec") or []
        caps = _list(spec, "capabilities", "spec")
        if caps is not None:
            for i, c in enumerate(caps):
                if not isinstance(c, str):
                    raise MetaError(f"spec.capabilities[{i}]: cannot unmarshal {_json_type(c)} into a string")
        return sub(
            api_version=api_version,
            name=name,
            labels=_str_map(metadata, "labels", "metadata"),
            annotations=_str_map(metadata, "annotations", "metadata"),
            crossplane=crossplane,
            depends_on=tuple(
                Dependency.from_dict(d, path=f"spec.dependsOn[{i}]") for i, d in enumerate(deps)
            ),
            capabilities=tuple(caps) if caps is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The meta object as a plain document (what ``crossplane.yaml`` would say)."""
        metadata: dict[str, Any] = {"name": self.name}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        spec: dict[str, Any] = {}
        if self.crossplane is not None:
            spec["crossplane"] = {"version": self.crossplane.version}
        if self.depends_on:
            spec["dependsOn"] = [d.to_dict() for d in self.depends_on]
        if self.capabilities is not None:
            spec["capabilities"] = list(self.capabilities)
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata, "spec": spec}

    @property
    def effective_capabilities(self) -> tuple[str, ...]:
        """The capabilities Crossplane records on the revision."""
        return self.capabilities or ()

    def has_capability(self, key: str) -> bool:
        """Crossplane's ``CapabilitiesContainFuzzyMatch``: ignore case and non-alphanumerics."""
        want = _FUZZ.sub("", key).lower()
        return any(_FUZZ.sub("", c).lower() == want for c in self.effective_capabilities)

    def dependencies(self) -> list[ResolvedDependency]:
        """``dependsOn`` as Lock dependencies; raise :class:`MetaError` on the first invalid entry."""
        return [d.resolve() for d in self.depends_on]

    @property
    def crossplane_constraint(self) -> str | None:
        """``spec.crossplane.version``, or ``None`` when ``spec.crossplane`` is absent."""
        return None if self.crossplane is None else self.crossplane.version

    @property
    def description(self) -> str | None:
        """The ``meta.crossplane.io/description`` annotation."""
        return self.annotations.get(ANNOTATION_DESCRIPTION)


@dataclass(frozen=True)
class Configuration(PackageMeta):
    """A Configuration package's meta object."""

    package_type: ClassVar[str] = "Configuration"


@dataclass(frozen=True)
class Provider(PackageMeta):
    """A Provider package's meta object."""

    package_type: ClassVar[str] = "Provider"


@dataclass(frozen=True)
class Function(PackageMeta):
    """A Function package's meta object. Without capabilities it counts as ``["composition"]``."""

    package_type: ClassVar[str] = "Function"

    @property
    def effective_capabilities(self) -> tuple[str, ...]:
        """The declared capabilities, or ``("composition",)`` when none are declared."""
        return self.capabilities or (CAPABILITY_COMPOSITION,)


_BY_KIND: dict[str, type[PackageMeta]] = {
    "Configuration": Configuration,
    "Provider": Provider,
    "Function": Function,
}

__all__ = [
    "META_GROUP",
    "Configuration",
    "CrossplaneConstraints",
    "Dependency",
    "Function",
    "PackageMeta",
    "Provider",
    "ResolvedDependency",
]
