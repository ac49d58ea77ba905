"""Whole-graph dependency resolution on synthetic graphs, from cached data, in-process.

Usage (from the repository root, with the dev venv):

    .venv/bin/python bench/resolver_bench.py [--packages 200] [--versions 20] [--seed 1] [--seeds 10]
                                             [--reps 5] [--shape timeline|planted] [--out bench/out]

Resolves ``--seeds`` seeded graphs of ``--packages`` sources with ``--versions`` tags each
(v1.0.0 … v1.19.0); ten pinned root Configurations want some of the first twenty packages and each
package depends on three with a higher index (a DAG). Two shapes:

* ``timeline`` (default): constraints shaped like release histories (see ``build_timeline``):
  newer versions need newer dependencies, a third of the edges cap, and a known-good set exists;
* ``planted``: random windows around a hidden solution (``build_planted``), a stress test with no
  structure for the resolver to use.

The candidate data (tag lists and each version's ``dependsOn``) is in memory, as it is once the tag
lists and the parsed-package cache are warm. Prints, per seed, the median time of ``--reps``
resolutions, resolvelib's rounds, whether the complete search was needed and how many versions'
``dependsOn`` were read; the target (issue #11) is ≤ 2 s for every seed. Writes
``<out>/resolver-<shape>-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from xplane.pkg.resolver import GraphInput, Installed, Need, ResolutionError, resolve

REG = "registry.example.com/bench/"
TARGET_S = 2.0


class Data:
    """Tag lists and ``dependsOn`` per version, in memory; counts what the resolver reads."""

    def __init__(self, tags: dict[str, list[str]], needs: dict[tuple[str, str], tuple[Need, ...]]) -> None:
        self.tags = tags
        self.deps = needs
        self.reads = 0
        self.read: set[tuple[str, str]] = set()

    def versions(self, source: str) -> Sequence[str]:
        return self.tags[source]

    def needs(self, source: str, version: str) -> Sequence[Need]:
        self.reads += 1
        self.read.add((source, version))
        return self.deps[(source, version)]


def window(rng: random.Random, center: int, versions: int, contains: int | None = None) -> str:
    """A range ``>=v1.a.0 <v1.b.0`` (6 to 10 versions wide) near ``center`` or containing ``contains``."""
    width = rng.randint(6, 10)
    if contains is not None:
        lo = rng.randint(max(0, contains - width + 1), contains)
    else:
        lo = max(0, min(versions - 2, center - rng.randint(1, width - 1)))
    return f">=v1.{lo}.0 <v1.{lo + width}.0"


def _roots(rng: random.Random, names: list[str], constraint: Callable[[int], str]) -> list[Installed]:
    """Ten root Configurations, each asking for three of the first twenty packages."""
    return [
        Installed(
            f"{REG}configuration-{r}",
            "v1.0.0",
            f"configuration-{r}",
            tuple(
                Need(names[t], constraint(t))
                for t in rng.sample(range(min(20, len(names))), min(3, len(names)))
            ),
        )
        for r in range(10)
    ]


def build_planted(packages: int, versions: int, seed: int) -> tuple[list[Installed], Data]:
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
    return _roots(rng, names, lambda t: window(rng, 0, versions, solution[t])), Data(tags, needs)


def build_timeline(packages: int, versions: int, seed: int) -> tuple[list[Installed], Data]:
    """A graph shaped like a release history (the default shape).

    Every package has a "current" version (in the upper half) and the current versions work
    together. Package ``i`` depends on three packages with a higher index (a DAG); version ``v`` of
    ``i`` was released when its dependency ``t`` was at about ``current(t) + (v - current(i))``
    (minus up to two versions) and asks for ``>=`` that (minus up to four: a lag); a third of the
    edges also cap it three to six versions above. So newer dependents want newer dependencies,
    versions newer than the current one ask for more than other dependents' caps allow (the
    resolver must back off them), and older ones may cap below what others need. Ten root
    Configurations ask for some of the first twenty packages with floors at or below, and caps
    above, the current versions.
    """
    rng = random.Random(seed)
    names = [f"{REG}pkg-{i:03d}" for i in range(packages)]
    current = [rng.randint(versions // 2, versions - 1) for _ in range(packages)]
    tags = {n: [f"v1.{v}.0" for v in range(versions)] for n in names}

    def edge_constraint(released_at: int, lag: int, cap: int | None) -> str:
        at = max(0, min(versions - 1, released_at))
        text = f">=v1.{max(0, at - lag)}.0"
        return text if cap is None else f"{text} <v1.{at + cap}.0"

    needs: dict[tuple[str, str], tuple[Need, ...]] = {}
    for i, name in enumerate(names):
        later = list(range(i + 1, packages))
        targets = rng.sample(later, min(3, len(later)))
        shape = {
            t: (rng.randint(-2, 0), rng.randint(0, 4), rng.randint(3, 6) if rng.random() < 1 / 3 else None)
            for t in targets
        }
        for v in range(versions):
            needs[(name, f"v1.{v}.0")] = tuple(
                Need(names[t], edge_constraint(current[t] + v - current[i] + skew, lag, cap))
                for t, (skew, lag, cap) in shape.items()
            )

    def root_constraint(t: int) -> str:
        floor = f">=v1.{max(0, current[t] - rng.randint(0, 6))}.0"
        return floor if rng.random() < 2 / 3 else f"{floor} <v1.{current[t] + rng.randint(1, 4)}.0"

    return _roots(rng, names, root_constraint), Data(tags, needs)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--versions", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--seeds", type=int, default=10, help="graphs to resolve (seeds --seed, --seed+1, ...)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--shape",
        choices=["timeline", "planted"],
        default="timeline",
        help="timeline: constraints shaped like release histories; planted: random windows around a hidden solution (a stress test)",
    )
    args = ap.parse_args(argv)
    build = build_timeline if args.shape == "timeline" else build_planted
    rows = []
    failed: list[int] = []
    worst = 0.0
    for seed in range(args.seed, args.seed + args.seeds):
        times: list[float] = []
        for _ in range(args.reps):
            roots, data = build(args.packages, args.versions, seed)
            t0 = time.perf_counter()
            try:
                plan = resolve(GraphInput(roots, data))
            except ResolutionError as e:
                print(f"seed {seed}: FAILED after {time.perf_counter() - t0:.1f} s: {e.message}")
                failed.append(seed)
                break
            times.append(time.perf_counter() - t0)
        if not times:
            continue
        med = statistics.median(times)
        worst = max(worst, med)
        rows.append(
            {
                "seed": seed,
                "median_s": round(med, 4),
                "min_s": round(min(times), 4),
                "max_s": round(max(times), 4),
                "rounds": plan.rounds,
                "searched": plan.searched,
                "reads": data.reads,
                "versions_read": len(data.read),
                "chosen": len(plan.versions) - len(roots),
            }
        )
        r = rows[-1]
        print(
            f"seed {seed}: {args.packages} packages x {args.versions} versions ({args.shape}): median "
            f"{med:.3f} s [{min(times):.3f}-{max(times):.3f}], resolvelib rounds {r['rounds']}, "
            f"complete search {'not needed' if not r['searched'] else str(r['searched']) + ' decisions'}, "
            f"{r['versions_read']} versions' dependsOn read ({r['reads']} reads), {r['chosen']} packages chosen"
        )
    ok = worst <= TARGET_S and not failed
    print(
        f"worst median {worst:.3f} s over {len(rows)} resolved seeds, {len(failed)} failed {failed or ''}; "
        f"target <= {TARGET_S:g} s: {'ok' if ok else 'MISSED'}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"resolver-{args.shape}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "failed": failed}, indent=2
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
