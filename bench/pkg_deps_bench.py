"""Issue 11's dependency benchmark: one Configuration with 30 dependencies, cold cache.

    .venv/bin/python bench/pkg_deps_bench.py [--reps 5] [--deps 30] [--latency MS]

Starts Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP) and pushes, built by xplane's own
build, ``--deps`` packages (two thirds Providers with one CRD each, one third Functions) and one
Configuration (an XRD and a Composition) whose ``dependsOn`` names all of them. Then, every run
with a fresh state directory **and an empty image cache**, as whole ``xp`` processes:

- *graph*: ``xp apply -f configuration.yaml``: the Lock resolves the whole graph and installs the
  ``--deps`` dependencies in one plan (tags listed and packages fetched concurrently);
- *sequential*: ``--deps + 1`` separate ``xp apply`` runs, one package object each (the
  dependencies first, then the Configuration), one after another.

Both end with every package installed and healthy (checked after each run, untimed). Runs are
interleaved (alternating order) so load that comes and goes hits both. Target: graph <= 0.4x
sequential. ``--latency MS`` puts the test suite's fault-injecting proxy in front of the registry,
delaying every request by MS milliseconds (a registry across a network rather than on the same
host; not part of the target). Prints medians with [min-max] and writes ``bench/out/pkg-deps-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pkg.support import composition, crd, push, write_package, xrd  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

from xplane.oci import to_dns_label  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from pkgbench import XP, fmt, healthy, manifest, print_table, timed  # noqa: E402

TARGET = 0.4


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--deps", type=int, default=30)
    p.add_argument("--latency", type=float, default=0.0, help="ms added to every registry request")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args()
    n = args.deps
    with tempfile.TemporaryDirectory(prefix="xplane-deps-bench-") as tmp_name:
        tmp = Path(tmp_name)
        registry = RegistryServer(tmp / "registry").start()
        proxy = FaultProxy(registry.host).start()
        if args.latency:
            proxy.delay("", args.latency / 1000, times=None)
        host = proxy.host if args.latency else registry.host  # where the packages are installed from
        try:
            config = tmp / "config.yaml"
            config.write_text(
                json.dumps({"registries": {h: {"plainHTTP": True} for h in (registry.host, proxy.host)}})
            )
            manifests = tmp / "manifests"
            manifests.mkdir()
            deps: list[dict[str, str]] = []
            want = {"providers": 0, "functions": 0, "configurations": 1}
            for i in range(n):
                kind = "Function" if i % 3 == 2 else "Provider"
                repo = f"bench/{kind.lower()}-{i:02d}"
                objs = [crd(f"Bench{i:02d}", f"p{i:02d}.example.org")] if kind == "Provider" else []
                root = write_package(tmp / f"dep{i:02d}", kind, f"{kind.lower()}-{i:02d}", objs)
                push(root, registry.ref(repo, "v1.0.0"), tmp)
                source = f"{host}/{repo}"
                deps.append(
                    {
                        "apiVersion": "pkg.crossplane.io/v1",
                        "kind": kind,
                        "package": source,
                        "version": ">=v1.0.0",
                    }
                )
                # the name the Lock gives a dependency, so both cases end with the same objects
                doc = manifest(kind, to_dns_label(repo), f"{source}:v1.0.0")
                (manifests / f"dep{i:02d}.json").write_text(json.dumps(doc))
                want[kind.lower() + "s"] += 1
            root = write_package(
                tmp / "configuration",
                "Configuration",
                "platform",
                [xrd("XPlatform"), composition("xplatform-default", "XPlatform")],
                depends_on=deps,
            )
            push(root, registry.ref("bench/platform", "v1.0.0"), tmp)
            top = manifests / "zz-configuration.json"
            top.write_text(json.dumps(manifest("Configuration", "platform", f"{host}/bench/platform:v1.0.0")))
            ordered = sorted(manifests.iterdir())  # the dependencies, then the Configuration
            keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH")
            base = {k: v for k, v in os.environ.items() if k in keep}
            base.update(
                HOME=str(tmp / "home"), XPLANE_CONFIG=str(config), PYTHONPYCACHEPREFIX=str(tmp / "pycache")
            )

            def fresh(label: str) -> dict[str, str]:
                run = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=tmp))
                return {**base, "XPLANE_HOME": str(run / "state"), "XPLANE_CACHE_DIR": str(run / "cache")}

            warm = fresh("warmup")  # byte-compiles xplane once, warms the registry's own disk reads
            timed([*XP, "apply", "-f", str(top)], warm)
            healthy(warm, want)

            graph: list[float] = []
            sequential: list[float] = []
            for rep in range(args.reps):
                order = ["graph", "sequential"] if rep % 2 == 0 else ["sequential", "graph"]
                for case in order:
                    env = fresh(case)
                    if case == "graph":
                        graph.append(timed([*XP, "apply", "-f", str(top)], env))
                    else:
                        sequential.append(sum(timed([*XP, "apply", "-f", str(f)], env) for f in ordered))
                    healthy(env, want)
                print(
                    f"rep {rep + 1}/{args.reps}: graph {graph[-1]:.2f} s, sequential {sequential[-1]:.2f} s"
                )
        finally:
            proxy.stop()
            registry.stop()
    ratio = statistics.median(graph) / statistics.median(sequential)
    paired = statistics.median(g / s for g, s in zip(graph, sequential, strict=True))
    load = os.getloadavg()
    rows = [
        (f"one `xp apply` of the Configuration ({n} deps)", fmt(graph), "-", "-"),
        ("(added latency per registry request)", f"{args.latency:.0f} ms", "-", "-"),
        (f"{n + 1} separate `xp apply` runs (total)", fmt(sequential), "-", "-"),
        ("graph / sequential", f"{ratio:.2f}x (paired {paired:.2f}x)", f"<= {TARGET}x", ratio <= TARGET),
    ]
    print_table(rows, load)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"pkg-deps-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "deps": n,
                "latency_ms": args.latency,
                "graph": graph,
                "sequential": sequential,
                "ratio": ratio,
                "paired": paired,
                "target": TARGET,
                "load": load,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
