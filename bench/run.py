"""xplane benchmarks. Not part of pytest: run ``.venv/bin/python bench/run.py pull`` (see bench/README.md).

Suite ``pull``: against a local docker-registry on 127.0.0.1 (plain HTTP), measure
  * cold pull into an empty cache of a 64 MiB one-layer image and of a 200-small-layer image, against
    ``skopeo copy docker://... oci:...`` of the same image (target <= 1.2x skopeo), three ways:
      - ``xp xpkg pull``, the whole CLI process (the fair comparison with skopeo's whole process);
      - a whole ``python -c`` process calling the library's ``pull()`` (no CLI);
      - ``pull()`` in this process (no start-up; for reference, not a target);
    the whole-process runs are interleaved with skopeo's, in alternating order, with the cache and
    the skopeo destination emptied before every run;
  * warm IfNotPresent resolution in-process (target <= 5 ms);
  * the whole ``xp xpkg pull`` process on a cached tag (target <= 0.3 s).
Reports medians and the spread (min-max) of several repetitions; prints a table and writes JSON
with every sample to bench/out/.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.images import canonical_json, layer_tar, sha256  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

PY = sys.executable
_XP_SCRIPT = Path(PY).parent / "xp"
XP = [str(_XP_SCRIPT)] if _XP_SCRIPT.exists() else [PY, "-m", "xplane.cli.main"]

# Settings for a plain-HTTP registry and an empty keychain, for a library-level RegistryClient.
PLAIN_CLIENT = """
from xplane.oci.settings import RegistrySettings
class C:
    registries_conf = ()
    def for_registry(self, host): return RegistrySettings(host=host, plain_http=True, source="bench")
class K:
    def lookup(self, registry, repository): return None
    searched = []
"""

# A whole-process cold pull through the library (no CLI): python -c COLD_PULL REF CACHE_DIR
COLD_PULL = (
    """
import sys
from pathlib import Path
from xplane.oci.cache import ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.imagepull import pull
"""
    + PLAIN_CLIENT
    + """
with RegistryClient(keychain=K(), config=C()) as c:
    pull(sys.argv[1], cache=ImageCache(Path(sys.argv[2])), client=c)
"""
)


def write_layout(layout: Path, tag: str, layers: list[bytes]) -> str:
    """An OCI layout with one image of ``layers`` (already gzip'd blobs); returns the manifest digest."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    descs = []
    for data in layers:
        d = sha256(data)
        (blobs / d[7:]).write_bytes(data)
        descs.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(data), "digest": d}
        )
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]},
        }
    )
    (blobs / sha256(config)[7:]).write_bytes(config)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": len(config),
                "digest": sha256(config),
            },
            "layers": descs,
        }
    )
    md = sha256(manifest)
    (blobs / md[7:]).write_bytes(manifest)
    (layout / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "index.json").write_bytes(canonical_json(index))
    return md


def big_layer(size: int) -> bytes:
    return gzip.compress(layer_tar({"blob": os.urandom(size)}), compresslevel=1, mtime=0)


def small_layers(n: int) -> list[bytes]:
    return [gzip.compress(layer_tar({f"f{i}": os.urandom(2048)}), mtime=0) for i in range(n)]


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=env)


def child_env(work: Path, **extra: str) -> dict[str, str]:
    """The environment of the xplane processes.

    xplane's modules are byte-compiled once (into ``work/pycache``, by the untimed warm-up run) as
    ``pip install`` does; a ``PYTHONDONTWRITEBYTECODE=1`` development shell would otherwise
    recompile them from source in every process (~25 ms that no installed xplane pays).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env.update(extra)
    return env


def stats(samples: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "all_s": samples,
    }


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def cold_runners(ref: str, work: Path) -> dict[str, Callable[[Path], None]]:
    """Whole-process cold pulls of ``ref`` into an empty destination directory."""
    return {
        "xp xpkg pull": lambda dest: run(
            [*XP, "xpkg", "pull", "--plain-http", ref], child_env(work, XPLANE_CACHE_DIR=str(dest))
        ),
        "python -c pull()": lambda dest: run([PY, "-c", COLD_PULL, ref, str(dest)], child_env(work)),
        "skopeo copy": lambda dest: run(
            ["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest}:v1"]
        ),
    }


def measure_cold(ref: str, work: Path, reps: int) -> dict[str, list[float]]:
    """Interleave the runners, alternating their order each repetition; empty every destination."""
    runners = cold_runners(ref, work)
    for runner in runners.values():  # untimed warm-up: byte-compiles, warms the page cache
        runner(fresh(work / "warmup"))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(reps):
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        for name in order:
            dest = fresh(work / "dest")
            samples[name].append(timed(partial(runners[name], dest)))
    fresh(work / "dest")
    fresh(work / "warmup")
    return samples


def measure_in_process(ref: str, work: Path, reps: int) -> list[float]:
    """``pull()`` into an empty cache in this process (imports and start-up excluded)."""
    from xplane.oci.cache import ImageCache
    from xplane.oci.client import RegistryClient
    from xplane.oci.imagepull import pull

    ns: dict[str, Any] = {}
    exec(PLAIN_CLIENT, ns)
    out = []
    for _ in range(reps + 1):
        cache = ImageCache(fresh(work / "inproc"))
        t = time.perf_counter()
        with RegistryClient(keychain=ns["K"](), config=ns["C"]()) as client:
            pull(ref, cache=cache, client=client)
        out.append(time.perf_counter() - t)
    fresh(work / "inproc")
    return out[1:]  # the first run pays one-time imports inside httpx


def suite_pull(reps: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"reps": reps, "cases": {}}
    with RegistryServer(work / "registry") as reg:
        images = {
            "64MiB-1-layer": [big_layer(64 << 20)],
            "200-small-layers": small_layers(200),
        }
        for name, layers in images.items():
            layout = work / f"layout-{name}"
            write_layout(layout, "v1", layers)
            ref = reg.ref(f"bench/{name.lower()}", "v1")
            run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}"])
            shutil.rmtree(layout)
            samples = measure_cold(ref, work, reps)
            sk = stats(samples.pop("skopeo copy"))
            for how, xs in samples.items():
                x = stats(xs)
                ratio = x["median_s"] / sk["median_s"]
                results["cases"][f"cold {name}: {how}"] = {
                    "xplane": x,
                    "skopeo": sk,
                    "ratio": ratio,
                    # each xplane run over the skopeo run next to it: robust to load that drifts
                    "paired_ratio": statistics.median(a / b for a, b in zip(xs, sk["all_s"], strict=True)),
                    "target": "<= 1.2x skopeo",
                    "ok": ratio <= 1.2,
                }
            inproc = stats(measure_in_process(ref, work, reps))
            results["cases"][f"cold {name}: pull() in-process"] = {
                "xplane": inproc,
                "skopeo": sk,
                "ratio": inproc["median_s"] / sk["median_s"],
                "target": "(reference: no start-up)",
                "ok": None,
            }
        # warm paths on a cache of the small-layer image
        from xplane.oci.cache import ImageCache
        from xplane.oci.imagepull import PullPolicy, pull

        ref = reg.ref("bench/200-small-layers", "v1")
        cache_dir = fresh(work / "warm-cache")
        run([*XP, "xpkg", "pull", "--plain-http", ref], child_env(work, XPLANE_CACHE_DIR=str(cache_dir)))
        cache = ImageCache(cache_dir)
        pull(ref, cache=cache, policy=PullPolicy.IF_NOT_PRESENT)  # warm-up
        warm = stats(
            [timed(lambda: pull(ref, cache=cache, policy=PullPolicy.IF_NOT_PRESENT)) for _ in range(200)]
        )
        results["cases"]["warm IfNotPresent in-process (200 layers)"] = {
            "xplane": warm,
            "target": "<= 0.005 s",
            "ok": warm["median_s"] <= 0.005,
        }
        env = child_env(work, XPLANE_CACHE_DIR=str(cache_dir))
        procs = stats([timed(lambda: run([*XP, "xpkg", "pull", ref], env)) for _ in range(max(reps, 5))])
        results["cases"]["warm `xp xpkg pull` process"] = {
            "xplane": procs,
            "target": "<= 0.3 s",
            "ok": procs["median_s"] <= 0.3,
        }
    return results


def _ms(st: dict[str, Any]) -> str:
    return f"{st['median_s'] * 1000:.0f} [{st['min_s'] * 1000:.0f}-{st['max_s'] * 1000:.0f}]"


def print_table(results: dict[str, Any]) -> None:
    rows = [
        ("CASE", "XPLANE ms median [min-max]", "SKOPEO ms median [min-max]", "RATIO (paired)", "TARGET", "OK")
    ]
    for case, r in results["cases"].items():
        paired = f" ({r['paired_ratio']:.2f}x)" if "paired_ratio" in r else ""
        rows.append(
            (
                case,
                _ms(r["xplane"]),
                _ms(r["skopeo"]) if "skopeo" in r else "-",
                f"{r['ratio']:.2f}x{paired}" if "ratio" in r else "-",
                r["target"],
                "-" if r["ok"] is None else "yes" if r["ok"] else "NO",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    buf = io.StringIO()
    for r in rows:
        buf.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    print(buf.getvalue(), end="")


OTHER_SUITES = {
    "fn": ["bench/fn_bench.py"],  # issue #4: xfn vs the SDK's server, exec, wasm, RSS, start-up
    "parse": ["bench/xpkg_parse.py"],  # issue #3: parse, lint, build and parsed-cache ratios
    "soak": ["bench/soak.py"],  # issue #8: every attack for 10 minutes (not part of `all`)
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=["pull", *OTHER_SUITES, "all"])
    p.add_argument("--reps", type=int, default=7, help="repetitions per case (median is reported)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args()
    if args.suite != "pull":
        names = [n for n in OTHER_SUITES if n != "soak"] if args.suite == "all" else [args.suite]
        if args.suite == "all":
            names = ["pull", *names]
        rc = 0
        for name in names:
            print(f"\n=== {name} ===", flush=True)
            if name == "pull":
                cmd = [sys.executable, __file__, "pull", "--reps", str(args.reps), "--out", str(args.out)]
            else:
                cmd = [sys.executable, str(ROOT / OTHER_SUITES[name][0])]
            rc = max(rc, subprocess.run(cmd, cwd=ROOT).returncode)
        return rc
    with tempfile.TemporaryDirectory(prefix="xplane-bench-") as tmp:
        results = suite_pull(args.reps, Path(tmp))
    results.update(
        {
            "suite": args.suite,
            "python": sys.version.split()[0],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "loadavg": os.getloadavg(),
        }
    )
    print_table(results)
    print(
        "\nload average (1, 5, 15 min) at the end of the run: {:.2f} {:.2f} {:.2f}".format(
            *results["loadavg"]
        )
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.suite}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
