"""The embedded store at package-manager scale: open + list in a fresh process (issue #10's `xp get` budget).

Usage (from the repository root, with the dev venv):

    .venv/bin/python bench/store_bench.py [--packages 1000] [--revisions 5000] [--reps 7] [--out bench/out]

Builds a state database of ``--packages`` packages (60% Configurations, 30% Providers, 10%
Functions) and ``--revisions`` revisions spread over them, shaped like the package manager's
(labels, controller owner references, finalizers, conditions, objectRefs), then times whole
processes, interleaved so that load that comes and goes hits every case:

* ``python -c pass``: the interpreter's own start-up, the baseline;
* ``import xplane.store``: what the package costs to import (lazy: nothing until a name is used);
* ``get pkg``: open the store, list the three package kinds (kubectl's ``pkg`` category), and pull
  out what ``xp get pkg`` prints (INSTALLED, HEALTHY, PACKAGE, AGE) for every row;
* ``get pkgrev -o wide``: the same for the three revision kinds with the wide columns.

and, in this process, the parts: open, list of each kind. The issue's target is the whole
``xp get pkg`` process within 0.3 s; the store's share is the ``get pkg`` row minus the baseline
(the CLI adds click and the printer). xplane is byte-compiled into a private pycache first, as an
installed xplane is. Prints a table and writes ``<out>/store-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

_GET = r"""
import sys, time
t0 = time.perf_counter()
from xplane.store import Store
store = Store.open(sys.argv[1], create=False)
wide = sys.argv[2] == "pkgrev"
rows = []
def cond(o, t):
    for c in (o.get("status") or {}).get("conditions") or ():
        if c.get("type") == t:
            return c.get("status", "")
    return ""
for kind in store.resolve(sys.argv[2]):
    for o in store.list(kind):
        m, spec = o["metadata"], o.get("spec") or {}
        if wide:
            st = o.get("status") or {}
            rows.append((m["name"], cond(o, "RevisionHealthy"), cond(o, "RuntimeHealthy"), spec.get("image"),
                         spec.get("desiredState"), m["creationTimestamp"], spec.get("revision"),
                         st.get("foundDependencies"), st.get("installedDependencies")))
        else:
            rows.append((m["name"], cond(o, "Installed"), cond(o, "Healthy"), spec.get("package"), m["creationTimestamp"]))
store.close()
print(len(rows), round((time.perf_counter() - t0) * 1000, 1))
"""


def _conditions(*types: str) -> list[dict[str, object]]:
    return [
        {
            "type": t,
            "status": "True",
            "reason": "HealthyPackageRevision",
            "lastTransitionTime": "2026-08-01T10:00:00Z",
            "observedGeneration": 1,
        }
        for t in types
    ]


def build(path: Path, packages: int, revisions: int) -> float:
    """Create the store; returns seconds taken."""
    from xplane.store import Store

    kinds = [("Configuration", "ConfigurationRevision")] * 6 + [("Provider", "ProviderRevision")] * 3
    kinds += [("Function", "FunctionRevision")]
    t0 = time.perf_counter()
    with Store.open(path) as store:
        per = max(1, revisions // packages)
        for i in range(packages):
            kind, rev_kind = kinds[i % len(kinds)]
            name = f"{kind.lower()}-{i:05d}"
            source = f"xpkg.example.org/acme/{name}"
            with store.batch():
                pkg = store.create(
                    {
                        "apiVersion": "pkg.crossplane.io/v1",
                        "kind": kind,
                        "metadata": {"name": name},
                        "spec": {
                            "package": f"{source}:v1.{per}.0",
                            "packagePullPolicy": "IfNotPresent",
                            "revisionActivationPolicy": "Automatic",
                            "revisionHistoryLimit": per,
                            "ignoreCrossplaneConstraints": False,
                            "skipDependencyResolution": False,
                        },
                    }
                )
                pkg["status"] = {
                    "conditions": _conditions("Installed", "Healthy"),
                    "currentRevision": f"{name}-{per - 1:012x}",
                    "currentIdentifier": f"{source}:v1.{per}.0",
                    "resolvedPackage": f"{source}:v1.{per}.0",
                }
                store.update_status(pkg)
                for r in range(per):
                    rev = store.create(
                        {
                            "apiVersion": "pkg.crossplane.io/v1",
                            "kind": rev_kind,
                            "metadata": {
                                "name": f"{name}-{r:012x}",
                                "labels": {"pkg.crossplane.io/package": name},
                                "finalizers": ["revision.pkg.crossplane.io"],
                                "ownerReferences": [
                                    {
                                        "apiVersion": "pkg.crossplane.io/v1",
                                        "kind": kind,
                                        "name": name,
                                        "uid": pkg["metadata"]["uid"],
                                        "controller": True,
                                        "blockOwnerDeletion": True,
                                    }
                                ],
                            },
                            "spec": {
                                "desiredState": "Active" if r == per - 1 else "Inactive",
                                "image": f"{source}:v1.{r + 1}.0",
                                "revision": r + 1,
                                "packagePullPolicy": "IfNotPresent",
                                "ignoreCrossplaneConstraints": False,
                                "skipDependencyResolution": False,
                            },
                        }
                    )
                    types = ["RevisionHealthy"] + (
                        ["RuntimeHealthy"] if rev_kind != "ConfigurationRevision" else []
                    )
                    rev["status"] = {
                        "conditions": _conditions(*types),
                        "foundDependencies": 2,
                        "installedDependencies": 2,
                        "invalidDependencies": 0,
                        "resolvedImage": f"{source}:v1.{r + 1}.0",
                        "objectRefs": [
                            {
                                "apiVersion": "apiextensions.crossplane.io/v1",
                                "kind": "CompositeResourceDefinition",
                                "name": f"x{j}.{name}.example.org",
                                "uid": f"00000000-0000-4000-8000-{j:012d}",
                            }
                            for j in range(4)
                        ],
                    }
                    store.update_status(rev)
    return time.perf_counter() - t0


def child_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return time.perf_counter() - t0, out.strip()


def in_process(path: Path) -> dict[str, float]:
    """Median milliseconds of the parts, in this process (imports already paid)."""
    from xplane.store import Store

    parts: dict[str, list[float]] = {}
    for _ in range(5):
        t0 = time.perf_counter()
        store = Store.open(path, create=False)
        parts.setdefault("open", []).append(time.perf_counter() - t0)
        for name in (
            "configurations",
            "providers",
            "functions",
            "configurationrevisions",
            "providerrevisions",
        ):
            t0 = time.perf_counter()
            n = len(store.list(name))
            parts.setdefault(f"list {name} ({n})", []).append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        n = len(
            store.list("configurationrevisions", selector="pkg.crossplane.io/package=configuration-00010")
        )
        parts.setdefault(f"list revisions of one package ({n})", []).append(time.perf_counter() - t0)
        store.close()
    return {k: statistics.median(v) * 1000 for k, v in parts.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=1000)
    ap.add_argument("--revisions", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        work = Path(tmp)
        db = work / "home" / "state.db"
        seconds = build(db, args.packages, args.revisions)
        size = db.stat().st_size / 1e6
        print(
            f"built {args.packages} packages + {args.revisions} revisions in {seconds:.1f} s ({size:.1f} MB)"
        )
        env = child_env(work)
        subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "src" / "xplane")], check=True, env=env)
        cases = {
            "python -c pass": [PY, "-c", "pass"],
            "import xplane.store": [PY, "-c", "import xplane.store"],
            "get pkg": [PY, "-c", _GET, str(db), "pkg"],
            "get pkgrev -o wide": [PY, "-c", _GET, str(db), "pkgrev"],
        }
        for cmd in cases.values():  # untimed warm-up: page cache, byte-compilation
            timed(cmd, env)
        samples: dict[str, list[float]] = {k: [] for k in cases}
        inner: dict[str, list[float]] = {"get pkg": [], "get pkgrev -o wide": []}
        for rep in range(args.reps):
            order = list(cases) if rep % 2 == 0 else list(reversed(cases))
            for name in order:
                elapsed, out = timed(cases[name], env)
                samples[name].append(elapsed)
                if name in inner:
                    inner[name].append(float(out.split()[1]))
        parts = in_process(db)
        load = os.getloadavg()[0]
    base = statistics.median(samples["python -c pass"])
    print(f"\nwhole processes, median of {args.reps} [min-max], load {load:.2f}:")
    print(f"{'case':24} {'median':>9} {'min-max':>17} {'minus baseline':>15} {'in-process':>11}")
    for name, s in samples.items():
        med = statistics.median(s)
        extra = f"{(med - base) * 1000:12.0f} ms" if name != "python -c pass" else f"{'-':>15}"
        inside = f"{statistics.median(inner[name]):8.0f} ms" if name in inner else f"{'':>11}"
        print(f"{name:24} {med * 1000:6.0f} ms {min(s) * 1000:7.0f}-{max(s) * 1000:.0f} ms {extra} {inside}")
    target = statistics.median(samples["get pkg"])
    print(
        f"\nget pkg whole process: {target * 1000:.0f} ms (issue #10 budget for all of `xp get pkg`: 300 ms)"
    )
    print("\nin this process (median of 5):")
    for name, ms in parts.items():
        print(f"  {name:42} {ms:7.1f} ms")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"store-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "packages": args.packages,
                "revisions": args.revisions,
                "load": load,
                "process_s": samples,
                "inner_ms": inner,
                "parts_ms": parts,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
