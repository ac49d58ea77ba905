"""Conditions with Crossplane's types, reasons and messages (spec/packages.md §4.8).

``set_condition`` follows crossplane-runtime's ``SetConditions``: a condition equal to the existing
one in type, status, reason, message and observedGeneration is kept as it is (its
``lastTransitionTime`` does not move); anything else replaces it with the clock's time.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

# types
INSTALLED = "Installed"
HEALTHY = "Healthy"
REVISION_HEALTHY = "RevisionHealthy"
RUNTIME_HEALTHY = "RuntimeHealthy"
SYNCED = "Synced"
RESOLVED = "Resolved"

# reasons
UNPACKING = "UnpackingPackage"
INACTIVE = "InactivePackageRevision"
ACTIVE = "ActivePackageRevision"
HEALTHY_REV = "HealthyPackageRevision"
UNHEALTHY_REV = "UnhealthyPackageRevision"
UNKNOWN_HEALTH = "UnknownPackageRevisionHealth"
PAUSED = "ReconcilePaused"
RUNTIME_NOT_RUN = "RuntimeNotRun"
"""xplane's own reason on ``RuntimeHealthy``: no Deployment runs the package image here."""

MSG_INACTIVE = "Package is inactive"
MSG_PAUSED = "Reconciliation (including deletion) is paused via the pause annotation"
MSG_RUNTIME_NOT_RUN = (
    "xplane runs no package runtime: the {kind} is installed (its objects are in the store), but no "
    "Deployment runs its image; run it on a cluster, or serve a function with xfn"
)


@dataclass(frozen=True)
class Condition:
    """One status condition; ``message`` may be empty."""

    type: str
    status: str
    reason: str
    message: str = ""

    def to_dict(self, generation: int | None, now: str) -> dict[str, Any]:
        """The condition as stored, stamped with ``now`` and ``observedGeneration``."""
        out: dict[str, Any] = {"type": self.type, "status": self.status, "reason": self.reason}
        if self.message:
            out["message"] = self.message
        out["lastTransitionTime"] = now
        if generation is not None:
            out["observedGeneration"] = generation
        return out


def unpacking(message: str) -> Condition:
    """``Installed=False/UnpackingPackage``."""
    return Condition(INSTALLED, "False", UNPACKING, message)


def inactive() -> Condition:
    """``Installed=False/InactivePackageRevision``."""
    return Condition(INSTALLED, "False", INACTIVE, MSG_INACTIVE)


def active() -> Condition:
    """``Installed=True/ActivePackageRevision``."""
    return Condition(INSTALLED, "True", ACTIVE)


def healthy() -> Condition:
    """``Healthy=True/HealthyPackageRevision``."""
    return Condition(HEALTHY, "True", HEALTHY_REV)


def unhealthy(message: str) -> Condition:
    """``Healthy=False/UnhealthyPackageRevision``."""
    return Condition(HEALTHY, "False", UNHEALTHY_REV, message)


def revision_healthy() -> Condition:
    """``RevisionHealthy=True/HealthyPackageRevision``."""
    return Condition(REVISION_HEALTHY, "True", HEALTHY_REV)


def revision_unhealthy(message: str) -> Condition:
    """``RevisionHealthy=False/UnhealthyPackageRevision``."""
    return Condition(REVISION_HEALTHY, "False", UNHEALTHY_REV, message)


def runtime_not_run(package_kind: str) -> Condition:
    """``RuntimeHealthy=Unknown/RuntimeNotRun``: said plainly, no runtime runs in xplane."""
    return Condition(
        RUNTIME_HEALTHY, "Unknown", RUNTIME_NOT_RUN, MSG_RUNTIME_NOT_RUN.format(kind=package_kind)
    )


def paused() -> Condition:
    """``Synced=False/ReconcilePaused``."""
    return Condition(SYNCED, "False", PAUSED, MSG_PAUSED)


def get_condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_`` in ``obj['status']``, or None."""
    for c in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return None


def set_condition(
    status: MutableMapping[str, Any], cond: Condition, generation: int | None, now: str
) -> None:
    """Put ``cond`` into ``status['conditions']`` (crossplane-runtime's ``SetConditions``)."""
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    new = cond.to_dict(generation, now)
    for i, old in enumerate(conditions):
        if old.get("type") != cond.type:
            continue
        same = (
            all(old.get(k) == new.get(k) for k in ("status", "reason", "observedGeneration"))
            and (old.get("message") or "") == cond.message
        )
        if not same:
            conditions[i] = new
        break
    else:
        conditions.append(new)
    status["conditions"] = conditions


def package_health(revision: Mapping[str, Any] | None, *, runtime: bool) -> Condition:
    """Crossplane's ``PackageHealth``: the package's ``Healthy`` condition from its current revision.

    A runtime condition that says no runtime runs here does not make the package unhealthy (xplane
    installs Providers and Functions without running them; see docs/packages.md).
    """
    rh = get_condition(revision, REVISION_HEALTHY) if revision is not None else None
    if rh is None or rh.get("status") != "True":
        st = str(rh.get("status")) if rh is not None else "Unknown"
        msg = str(rh.get("message") or "") if rh is not None else ""
        text = f"Package revision health is {_quote(st)}" + (f" with message: {msg}" if msg else "")
        return unhealthy(text)
    if runtime and revision is not None:
        rt = get_condition(revision, RUNTIME_HEALTHY)
        if rt is not None and rt.get("reason") != RUNTIME_NOT_RUN and rt.get("status") != "True":
            msg = str(rt.get("message") or "")
            text = f"Package runtime health is {_quote(str(rt.get('status')))}" + (
                f" with message: {msg}" if msg else ""
            )
            return unhealthy(text)
    return healthy()


def is_true(obj: Mapping[str, Any] | None, type_: str) -> bool:
    """Whether ``obj`` has condition ``type_`` with status True."""
    c = get_condition(obj, type_) if obj is not None else None
    return c is not None and c.get("status") == "True"


def _quote(s: str) -> str:
    """Go's ``%q`` for plain ASCII words."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
