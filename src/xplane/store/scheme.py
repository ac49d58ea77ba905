"""The kind table: which kinds the store holds and the names kubectl resolves them by.

A :class:`Kind` is what a CRD's ``spec.names``/``scope``/``versions`` say about a type. The built-in
table (:data:`BUILTIN_KINDS`) has the kinds the package manager stores, with names, categories,
scopes and status subresources as in Crossplane's CRDs (cluster/crds, checked against upstream main,
2026-08) and Kubernetes' own types. Kinds defined by installed CRDs join with
:meth:`Scheme.register` (:meth:`Kind.from_crd`).

Name resolution follows kubectl (case-insensitive): ``name.group`` and ``name.version.group`` first
when the name has a dot, then categories (``pkg``, ``pkgrev``, ``crossplane``), then plural,
singular, kind and short names. A category resolves to several kinds; everything else to one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xplane.errors import json_type
from xplane.fieldtypes import object_name
from xplane.store.errors import BadRequestError, InvalidError, UnknownKindError

CROSSPLANE_NAMESPACE = "crossplane-system"
"""The namespace Crossplane runs in: where package pull Secrets live (``packagePullSecrets``)."""


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry: what ``get`` shows (``priority`` 1 only with ``-o wide``)."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    """A kind the store holds: its group, versions, names and scope.

    ``version`` is the preferred version (what ``apiVersion`` a new object of this kind is shown
    with when nothing else says); ``versions`` every served one. ``status_subresource`` says whether
    ``status`` is written only through ``update_status`` (as for CRDs with ``subresources.status``).
    ``generation`` is False for kinds Kubernetes never gives a ``metadata.generation`` (Secrets).
    """

    group: str
    version: str
    kind: str
    plural: str
    singular: str = ""
    namespaced: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    status_subresource: bool = True
    generation: bool = True
    columns: tuple[PrinterColumn, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.singular:
            object.__setattr__(self, "singular", self.kind.lower())
        if not self.versions:
            object.__setattr__(self, "versions", (self.version,))

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group (``v1``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """``plural.group`` (``configurations.pkg.crossplane.io``; ``secrets`` for core): how errors name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``Kind.group`` (``Configuration.pkg.crossplane.io``; ``Secret`` for core): how Invalid names it."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def serves(self, api_version: str) -> bool:
        """Whether ``api_version`` (``group/version``) is one of this kind's served versions."""
        group, _, version = api_version.rpartition("/")
        return group == self.group and version in self.versions

    @classmethod
    def from_crd(cls, crd: Mapping[str, Any]) -> Kind:
        """The kind a ``CustomResourceDefinition`` (``apiextensions.k8s.io/v1``) defines.

        Raises :class:`InvalidError` when the CRD lacks a group, kind, plural or served version.
        """
        causes = crd_shape_causes(crd)
        if causes:  # fields of the wrong type: what Kubernetes refuses to decode
            raise InvalidError("CustomResourceDefinition.apiextensions.k8s.io", object_name(crd), causes)
        name = str((crd.get("metadata") or {}).get("name") or "")
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
        causes = [
            f"spec.{path}: Required value"
            for path, value in (("group", group), ("names.kind", kind), ("names.plural", plural))
            if not isinstance(value, str) or not value
        ]
        served = [v for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("served", True)]
        if not served:
            causes.append("spec.versions: Required value: must have at least one served version")
        if causes:
            raise InvalidError("CustomResourceDefinition.apiextensions.k8s.io", name, causes)
        ordered = sorted(served, key=lambda v: version_priority(str(v.get("name", ""))))
        preferred = ordered[0]
        columns = tuple(
            PrinterColumn(
                str(c.get("name", "")),
                str(c.get("jsonPath", "")),
                str(c.get("type", "string")),
                int(c.get("priority", 0) or 0),
            )
            for c in preferred.get("additionalPrinterColumns") or []
            if isinstance(c, dict)
        )
        return cls(
            group=str(group),
            version=str(preferred["name"]),
            kind=str(kind),
            plural=str(plural),
            singular=str(names.get("singular") or ""),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(str(s) for s in names.get("shortNames") or ()),
            categories=tuple(str(s) for s in names.get("categories") or ()),
            versions=tuple(str(v["name"]) for v in ordered),
            status_subresource="status" in (preferred.get("subresources") or {}),
            columns=columns,
        )


def crd_shape_causes(crd: Mapping[str, Any]) -> list[str]:
    """The fields :meth:`Kind.from_crd` reads that have the wrong type (``spec.names.shortNames:
    Invalid value: "boolean": must be an array of strings``); empty when every one is right."""
    causes: list[str] = []

    def want(path: str, value: Any, ok: bool, what: str) -> bool:
        if value is not None and not ok:
            causes.append(f'{path}: Invalid value: "{json_type(value)}": must be {what}')
            return False
        return value is not None

    def strings(path: str, value: Any) -> None:
        if want(path, value, isinstance(value, list), "an array of strings"):
            for i, x in enumerate(value):
                want(f"{path}[{i}]", x, isinstance(x, str), "a string")

    meta, spec = crd.get("metadata"), crd.get("spec")
    want("metadata", meta, isinstance(meta, dict), "an object")
    if not want("spec", spec, isinstance(spec, dict), "an object") or not isinstance(spec, dict):
        return causes
    for f in ("group", "scope"):
        want(f"spec.{f}", spec.get(f), isinstance(spec.get(f), str), "a string")
    names = spec.get("names")
    if want("spec.names", names, isinstance(names, dict), "an object") and isinstance(names, dict):
        for f in ("kind", "plural", "singular", "listKind"):
            want(f"spec.names.{f}", names.get(f), isinstance(names.get(f), str), "a string")
        for f in ("shortNames", "categories"):
            strings(f"spec.names.{f}", names.get(f))
    versions = spec.get("versions")
    if not want("spec.versions", versions, isinstance(versions, list), "an array") or not isinstance(
        versions, list
    ):
        return causes
    for i, v in enumerate(versions):
        at = f"spec.versions[{i}]"
        if not want(at, v, isinstance(v, dict), "an object") or not isinstance(v, dict):
            continue
        if not v.get("name"):
            causes.append(f"{at}.name: Required value")
        want(f"{at}.name", v.get("name"), isinstance(v.get("name"), str), "a string")
        for f in ("served", "storage"):
            want(f"{at}.{f}", v.get(f), isinstance(v.get(f), bool), "a boolean")
        want(
            f"{at}.subresources", v.get("subresources"), isinstance(v.get("subresources"), dict), "an object"
        )
        columns = v.get("additionalPrinterColumns")
        if want(
            f"{at}.additionalPrinterColumns", columns, isinstance(columns, list), "an array"
        ) and isinstance(columns, list):
            for j, c in enumerate(columns):
                col = f"{at}.additionalPrinterColumns[{j}]"
                if want(col, c, isinstance(c, dict), "an object") and isinstance(c, dict):
                    for f in ("name", "jsonPath", "type"):
                        want(f"{col}.{f}", c.get(f), isinstance(c.get(f), str), "a string")
                    p = c.get("priority")
                    want(f"{col}.priority", p, isinstance(p, int) and not isinstance(p, bool), "an integer")
    return causes


_KUBE_VERSION = re.compile(r"v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?\Z")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes' version priority: GA before beta before alpha, higher numbers first,
    then versions that do not look like Kubernetes versions, alphabetically (``v2 > v1 > v1beta1``)."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, "")


def _pkg_columns() -> tuple[PrinterColumn, ...]:
    return (
        PrinterColumn("INSTALLED", ".status.conditions[?(@.type=='Installed')].status"),
        PrinterColumn("HEALTHY", ".status.conditions[?(@.type=='Healthy')].status"),
        PrinterColumn("PACKAGE", ".spec.package"),
        PrinterColumn("AGE", ".metadata.creationTimestamp", "date"),
    )


def _rev_columns(runtime: bool) -> tuple[PrinterColumn, ...]:
    # Crossplane v2.0-v2.3 (spec/packages.md §4.1): RUNTIME for runtime kinds; REVISION and the
    # dependency counts only with -o wide.
    head = [PrinterColumn("HEALTHY", ".status.conditions[?(@.type=='RevisionHealthy')].status")]
    if runtime:
        head.append(PrinterColumn("RUNTIME", ".status.conditions[?(@.type=='RuntimeHealthy')].status"))
    return (
        *head,
        PrinterColumn("IMAGE", ".spec.image"),
        PrinterColumn("STATE", ".spec.desiredState"),
        PrinterColumn("AGE", ".metadata.creationTimestamp", "date"),
        PrinterColumn("REVISION", ".spec.revision", priority=1),
        PrinterColumn("DEP-FOUND", ".status.foundDependencies", priority=1),
        PrinterColumn("DEP-INSTALLED", ".status.installedDependencies", priority=1),
    )


_AGE = (PrinterColumn("AGE", ".metadata.creationTimestamp", "date"),)
_ESTABLISHED = PrinterColumn("ESTABLISHED", ".status.conditions[?(@.type=='Established')].status")
_PKG = "pkg.crossplane.io"
_APIX = "apiextensions.crossplane.io"
_OPS = "ops.crossplane.io"
_PKG_CATS = ("crossplane", "pkg")
_REV_CATS = ("crossplane", "pkgrev")

BUILTIN_KINDS: tuple[Kind, ...] = (
    # pkg.crossplane.io: the package manager's own API (spec/packages.md §4.1)
    Kind(_PKG, "v1", "Configuration", "configurations", categories=_PKG_CATS, columns=_pkg_columns()),
    Kind(_PKG, "v1", "Provider", "providers", categories=_PKG_CATS, columns=_pkg_columns()),
    Kind(
        _PKG,
        "v1",
        "Function",
        "functions",
        categories=_PKG_CATS,
        versions=("v1", "v1beta1"),
        columns=_pkg_columns(),
    ),
    Kind(
        _PKG,
        "v1",
        "ConfigurationRevision",
        "configurationrevisions",
        categories=_REV_CATS,
        columns=_rev_columns(False),
    ),
    Kind(
        _PKG, "v1", "ProviderRevision", "providerrevisions", categories=_REV_CATS, columns=_rev_columns(True)
    ),
    Kind(
        _PKG,
        "v1",
        "FunctionRevision",
        "functionrevisions",
        categories=_REV_CATS,
        versions=("v1", "v1beta1"),
        columns=_rev_columns(True),
    ),
    Kind(_PKG, "v1beta1", "Lock", "locks", columns=_AGE),
    Kind(
        _PKG,
        "v1beta1",
        "ImageConfig",
        "imageconfigs",
        categories=("crossplane",),
        status_subresource=False,
        columns=_AGE,
    ),
    Kind(
        _PKG,
        "v1beta1",
        "DeploymentRuntimeConfig",
        "deploymentruntimeconfigs",
        categories=("crossplane",),
        status_subresource=False,
        columns=_AGE,
    ),
    # what package revisions install (spec/packages.md §2.4, §4.10)
    Kind(
        _APIX,
        "v2",
        "CompositeResourceDefinition",
        "compositeresourcedefinitions",
        short_names=("xrd", "xrds"),
        categories=("crossplane",),
        versions=("v2", "v1"),
        columns=(
            _ESTABLISHED,
            PrinterColumn("OFFERED", ".status.conditions[?(@.type=='Offered')].status"),
            *_AGE,
        ),
    ),
    Kind(
        _APIX,
        "v1",
        "Composition",
        "compositions",
        short_names=("comp",),
        categories=("crossplane",),
        status_subresource=False,
        columns=(
            PrinterColumn("XR-KIND", ".spec.compositeTypeRef.kind"),
            PrinterColumn("XR-APIVERSION", ".spec.compositeTypeRef.apiVersion"),
            *_AGE,
        ),
    ),
    Kind(
        _APIX,
        "v1",
        "CompositionRevision",
        "compositionrevisions",
        short_names=("comprev",),
        categories=("crossplane",),
        columns=(
            PrinterColumn("REVISION", ".spec.revision"),
            PrinterColumn("XR-KIND", ".spec.compositeTypeRef.kind"),
            PrinterColumn("XR-APIVERSION", ".spec.compositeTypeRef.apiVersion"),
            *_AGE,
        ),
    ),
    Kind(
        _APIX,
        "v1alpha1",
        "ManagedResourceDefinition",
        "managedresourcedefinitions",
        short_names=("mrd", "mrds"),
        categories=("crossplane",),
        columns=(PrinterColumn("STATE", ".spec.state"), _ESTABLISHED, *_AGE),
    ),
    Kind(
        _APIX,
        "v1alpha1",
        "ManagedResourceActivationPolicy",
        "managedresourceactivationpolicies",
        short_names=("mrap",),
        categories=("crossplane",),
        columns=_AGE,
    ),
    Kind(
        _APIX,
        "v1beta1",
        "EnvironmentConfig",
        "environmentconfigs",
        short_names=("envcfg",),
        categories=("crossplane",),
        status_subresource=False,
        columns=_AGE,
    ),
    Kind(_OPS, "v1alpha1", "Operation", "operations", short_names=("ops",), categories=("crossplane",)),
    Kind(
        _OPS,
        "v1alpha1",
        "CronOperation",
        "cronoperations",
        short_names=("cronops",),
        categories=("crossplane",),
    ),
    Kind(
        _OPS,
        "v1alpha1",
        "WatchOperation",
        "watchoperations",
        short_names=("watchops",),
        categories=("crossplane",),
    ),
    # Kubernetes' own
    Kind(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        versions=("v1", "v1beta1"),
        columns=(PrinterColumn("CREATED AT", ".metadata.creationTimestamp", "date"),),
    ),
    Kind(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        categories=("api-extensions",),
        status_subresource=False,
    ),
    Kind(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        categories=("api-extensions",),
        status_subresource=False,
    ),
    Kind("", "v1", "Secret", "secrets", namespaced=True, status_subresource=False, generation=False),
    Kind(
        "",
        "v1",
        "Event",
        "events",
        namespaced=True,
        short_names=("ev",),
        status_subresource=False,
        generation=False,
    ),
)

#: Kinds the object table does not hold: events live in their own table (:mod:`xplane.store.events`).
EVENT_KIND = next(k for k in BUILTIN_KINDS if k.kind == "Event")


class Scheme:
    """A mutable kind table with kubectl's name resolution. ``Scheme()`` starts with :data:`BUILTIN_KINDS`."""

    def __init__(self, kinds: Iterable[Kind] = BUILTIN_KINDS) -> None:
        self._kinds: dict[tuple[str, str], Kind] = {}
        self._names: dict[str, list[Kind]] = {}
        self._categories: dict[str, list[Kind]] = {}
        for k in kinds:
            self._kinds[(k.group, k.kind)] = k
        self._reindex()

    def _reindex(self) -> None:
        names: dict[str, list[Kind]] = {}
        categories: dict[str, list[Kind]] = {}
        for k in self._kinds.values():
            for n in {
                k.plural.lower(),
                k.singular.lower(),
                k.kind.lower(),
                *(s.lower() for s in k.short_names),
            }:
                names.setdefault(n, []).append(k)
            for c in k.categories:
                categories.setdefault(c.lower(), []).append(k)
        self._names, self._categories = names, categories

    def register(self, kind: Kind) -> None:
        """Add ``kind``, replacing any kind with the same group and kind name."""
        self._kinds[(kind.group, kind.kind)] = kind
        self._reindex()

    def kinds(self) -> tuple[Kind, ...]:
        """Every kind, in registration order (built-ins first)."""
        return tuple(self._kinds.values())

    def copy(self) -> Scheme:
        """An independent scheme with the same kinds."""
        return Scheme(self._kinds.values())

    def get(self, group: str, kind: str) -> Kind | None:
        """The kind with exactly this group and kind name, or None."""
        return self._kinds.get((group, kind))

    def resolve(self, name: str) -> tuple[Kind, ...]:
        """Every kind ``name`` stands for, as kubectl resolves it (a category gives several), except
        that a kind's exact name (``Provider``, case as written) always means that kind.

        Raises :class:`UnknownKindError` (``the server doesn't have a resource type "foo"``).
        """
        key = name.strip().lower()
        # A kind's exact name (``Provider``) means that kind, as code passes it; lower-case words go
        # kubectl's way, categories first (``provider`` is also a category of ProviderConfig CRDs).
        exact = [k for k in self._names.get(key, []) if k.kind == name.strip()]
        found = exact[:1] or self._resolve(key)
        if not found:
            raise UnknownKindError(
                f'the server doesn\'t have a resource type "{name}"', hint=self._suggest(key)
            )
        return tuple(found)

    def _resolve(self, key: str) -> list[Kind]:
        if not key:
            return []
        if "." in key:
            head, _, rest = key.partition(".")
            exact = [k for k in self._names.get(head, []) if k.group == rest]
            if exact:
                return exact[:1]
            version, _, group = rest.partition(".")
            versioned = [k for k in self._names.get(head, []) if k.group == group and version in k.versions]
            if versioned:
                return versioned[:1]
        if key in self._categories:
            return list(self._categories[key])
        named = self._names.get(key, [])
        return named[:1]

    def lookup(self, name: str) -> Kind:
        """The one kind ``name`` stands for; a category (``pkg``) is refused with the kinds it holds."""
        found = self.resolve(name)
        if len(found) > 1:
            listed = ", ".join(k.resource for k in found)
            raise BadRequestError(f'"{name}" is a category of several kinds ({listed}); name one of them')
        return found[0]

    def for_object(self, api_version: str, kind: str) -> Kind:
        """The kind of an object with this ``apiVersion`` and ``kind``; the version must be served.

        Raises :class:`UnknownKindError` like kubectl: ``no matches for kind "Foo" in version "g/v1"``.
        """
        group, _, _ = api_version.rpartition("/")
        k = self._kinds.get((group, kind))
        if k is None or not k.serves(api_version):
            raise UnknownKindError(
                f'no matches for kind "{kind}" in version "{api_version}"',
                hint="ensure CRDs are installed first"
                if k is None
                else f"{k.resource} serves {', '.join(k.versions)}",
            )
        return k

    def _suggest(self, key: str) -> str | None:
        import difflib  # only on this error path

        candidates = [*self._names, *self._categories]
        close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
        return f'did you mean "{close[0]}"?' if close else None


__all__ = [
    "BUILTIN_KINDS",
    "CROSSPLANE_NAMESPACE",
    "EVENT_KIND",
    "Kind",
    "PrinterColumn",
    "Scheme",
    "version_priority",
]
