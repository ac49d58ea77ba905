"""Parse a provider-sized package.yaml: bare CSafeLoader vs xplane's Kubernetes-exact loader vs the cache.

Usage (from the repository root, with the dev venv):

    .venv/bin/python bench/xpkg_parse.py [--crds 900] [--file PACKAGE_YAML] [--out bench/out]

Without --file it generates ``shared/tools/gen_provider_pkg.py N`` (900 CRDs: ~87 MB). Each case runs
in its own Python process so peak memory (``ru_maxrss`` growth over the process after imports) is
the case's own. Cases, each followed by a cheap lint stand-in (count documents by kind):

* ``bare``  — ``list(yaml.load_all(data, Loader=yaml.CSafeLoader))`` (PyYAML's defaults, inexact);
* ``xplane`` — ``xplane.xpkg.yaml.parse_stream`` (Kubernetes' rules, positions, warnings);
* ``lint``  — ``xplane`` plus the real Provider lint (``lint_package``: one meta, meta checks, the
  per-object kind check on every document) — the issue's "parse + lint with the exact rules";
* ``build`` — ``xp xpkg build`` of a directory holding the file, ``.xpkg`` written (the issue's
  "build <= 1.4x the bare parse");
* ``store`` — ``xplane`` plus ``ParsedCache.put`` (what a first read through the cache costs);
* ``cache-meta`` — open the stored entry and read what ``xp xpkg inspect`` needs: find and decode
  the meta object (``PackageMeta.from_dict``) and count the objects by kind;
* ``cache-all`` — open the stored entry and decode every document (touching each ``doc`` in turn);
* ``cache-all-bulk`` — the same with ``DocumentStream.decode_all()`` (one pass, GC paused).

The cache ratios divide the ``xplane`` time (parse only, the stricter baseline) by each cache case.
Prints a table of ratios from one run and writes ``<out>/xpkg_parse-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT.parent / "shared" / "tools" / "gen_provider_pkg.py"

_CHILD = r"""
import json, resource, sys, time
from collections import Counter
mode, path, cache_root = sys.argv[1], sys.argv[2], sys.argv[3]
import yaml
from xplane.xpkg.meta import PackageMeta
from xplane.xpkg.objects import is_meta_package
from xplane.xpkg.parsedcache import ParsedCache
from xplane.xpkg.yaml import parse_stream
data = open(path, "rb").read()
digest = "sha256:" + "0" * 64
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if mode == "bare":
    docs = list(yaml.load_all(data, Loader=yaml.CSafeLoader))
    kinds = Counter(d.get("kind", "") for d in docs if isinstance(d, dict))
elif mode == "xplane":
    s = parse_stream(data, file="package.yaml")
    kinds = Counter(d.kind for d in s)
elif mode == "lint":
    from xplane.xpkg.lint import lint_package
    from xplane.xpkg.yaml import Located
    s = parse_stream(data, file="package.yaml")
    result = lint_package([Located(d.doc, d.file, d.line) for d in s])
    assert result.ok, result.findings[:3]
    kinds = Counter(d.kind for d in s)
elif mode == "build":
    import os, shutil
    from xplane.xpkg.build import BuildOptions, build_package
    root = os.path.join(cache_root + "-build", "pkg")
    os.makedirs(root, exist_ok=True)
    shutil.copyfile(path, os.path.join(root, "package.yaml"))
    t0 = time.perf_counter()  # the copy is set-up, not build
    built = build_package(BuildOptions(package_root=root, examples_root=None))
    built.write(os.path.join(cache_root + "-build", "out.xpkg"))
    kinds = Counter(d.get("kind", "") for d in [built.meta.to_dict()])
    kinds.update({"objects": built.object_count})
elif mode == "cache-meta":
    s = ParsedCache(cache_root).get(digest)
    assert s is not None, "cache miss"
    metas = [d for d in s if is_meta_package(d.api_version, d.kind)]
    meta = PackageMeta.from_dict(metas[0].doc)
    kinds = s.kinds()
    assert sum(d.loaded for d in s) == 1
elif mode == "cache-all":
    s = ParsedCache(cache_root).get(digest)
    assert s is not None, "cache miss"
    kinds = Counter(d.kind for d in s if d.doc is not None)
    assert all(d.loaded for d in s)
elif mode == "cache-all-bulk":
    s = ParsedCache(cache_root).get(digest)
    assert s is not None, "cache miss"
    s.decode_all()
    kinds = Counter(d.kind for d in s)
    assert all(d.loaded for d in s)
elif mode == "store":
    s = parse_stream(data, file="package.yaml")
    ParsedCache(cache_root).put(digest, s)
    kinds = Counter(d.kind for d in s)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kib": peak - base, "docs": sum(kinds.values()), "kinds": len(kinds)}))
"""


def _run(mode: str, path: Path, cache_root: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path), str(cache_root)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crds", type=int, default=900)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="xpkg-parse-") as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "package.yaml"
            subprocess.run([sys.executable, str(GEN), str(args.crds), str(path)], check=True)
        size = path.stat().st_size
        cache_root = Path(tmp) / "cache"
        modes = ("bare", "xplane", "lint", "build", "store", "cache-meta", "cache-all", "cache-all-bulk")
        results = {m: _run(m, path, cache_root) for m in modes}
        entry = sum(f.stat().st_size for f in cache_root.rglob("*") if f.is_file())
    bare, ours = results["bare"], results["xplane"]
    ratios = {
        "xplane_time_vs_bare": ours["seconds"] / bare["seconds"],
        "xplane_peak_vs_bare": ours["peak_kib"] / max(bare["peak_kib"], 1),
        "lint_time_vs_bare": results["lint"]["seconds"] / bare["seconds"],
        "lint_peak_vs_bare": results["lint"]["peak_kib"] / max(bare["peak_kib"], 1),
        "build_time_vs_bare": results["build"]["seconds"] / bare["seconds"],
        "cache_meta_speedup_vs_xplane": ours["seconds"] / results["cache-meta"]["seconds"],
        "cache_all_speedup_vs_xplane": ours["seconds"] / results["cache-all"]["seconds"],
        "cache_all_bulk_speedup_vs_xplane": ours["seconds"] / results["cache-all-bulk"]["seconds"],
    }
    print(
        f"package.yaml: {size / 1e6:.1f} MB, {ours['docs']:.0f} documents; cache entry {entry / 1e6:.1f} MB"
    )
    print(f"{'case':<14} {'seconds':>9} {'MB/s':>7} {'peak MiB':>9}")
    for name in modes:
        r = results[name]
        print(
            f"{name:<14} {r['seconds']:>9.3f} {size / 1e6 / r['seconds']:>7.1f} {r['peak_kib'] / 1024:>9.1f}"
        )
    print(f"xplane / bare time       {ratios['xplane_time_vs_bare']:.2f}x   (target <= 1.25x)")
    print(f"xplane / bare peak       {ratios['xplane_peak_vs_bare']:.2f}x   (target <= 2x)")
    print(f"lint / bare time         {ratios['lint_time_vs_bare']:.2f}x   (target <= 1.25x)")
    print(f"lint / bare peak         {ratios['lint_peak_vs_bare']:.2f}x   (target <= 2x)")
    print(f"build / bare time        {ratios['build_time_vs_bare']:.2f}x   (target <= 1.4x)")
    print(f"cache-meta speed-up      {ratios['cache_meta_speedup_vs_xplane']:.1f}x   (target >= 10x)")
    print(f"cache-all speed-up       {ratios['cache_all_speedup_vs_xplane']:.1f}x   (reported as is)")
    print(f"cache-all-bulk speed-up  {ratios['cache_all_bulk_speedup_vs_xplane']:.1f}x   (reported as is)")
    args.out.mkdir(parents=True, exist_ok=True)
    dest = args.out / f"xpkg_parse-{time.strftime('%Y%m%dT%H%M%S')}.json"
    report = {"bytes": size, "entry_bytes": entry, "results": results, "ratios": ratios}
    dest.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
