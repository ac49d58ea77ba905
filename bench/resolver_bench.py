"""Whole-graph dependency resolution on a synthetic graph, from cached data, in-process.

Usage (from the repository root, with the dev venv):

    .venv/bin/python bench/resolver_bench.py [--packages 200] [--versions 20] [--seed 11] [--reps 5]

Builds a seeded graph of ``--packages`` sources with ``--versions`` tags each (v1.0.0 … v1.19.0).
Package ``i`` at every version depends on three packages with a higher index (a DAG) with
overlapping windows ``>=v1.a.0 <v1.b.0`` that move with the dependent's version (see ``build``).
Ten pinned root Configurations want some of the first twenty packages. The candidate
data (tag lists and each version's ``dependsOn``) is in memory, as it is once the tag lists and the
parsed-package cache are warm. Prints the median time of ``--reps`` resolutions, resolvelib's
rounds and how many versions were read (issue #11 target: ≤ 2 s).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from xplane.pkg.resolver import GraphInput, Installed, Need, resolve

REG = "registry.example.com/bench/"


class Data:
    """Tag lists and ``dependsOn`` per version, in memory; counts what the resolver reads."""

    def __init__(self, tags: dict[str, list[str]], needs: dict[tuple[str, str], tuple[Need, ...]]) -> None:
        self.tags = tags
        self.deps = needs
        self.reads = 0

    def versions(self, source: str) -> Sequence[str]:
        return self.tags[source]

    def needs(self, source: str, version: str) -> Sequence[Need]:
        self.reads += 1
        return self.deps[(source, version)]


def window(rng: random.Random, center: int, versions: int, contains: int | None = None) -> str:
    """A range ``>=v1.a.0 <v1.b.0`` (6 to 10 versions wide) near ``center`` or containing ``contains``."""
    width = rng.randint(6, 10)
    if contains is not None:
        lo = rng.randint(max(0, contains - width + 1), contains)
    else:
        lo = max(0, min(versions - 2, center - rng.randint(1, width - 1)))
    return f">=v1.{lo}.0 <v1.{lo + width}.0"


def build(packages: int, versions: int, seed: int) -> tuple[list[Installed], Data]:
    """The graph: roots and the candidate data.

    Edge ``i -> t`` has a random skew: version ``v`` of ``i`` wants a window of ``t`` near
    ``v + skew``, so newer dependents want newer dependencies (as real packages do) but dependents
    with different skews overlap only part-way, often below the newest version, and the newest
    version of a dependent can want what another dependent rules out: backtracking. A hidden
    solution version per package (every root's window, and every edge written at or below a
    solution version, contains the target's solution) guarantees the graph is satisfiable; versions
    above the solution are the "too new" ones the resolver must back off from.
    """
    rng = random.Random(seed)
    names = [f"{REG}pkg-{i:03d}" for i in range(packages)]
    solution = [rng.randint(versions // 2, versions - 1) for _ in range(packages)]
    tags = {n: [f"v1.{v}.0" for v in range(versions)] for n in names}
    needs: dict[tuple[str, str], tuple[Need, ...]] = {}
    for i, name in enumerate(names):
        later = list(range(i + 1, packages))
        targets = rng.sample(later, min(3, len(later)))
        skews = {t: rng.randint(-6, 2) for t in targets}
        for v in range(versions):
            needs[(name, f"v1.{v}.0")] = tuple(
                Need(names[t], window(rng, v + skews[t], versions, solution[t] if v <= solution[i] else None))
                for t in targets
            )
    roots = [
        Installed(
            f"{REG}configuration-{r}",
            "v1.0.0",
            f"configuration-{r}",
            tuple(
                Need(names[t], window(rng, 0, versions, solution[t]))
                for t in rng.sample(range(min(20, packages)), min(3, packages))
            ),
        )
        for r in range(10)
    ]
    return roots, Data(tags, needs)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--versions", type=int, default=20)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    times: list[float] = []
    rounds = reads = chosen = 0
    for _ in range(args.reps):
        roots, data = build(args.packages, args.versions, args.seed)
        t0 = time.perf_counter()
        plan = resolve(GraphInput(roots, data))
        times.append(time.perf_counter() - t0)
        rounds, reads, chosen = plan.rounds, data.reads, len(plan.changes)
    med = statistics.median(times)
    print(
        f"resolver: {args.packages} packages x {args.versions} versions: median {med:.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, {args.reps} reps); resolvelib rounds {rounds}; "
        f"{reads} versions read; {chosen} packages chosen; target <= 2 s: {'ok' if med <= 2 else 'MISSED'}"
    )
    return 0 if med <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
