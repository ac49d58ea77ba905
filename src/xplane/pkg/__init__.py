"""xplane.pkg: Crossplane's package manager over the embedded store.

Configurations, Providers and Functions with revisions, activation, ImageConfigs, pull Secrets,
dependency checks against the Lock, offline installs from the image cache and export of
Crossplane's package-cache files. ``ControlPlane(store, settings).reconcile()`` runs the manager
and revision reconcilers until the state settles; ``run(stop)`` keeps them running.

The curated public API: other packages import from ``xplane.pkg`` only these names. They load
lazily. Contracts: docs/dev/contracts.md, "xplane.pkg".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xplane._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # the control plane
    "ControlPlane": "controller",
    "ReconcileSummary": "controller",
    "ControlPlaneSettings": "settings",
    "DEFAULT_CROSSPLANE_VERSION": "settings",
    "Reporter": "context",
    "ExportResult": "exportcache",
    "export_cache": "exportcache",
    "package_admission": "admission",
    "check_package_object": "schema",
    "package_warnings": "schema",
    "effective_spec": "manager",
    # fetching
    "Fetcher": "fetch",
    "FetchedPackage": "fetch",
    # the dependency seam (issue 11)
    "DependencyResolver": "dependencies",
    "DependencyStatus": "dependencies",
    "LockDependencies": "dependencies",
    "LockReconciler": "dependencies",
    "format_list": "dependencies",
    "LockResolver": "lockreconciler",
    "ResolutionError": "resolver",
    # the installed graph (xp tree)
    "PackageGraph": "graph",
    "GraphNode": "graph",
    "GraphEdge": "graph",
    "TreeNode": "graph",
    "package_graph": "graph",
    # the pure resolver (xp validate follows dependsOn with it)
    "resolve": "resolver",
    "GraphInput": "resolver",
    "Installed": "resolver",
    "Need": "resolver",
    "CandidateData": "resolver",
    "reference_for": "resolver",
    "InstallPlan": "installplan",
    "plan_install": "installplan",
    # names
    "revision_name": "names",
    "cache_file_name": "names",
    "fully_qualified": "names",
    "LABEL_PACKAGE": "names",
    "DIGEST_ANNOTATION": "names",
    "PACKAGE_KINDS": "names",
    "REVISION_KIND": "names",
    # conditions
    "Condition": "conditions",
    "package_health": "conditions",
    # errors
    "PackageManagerError": "errors",
    "PullSecretError": "errors",
    "EstablishError": "errors",
    "DependencyError": "errors",
    "ImageConfigError": "imageconfig",
}

__all__ = [
    "DEFAULT_CROSSPLANE_VERSION",
    "DIGEST_ANNOTATION",
    "LABEL_PACKAGE",
    "PACKAGE_KINDS",
    "REVISION_KIND",
    "CandidateData",
    "Condition",
    "ControlPlane",
    "ControlPlaneSettings",
    "DependencyError",
    "DependencyResolver",
    "DependencyStatus",
    "EstablishError",
    "ExportResult",
    "FetchedPackage",
    "Fetcher",
    "GraphEdge",
    "GraphInput",
    "GraphNode",
    "ImageConfigError",
    "InstallPlan",
    "Installed",
    "LockDependencies",
    "LockReconciler",
    "LockResolver",
    "Need",
    "PackageGraph",
    "PackageManagerError",
    "PullSecretError",
    "ReconcileSummary",
    "Reporter",
    "ResolutionError",
    "TreeNode",
    "cache_file_name",
    "check_package_object",
    "effective_spec",
    "export_cache",
    "format_list",
    "fully_qualified",
    "package_admission",
    "package_graph",
    "package_health",
    "package_warnings",
    "plan_install",
    "reference_for",
    "resolve",
    "revision_name",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers (at run time they load on first use)
    from xplane.pkg.admission import package_admission
    from xplane.pkg.conditions import Condition, package_health
    from xplane.pkg.context import Reporter
    from xplane.pkg.controller import ControlPlane, ReconcileSummary
    from xplane.pkg.dependencies import (
        DependencyResolver,
        DependencyStatus,
        LockDependencies,
        LockReconciler,
        format_list,
    )
    from xplane.pkg.errors import DependencyError, EstablishError, PackageManagerError, PullSecretError
    from xplane.pkg.exportcache import ExportResult, export_cache
    from xplane.pkg.fetch import FetchedPackage, Fetcher
    from xplane.pkg.graph import GraphEdge, GraphNode, PackageGraph, TreeNode, package_graph
    from xplane.pkg.imageconfig import ImageConfigError
    from xplane.pkg.installplan import InstallPlan, plan_install
    from xplane.pkg.lockreconciler import LockResolver
    from xplane.pkg.manager import effective_spec
    from xplane.pkg.names import (
        DIGEST_ANNOTATION,
        LABEL_PACKAGE,
        PACKAGE_KINDS,
        REVISION_KIND,
        cache_file_name,
        fully_qualified,
        revision_name,
    )
    from xplane.pkg.resolver import (
        CandidateData,
        GraphInput,
        Installed,
        Need,
        ResolutionError,
        reference_for,
        resolve,
    )
    from xplane.pkg.schema import check_package_object, package_warnings
    from xplane.pkg.settings import DEFAULT_CROSSPLANE_VERSION, ControlPlaneSettings
