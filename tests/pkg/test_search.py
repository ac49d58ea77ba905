"""The complete search the resolver falls back to when resolvelib runs out of rounds."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest

from tests.pkg.test_resolver_unit import Memory, R, cfg, need
from xplane.pkg import resolver
from xplane.pkg.resolver import GraphInput, Installed, Need, Plan, ResolutionError, resolve, satisfies
from xplane.pkg.search import Problem, SearchExhausted, search


def problem(graph: Mapping[str, Mapping[str, Sequence[Need]]], roots: Sequence[Need]) -> Problem:
    def order(source: str) -> list[str]:
        return sorted(graph[source], key=lambda v: tuple(int(x) for x in v[1:].split(".")), reverse=True)

    return Problem(
        roots=roots,
        order=order,
        needs=lambda s, v: graph[s][v],
        satisfies=lambda c, s, v: satisfies(c, v),
        exact=lambda c, s: c.startswith("sha256:"),
    )


def valid(plan: Plan, roots: Sequence[Installed], data: Memory) -> bool:
    """Every edge of every chosen version (and of the roots) holds."""
    edges = [n for r in roots for n in r.needs]
    edges += [n for s, v in plan.versions.items() if s in data.graph for n in data.graph[s][v]]
    return all(
        n.package in plan.versions and satisfies(n.constraints, plan.versions[n.package]) for n in edges
    )


def test_search_backs_off_a_newest_version_that_asks_too_much() -> None:
    # app v2 wants lib >=2, but the root caps lib below 2: app must be v1 (and lib the highest below 2)
    graph = {
        R + "app": {"v1.0.0": (need("lib", ">=v1.0.0"),), "v2.0.0": (need("lib", ">=v2.0.0"),)},
        R + "lib": {"v1.0.0": (), "v1.5.0": (), "v2.0.0": ()},
    }
    found = search(problem(graph, [need("app", ">=v1.0.0"), need("lib", "<v2.0.0")]))
    assert found.versions == {R + "app": "v1.0.0", R + "lib": "v1.5.0"}


def test_search_proves_there_is_no_answer_and_honours_digests() -> None:
    graph = {R + "lib": {"v1.0.0": (), "v2.0.0": ()}}
    assert search(problem(graph, [need("lib", ">=v2.0.0"), need("lib", "<v2.0.0")])).versions is None
    d = "sha256:" + "c" * 64
    graph = {R + "lib": {"v1.0.0": (), "v2.0.0": ()}}
    found = search(
        Problem(
            roots=[need("lib", d)],
            order=lambda s: ["v2.0.0", "v1.0.0"],
            needs=lambda s, v: (),
            satisfies=lambda c, s, v: satisfies(c, v),
            exact=lambda c, s: c.startswith("sha256:"),
        )
    )
    assert found.versions == {R + "lib": d}


def test_search_stops_at_its_budget() -> None:
    # every version of a needs b at a version b does not have until a's lowest: the search must
    # walk through a's versions, one decision each
    graph = {
        R + "a": {f"v1.{i}.0": (need("b", f">=v1.{i}.0"),) for i in range(10)},
        R + "b": {"v1.0.0": ()},
        R + "c": {f"v1.{i}.0": (need("a", ">=v1.0.0"),) for i in range(10)},
    }
    assert search(problem(graph, [need("c", ">=v1.0.0")])).versions == {
        R + "c": "v1.9.0",
        R + "a": "v1.0.0",
        R + "b": "v1.0.0",
    }
    with pytest.raises(SearchExhausted, match="searched 2 combinations"):
        search(problem(graph, [need("c", ">=v1.0.0")]), max_nodes=1)


def timeline(packages: int, seed: int) -> tuple[list[Installed], Memory]:
    """Newer versions need newer dependencies; some edges cap; a known-good "current" set exists."""
    rng = random.Random(seed)
    current = [rng.randint(5, 9) for _ in range(packages)]
    graph: dict[str, dict[str, tuple[Need, ...]]] = {}
    for i in range(packages):
        targets = rng.sample(range(i + 1, packages), min(3, packages - i - 1))
        shape = {t: (rng.randint(-2, 0), rng.randint(0, 3), rng.choice([None, 3])) for t in targets}
        graph[R + f"p{i}"] = {}
        for v in range(10):
            edges = []
            for t, (skew, lag, cap) in shape.items():
                at = max(0, min(9, current[t] + v - current[i] + skew))
                c = f">=v1.{max(0, at - lag)}.0" + ("" if cap is None else f" <v1.{at + cap}.0")
                edges.append(need(f"p{t}", c))
            graph[R + f"p{i}"][f"v1.{v}.0"] = tuple(edges)
    roots = [
        cfg(f"root{r}", need(f"p{t}", f">=v1.{current[t] - 2}.0"))
        for r, t in enumerate(range(min(4, packages)))
    ]
    return roots, Memory(graph)


def test_resolve_falls_back_to_the_search_and_the_plan_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    roots, data = timeline(40, 3)
    full = resolve(GraphInput(roots, data))
    assert valid(full, roots, data)
    monkeypatch.setattr(resolver, "MAX_ROUNDS", 2)
    monkeypatch.setattr(resolver, "PLAIN_ROUNDS", 2)  # resolvelib gives up at once: the search answers
    roots, data = timeline(40, 3)
    fallback = resolve(GraphInput(roots, data))
    assert fallback.searched > 0 and fallback.rounds <= 6
    assert valid(fallback, roots, data)
    why = {s.source: s.reason for s in fallback.steps}
    assert all(why[R + f"p{t}"].startswith(f"root{t} requires") for t in range(4))
    # an impossible graph, found impossible by the search, says so
    roots.append(cfg("blocker", need("p0", "<v0.0.0")))
    with pytest.raises(
        ResolutionError, match="no set of versions satisfies every dependent|no version satisfies"
    ):
        resolve(GraphInput(roots, data))
