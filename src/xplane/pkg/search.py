"""A complete search over dependency versions, for graphs ``resolvelib`` gives up on.

``resolvelib`` decides one package at a time and learns little from a conflict; on a graph where
many dependents' newest versions ask for more than other dependents allow, it can spend all its
rounds backtracking. This search keeps the whole reachable graph *arc consistent* — a version stays
a candidate only while every package it needs still has a version satisfying it — and decides the
most constrained package first, trying versions in the resolver's own order (highest first, the
installed one first, minimal upgrades first …). It reads every version's ``dependsOn`` of every
reachable package up front, which is why the resolver uses it only as a fallback.

Pure: the caller supplies the candidate order, the ``dependsOn`` of a version and which packages
are pinned (an installed version kept as is satisfies every requirement, as upstream's default).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Domains = dict[str, tuple[str, ...]]


class Edge(Protocol):
    """A dependency edge: the package wanted and the constraint on it."""

    @property
    def package(self) -> str: ...

    @property
    def constraints(self) -> str: ...


class SearchExhausted(Exception):
    """The search hit its node or time budget before finding an answer or proving there is none."""

    def __init__(self, nodes: int, seconds: float) -> None:
        super().__init__(f"searched {nodes} combinations in {seconds:.1f}s")
        self.nodes = nodes
        self.seconds = seconds


@dataclass(frozen=True)
class Problem:
    """What to solve.

    ``roots`` are the edges of the packages that are fixed (their own versions are not chosen);
    ``order(source)`` lists a source's candidate versions, preferred first; ``needs(source,
    version)`` is that version's ``dependsOn``; ``satisfies(constraints, source, version)`` decides
    an edge (a pinned package answers True to everything); ``exact(constraints, source)``
    tells a constraint that is itself a version (a digest) of an unpinned package from a range.
    """

    roots: Sequence[Edge]
    order: Callable[[str], Sequence[str]]
    needs: Callable[[str, str], Sequence[Edge]]
    satisfies: Callable[[str, str, str], bool]
    exact: Callable[[str, str], bool]


@dataclass
class _Graph:
    problem: Problem
    needs: dict[tuple[str, str], tuple[Edge, ...]]
    dependents: dict[str, list[tuple[str, str, str]]]  # target -> (source, version, constraints)


@dataclass(frozen=True)
class Found:
    """The answer: a version per needed package (None: no combination works) and decisions made."""

    versions: dict[str, str] | None
    nodes: int


def search(problem: Problem, *, max_nodes: int = 100_000, max_seconds: float = 30.0) -> Found:
    """A version for each package the roots need, transitively (``versions`` None: none works).

    Raises :class:`SearchExhausted` past ``max_nodes`` decisions or ``max_seconds``.
    """
    graph, domains = _discover(problem)
    for edge in problem.roots:
        domains[edge.package] = _filter(problem, edge, domains[edge.package])
    required = frozenset(e.package for e in problem.roots)
    _propagate(graph, domains, deque(domains))
    if any(not domains[s] for s in required):
        return Found(None, 0)
    budget = _Budget(max_nodes, max_seconds)
    return Found(_decide(graph, domains, required, {}, budget), budget.nodes)


def _discover(problem: Problem) -> tuple[_Graph, Domains]:
    """Every package reachable from the roots, every version's edges (read once), reverse edges.

    A constraint that names an exact version (a digest pin) adds that version to its package's
    candidates, ahead of the listed ones.
    """
    domains: Domains = {}
    needs: dict[tuple[str, str], tuple[Edge, ...]] = {}
    dependents: dict[str, list[tuple[str, str, str]]] = {}
    todo: deque[tuple[str, str | None]] = deque((e.package, None) for e in problem.roots)
    todo.extend((e.package, e.constraints) for e in problem.roots if problem.exact(e.constraints, e.package))
    while todo:
        source, pinned = todo.popleft()
        if pinned is not None:
            if pinned in domains.get(source, ()):
                continue
            added: tuple[str, ...] = (pinned,)
            domains[source] = (pinned, *domains.get(source, ()))
        elif source in domains:
            continue
        else:
            added = tuple(problem.order(source))
            domains[source] = (*domains.get(source, ()), *added)
        for version in added:
            edges = tuple(problem.needs(source, version))
            needs[(source, version)] = edges
            for e in edges:
                dependents.setdefault(e.package, []).append((source, version, e.constraints))
                if problem.exact(e.constraints, e.package):
                    todo.append((e.package, e.constraints))
                if e.package not in domains:
                    todo.append((e.package, None))
    return _Graph(problem, needs, dependents), domains


def _filter(problem: Problem, edge: Edge, versions: Iterable[str]) -> tuple[str, ...]:
    return tuple(v for v in versions if problem.satisfies(edge.constraints, edge.package, v))


def _propagate(graph: _Graph, domains: Domains, changed: deque[str]) -> None:
    """Remove, in place and to a fixpoint, every version that needs a package whose remaining
    versions all miss its constraint (``changed``: the packages whose versions just shrank).

    A package emptied this way takes its dependents' versions that need it along; the caller sees
    the empty domain of whatever it cannot do without.
    """
    queued = set(changed)
    while changed:
        target = changed.popleft()
        queued.discard(target)
        allowed = domains[target]
        for source, version, constraints in graph.dependents.get(target, ()):
            current = domains.get(source, ())
            if version not in current:
                continue
            if any(graph.problem.satisfies(constraints, target, u) for u in allowed):
                continue
            domains[source] = tuple(v for v in current if v != version)
            if source not in queued:
                queued.add(source)
                changed.append(source)


class _Budget:
    def __init__(self, max_nodes: int, max_seconds: float) -> None:
        self.nodes = 0
        self.max_nodes = max_nodes
        self.started = time.monotonic()
        self.deadline = self.started + max_seconds

    def spend(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes or (self.nodes % 64 == 0 and time.monotonic() > self.deadline):
            raise SearchExhausted(self.nodes, time.monotonic() - self.started)


def _decide(
    graph: _Graph, domains: Domains, required: frozenset[str], chosen: Mapping[str, str], budget: _Budget
) -> dict[str, str] | None:
    open_ = [s for s in required if s not in chosen]
    if not open_:
        return dict(chosen)
    budget.spend()
    source = min(open_, key=lambda s: (len(domains[s]), s))
    for version in domains[source]:
        edges = graph.needs[(source, version)]
        trial = dict(domains)
        trial[source] = (version,)
        changed = deque([source])
        for e in edges:
            narrowed = _filter(graph.problem, e, trial[e.package])
            if narrowed != trial[e.package]:
                trial[e.package] = narrowed
                changed.append(e.package)
        _propagate(graph, trial, changed)
        now_required = required | {e.package for e in edges}
        if any(not trial[s] for s in now_required):
            continue
        found = _decide(graph, trial, now_required, {**chosen, source: version}, budget)
        if found is not None:
            return found
    return None


__all__ = ["Found", "Problem", "SearchExhausted", "search"]
