"""The package (manager) reconciler: upstream's ``manager/reconciler.go`` step by step (spec §4.6).

Revisions are found by the label ``pkg.crossplane.io/package``, named as Crossplane v2.2-v2.3 names
them (``FriendlyID(package name, digest hex)``) and numbered ``max + 1``; others are deactivated;
``revisionHistoryLimit`` garbage collection deletes at most one revision per reconcile, counted
before the new revision is created; ``0`` keeps every revision. Each step is one store transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from xplane.pkg import conditions as cond
from xplane.pkg.context import Context
from xplane.pkg.errors import describe
from xplane.pkg.names import (
    DIGEST_ANNOTATION,
    LABEL_PACKAGE,
    PAUSE_ANNOTATION,
    PKG_API_VERSION,
    REVISION_KIND,
    RUNTIME_KINDS,
    kind_named,
    owner_reference,
    revision_name,
)
from xplane.store import NotFoundError

REASON_UNQUALIFIED = "UnqualifiedPackage"
"""xplane's own Warning event reason: Crossplane's API server would refuse ``spec.package``."""
MSG_INSTALLED = "Successfully installed package revision"

DEFAULTS: dict[str, Any] = {
    "revisionActivationPolicy": "Automatic",
    "revisionHistoryLimit": 1,
    "packagePullPolicy": "IfNotPresent",
    "ignoreCrossplaneConstraints": False,
    "skipDependencyResolution": False,
}


def effective_spec(kind: str, spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The package spec with the CRD's defaults filled in (spec/packages.md §4.2)."""
    out = {**DEFAULTS, **{k: v for k, v in (spec or {}).items() if v is not None}}
    if kind in RUNTIME_KINDS:
        ref = dict(out.get("runtimeConfigRef") or {})
        ref.setdefault("apiVersion", "pkg.crossplane.io/v1beta1")
        ref.setdefault("kind", "DeploymentRuntimeConfig")
        ref.setdefault("name", "default")
        out["runtimeConfigRef"] = ref
    return out


def reconcile_package(ctx: Context, kind: str, name: str) -> bool:
    """Reconcile one Configuration, Provider or Function; whether anything was written."""
    store, settings = ctx.store, ctx.settings
    pkg = store.try_get(kind_named(store, kind), name)
    if pkg is None:
        return False
    meta = pkg["metadata"]
    gen = meta.get("generation")
    now = settings.now()
    status = copy.deepcopy(pkg.get("status") or {})
    # 1. paused
    if (meta.get("annotations") or {}).get(PAUSE_ANNOTATION) == "true":
        cond.set_condition(status, cond.paused(), gen, now)
        if ctx.write_status(pkg, status):
            ctx.event(pkg, "Normal", "ReconciliationPaused", cond.MSG_PAUSED)
            return True
        return False
    if cond.get_condition(pkg, cond.SYNCED) is not None:  # unpaused: clear every condition
        status["conditions"] = []
        return ctx.write_status(pkg, status)
    # 2. revisions of this package
    rev_kind = kind_named(store, REVISION_KIND[kind])
    revisions = list(store.list(rev_kind, selector=f"{LABEL_PACKAGE}={name}"))
    if meta.get("deletionTimestamp"):
        return False
    spec = effective_spec(kind, pkg.get("spec"))
    changed = False
    # 3. fetch
    secrets = [str(s.get("name")) for s in spec.get("packagePullSecrets") or () if s.get("name")]
    try:
        fetched = ctx.fetcher.get(str(spec.get("package", "")), secrets, str(spec["packagePullPolicy"]))
    except Exception as e:  # this package only: a clear condition and an event, the others go on
        msg = f"cannot unpack package: {describe(e)}"
        cond.set_condition(status, cond.unpacking(msg), gen, now)
        cond.set_condition(status, cond.unhealthy(msg), gen, now)
        ctx.event(pkg, "Warning", "UnpackPackage", msg)
        return ctx.write_status(pkg, status)
    for warning in fetched.warnings:
        ctx.event(pkg, "Warning", REASON_UNQUALIFIED, warning)
    # 4.-5. applied ImageConfigs, resolved package, current revision
    if fetched.applied_image_configs:
        status["appliedImageConfigRefs"] = [dict(r) for r in fetched.applied_image_configs]
    else:
        status.pop("appliedImageConfigRefs", None)
    status["resolvedPackage"] = fetched.resolved
    current_name = revision_name(name, fetched.digest)
    status["currentRevision"] = current_name
    status["currentIdentifier"] = spec.get("package")
    # 6. numbering, deactivation of the others
    max_rev = 0
    lowest: dict[str, Any] | None = None
    current: dict[str, Any] | None = None
    for r in revisions:
        n = int((r.get("spec") or {}).get("revision") or 0)
        max_rev = max(max_rev, n)
        if lowest is None or n < int((lowest.get("spec") or {}).get("revision") or 0):
            lowest = r
        if r["metadata"]["name"] == current_name:
            current = r
        elif (r.get("spec") or {}).get("desiredState") == "Active":
            store.modify(rev_kind, r["metadata"]["name"], _deactivate)
            changed = True
    # 7. revision number
    number = int(((current or {}).get("spec") or {}).get("revision") or 0)
    if current is None or number < max_rev:
        number = max_rev + 1
    # 8. garbage collection: one per reconcile, counted before the new revision exists
    limit = int(spec.get("revisionHistoryLimit") or 0)
    if limit != 0 and len(revisions) > limit + 1 and lowest is not None and lowest is not current:
        try:
            store.delete(rev_kind, lowest["metadata"]["name"], uid=lowest["metadata"]["uid"])
            changed = True
        except NotFoundError:
            pass
        except Exception as e:
            ctx.event(
                pkg,
                "Warning",
                "GarbageCollect",
                f"cannot garbage collect old package revision: {describe(e)}",
            )
    # 9. health from the current revision
    health = cond.package_health(current, runtime=kind in RUNTIME_KINDS)
    was_healthy = cond.is_true(pkg, cond.HEALTHY)
    cond.set_condition(status, health, gen, now)
    if health.status == "True" and not was_healthy:
        ctx.event(pkg, "Normal", "InstallPackageRevision", MSG_INSTALLED)
    # 10. apply the revision
    rev = _apply_revision(ctx, kind, pkg, spec, current, current_name, number, fetched.digest)
    changed = changed or rev is not current
    # 11. Installed
    active = (rev.get("spec") or {}).get("desiredState") == "Active"
    cond.set_condition(status, cond.active() if active else cond.inactive(), gen, now)
    return ctx.write_status(pkg, status) or changed


def _deactivate(o: dict[str, Any]) -> None:
    o["spec"]["desiredState"] = "Inactive"


def _apply_revision(
    ctx: Context,
    kind: str,
    pkg: Mapping[str, Any],
    spec: Mapping[str, Any],
    current: dict[str, Any] | None,
    rev_name: str,
    number: int,
    digest: str,
) -> dict[str, Any]:
    """Create or update the current revision (step 10); returns it (``current`` itself if unchanged)."""
    rev_kind = kind_named(ctx.store, REVISION_KIND[kind])
    name = pkg["metadata"]["name"]
    desired_state = ((current or {}).get("spec") or {}).get("desiredState")
    if desired_state is None:
        desired_state = ""
    if spec.get("revisionActivationPolicy", "Automatic") == "Automatic" and desired_state != "Active":
        desired_state = "Active"
    rspec: dict[str, Any] = {
        "desiredState": desired_state,
        "image": spec.get("package"),
        "revision": number,
        "packagePullPolicy": spec.get("packagePullPolicy"),
        "ignoreCrossplaneConstraints": bool(spec.get("ignoreCrossplaneConstraints")),
        "skipDependencyResolution": bool(spec.get("skipDependencyResolution")),
    }
    for key in ("packagePullSecrets", "commonLabels", "commonAnnotations"):
        if spec.get(key):
            rspec[key] = copy.deepcopy(spec[key])
    if kind in RUNTIME_KINDS:
        rspec["runtimeConfigRef"] = copy.deepcopy(spec["runtimeConfigRef"])
        rspec["tlsServerSecretName"] = f"{name}-tls-server"[:253]
        rspec["tlsClientSecretName"] = f"{name}-tls-client"[:253]
    owner = owner_reference(pkg, controller=True)
    if current is None:
        return ctx.store.create(
            {
                "apiVersion": PKG_API_VERSION,
                "kind": rev_kind.kind,
                "metadata": {
                    "name": rev_name,
                    "labels": {LABEL_PACKAGE: name},
                    "annotations": {DIGEST_ANNOTATION: digest},
                    "ownerReferences": [owner],
                },
                "spec": rspec,
            }
        )
    want_spec = {**(current.get("spec") or {}), **rspec}
    for key in ("packagePullSecrets", "commonLabels", "commonAnnotations"):
        if key not in rspec:
            want_spec.pop(key, None)
    labels = current["metadata"].get("labels") or {}
    annotations = current["metadata"].get("annotations") or {}
    owners = current["metadata"].get("ownerReferences") or []
    if (
        want_spec == current.get("spec")
        and labels.get(LABEL_PACKAGE) == name
        and annotations.get(DIGEST_ANNOTATION) == digest
        and owner in owners
    ):
        return current

    def put(o: dict[str, Any]) -> None:
        o["spec"] = copy.deepcopy(want_spec)
        o["metadata"]["labels"] = {**(o["metadata"].get("labels") or {}), LABEL_PACKAGE: name}
        o["metadata"]["annotations"] = {**(o["metadata"].get("annotations") or {}), DIGEST_ANNOTATION: digest}
        refs = [r for r in o["metadata"].get("ownerReferences") or () if r.get("uid") != owner["uid"]]
        o["metadata"]["ownerReferences"] = [*(dict(r, controller=False) for r in refs), owner]

    return ctx.store.modify(rev_kind, rev_name, put)
