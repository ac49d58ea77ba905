"""What the package-manager benchmarks share: the ``xp`` command, timing one process, checking
that packages came up healthy, and printing samples."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

PY = sys.executable
XP = [PY, "-m", "xplane.cli.main"]


def manifest(kind: str, name: str, ref: str) -> dict[str, Any]:
    """A package object (Configuration, Provider or Function) for ``xp apply``."""
    return {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"package": ref},
    }


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds one command took; exits the benchmark when it fails."""
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return elapsed


def healthy(env: dict[str, str], want: dict[str, int]) -> None:
    """Every package kind has ``want[kind]`` installed and healthy packages; exits otherwise."""
    for kind, n in want.items():
        r = subprocess.run([*XP, "get", kind, "-o", "json"], env=env, capture_output=True, text=True)
        items = json.loads(r.stdout)["items"] if r.stdout.strip() else []
        ok = [
            i
            for i in items
            if {c["type"]: c["status"] for c in (i.get("status") or {}).get("conditions") or ()}.get(
                "Healthy"
            )
            == "True"
        ]
        if len(ok) != n:
            raise SystemExit(f"expected {n} healthy {kind}, found {len(ok)}:\n{r.stdout[:3000]}\n{r.stderr}")


def print_table(rows: list[tuple[str, str, str, Any]], load: tuple[float, float, float]) -> None:
    """The CASE / RESULT / TARGET / OK table (OK: a bool, or "-" for a row without a target), then
    the load average taken at the end."""
    print(f"{'CASE':48} {'RESULT':34} {'TARGET':10} OK")
    for case, result, target, ok in rows:
        print(f"{case:48} {result:34} {target:10} {ok if ok == '-' else ('yes' if ok else 'NO')}")
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def fmt(samples: list[float]) -> str:
    """``median ms [min-max]``."""
    return f"{statistics.median(samples) * 1000:.0f} ms [{min(samples) * 1000:.0f}-{max(samples) * 1000:.0f}]"
