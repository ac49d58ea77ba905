"""The revision reconciler: upstream's ``revision/reconciler.go`` step by step (spec/packages.md §4.10).

Each step is one or a few store transactions, and every step can be repeated: killing the process
anywhere and reconciling again reaches the same state. Provider and Function revisions install as
upstream does, but no runtime runs them: ``RuntimeHealthy`` says so (reason ``RuntimeNotRun``).
"""

from __future__ import annotations

import collections
import copy
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from xplane.pkg import conditions as cond
from xplane.pkg import establish as est
from xplane.pkg.context import Context
from xplane.pkg.errors import EstablishError, describe
from xplane.pkg.names import (
    LABEL_PACKAGE,
    PACKAGE_OF_REVISION,
    PAUSE_ANNOTATION,
    REVISION_FINALIZER,
    RUNTIME_KINDS,
    kind_named,
)
from xplane.xpkg import LintResult, crossplane_incompatibility, lint_package

if TYPE_CHECKING:
    from xplane.pkg.fetch import FetchedPackage

MSG_SYNCED = "Successfully reconciled package revision"

_LINTED: collections.OrderedDict[tuple[str, str], tuple[LintResult, LintResult]] = collections.OrderedDict()
_LINTED_MAX = 512
_LINTED_LOCK = threading.Lock()


def _linted(fetched: FetchedPackage, pkg_kind: str) -> tuple[LintResult, LintResult]:
    """The package's validation (meta only) and full lint, once per digest and kind in a process.

    Every pass re-reconciles every revision; a package's contents cannot change under its digest,
    so neither can these answers.
    """
    key = (fetched.digest, pkg_kind)
    with _LINTED_LOCK:
        hit = _LINTED.get(key)
        if hit is not None:
            _LINTED.move_to_end(key)
            return hit
    docs = [fetched.package.meta_document, *fetched.package.objects]
    answer = (
        lint_package(docs, package_type=pkg_kind, check_objects=False),
        lint_package(docs, package_type=pkg_kind),
    )
    with _LINTED_LOCK:
        _LINTED[key] = answer
        while len(_LINTED) > _LINTED_MAX:
            _LINTED.popitem(last=False)
    return answer


def reconcile_revision(ctx: Context, kind: str, name: str) -> bool:
    """Reconcile one revision (``kind`` e.g. ``ConfigurationRevision``); whether anything was written."""
    store = ctx.store
    rev = store.try_get(kind_named(store, kind), name)
    if rev is None:
        return False
    meta = rev["metadata"]
    if (meta.get("annotations") or {}).get(PAUSE_ANNOTATION) == "true":
        status = copy.deepcopy(rev.get("status") or {})
        cond.set_condition(status, cond.paused(), meta.get("generation"), ctx.settings.now())
        if ctx.write_status(rev, status):
            ctx.event(rev, "Normal", "ReconciliationPaused", cond.MSG_PAUSED)
            return True
        return False
    if meta.get("deletionTimestamp"):
        ctx.resolver.remove(rev)
        if REVISION_FINALIZER not in (meta.get("finalizers") or ()):
            return False
        store.modify(kind_named(store, kind), name, _without_finalizer)
        return True
    changed = False
    if REVISION_FINALIZER not in (meta.get("finalizers") or ()):
        rev = store.modify(kind_named(store, kind), name, _with_finalizer)
        changed = True
    return _reconcile(ctx, kind, rev) or changed


def _with_finalizer(o: dict[str, Any]) -> None:
    fins = o["metadata"].setdefault("finalizers", [])
    if REVISION_FINALIZER not in fins:
        fins.append(REVISION_FINALIZER)


def _without_finalizer(o: dict[str, Any]) -> None:
    o["metadata"]["finalizers"] = [
        f for f in o["metadata"].get("finalizers") or () if f != REVISION_FINALIZER
    ]


def _reconcile(ctx: Context, kind: str, rev: dict[str, Any]) -> bool:
    store, settings = ctx.store, ctx.settings
    pkg_kind = PACKAGE_OF_REVISION[kind]
    runtime = pkg_kind in RUNTIME_KINDS
    spec = rev.get("spec") or {}
    gen = rev["metadata"].get("generation")
    now = settings.now()
    status = copy.deepcopy(rev.get("status") or {})
    was_healthy = cond.is_true(rev, cond.REVISION_HEALTHY)
    changed = False

    def fail(message: str, reason: str) -> bool:
        cond.set_condition(status, cond.revision_unhealthy(message), gen, now)
        if runtime:
            cond.set_condition(status, cond.runtime_not_run(pkg_kind), gen, now)
        ctx.event(rev, "Warning", reason, message)
        return ctx.write_status(rev, status) or changed

    desired = spec.get("desiredState", "")
    if desired == "Inactive":
        if not spec.get("skipDependencyResolution"):
            ctx.resolver.remove(rev)
        changed = est.release(store, rev) or changed
        if status.get("objectRefs"):
            cond.set_condition(status, cond.revision_healthy(), gen, now)
            if runtime:
                cond.set_condition(status, cond.runtime_not_run(pkg_kind), gen, now)
            return ctx.write_status(rev, status) or changed

    secrets = [str(s.get("name")) for s in spec.get("packagePullSecrets") or () if s.get("name")]
    try:
        fetched = ctx.fetcher.get(
            str(spec.get("image", "")), secrets, str(spec.get("packagePullPolicy") or "")
        )
    except Exception as e:  # an unreachable registry, a missing Secret, a broken image: this revision only
        return fail(f"cannot get package: {describe(e)}", "ParsePackage")
    status["resolvedImage"] = fetched.resolved
    if fetched.applied_image_configs:
        status["appliedImageConfigRefs"] = [dict(r) for r in fetched.applied_image_configs]
    else:
        status.pop("appliedImageConfigRefs", None)

    pkg = fetched.package
    validation, lint = _linted(fetched, pkg_kind)
    if not validation.ok:
        return fail(f"validating package contents failed: {validation.upstream_error}", "ValidatePackage")
    if not lint.ok:
        ctx.event(rev, "Warning", "LintPackage", f"linting package contents failed: {lint.upstream_error}")

    changed = _copy_meta(ctx, kind, rev, pkg.meta.labels, pkg.meta.annotations) or changed
    caps = list(pkg.meta.effective_capabilities)
    if caps:
        status["capabilities"] = caps
    else:
        status.pop("capabilities", None)

    if not spec.get("ignoreCrossplaneConstraints"):
        err = crossplane_incompatibility(pkg.meta.crossplane_constraint, settings.crossplane_version)
        if err is not None:
            return fail(f"incompatible Crossplane version: {err}", "LintPackage")

    if not spec.get("skipDependencyResolution"):
        deps = ctx.resolver.resolve(rev, pkg_kind, pkg.meta)
        status["foundDependencies"] = deps.found
        status["installedDependencies"] = deps.installed
        status["invalidDependencies"] = deps.invalid
        if deps.error is not None:
            return fail(f"cannot resolve package dependencies: {deps.error}", "ResolveDependencies")

    objects = est.installable(pkg_kind, (d.doc for d in pkg.objects))
    if pkg_kind == "Provider":
        objects = est.crds_to_mrds(objects, safe_start=pkg.meta.has_capability("safe-start"))
    control = desired == "Active"
    try:
        refs = est.establish(
            store,
            rev,
            objects,
            control=control,
            common_labels=spec.get("commonLabels"),
            common_annotations=spec.get("commonAnnotations"),
        )
    except EstablishError as e:
        return fail(f"cannot establish control of object: {describe(e)}", "SyncPackage")
    changed = True if refs != status.get("objectRefs") else changed
    if control:
        owner = store.try_get(
            kind_named(store, pkg_kind), (rev["metadata"].get("labels") or {}).get(LABEL_PACKAGE, "")
        )
        if owner is not None and est.drop_unshipped(store, owner, refs):
            changed = True
    status["objectRefs"] = refs
    cond.set_condition(status, cond.revision_healthy(), gen, now)
    if runtime:
        cond.set_condition(status, cond.runtime_not_run(pkg_kind), gen, now)
    if ctx.write_status(rev, status):
        changed = True
    if not was_healthy:
        ctx.event(rev, "Normal", "SyncPackage", MSG_SYNCED)
    return changed


def _copy_meta(
    ctx: Context, kind: str, rev: Mapping[str, Any], labels: Mapping[str, str], annotations: Mapping[str, str]
) -> bool:
    """Copy the meta object's labels and annotations onto the revision (step 7)."""
    have_l = rev["metadata"].get("labels") or {}
    have_a = rev["metadata"].get("annotations") or {}
    if all(have_l.get(k) == v for k, v in labels.items()) and all(
        have_a.get(k) == v for k, v in annotations.items()
    ):
        return False

    def put(o: dict[str, Any]) -> None:
        o["metadata"]["labels"] = {**(o["metadata"].get("labels") or {}), **labels}
        o["metadata"]["annotations"] = {**(o["metadata"].get("annotations") or {}), **annotations}

    ctx.store.modify(kind_named(ctx.store, kind), rev["metadata"]["name"], put)
    return True
