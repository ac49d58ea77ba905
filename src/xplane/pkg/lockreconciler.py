"""The Lock side (spec/packages.md §6.3-§6.5): resolve the whole dependency graph and install it.

:class:`LockResolver` is the default :class:`~xplane.pkg.dependencies.LockReconciler` of a
:class:`~xplane.pkg.controller.ControlPlane`. Once per pass it reads the Lock (which the revision
side, :class:`~xplane.pkg.dependencies.LockDependencies`, maintains) and:

1. no packages: drops the finalizer and the conditions;
2. checks the graph (duplicate sources, unknown kinds, invalid constraints, cycles) and fails the
   Lock's ``Resolved`` condition with upstream's reason and a precise message;
3. when a dependency is missing (or, with ``dependency_upgrades``, an installed one violates a
   constraint) resolves the whole graph with :func:`xplane.pkg.resolver.resolve` — tags listed
   concurrently through :class:`~xplane.pkg.tags.TagLister`, each candidate's ``dependsOn`` read
   through the fetcher (the likely candidates pulled ahead, concurrently: ``_Data.warm``) — and
   applies the plan in one store transaction: every missing dependency becomes an ordinary
   top-level package named ``ToDNSLabel(repository)`` (upstream's shape), every upgraded one gets
   its ``spec.package`` rewritten. A plan is applied whole or not at all; a kill
   before the commit leaves nothing, and the next pass resolves the same plan again.

Unlike upstream, a dependency from the same registry host as a dependent gets the dependent's
``packagePullSecrets`` (upstream creates dependencies with no pull secrets).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xplane.errors import XplaneError
from xplane.oci import Reference
from xplane.pkg import conditions as cond
from xplane.pkg.dependencies import LOCK_FINALIZER
from xplane.pkg.fetch import Fetcher
from xplane.pkg.greedy import implied, upstream_step
from xplane.pkg.names import (
    LABEL_PACKAGE,
    LOCK_NAME,
    PACKAGE_KINDS,
    PKG_GROUP,
    REVISION_KIND,
    kind_named,
    package_name_for,
    source_of,
)
from xplane.pkg.resolver import (
    GraphInput,
    Installed,
    Need,
    Plan,
    ResolutionError,
    find_cycle,
    reference_for,
    resolve,
    satisfies,
    tag_version,
    validate_needs,
)
from xplane.pkg.tags import MAX_WORKERS, TagLister, TagListError
from xplane.store import AlreadyExistsError, NotFoundError, Store
from xplane.xpkg import MetaError, is_digest_constraint

if TYPE_CHECKING:
    from xplane.pkg.settings import ControlPlaneSettings

log = logging.getLogger(__name__)

SUCCEEDED = "DependencyResolutionSucceeded"
FAILED = "DependencyResolutionFailed"
ERR_PREFIX = "Error occurred during dependency resolution "
EVENT_SOURCE = f"packages/lock.{PKG_GROUP}"
VALID_API_VERSIONS = frozenset(
    {"pkg.crossplane.io/v1", "pkg.crossplane.io/v1beta1", "pkg.crossplane.io/v1alpha1"}
)


@dataclass(frozen=True)
class Graph:
    """The Lock read as a graph, with each source's package object, display name and pull Secrets."""

    installed: tuple[Installed, ...]
    objects: dict[str, dict[str, Any]]  # source -> the package object that installs it
    secrets: dict[str, tuple[str, ...]]  # source -> pull Secret names
    kinds: dict[str, Need]  # dependency source -> the edge that names its kind


def host_of(source: str) -> str:
    """The registry host of a source (``""`` when it cannot be parsed)."""
    try:
        return Reference.parse(source).registry
    except XplaneError:
        return ""


def _precedence(tag: str) -> tuple[int, Any]:
    v = tag_version(tag)
    return (0, 0) if v is None else (1, v)


class _Data:
    """:class:`~xplane.pkg.resolver.CandidateData` over the registry and the fetcher."""

    def __init__(self, owner: LockResolver, graph: Graph) -> None:
        self.owner = owner
        self.secrets = dict(graph.secrets)
        self.kinds = dict(graph.kinds)
        self.listed: dict[str, list[str] | TagListError] = {}

    def prelist(self, sources: Sequence[str]) -> None:
        todo = {s: self.secrets.get(s, ()) for s in sources if s not in self.listed}
        self.listed.update(self.owner.tags.list_many(todo))

    def versions(self, source: str) -> Sequence[str]:
        self.prelist([source])
        got = self.listed[source]
        if isinstance(got, TagListError):
            raise ResolutionError(got.message, source=source)
        return got

    def warm(self, installed: Sequence[Installed], upgrades: bool) -> None:
        """Read ahead, wave by wave and concurrently, the package the resolver will most likely pick
        for each dependency to decide (the highest tag every known constraint accepts, the pinned
        digest, or with upgrades the lowest version at or above the installed one), so resolvelib's
        one-candidate-at-a-time ``needs`` calls are answered from memory instead of one registry
        round trip after another. A wrong guess costs one extra fetch; an
        error is left for the resolver to meet (and report) itself."""
        have = {p.source: p.version for p in installed}
        wants: dict[str, list[str]] = {}
        for p in installed:
            for n in p.needs:
                wants.setdefault(n.package, []).append(n.constraints)
        done: set[str] = set()
        while True:
            wave = [
                s
                for s, cs in wants.items()
                if s not in done
                and not (s in have and (not upgrades or all(satisfies(c, have[s]) for c in cs)))
            ]
            done.update(wants)
            picks: dict[str, str] = {}
            pins = {s: {c for c in wants[s] if is_digest_constraint(c)} for s in wave}
            self.prelist([s for s in wave if not pins[s]])
            for s in wave:
                if pins[s]:
                    if len(pins[s]) == 1:
                        picks[s] = next(iter(pins[s]))
                    continue
                tags = self.listed.get(s)
                ok = [
                    t
                    for t in (tags if isinstance(tags, list) else ())
                    if tag_version(t) is not None and all(satisfies(c, t) for c in wants[s])
                ]
                up = [t for t in ok if s in have and _precedence(t) >= _precedence(have[s])]
                if up:  # an upgrade moves to the lowest version at or above the installed one
                    picks[s] = min(up, key=_precedence)
                elif ok:
                    picks[s] = max(ok, key=_precedence)
            if not picks:
                return
            if len(picks) > 1:
                with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(picks))) as pool:
                    list(pool.map(self._peek, picks.items()))
            for s, version in picks.items():  # from memory now; merges kinds and pull secrets
                try:
                    for n in self.needs(s, version):
                        wants.setdefault(n.package, []).append(n.constraints)
                except ResolutionError:
                    pass

    def _peek(self, pick: tuple[str, str]) -> None:
        with contextlib.suppress(ResolutionError):
            self.owner.needs_of(pick[0], pick[1], self.secrets.get(pick[0], ()), self.kinds.get(pick[0]))

    def needs(self, source: str, version: str) -> Sequence[Need]:
        needs = self.owner.needs_of(source, version, self.secrets.get(source, ()), self.kinds.get(source))
        host = host_of(source)
        for n in needs:
            self.kinds.setdefault(n.package, n)
            if host and host_of(n.package) == host:
                merged = dict.fromkeys([*self.secrets.get(n.package, ()), *self.secrets.get(source, ())])
                self.secrets[n.package] = tuple(merged)
        return needs


class LockResolver:
    """Installs and (with the upgrade modes) changes dependencies so the Lock's graph is satisfied."""

    def __init__(
        self,
        store: Store,
        settings: ControlPlaneSettings,
        *,
        fetcher: Fetcher | None = None,
        tags: TagLister | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.fetcher = fetcher or Fetcher(store, settings)
        self.tags = tags or TagLister(store, settings, ttl=settings.tag_ttl)
        self._needs: dict[tuple[str, str], tuple[Need, ...]] = {}
        self._epoch = self.fetcher.epoch
        self.last_plan: Plan | None = None

    @property
    def upgrades(self) -> bool:
        """Whether installed dependencies may change version (downgrades imply upgrades)."""
        return self.settings.dependency_upgrades or self.settings.dependency_downgrades

    # -- reading --------------------------------------------------------------------------------

    def read_graph(self, lock: Mapping[str, Any]) -> Graph:
        """The Lock's packages as resolver input; raise :class:`ResolutionError` for a bad graph."""
        installed: list[Installed] = []
        objects: dict[str, dict[str, Any]] = {}
        secrets: dict[str, tuple[str, ...]] = {}
        kinds: dict[str, Need] = {}
        for entry in lock.get("packages") or ():
            source = str(entry.get("source") or "")
            if source in objects or any(p.source == source for p in installed):
                raise ResolutionError(f"cannot build DAG: node {source} already exists")
            needs = tuple(
                Need(
                    str(d.get("package") or ""),
                    str(d.get("constraints") or ""),
                    str(d.get("kind") or d.get("type") or ""),
                    str(d.get("apiVersion") or "pkg.crossplane.io/v1"),
                )
                for d in entry.get("dependencies") or ()
            )
            obj = self._package_of(entry)
            name = obj["metadata"]["name"] if obj else package_name_for(source)
            if obj is not None:
                objects[source] = obj
                spec = obj.get("spec") or {}
                secrets[source] = tuple(str(s.get("name")) for s in spec.get("packagePullSecrets") or ())
            installed.append(Installed(source, str(entry.get("version") or ""), name, needs))
        for p in installed:
            for n in p.needs:
                if n.kind not in PACKAGE_KINDS or n.api_version not in VALID_API_VERSIONS:
                    raise ResolutionError(
                        f"{p.name}: dependency {n.package} has unknown kind {n.api_version}/{n.kind}; "
                        "want pkg.crossplane.io/v1 Configuration, Provider or Function",
                        source=n.package,
                    )
                kinds.setdefault(n.package, n)
                if host_of(n.package) and host_of(n.package) == host_of(p.source):
                    merged = dict.fromkeys([*secrets.get(n.package, ()), *secrets.get(p.source, ())])
                    secrets[n.package] = tuple(merged)
        validate_needs(installed)
        cycle = find_cycle(installed)
        if cycle:
            raise ResolutionError(f"cannot sort DAG: detected cycle on: {cycle[0]} ({' -> '.join(cycle)})")
        return Graph(tuple(installed), objects, secrets, kinds)

    def _package_of(self, entry: Mapping[str, Any]) -> dict[str, Any] | None:
        kind = str(entry.get("kind") or "")
        if kind not in PACKAGE_KINDS:
            return None
        rev = self.store.try_get(kind_named(self.store, REVISION_KIND[kind]), str(entry.get("name")))
        owner = ((rev or {}).get("metadata") or {}).get("labels", {}).get(LABEL_PACKAGE)
        return self.store.try_get(kind_named(self.store, kind), owner) if owner else None

    def needs_of(
        self, source: str, version: str, secrets: Sequence[str], want: Need | None
    ) -> tuple[Need, ...]:
        """A version's own ``dependsOn`` (fetched once per version); checks its kind against ``want``."""
        key = (source, version)
        if key in self._needs:
            return self._needs[key]
        ref = reference_for(source, version)
        try:
            pkg = self.fetcher.get(ref, list(secrets), "IfNotPresent").package
            deps = pkg.meta.dependencies()
        except MetaError as e:
            raise ResolutionError(f"{ref}: invalid dependsOn: {e.message}", source=source) from e
        except XplaneError as e:
            raise ResolutionError(f"cannot read {ref}: {e.message}", source=source) from e
        if want is not None and pkg.meta.kind != want.kind:
            raise ResolutionError(
                f"{ref} is a {pkg.meta.kind} package, but a dependent wants a {want.kind}", source=source
            )
        out = tuple(Need(d.package, d.constraints, d.package_kind, d.package_api_version) for d in deps)
        self._needs[key] = out
        return out

    # -- planning ------------------------------------------------------------------------------

    def pending(self, graph: Graph) -> list[str]:
        """Dependency sources that need resolving: missing from the Lock and from every package
        object, or (upgrade modes) installed at a version some dependent rejects."""
        have = {p.source: p for p in graph.installed}
        objects = {
            self._source_of_object(o)
            for k in PACKAGE_KINDS
            for o in self.store.list(kind_named(self.store, k))
        }
        out: list[str] = []
        for p in graph.installed:
            for n in p.needs:
                target = have.get(n.package)
                if target is None:
                    if n.package not in objects and n.package not in out:
                        out.append(n.package)
                elif self.upgrades and not satisfies(n.constraints, target.version) and n.package not in out:
                    out.append(n.package)
        return out

    @staticmethod
    def _source_of_object(obj: Mapping[str, Any]) -> str:
        try:
            return source_of(str((obj.get("spec") or {}).get("package") or ""))
        except XplaneError:
            return ""

    def plan(self, graph: Graph, extra: Sequence[Installed] = ()) -> Plan:
        """Resolve ``graph`` (plus ``extra`` packages about to be installed); raise :class:`ResolutionError`."""
        data = _Data(self, graph)
        for p in extra:
            data.secrets.setdefault(p.source, ())
            for n in p.needs:
                data.kinds.setdefault(n.package, n)
        installed = (*graph.installed, *extra)
        have = {p.source for p in installed}
        first = sorted(
            {n.package for p in installed for n in p.needs if n.package not in have or self.upgrades}
        )
        data.prelist(
            [
                s
                for s in first
                if not all(
                    is_digest_constraint(n.constraints) for p in installed for n in p.needs if n.package == s
                )
            ]
        )
        data.warm(installed, self.upgrades)
        return resolve(
            GraphInput(
                installed,
                data,
                upgrades=self.upgrades,
                downgrades=self.settings.dependency_downgrades,
                names=lambda s: (
                    graph.objects[s]["metadata"]["name"] if s in graph.objects else package_name_for(s)
                ),
            )
        )

    # -- the reconcile -------------------------------------------------------------------------

    def reconcile(self, store: Store) -> bool:
        """One pass over the Lock; whether anything was written."""
        if self.fetcher.epoch != self._epoch:  # a new reconcile: unreachable registries are tried again
            self._epoch = self.fetcher.epoch
            self.tags.forget_failures()
        lock_kind = kind_named(store, "Lock")
        lock = store.try_get(lock_kind, LOCK_NAME)
        if lock is None:
            return False
        if not lock.get("packages"):
            return self._release(lock)
        changed = self._finalize(lock)
        try:
            graph = self.read_graph(lock)
            if self.settings.dependency_resolution == "upstream":
                if self.upstream_pass(graph):
                    return True
                return self._set(SUCCEEDED, "") or changed
            todo = self.pending(graph)
            if not todo:
                return self._set(SUCCEEDED, "") or changed
            plan = self.plan(graph)
            self.last_plan = plan
            changed = self.apply(plan, graph) or changed
        except ResolutionError as e:
            return self._set(FAILED, e.message) or changed
        return self._set(SUCCEEDED, "") or changed

    def upstream_pass(self, graph: Graph) -> bool:
        """Upstream's reconcile (:mod:`xplane.pkg.greedy`): handle the first implied dependency only."""
        nodes = implied(graph.installed, upgrades=self.upgrades)
        if not nodes:
            return False
        node = nodes[0]
        data = _Data(self, graph)
        step = upstream_step(
            node,
            data.versions,
            downgrades=self.settings.dependency_downgrades,
            name=package_name_for(node.source),
        )
        self.last_plan = Plan({step.source: step.version}, (step,), 0)
        return self.apply(self.last_plan, graph)

    def apply(self, plan: Plan, graph: Graph) -> bool:
        """Create or update every package the plan changes, in one transaction."""
        steps = [s for s in plan.changes if s.action == "install" or s.source in graph.objects]
        if not steps:
            return False
        secrets = _Data(self, graph).secrets
        for step in steps:  # propagate pull secrets down the new chain (same host only)
            for n in self._needs.get((step.source, step.version), ()):
                if host_of(n.package) == host_of(step.source):
                    merged = dict.fromkeys([*secrets.get(n.package, ()), *secrets.get(step.source, ())])
                    secrets[n.package] = tuple(merged)
        wrote = False
        with self.store.batch():
            for step in steps:
                ref = reference_for(step.source, step.version)
                if step.action == "install":
                    wrote = (
                        self._create(
                            step.kind or "Provider",
                            step.api_version,
                            step.name,
                            ref,
                            secrets.get(step.source, ()),
                        )
                        or wrote
                    )
                else:
                    obj = graph.objects[step.source]

                    def put(o: dict[str, Any], ref: str = ref) -> None:
                        o.setdefault("spec", {})["package"] = ref

                    self.store.modify(self.store.kind_of(obj), obj["metadata"]["name"], put)
                    wrote = True
        return wrote

    def _create(self, kind: str, api_version: str, name: str, ref: str, secrets: Sequence[str]) -> bool:
        spec: dict[str, Any] = {"package": ref}
        if secrets:
            spec["packagePullSecrets"] = [{"name": s} for s in secrets]
        obj = {
            "apiVersion": api_version or "pkg.crossplane.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
        try:
            self.store.create(obj)
        except AlreadyExistsError:  # upstream ignores it too
            return False
        return True

    def _release(self, lock: Mapping[str, Any]) -> bool:
        meta = lock.get("metadata") or {}
        if LOCK_FINALIZER not in (meta.get("finalizers") or ()) and not (lock.get("status") or {}).get(
            "conditions"
        ):
            return False

        def drop(o: dict[str, Any]) -> None:
            o["metadata"]["finalizers"] = [
                f for f in o["metadata"].get("finalizers") or () if f != LOCK_FINALIZER
            ]

        def clear(o: dict[str, Any]) -> None:
            o.setdefault("status", {})["conditions"] = []

        try:
            self.store.modify(kind_named(self.store, "Lock"), LOCK_NAME, drop)
            self.store.modify(kind_named(self.store, "Lock"), LOCK_NAME, clear, status=True)
        except NotFoundError:
            return False
        return True

    def _finalize(self, lock: Mapping[str, Any]) -> bool:
        if LOCK_FINALIZER in ((lock.get("metadata") or {}).get("finalizers") or ()):
            return False

        def add(o: dict[str, Any]) -> None:
            o["metadata"]["finalizers"] = [*(o["metadata"].get("finalizers") or ()), LOCK_FINALIZER]

        self.store.modify(kind_named(self.store, "Lock"), LOCK_NAME, add)
        return True

    def _set(self, reason: str, message: str) -> bool:
        """Set the Lock's ``Resolved`` condition (and record an event when a failure is new)."""
        lock_kind = kind_named(self.store, "Lock")
        lock = self.store.try_get(lock_kind, LOCK_NAME)
        if lock is None:
            return False
        c = cond.Condition(
            cond.RESOLVED,
            "True" if reason == SUCCEEDED else "False",
            reason,
            ERR_PREFIX + message if message else "",
        )
        old = cond.get_condition(lock, cond.RESOLVED) or {}
        if (
            old.get("reason") == c.reason
            and (old.get("message") or "") == c.message
            and old.get("status") == c.status
        ):
            return False
        status = dict(lock.get("status") or {})
        cond.set_condition(status, c, None, self.settings.now())

        def put(o: dict[str, Any]) -> None:
            o["status"] = status

        written = self.store.modify(lock_kind, LOCK_NAME, put, status=True)
        if message:
            self.store.record_event(written, "Warning", FAILED, c.message, source=EVENT_SOURCE)
        return True
