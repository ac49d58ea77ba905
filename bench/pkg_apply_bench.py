"""Issue 10's apply benchmark: installing cached packages into the embedded control plane.

    .venv/bin/python bench/pkg_apply_bench.py [--reps 5] [--packages 30]

Starts Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP), pushes ``--packages`` Configurations
built by xplane (one XRD and one Composition each), and pulls them once into a shared image cache.
Then, every run into a fresh state directory, as whole ``xp`` processes:

- ``xp apply`` of one Configuration whose package is cached (target: <= 0.5 s), beside ``python -c
  pass`` for the interpreter's own start-up;
- the ``--packages`` Configurations in one ``xp apply`` against ``--packages`` separate ``xp apply``
  runs (target: <= 0.5x), interleaved so load that comes and goes hits both.

Prints medians with [min-max] and writes ``bench/out/pkg-apply-<time>.json``.
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

from tests.pkg.support import composition, push, write_package, xrd  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from pkgbench import PY, XP, fmt, healthy, manifest, print_table, timed  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--packages", type=int, default=30)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args()
    n = args.packages
    with tempfile.TemporaryDirectory(prefix="xplane-pkg-bench-") as tmp_name:
        tmp = Path(tmp_name)
        registry = RegistryServer(tmp / "registry").start()
        try:
            config = tmp / "config.yaml"
            config.write_text(json.dumps({"registries": {registry.host: {"plainHTTP": True}}}))
            manifests = tmp / "manifests"
            manifests.mkdir()
            docs = []
            for i in range(n):
                kind = f"XBench{i:02d}"
                root = write_package(
                    tmp / f"pkg{i:02d}",
                    "Configuration",
                    f"bench-{i:02d}",
                    [xrd(kind), composition(f"{kind.lower()}-default", kind)],
                )
                ref = registry.ref(f"bench/pkg{i:02d}", "v1.0.0")
                push(root, ref, tmp)
                doc = manifest("Configuration", f"bench-{i:02d}", ref)
                (manifests / f"pkg{i:02d}.json").write_text(json.dumps(doc))
                docs.append(doc)
            everything = tmp / "all.yaml"
            everything.write_text("\n---\n".join(json.dumps(d) for d in docs))
            keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH")
            base = {k: v for k, v in os.environ.items() if k in keep}
            base.update(
                HOME=str(tmp / "home"),
                XPLANE_CACHE_DIR=str(tmp / "cache"),
                XPLANE_CONFIG=str(config),
                PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
            )

            def fresh(label: str) -> dict[str, str]:
                state = tempfile.mkdtemp(prefix=f"{label}-", dir=tmp)
                return {**base, "XPLANE_HOME": state}

            warm = fresh("warm")  # pulls every package into the shared cache (and byte-compiles)
            timed([*XP, "apply", "-f", str(everything)], warm)
            healthy(warm, {"configurations": n})

            one, interpreter, together, separate = [], [], [], []
            for rep in range(args.reps):
                interpreter.append(timed([PY, "-c", "pass"], base))
                one.append(timed([*XP, "apply", "-f", str(manifests / "pkg00.json")], fresh("one")))
                order = ["together", "separate"] if rep % 2 == 0 else ["separate", "together"]
                for case in order:
                    env = fresh(case)
                    if case == "together":
                        together.append(timed([*XP, "apply", "-f", str(everything)], env))
                    else:
                        separate.append(
                            sum(timed([*XP, "apply", "-f", str(f)], env) for f in sorted(manifests.iterdir()))
                        )
                    healthy(env, {"configurations": n})
        finally:
            registry.stop()
    ratio = statistics.median(together) / statistics.median(separate)
    paired = statistics.median(t / s for t, s in zip(together, separate, strict=True))
    load = os.getloadavg()
    rows = [
        ("`python -c pass` (the interpreter alone)", fmt(interpreter), "-", "-"),
        ("`xp apply` of one cached Configuration", fmt(one), "<= 0.5 s", statistics.median(one) <= 0.5),
        (f"{n} Configurations in one `xp apply`", fmt(together), "-", "-"),
        (f"{n} separate `xp apply` runs (total)", fmt(separate), "-", "-"),
        ("one apply / separate applies", f"{ratio:.2f}x (paired {paired:.2f}x)", "<= 0.5x", ratio <= 0.5),
    ]
    print_table(rows, load)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"pkg-apply-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "packages": n,
                "interpreter": interpreter,
                "one": one,
                "together": together,
                "separate": separate,
                "ratio": ratio,
                "paired": paired,
                "load": load,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0 if statistics.median(one) <= 0.5 and ratio <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
