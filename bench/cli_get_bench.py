"""``xp get pkg`` and ``xp get pkgrev -o wide`` as whole processes on a package-manager-sized store.

Usage (from the repository root, with the dev venv):

    .venv/bin/python bench/cli_get_bench.py [--packages 1000] [--revisions 5000] [--reps 7] [--out bench/out]

Builds the store with ``bench/store_bench.py``'s generator (1,000 packages, 5,000 revisions shaped
like the package manager's), then times, interleaved, whole processes of:

* ``python -c pass``: the interpreter's start-up, the baseline;
* ``xp --help``: click and the command table, no store;
* ``xp get pkg``: the three package kinds' tables (issue #10 target: 0.3 s);
* ``xp get pkgrev -o wide``: the three revision kinds' tables (target: 0.3 s);

each exactly as the ``xp`` console script runs (``from xplane.cli.main import main``), with xplane
byte-compiled into a private pycache first, as an installed xplane is. Also checks what ``get``
imports: never httpx, grpc or yaml. Prints a table and writes ``<out>/cli-get-<time>.json``.
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
sys.path.insert(0, str(ROOT / "bench"))

from store_bench import PY, build, child_env, timed  # noqa: E402

TARGET_S = 0.3
XP = "import sys; from xplane.cli.main import main; sys.argv[0] = 'xp'; main()"
IMPORTS = (
    "import sys; from xplane.cli.main import main; sys.argv[0] = 'xp'\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "print(' '.join(m for m in ('httpx', 'grpc', 'yaml', 'rich') if m in sys.modules), file=sys.stderr)"
)


def heavy_imports(env: dict[str, str], home: Path) -> dict[str, str]:
    """What each ``get`` loads of the heavy libraries (should be nothing)."""
    out = {}
    for args in (["get", "pkg"], ["get", "pkgrev", "-o", "wide"]):
        r = subprocess.run(
            [PY, "-c", IMPORTS, *args, "--home", str(home)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        out[" ".join(args)] = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=1000)
    ap.add_argument("--revisions", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    with tempfile.TemporaryDirectory(prefix="cli-get-bench-") as tmp:
        work = Path(tmp)
        home = work / "home"
        seconds = build(home / "state.db", args.packages, args.revisions)
        print(f"built {args.packages} packages + {args.revisions} revisions in {seconds:.1f} s")
        env = child_env(work)
        env.pop("XPLANE_HOME", None)
        subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "src" / "xplane")], check=True, env=env)
        cases = {
            "python -c pass": [PY, "-c", "pass"],
            "xp --help": [PY, "-c", XP, "--help"],
            "xp get pkg": [PY, "-c", XP, "get", "pkg", "--home", str(home)],
            "xp get pkgrev -o wide": [PY, "-c", XP, "get", "pkgrev", "-o", "wide", "--home", str(home)],
        }
        lines = {}
        for name, cmd in cases.items():  # untimed warm-up: page cache, byte-compilation
            _, out = timed(cmd, env)
            lines[name] = len(out.splitlines())
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for rep in range(args.reps):
            order = list(cases) if rep % 2 == 0 else list(reversed(cases))
            for name in order:
                samples[name].append(timed(cases[name], env)[0])
        loaded = heavy_imports(env, home)
        load = os.getloadavg()[0]
    base = statistics.median(samples["python -c pass"])
    print(f"\nwhole processes, median of {args.reps} [min-max], load {load:.2f}:")
    print(f"{'case':24} {'median':>9} {'min-max':>17} {'minus baseline':>15} {'lines':>7}")
    for name, s in samples.items():
        med = statistics.median(s)
        extra = f"{(med - base) * 1000:12.0f} ms" if name != "python -c pass" else f"{'-':>15}"
        print(
            f"{name:24} {med * 1000:6.0f} ms {min(s) * 1000:7.0f}-{max(s) * 1000:.0f} ms {extra} {lines[name]:7}"
        )
    ok = True
    for name in ("xp get pkg", "xp get pkgrev -o wide"):
        med = statistics.median(samples[name])
        ok &= med <= TARGET_S
        verdict = "ok" if med <= TARGET_S else "OVER"
        print(
            f"{name}: {med * 1000:.0f} ms, {med / base:.1f}x python -c pass (target {TARGET_S * 1000:.0f} ms: {verdict})"
        )
    for name, mods in loaded.items():
        print(f"heavy modules loaded by 'xp {name}': {mods or 'none'}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"cli-get-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "packages": args.packages,
                "revisions": args.revisions,
                "load": load,
                "process_s": samples,
                "heavy_imports": loaded,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
