"""Defaults the API server would write into package objects (the CRDs' ``default:`` values).

Pass :func:`package_admission` as ``Store.open(admission=...)`` so stored Configurations,
Providers and Functions show ``revisionActivationPolicy: Automatic``, ``revisionHistoryLimit: 1``
and the rest as ``kubectl get -o yaml`` shows them on a cluster.
"""

from __future__ import annotations

from typing import Any

from xplane.pkg.manager import effective_spec
from xplane.pkg.names import PACKAGE_KINDS, PKG_GROUP
from xplane.store import Kind


def package_admission(kind: Kind, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Fill the CRD defaults into a package's ``spec`` (other kinds pass untouched)."""
    if kind.group != PKG_GROUP or kind.kind not in PACKAGE_KINDS:
        return
    spec = new.get("spec")
    if isinstance(spec, dict):
        new["spec"] = {**effective_spec(kind.kind, spec), **spec}
