"""What the reconcilers share: the store, settings, fetcher, dependency resolver and reporter."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xplane.pkg.dependencies import DependencyResolver
from xplane.pkg.fetch import Fetcher
from xplane.pkg.names import event_source
from xplane.pkg.settings import ControlPlaneSettings
from xplane.store import Store


class Reporter:
    """Receives what the reconcilers do; the CLI shows it. Every method is a no-op here."""

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        """An event was recorded about ``obj`` (also stored: ``describe`` shows it)."""

    def reconciled(self, kind: str, name: str, changed: bool) -> None:
        """One object was reconciled."""

    def pass_done(self, number: int, changes: int) -> None:
        """A pass over every package and revision finished with ``changes`` writes."""


@dataclass
class Context:
    """One control plane's collaborators, handed to every reconcile."""

    store: Store
    settings: ControlPlaneSettings
    fetcher: Fetcher
    resolver: DependencyResolver
    reporter: Reporter

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` (with Crossplane's recorder name) and report it."""
        self.store.record_event(obj, type, reason, message, source=event_source(str(obj["kind"])))
        self.reporter.event(obj, type, reason, message)

    def write_status(self, obj: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Replace ``obj``'s status (one transaction) unless it is unchanged; whether it was written."""
        if dict(status) == (obj.get("status") or {}):
            return False
        new = copy.deepcopy(dict(status))

        def put(o: dict[str, Any]) -> None:
            o["status"] = new

        self.store.modify(self.store.kind_of(obj), obj["metadata"]["name"], put, status=True)
        return True
