"""Whole-graph dependency resolution on ``resolvelib`` (issue 11): pure, over candidate data.

Upstream's resolver (spec/packages.md §6.3) installs one implied dependency per reconcile and picks
the highest tag satisfying the *first* dependent's constraint only. Here every dependent's
constraint counts (an AND), digest pins are exact, installed versions are preferred, otherwise the
highest satisfying version, and an impossible graph is explained in one message naming who wants
what. The input is data (:class:`GraphInput`: the installed graph, the modes, and a
:class:`CandidateData` that lists a source's versions and a version's own ``dependsOn``), so the
same code serves the Lock reconciler, ``xp xpkg install --dry-run`` and the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from resolvelib import AbstractProvider, BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver

from xplane.pkg.search import Problem, SearchExhausted, search
from xplane.xpkg import Constraint, SemverError, Version, is_digest_constraint

PLAIN_ROUNDS = 300  # resolvelib as is; then with look-ahead:
MAX_ROUNDS = 300  # then the complete search of xplane.pkg.search (rounds, not time: deterministic)
SEARCH_NODES = 100_000
SEARCH_SECONDS = 30.0


class ResolutionError(Exception):
    """No set of versions satisfies every dependent, or a source's data cannot be read."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source


@dataclass(frozen=True)
class Need:
    """One dependency edge as the Lock records it: ``package`` (a source) wanted by ``parent``."""

    package: str
    constraints: str
    kind: str = "Provider"
    api_version: str = "pkg.crossplane.io/v1"


@dataclass(frozen=True)
class Installed:
    """A package in the Lock: its source, version (tag or digest), display name and edges."""

    source: str
    version: str
    name: str
    needs: tuple[Need, ...] = ()


class CandidateData(Protocol):
    """Where versions and their ``dependsOn`` come from (registry tags and packages, or memory)."""

    def versions(self, source: str) -> Sequence[str]:
        """Every tag of ``source`` (non-semver ones are ignored); raise :class:`ResolutionError`."""
        ...

    def needs(self, source: str, version: str) -> Sequence[Need]:
        """The ``dependsOn`` of ``source`` at ``version``; raise :class:`ResolutionError`."""
        ...


@dataclass(frozen=True)
class GraphInput:
    """What to resolve: the installed packages (Lock entries), the modes and the candidate data."""

    installed: Sequence[Installed]
    data: CandidateData
    upgrades: bool = False
    downgrades: bool = False
    names: Callable[[str], str] = field(default=lambda s: s.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class Step:
    """One line of a plan: ``action`` is ``install``, ``upgrade``, ``downgrade`` or ``keep``."""

    source: str
    name: str
    kind: str
    api_version: str
    version: str
    action: str
    previous: str | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """The resolution: a version per source, the steps to reach it and resolvelib's round count."""

    versions: dict[str, str]
    steps: tuple[Step, ...]
    rounds: int
    incompatible: tuple[str, ...] = ()
    searched: int = 0  # decisions of the complete search, when resolvelib gave up (0: not needed)

    @property
    def changes(self) -> tuple[Step, ...]:
        """The steps that install or change a package."""
        return tuple(s for s in self.steps if s.action != "keep")


@dataclass(frozen=True)
class _Req:
    source: str
    constraints: str
    parent: str  # display name of who wants it ("" for a root)
    kind: str
    api_version: str


@dataclass(frozen=True)
class _Cand:
    source: str
    version: str
    pinned: bool  # an installed version kept as is: satisfies every requirement (upstream's default)


@lru_cache(maxsize=65536)
def _semver(tag: str) -> Version | None:
    try:
        v = Version.parse(tag)
    except SemverError:
        return None
    return v if v.original.count(".") >= 2 else None  # upstream drops incomplete tags (v1, v1.2)


def reference_for(source: str, version: str) -> str:
    """``source:tag`` or ``source@sha256:…``: the reference a plan's version of ``source`` names."""
    return f"{source}@{version}" if is_digest_constraint(version) else f"{source}:{version}"


def tag_version(tag: str) -> Version | None:
    """A tag as a complete semver version, or None for tags upstream ignores (``latest``, ``v1.2``)."""
    return _semver(tag)


@lru_cache(maxsize=65536)
def _constraint(text: str) -> Constraint | None:
    try:
        return Constraint.parse(text)
    except SemverError:
        return None


@lru_cache(maxsize=262144)
def satisfies(constraints: str, version: str) -> bool:
    """Whether ``version`` meets ``constraints`` (a semver range, a digest, or empty for any)."""
    if not constraints:
        return True
    if is_digest_constraint(constraints) or is_digest_constraint(version):
        return constraints == version
    v = _semver(version)
    c = _constraint(constraints)
    return v is not None and c is not None and c.check(v)


def _abbreviated(tags: Sequence[str]) -> str:
    if len(tags) <= 8:
        return ", ".join(tags)
    return f"{', '.join(tags[:3])}, …, {', '.join(tags[-3:])} ({len(tags)} tags)"


class _Provider(AbstractProvider[_Req, _Cand, str]):
    def __init__(self, graph: GraphInput, *, lookahead: bool = True) -> None:
        self.g = graph
        self.installed = {p.source: p for p in graph.installed}
        targets = {n.package for p in graph.installed for n in p.needs}
        self.roots = [p for p in graph.installed if p.source not in targets]
        self._versions: dict[str, list[Version]] = {}
        self.lookahead = lookahead  # skip versions whose dependsOn already conflicts (see find_matches)

    def identify(self, requirement_or_candidate: _Req | _Cand) -> str:
        return requirement_or_candidate.source

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, _Cand],
        candidates: Mapping[str, Iterator[_Cand]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[bool, bool, bool, int, str]:
        """Pinned and digest-pinned first, then conflict causes, then the fewest remaining versions.

        Fewest-versions-first (fail first) decides the most constrained package before its
        constraints can be contradicted from elsewhere; counting uses the tag list and the
        constraints only, so it reads no package.
        """
        reqs = [i.requirement for i in information[identifier]]
        pinned = identifier in self.installed and not self.g.upgrades
        digest = any(is_digest_constraint(r.constraints) for r in reqs)
        causes = {c.requirement.source for c in backtrack_causes}
        causes.update(c.parent.source for c in backtrack_causes if c.parent is not None)
        left = 1 if pinned or digest else self._count(identifier, [r.constraints for r in reqs])
        return (not pinned, not digest, identifier not in causes, left, identifier)

    def _count(self, source: str, constraints: Sequence[str]) -> int:
        try:
            versions = self.sorted_versions(source)
        except ResolutionError:
            return 0  # fail first: the error surfaces as soon as this package is looked at
        return sum(1 for v in versions if all(satisfies(c, str(v.original)) for c in constraints))

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, _Cand],
        candidates: Mapping[str, Iterator[_Cand]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> Iterable[str]:
        """While backtracking, work on the identifiers in conflict first (as pip does)."""
        ids = list(identifiers)
        if not backtrack_causes:
            return ids
        causes = {c.requirement.source for c in backtrack_causes}
        causes.update(c.parent.source for c in backtrack_causes if c.parent is not None)
        focused = [i for i in ids if i in causes]
        return focused or ids

    def sorted_versions(self, source: str) -> list[Version]:
        """The complete semver tags of ``source``, ascending (listed once)."""
        if source not in self._versions:
            vs = [v for v in (_semver(t) for t in self.g.data.versions(source)) if v is not None]
            self._versions[source] = sorted(vs)
        return self._versions[source]

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[_Req]],
        incompatibilities: Mapping[str, Iterator[_Cand]],
    ) -> Callable[[], Iterator[_Cand]]:
        """The candidates in preference order, lazily, each checked one step ahead.

        A version whose own ``dependsOn`` leaves some already-constrained package with no version
        at all is skipped before it is tried (forward checking), so the resolver does not pin it
        and backtrack later. The check reads a version's ``dependsOn`` only when the resolver gets
        to that version, as pinning it would.
        """
        ordered = self._ordered(identifier, list(requirements[identifier]), incompatibilities)
        wanted: dict[str, list[str]] = {}
        checked: dict[str, bool] = {}

        def constraints_on(source: str) -> list[str]:
            if source not in wanted:
                wanted[source] = [r.constraints for r in requirements.get(source, ())]
            return wanted[source]

        def viable(c: _Cand) -> bool:
            if c.version not in checked:
                checked[c.version] = c.pinned or not self.lookahead or self._consistent(c, constraints_on)
            return checked[c.version]

        def matches() -> Iterator[_Cand]:
            return (c for c in ordered if viable(c))

        return matches

    def _consistent(self, cand: _Cand, constraints_on: Callable[[str], list[str]]) -> bool:
        for need in self.g.data.needs(cand.source, cand.version):
            others = constraints_on(need.package)
            if not others or is_digest_constraint(need.constraints) or any(map(is_digest_constraint, others)):
                continue
            try:
                versions = self.sorted_versions(need.package)
            except ResolutionError:
                return True  # let the resolver reach the package and report it
            every = [need.constraints, *others]
            if not any(all(satisfies(x, str(v.original)) for x in every) for v in versions):
                return False
        return True

    def _ordered(
        self, identifier: str, reqs: list[_Req], incompatibilities: Mapping[str, Iterator[_Cand]]
    ) -> list[_Cand]:
        bad = {c.version for c in incompatibilities[identifier]}
        have = self.installed.get(identifier)
        root = have is not None and have in self.roots
        if have is not None and (root or not self.g.upgrades):
            return [] if have.version in bad else [_Cand(identifier, have.version, pinned=True)]
        digests = {r.constraints for r in reqs if is_digest_constraint(r.constraints)}
        if digests:
            ok_digests = [
                d for d in sorted(digests) if d not in bad and all(satisfies(r.constraints, d) for r in reqs)
            ]
            return [_Cand(identifier, d, False) for d in ok_digests]
        ok = [str(v.original) for v in self.sorted_versions(identifier)]
        ok = [v for v in ok if v not in bad and all(satisfies(r.constraints, v) for r in reqs)]
        if have is None:
            return [_Cand(identifier, v, False) for v in reversed(ok)]  # highest first
        cur = _semver(have.version)
        if cur is None:
            return [_Cand(identifier, v, False) for v in reversed(ok)]
        up = [v for v in ok if Version.parse(v) >= cur]  # minimal upgrade first (may be itself)
        down = [v for v in reversed(ok) if Version.parse(v) < cur] if self.g.downgrades else []
        return [_Cand(identifier, v, False) for v in [*up, *down]]

    def is_satisfied_by(self, requirement: _Req, candidate: _Cand) -> bool:
        return candidate.pinned or satisfies(requirement.constraints, candidate.version)

    def get_dependencies(self, candidate: _Cand) -> Iterable[_Req]:
        have = self.installed.get(candidate.source)
        if have is not None and have.version == candidate.version:
            needs: Sequence[Need] = have.needs
            who = have.name
        else:
            needs = self.g.data.needs(candidate.source, candidate.version)
            who = f"{self.g.names(candidate.source)}@{candidate.version}"
        return [_Req(n.package, n.constraints, who, n.kind, n.api_version) for n in needs]


class _Rounds(BaseReporter[_Req, _Cand, str]):
    def __init__(self) -> None:
        self.rounds = 0

    def starting_round(self, index: int) -> None:
        self.rounds = index + 1


def validate_needs(installed: Iterable[Installed]) -> None:
    """Raise :class:`ResolutionError` for a constraint that is neither a digest nor a semver range."""
    for p in installed:
        for n in p.needs:
            if n.constraints and not is_digest_constraint(n.constraints):
                try:
                    Constraint.parse(n.constraints)
                except SemverError as e:
                    raise ResolutionError(
                        f"{p.name}: invalid constraint {n.constraints!r} on {n.package}: {e.message}",
                        source=n.package,
                    ) from e


def find_cycle(installed: Iterable[Installed]) -> list[str] | None:
    """A dependency cycle among the Lock's packages (sources in order), or None."""
    edges = {p.source: [n.package for n in p.needs] for p in installed}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def resolve(graph: GraphInput) -> Plan:
    """Resolve the whole graph; raise :class:`ResolutionError` with a message naming who wants what.

    Three passes, each only when the one before runs out of rounds (deterministic: the same graph
    gets the same answer): ``resolvelib`` as is, reading only the versions it pins (most graphs
    end here, within :data:`PLAIN_ROUNDS`); ``resolvelib`` with look-ahead, which also reads the
    ``dependsOn`` of the versions it considers so as to skip those that already clash
    (:data:`MAX_ROUNDS`); then the complete search of :mod:`xplane.pkg.search`, which reads every
    reachable version's ``dependsOn`` (bounded by :data:`SEARCH_NODES` and :data:`SEARCH_SECONDS`).
    """
    validate_needs(graph.installed)
    rounds = 0
    for lookahead, limit in ((False, PLAIN_ROUNDS), (True, MAX_ROUNDS)):
        provider = _Provider(graph, lookahead=lookahead)
        reporter = _Rounds()
        roots = [_Req(p.source, p.version, "", "", "") for p in provider.roots]
        try:
            result = Resolver(provider, reporter).resolve(roots, max_rounds=limit)
        except ResolutionImpossible as e:
            raise ResolutionError(_explain(provider, e.causes), source=_first_source(e.causes)) from None
        except ResolutionTooDeep as e:
            rounds += e.round_count
            continue
        versions = {k: c.version for k, c in result.mapping.items()}
        wanted: dict[str, list[_Req]] = {}
        for k, crit in result.criteria.items():
            for info in crit.information:
                if info.parent is not None:
                    wanted.setdefault(k, []).append(info.requirement)
        return _plan(provider, versions, wanted, rounds + reporter.rounds)
    return _searched(provider, rounds)


def _searched(provider: _Provider, rounds: int) -> Plan:
    """The complete search's answer, as a plan; ``ResolutionError`` when there is none."""

    def pinned(source: str) -> bool:
        have = provider.installed.get(source)
        return have is not None and (have in provider.roots or not provider.g.upgrades)

    def order(source: str) -> list[str]:
        return [c.version for c in provider._ordered(source, [], {source: iter(())})]

    problem = Problem(
        roots=[n for p in provider.roots for n in p.needs],
        order=order,
        needs=lambda source, version: [
            Need(r.source, r.constraints, r.kind, r.api_version)
            for r in provider.get_dependencies(_Cand(source, version, False))
        ],
        satisfies=lambda constraints, source, version: pinned(source) or satisfies(constraints, version),
        exact=lambda constraints, source: is_digest_constraint(constraints) and not pinned(source),
    )
    try:
        found = search(problem, max_nodes=SEARCH_NODES, max_seconds=SEARCH_SECONDS)
    except SearchExhausted as e:
        raise ResolutionError(
            f"dependency resolution gave up: {rounds} rounds of backtracking, then a complete search "
            f"({e}); pin more dependencies (exact versions or narrower ranges) to make it smaller"
        ) from None
    if found.versions is None:
        raise ResolutionError(
            "no set of versions satisfies every dependent (a complete search of the graph found none "
            f"after {rounds} rounds of backtracking); see 'xp tree' and each package's dependsOn"
        )
    versions = {p.source: p.version for p in provider.roots} | found.versions
    wanted: dict[str, list[_Req]] = {}
    for source, version in versions.items():
        for r in provider.get_dependencies(_Cand(source, version, False)):
            wanted.setdefault(r.source, []).append(r)
    return _plan(provider, versions, wanted, rounds, searched=max(1, found.nodes))


def _plan(
    provider: _Provider,
    versions: dict[str, str],
    wanted: Mapping[str, list[_Req]],
    rounds: int,
    *,
    searched: int = 0,
) -> Plan:
    """Steps (install, upgrade, downgrade, keep) and why, from the chosen versions and their edges."""
    graph = provider.g
    steps: list[Step] = []
    incompatible: list[str] = []
    for source in sorted(versions):
        have = provider.installed.get(source)
        version = versions[source]
        reqs = wanted.get(source, [])
        why = ", ".join(f"{r.parent} requires {r.constraints or 'any version'}" for r in reqs) or "installed"
        req = reqs[0] if reqs else None
        kind, api = (req.kind, req.api_version) if req else ("", "")
        name = have.name if have else graph.names(source)
        if have is None:
            action = "install"
        elif have.version == version:
            action = "keep"
            broken = [r for r in reqs if not satisfies(r.constraints, version)]
            if broken:
                incompatible.extend(
                    f"existing package {source}@{version} is incompatible with constraint {r.constraints}"
                    for r in broken
                )
                why = "left alone (dependency upgrades are off): " + why
        else:
            old, new = _semver(have.version), _semver(version)
            action = "downgrade" if old is not None and new is not None and new < old else "upgrade"
        steps.append(Step(source, name, kind, api, version, action, have.version if have else None, why))
    return Plan(versions, tuple(steps), rounds, tuple(incompatible), searched)


def _first_source(causes: Iterable[Any]) -> str | None:
    for c in causes:
        return str(c.requirement.source)
    return None


def _explain(provider: _Provider, causes: Iterable[Any]) -> str:
    """``provider-x: a requires >=v2, b requires <v2; no version satisfies both (available: …)``."""
    by_source: dict[str, list[_Req]] = {}
    for c in causes:
        r: _Req = c.requirement
        if r not in by_source.setdefault(r.source, []):
            by_source[r.source].append(r)
    parts: list[str] = []
    for source, reqs in by_source.items():
        who = ", ".join(f"{r.parent or 'the user'} requires {r.constraints or 'any version'}" for r in reqs)
        have = provider.installed.get(source)
        if have is not None and (not provider.g.upgrades or have in provider.roots):
            avail = f"installed: {have.version}; dependency upgrades are off"
        else:
            try:
                tags = [str(v.original) for v in provider.sorted_versions(source)]
            except ResolutionError as e:
                parts.append(f"{provider.g.names(source)}: {e.message}")
                continue
            avail = "available: " + (_abbreviated(tags) if tags else "no semver tags")
        what = "both" if len(reqs) == 2 else ("all of them" if len(reqs) > 2 else "it")
        parts.append(f"{provider.g.names(source)}: {who}; no version satisfies {what} ({avail})")
    return "; ".join(parts) or "no set of versions satisfies every dependent"
