"""Per-package-type lint with Crossplane's rules and messages, located at file, line and object.

Upstream (crossplane-runtime ``pkg/xpkg/lint.go``) runs, in order: package-level checks
(``OneMeta``), per-meta checks (``IsConfiguration``/``IsProvider``/``IsFunction`` then
``PackageValidSemver``) and one per-object check (an ``Or`` of the allowed kinds), and stops at the
first error. This linter reports every finding instead, each naming where it is, and keeps the
first one upstream would have returned in :attr:`LintResult.upstream_error` (``xpkg build`` wraps it
as ``failed to build package: failed to lint package: <error>``).

It adds warnings upstream lacks (codes ``dependency-version``, ``invalid-dependency``,
``unqualified-package``, ``package-has-tag``, ``meta-name``, ``constraint-v15``): a package that
passes upstream lint can still fail to install for these reasons. ``constraint-v15`` flags a version
constraint that Crossplane ≤ v2.2 (Masterminds/semver v1.5) reads differently from v2.3+.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from xplane.oci import InvalidReferenceError, Reference
from xplane.xpkg.errors import LintError, MetaError, SemverError, UnknownKindError
from xplane.xpkg.meta import Dependency, PackageMeta
from xplane.xpkg.objects import META_GROUP, META_KINDS, classify, is_meta_package
from xplane.xpkg.semver import Constraint, Version, is_digest_constraint, v15_difference
from xplane.xpkg.yaml import Document

ERR_NOT_EXACTLY_ONE_META = "not exactly one package meta type"
ERR_NOT_META = "meta type is not a package"
ERR_NOT_META_FMT = "package meta type is not {}"
ERR_BAD_CONSTRAINTS = "package version constraints are poorly formatted"
ERR_CROSSPLANE_INCOMPATIBLE_FMT = "package is not compatible with Crossplane version ({})"
ERR_OR_FMT = "object did not pass any of the linters with following errors: {}"

Severity = Literal["error", "warning"]
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_V15_HINT = (
    "Crossplane up to v2.2 checks constraints with Masterminds/semver v1.5, v2.3 and later with v3; "
    "if the package must install on both, write a constraint both read alike"
)


@dataclass(frozen=True)
class Finding:
    """One lint result. ``message`` is upstream's text for errors upstream reports."""

    severity: Severity
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    object: str | None = None
    hint: str | None = None

    @classmethod
    def at(
        cls, loc: Document | None, severity: Severity, code: str, message: str, hint: str | None = None
    ) -> Finding:
        """A finding located at ``loc`` (or unlocated)."""
        if loc is None:
            return cls(severity, code, message, hint=hint)
        return cls(severity, code, message, loc.file, loc.line, loc.ref, hint)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else (self.file or "")
        parts = [p for p in (where, self.object) if p]
        prefix = ": ".join(parts) + ": " if parts else ""
        sev = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{sev}{self.message}"


@dataclass(frozen=True)
class LintResult:
    """All findings of one lint run, in document order."""

    findings: tuple[Finding, ...]
    upstream_error: str | None
    meta: PackageMeta | None

    @property
    def errors(self) -> list[Finding]:
        """Findings that fail the package."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that do not fail the package."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise :class:`LintError` holding every finding when there is an error."""
        if not self.ok:
            named = all(f.object for f in self.errors)
            hint = f"fix the {'objects named' if named else 'problems'} above, then build again"
            raise LintError(self.findings, hint=hint)


@dataclass(frozen=True)
class KindCheck:
    """One of upstream's per-object linters: objects of the ``allowed`` apiVersion/kind pairs pass.

    Calling it returns upstream's message for an object that fails, or None.
    """

    message: str
    allowed: tuple[tuple[str, str], ...]

    def __call__(self, loc: Document) -> str | None:
        return None if (loc.api_version, loc.kind) in self.allowed else self.message


@dataclass(frozen=True)
class AnyOf:
    """Upstream's ``Or``: an object passes if any check passes, else every message is joined."""

    checks: tuple[KindCheck, ...]

    def __call__(self, loc: Document) -> str | None:
        errs = []
        for c in self.checks:
            err = c(loc)
            if err is None:
                return None
            errs.append(err)
        return ERR_OR_FMT.format(", ".join(errs))

    @property
    def allowed(self) -> tuple[tuple[str, str], ...]:
        """Every apiVersion/kind pair some check passes, in check order."""
        return tuple(pair for c in self.checks for pair in c.allowed)


ObjectCheck = KindCheck | AnyOf


def _kind_check(message: str, pairs: Iterable[tuple[str, str]]) -> KindCheck:
    return KindCheck(message, tuple(pairs))


_XP = "apiextensions.crossplane.io"
is_crd = _kind_check(
    "object is not a CRD",
    [
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    ],
)
is_mrd = _kind_check("object is not an MRD", [(f"{_XP}/v1alpha1", "ManagedResourceDefinition")])
is_xrd = _kind_check(
    "object is not an XRD",
    [(f"{_XP}/v1", "CompositeResourceDefinition"), (f"{_XP}/v2", "CompositeResourceDefinition")],
)
is_composition = _kind_check("object is not a Composition", [(f"{_XP}/v1", "Composition")])
is_activation_policy = _kind_check(
    "object is not an ManagedResourceActivationPolicy",
    [(f"{_XP}/v1alpha1", "ManagedResourceActivationPolicy")],
)
is_operation = _kind_check("object is not an Operation", [("ops.crossplane.io/v1alpha1", "Operation")])
is_cron_operation = _kind_check(
    "object is not a CronOperation", [("ops.crossplane.io/v1alpha1", "CronOperation")]
)
is_watch_operation = _kind_check(
    "object is not a WatchOperation", [("ops.crossplane.io/v1alpha1", "WatchOperation")]
)
is_validating_webhook = _kind_check(
    "object is not an ValidatingWebhookConfiguration",
    [("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")],
)
is_mutating_webhook = _kind_check(
    "object is not a MutatingWebhookConfiguration",
    [("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")],
)


def either(*checks: KindCheck) -> AnyOf:
    """Upstream's ``Or`` of ``checks``."""
    return AnyOf(checks)


#: The per-object check of each package type (crossplane-runtime New*Linter).
OBJECT_CHECKS: Mapping[str, ObjectCheck] = {
    "Configuration": either(
        is_xrd, is_activation_policy, is_composition, is_operation, is_cron_operation, is_watch_operation
    ),
    "Provider": either(is_crd, is_mrd, is_validating_webhook, is_mutating_webhook),
    "Function": is_crd,
}


def crossplane_incompatibility(constraint: str | None, crossplane_version: str) -> str | None:
    """Upstream's ``PackageCrossplaneCompatible``: ``None`` when compatible, else its message.

    No constraint is compatible. Parse errors of either string are appended after ``: ``.
    """
    if constraint is None:
        return None
    msg = ERR_CROSSPLANE_INCOMPATIBLE_FMT.format(crossplane_version)
    try:
        ok = Constraint.parse(constraint).check(Version.parse(crossplane_version))
    except SemverError as e:
        return f"{msg}: {e.message}"
    return None if ok else msg


def is_crossplane_compatible(constraint: str | None, crossplane_version: str) -> bool:
    """True when ``crossplane_version`` satisfies the package's ``spec.crossplane.version``."""
    return crossplane_incompatibility(constraint, crossplane_version) is None


def _as_located(d: Document | Mapping[str, Any]) -> Document:
    return d if isinstance(d, Document) else Document(d)


def _where(loc: Document) -> str:
    """``file:line`` (or what is known of it), as findings locate documents."""
    if loc.file and loc.line:
        return f"{loc.file}:{loc.line}"
    return loc.file or (f"line {loc.line}" if loc.line else "<input>")


def lint_package(
    docs: Iterable[Document | Mapping[str, Any]],
    *,
    package_type: str | None = None,
    crossplane_version: str | None = None,
    check_objects: bool = True,
    source: str | None = None,
) -> LintResult:
    """Lint a package's documents (meta object plus objects), in the order they were read.

    ``package_type`` picks the linter (``Configuration``, ``Provider``, ``Function``); by default
    the single meta object's kind does, as in ``xpkg build``. With ``crossplane_version`` the
    package must also be compatible with that Crossplane version (as a revision is). Without
    ``check_objects`` this is the package manager's fatal *validator* (no object-kind check).
    ``source`` (e.g. the package root) locates findings that belong to no document: a missing meta.
    """
    findings: list[Finding] = []
    upstream: list[str] = []  # upstream's first error wins: package-level, then meta, then objects
    metas: list[Document] = []
    objects: list[Document] = []
    unknown: list[tuple[Document, UnknownKindError]] = []
    count = 0
    for loc in map(_as_located, docs):
        count += 1
        try:
            (metas if classify(loc.doc) == "meta" else objects).append(loc)
        except UnknownKindError as e:
            unknown.append((loc, e))
            upstream.append(e.message)
    ptype = package_type or (metas[0].kind if len(metas) == 1 else None)
    for loc, unknown_kind in unknown:
        named = bool(loc.kind and loc.api_version)  # else: "Object 'Kind' is missing", hint as given
        hint = _unknown_kind_hint(loc, ptype) if named else unknown_kind.hint
        findings.append(Finding.at(loc, "error", "unknown-kind", unknown_kind.message, hint))
    if len(metas) != 1:
        findings.extend(_one_meta_findings(metas, count, source))
        upstream.append(ERR_NOT_EXACTLY_ONE_META)
    meta = None
    for loc in metas:
        m, errs = _lint_meta(loc, ptype, crossplane_version)
        findings.extend(errs)
        upstream.extend(f.message for f in errs if f.severity == "error")
        meta = meta or m
    check = OBJECT_CHECKS.get(ptype or "") if check_objects else None
    for loc in objects:
        err = check(loc) if check is not None else None
        if err is not None:
            findings.append(Finding.at(loc, "error", "object-kind", err, _kind_hint(ptype)))
            upstream.append(err)
    findings.sort(key=lambda f: (f.file or "", f.line or 0))
    return LintResult(tuple(findings), upstream[0] if upstream else None, meta)


_META_KINDS_TEXT = f"{META_GROUP}/v1 Configuration, Provider or Function"


def _one_meta_findings(metas: Sequence[Document], count: int, source: str | None) -> list[Finding]:
    """``not exactly one package meta type``, explained: none found (at ``source``), or each extra one."""
    if not metas:
        if count == 0:
            hint = (
                f"no YAML documents were read{f' from {source}' if source else ''}: is this the package root "
                f"(-f/--package-root)? A package needs a {_META_KINDS_TEXT} object, usually in crossplane.yaml"
            )
        else:
            hint = (
                f"none of the {count} document(s) read is a package meta object: a package needs exactly one "
                f"{_META_KINDS_TEXT}, usually in crossplane.yaml at the package root; "
                "'xp xpkg init' writes one"
            )
        return [Finding("error", "one-meta", ERR_NOT_EXACTLY_ONE_META, file=source, hint=hint)]
    found = ", ".join(f"{_where(m)} ({m.ref})" for m in metas)
    hint = f"a package needs exactly one {META_GROUP} object (Configuration, Provider or Function); found {found}"
    return [Finding.at(m, "error", "one-meta", ERR_NOT_EXACTLY_ONE_META, hint) for m in metas[1:]]


def _kinds_with_versions(pairs: Iterable[tuple[str, str]]) -> str:
    """``Composition (apiextensions.crossplane.io/v1), Operation, CronOperation (ops.crossplane.io/v1alpha1)``."""
    versions: dict[str, list[str]] = {}
    for api_version, kind in pairs:
        versions.setdefault(kind, []).append(api_version)
    groups: list[tuple[list[str], list[str]]] = []  # (kinds, apiVersions): neighbours with equal versions
    for kind, avs in versions.items():
        if groups and groups[-1][1] == avs:
            groups[-1][0].append(kind)
        else:
            groups.append(([kind], avs))
    out = []
    for kinds, avs in groups:
        group = avs[0].rpartition("/")[0]
        same = all(av.rpartition("/")[0] == group for av in avs)
        shown = avs[0] + "".join(f" or {av.rpartition('/')[2] if same else av}" for av in avs[1:])
        out.append(f"{', '.join(kinds)} ({shown})")
    return ", ".join(out)


def allowed_objects(package_type: str) -> str:
    """What a package of ``package_type`` may hold besides its meta object, for explanations."""
    return _kinds_with_versions(OBJECT_CHECKS[package_type].allowed)


def _kind_hint(ptype: str | None) -> str:
    where = "move other objects out of the package root (examples belong in --examples-root) or leave them out with --ignore"
    if ptype is not None and ptype in OBJECT_CHECKS:
        return f"a {ptype} package may hold only {allowed_objects(ptype)} besides its meta object; {where}"
    each = "; ".join(
        f"in a {t}, {', '.join(dict.fromkeys(k for _, k in c.allowed))}" for t, c in OBJECT_CHECKS.items()
    )
    return f"besides its meta object, a package holds only: {each}; {where}"


def _unknown_kind_hint(loc: Document, ptype: str | None) -> str:
    """Why ``loc`` is in no scheme, in words: a near-miss of the meta object, or what the package may hold."""
    group = loc.api_version.rpartition("/")[0]
    if group == META_GROUP:
        kinds = "; ".join(f"{av}: {', '.join(sorted(ks))}" for av, ks in META_KINDS.items())
        return f"{loc.api_version} has no kind {loc.kind}; the package meta kinds are {kinds}"
    if group == "pkg.crossplane.io" and loc.kind in ("Configuration", "Provider", "Function"):
        return (
            f"{loc.api_version} {loc.kind} installs a package into a cluster; a package's own meta object "
            f"(crossplane.yaml) is {META_GROUP}/v1 {loc.kind}"
        )
    return f"{loc.api_version} {loc.kind} cannot be part of a package: {_kind_hint(ptype)}"


def _lint_meta(
    loc: Document, ptype: str | None, crossplane_version: str | None
) -> tuple[PackageMeta | None, list[Finding]]:
    out: list[Finding] = []
    if (ptype is not None and loc.kind != ptype) or not is_meta_package(loc.api_version, loc.kind):
        msg = ERR_NOT_META_FMT.format(ptype) if ptype else ERR_NOT_META
        return None, [
            Finding.at(loc, "error", "meta-type", msg, f"this document is {loc.api_version} {loc.kind}")
        ]
    try:
        meta = PackageMeta.from_dict(loc.doc)
    except MetaError as e:
        return None, [Finding.at(loc, "error", "meta-decode", e.message, e.hint)]
    constraint = meta.crossplane_constraint
    if constraint is not None:
        try:
            Constraint.parse(constraint)
        except SemverError as e:
            out.append(
                Finding.at(loc, "error", "crossplane-version", f"{ERR_BAD_CONSTRAINTS}: {e.message}", e.hint)
            )
        else:
            if crossplane_version is not None:
                err = crossplane_incompatibility(constraint, crossplane_version)
                if err is not None:
                    hint = (
                        f"spec.crossplane.version is {constraint!r}; a prerelease Crossplane needs a -0 bound"
                    )
                    out.append(Finding.at(loc, "error", "crossplane-incompatible", err, hint))
            out.extend(_v15_warning(loc, "spec.crossplane.version", constraint))
    out.extend(_meta_warnings(loc, meta))
    return meta, out


def _v15_warning(loc: Document, field: str, constraint: str) -> list[Finding]:
    diff = v15_difference(constraint)
    return (
        [] if diff is None else [Finding.at(loc, "warning", "constraint-v15", f"{field} {diff}", _V15_HINT)]
    )


def _meta_warnings(loc: Document, meta: PackageMeta) -> list[Finding]:
    out: list[Finding] = []
    if not meta.name or len(meta.name) > 63 or not _DNS_LABEL.fullmatch(meta.name):
        out.append(
            Finding.at(
                loc,
                "warning",
                "meta-name",
                f"metadata.name {meta.name!r} is not a DNS label",
                "use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
            )
        )
    for i, dep in enumerate(meta.depends_on):
        out.extend(_dependency_warnings(loc, i, dep))
    return out


def _dependency_warnings(loc: Document, i: int, dep: Dependency) -> list[Finding]:
    out: list[Finding] = []
    version = dep.version
    path = f"spec.dependsOn[{i}]"
    try:
        resolved = dep.resolve()
    except MetaError as e:
        return [Finding.at(loc, "warning", "invalid-dependency", f"{path}: {e.message}", e.hint)]
    pkg = resolved.package
    if not is_digest_constraint(version):
        try:
            Constraint.parse(version)
        except SemverError as e:
            out.append(
                Finding.at(
                    loc,
                    "warning",
                    "dependency-version",
                    f"{path}: version {version!r} of {pkg!r} does not parse: {e.message}",
                    "Crossplane cannot resolve this dependency; use a semver constraint such as '>=v1.0.0' "
                    "or a digest 'sha256:<64 hex>'",
                )
            )
        else:
            out.extend(_v15_warning(loc, f"{path}.version", version))
    out.extend(_reference_warnings(loc, path, pkg))
    return out


def _reference_warnings(loc: Document, path: str, pkg: str) -> list[Finding]:
    try:
        ref = Reference.parse(pkg)
    except InvalidReferenceError as e:
        return [
            Finding.at(
                loc, "warning", "unqualified-package", f"{path}: package {pkg!r} is not valid: {e.message}"
            )
        ]
    out = []
    first, sep, _ = pkg.partition("/")
    if not sep or not ("." in first or ":" in first):
        out.append(
            Finding.at(
                loc,
                "warning",
                "unqualified-package",
                f"{path}: package {pkg!r} does not name a registry",
                f"Crossplane resolves it against its default registry, other tools against Docker Hub; write it "
                f"fully qualified, e.g. xpkg.crossplane.io/{ref.repository.removeprefix('library/')}",
            )
        )
    if ref.tag is not None or ref.digest is not None:
        out.append(
            Finding.at(
                loc,
                "warning",
                "package-has-tag",
                f"{path}: package {pkg!r} carries a tag or digest",
                "name the repository only and put the constraint or digest in version:",
            )
        )
    return out


def lint_or_raise(
    docs: Sequence[Document | Mapping[str, Any]], *, package_type: str | None = None
) -> LintResult:
    """:func:`lint_package`, raising :class:`LintError` when there is an error (``xpkg build``)."""
    result = lint_package(docs, package_type=package_type)
    result.raise_for_errors()
    return result
