"""What installing (or updating) one package would do, without doing it: ``xp xpkg install --dry-run``.

:func:`plan_install` reads the package being installed (through the fetcher, so into the cache and
nothing else), adds it to the Lock's graph as the resolver would see it once its revision exists,
and resolves the whole graph with the control plane's modes. The answer lists every package that
would be installed, upgraded, downgraded or left alone, and why (who requires what); a graph that
cannot be satisfied gives the resolver's message naming each dependent's constraint, the same text
the Lock's ``Resolved`` condition would carry after a real install.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from xplane.errors import XplaneError
from xplane.pkg.lockreconciler import Graph, LockResolver
from xplane.pkg.names import LOCK_NAME, identifier_of, kind_named, source_or_ref
from xplane.pkg.resolver import Installed, Need, Plan, ResolutionError, Step, reference_for
from xplane.xpkg import MetaError, crossplane_incompatibility

if TYPE_CHECKING:
    from xplane.pkg.settings import ControlPlaneSettings
    from xplane.store import Store


@dataclass(frozen=True)
class InstallPlan:
    """The answer of a dry run: the requested package's step, then its dependencies' steps.

    ``error`` is set when the install would fail (the package can't be read, its Crossplane version
    constraint rejects this control plane, or no set of versions satisfies every dependent);
    ``incompatible`` lists installed dependencies that would stay at a version a dependent rejects
    (upgrades off: the dependent would be unhealthy with upstream's ``incompatible dependencies``);
    ``notes`` says what else the reader should know.
    """

    root: Step
    steps: tuple[Step, ...] = ()
    rounds: int = 0
    error: str | None = None
    incompatible: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Whether the package would be installed and healthy as planned."""
        return self.error is None and not self.incompatible

    def as_dict(self) -> dict[str, Any]:
        """The plan as plain data (``-o json|yaml``)."""

        def step(s: Step) -> dict[str, Any]:
            return {
                "action": s.action,
                "kind": s.kind,
                "name": s.name,
                "package": reference_for(s.source, s.version),
                "previous": s.previous,
                "reason": s.reason,
            }

        return {
            "ok": self.ok,
            "error": self.error,
            "steps": [step(self.root), *(step(s) for s in self.steps)],
            "incompatible": list(self.incompatible),
            "notes": list(self.notes),
            "rounds": self.rounds,
        }


def plan_install(
    store: Store,
    settings: ControlPlaneSettings,
    obj: Mapping[str, Any],
    *,
    resolver: LockResolver | None = None,
) -> InstallPlan:
    """Plan applying the package object ``obj`` (a Configuration, Provider or Function) to ``store``.

    Nothing is written to ``store``; the package (and the dependencies' packages the resolver reads)
    may be pulled into the image cache.
    """
    resolver = resolver or LockResolver(store, settings)
    kind = str(obj.get("kind") or "")
    name = str((obj.get("metadata") or {}).get("name") or "")
    spec = obj.get("spec") or {}
    ref = str(spec.get("package") or "")
    source, version = source_or_ref(ref), identifier_of(ref)
    existing = store.try_get(kind_named(store, kind), name)
    previous = str((existing or {}).get("spec", {}).get("package") or "") or None
    action = "install" if existing is None else ("keep" if previous == ref else "update")
    api = str(obj.get("apiVersion") or "pkg.crossplane.io/v1")
    root = Step(source, name, kind, api, version, action, previous, "requested")
    secrets = [str(s.get("name")) for s in spec.get("packagePullSecrets") or ()]
    try:
        fetched = resolver.fetcher.get(ref, secrets, str(spec.get("packagePullPolicy") or "IfNotPresent"))
        meta = fetched.package.meta
        if meta.kind != kind:
            return InstallPlan(root, error=f"{ref} is a {meta.kind} package, not a {kind}")
        needs = tuple(
            Need(d.package, d.constraints, d.package_kind, d.package_api_version) for d in meta.dependencies()
        )
    except MetaError as e:
        return InstallPlan(root, error=f"{ref}: invalid dependsOn: {e.message}")
    except XplaneError as e:
        return InstallPlan(root, error=f"cannot read {ref}: {e.message}")
    bad_version = crossplane_incompatibility(meta.crossplane_constraint, settings.crossplane_version)
    if bad_version:
        return InstallPlan(root, error=bad_version)
    if spec.get("skipDependencyResolution"):
        return InstallPlan(root, notes=("skipDependencyResolution: dependencies are not resolved",))
    lock = store.try_get(kind_named(store, "Lock"), LOCK_NAME) or {}
    try:
        graph = resolver.read_graph(lock)
        old_source = source_or_ref(previous) if previous else None
        kept = tuple(p for p in graph.installed if p.source not in (source, old_source))
        graph = replace(graph, installed=kept)
        plan = resolver.plan(graph, extra=[Installed(source, version, name, needs)])
    except ResolutionError as e:
        return InstallPlan(root, error=e.message)
    notes: tuple[str, ...] = ()
    if settings.dependency_resolution == "upstream":
        notes = (
            "planned with the whole-graph resolver; this control plane resolves the upstream way "
            "(one dependency per pass, the first dependent's constraint) and may choose otherwise",
        )
    return _with_root(root, plan, graph, notes)


def _with_root(root: Step, plan: Plan, graph: Graph, notes: tuple[str, ...]) -> InstallPlan:
    installed = {p.source for p in graph.installed}
    steps = tuple(
        s for s in plan.steps if s.source != root.source and (s.action != "keep" or s.source in installed)
    )
    return InstallPlan(root, steps, plan.rounds, incompatible=plan.incompatible, notes=notes)


__all__ = ["InstallPlan", "plan_install"]
