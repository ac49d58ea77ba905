"""The embedded control plane: the manager and revision reconcilers over every package until the
state settles (``reconcile``), continuously on store changes (``run``), and ``export_cache``.

Kill-safety: each reconcile step is one or a few store transactions and every step is idempotent,
so a process killed anywhere leaves a state the next ``reconcile`` continues from. Two processes may
reconcile at once: read-modify-writes go through ``Store.modify`` (one transaction), and a
``ConflictError``/``AlreadyExistsError`` from a create or update just means "read again next pass".
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xplane.pkg import conditions as cond
from xplane.pkg.context import Context, Reporter
from xplane.pkg.dependencies import DependencyResolver, LockDependencies, LockReconciler
from xplane.pkg.exportcache import ExportResult, export_cache
from xplane.pkg.fetch import Fetcher
from xplane.pkg.lockreconciler import LockResolver
from xplane.pkg.manager import effective_spec, reconcile_package
from xplane.pkg.names import PACKAGE_KINDS, REVISION_KIND, kind_named
from xplane.pkg.revision import reconcile_revision
from xplane.pkg.settings import ControlPlaneSettings
from xplane.store import AlreadyExistsError, ConflictError, NotFoundError, Store

log = logging.getLogger(__name__)
RETRYABLE = (ConflictError, AlreadyExistsError, NotFoundError)


@dataclass(frozen=True)
class ReconcileSummary:
    """What one ``reconcile()`` did: passes run, whether the state settled, writes, and each package's
    ``Installed``/``Healthy`` status with the message of a failing condition."""

    passes: int
    settled: bool
    changes: int
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_version: str = "0"  # the store's version when the last pass started (watch from it)

    @property
    def failing(self) -> dict[str, str]:
        """``Kind/name`` -> message, for every package that is not installed and healthy."""
        return {k: v["message"] for k, v in self.packages.items() if v.get("message")}


class ControlPlane:
    """Crossplane's package manager over an embedded store.

    ``resolver`` checks dependencies (default: :class:`LockDependencies`); ``lock_reconciler`` is
    the Lock side that resolves the whole graph and installs missing dependencies (default:
    :class:`~xplane.pkg.lockreconciler.LockResolver` sharing this control plane's fetcher).
    """

    def __init__(
        self,
        store: Store,
        settings: ControlPlaneSettings | None = None,
        *,
        resolver: DependencyResolver | None = None,
        lock_reconciler: LockReconciler | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or ControlPlaneSettings()
        self.ctx = Context(
            store=store,
            settings=self.settings,
            fetcher=Fetcher(store, self.settings),
            resolver=resolver or LockDependencies(store),
            reporter=reporter or Reporter(),
        )
        self.lock_reconciler: LockReconciler = lock_reconciler or LockResolver(
            store, self.settings, fetcher=self.ctx.fetcher
        )

    def reconcile_pass(self) -> int:
        """One pass: every package, then every revision (inactive ones first, so control is released
        before it is taken), then the Lock side. Returns the number of objects written."""
        changes = 0
        for kind in PACKAGE_KINDS:
            for pkg in self.store.list(kind_named(self.store, kind)):
                changes += self._one(reconcile_package, kind, pkg["metadata"]["name"])
        for kind in PACKAGE_KINDS:
            rev_kind = REVISION_KIND[kind]
            revs = sorted(
                self.store.list(kind_named(self.store, rev_kind)),
                key=lambda r: ((r.get("spec") or {}).get("desiredState") == "Active", r["metadata"]["name"]),
            )
            for rev in revs:
                changes += self._one(reconcile_revision, rev_kind, rev["metadata"]["name"])
        try:
            if self.lock_reconciler.reconcile(self.store):
                changes += 1
        except RETRYABLE as e:  # another process changed the Lock first: read it again next pass
            log.debug("lock: %s; again next pass", e)
            changes += 1
        return changes

    def _one(self, fn: Any, kind: str, name: str) -> int:
        try:
            changed = bool(fn(self.ctx, kind, name))
        except RETRYABLE as e:  # another writer got there first: read again next pass
            log.debug("%s/%s: %s; again next pass", kind, name, e)
            changed = True
        self.ctx.reporter.reconciled(kind, name, changed)
        return int(changed)

    def reconcile(self) -> ReconcileSummary:
        """Run passes until one writes nothing (at most ``settings.max_passes``)."""
        self.ctx.fetcher.reset()
        total = 0
        passes = 0
        settled = False
        rv = self.store.resource_version
        while passes < self.settings.max_passes:
            rv = self.store.resource_version
            passes += 1
            n = self.reconcile_pass()
            self.ctx.reporter.pass_done(passes, n)
            total += n
            if n == 0:
                settled = True
                break
        return ReconcileSummary(passes, settled, total, self.status_summary(), rv)

    def status_summary(self) -> dict[str, dict[str, Any]]:
        """Each package's ``Installed``/``Healthy`` status and the message of a failing condition."""
        out: dict[str, dict[str, Any]] = {}
        for kind in PACKAGE_KINDS:
            for pkg in self.store.list(kind_named(self.store, kind)):
                installed = cond.get_condition(pkg, cond.INSTALLED) or {}
                healthy = cond.get_condition(pkg, cond.HEALTHY) or {}
                bad = [c for c in (installed, healthy) if c and c.get("status") != "True"]
                out[f"{kind}/{pkg['metadata']['name']}"] = {
                    "installed": installed.get("status", "Unknown"),
                    "healthy": healthy.get("status", "Unknown"),
                    "currentRevision": (pkg.get("status") or {}).get("currentRevision"),
                    "message": str(bad[0].get("message") or bad[0].get("reason")) if bad else "",
                }
        return out

    def run(self, stop: threading.Event) -> None:
        """Reconcile now, then whenever the store changes (any process's write), and re-check
        ``packagePullPolicy: Always`` packages every ``settings.always_interval`` seconds; return
        soon after ``stop`` is set."""
        summary = self.reconcile()
        since = summary.resource_version
        last_always = time.monotonic()
        while not stop.is_set():
            wait = max(0.0, self.settings.always_interval - (time.monotonic() - last_always))
            if not self._has_always():
                wait = max(wait, 1.0) if wait else self.settings.always_interval
            changes = self.store.watch(since, timeout=wait, stop=stop)
            if stop.is_set():
                break
            due = time.monotonic() - last_always >= self.settings.always_interval
            if not changes and not due:
                continue
            if due:
                last_always = time.monotonic()
            summary = self.reconcile()
            since = summary.resource_version
            if not summary.settled:
                stop.wait(1.0)  # not settled: back off a little before the next round

    def _has_always(self) -> bool:
        return any(
            effective_spec(kind, pkg.get("spec")).get("packagePullPolicy") == "Always"
            for kind in PACKAGE_KINDS
            for pkg in self.store.list(kind_named(self.store, kind))
        )

    def export_cache(self, directory: Path) -> ExportResult:
        """Write Crossplane's package-cache files and digest-pinned manifests (see :func:`export_cache`)."""
        return export_cache(self.store, self.settings, Path(directory))
