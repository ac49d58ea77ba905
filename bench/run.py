"""xplane benchmarks. Not part of pytest: run ``.venv/bin/python bench/run.py pull`` (see bench/README.md).

Suite ``pull``: against a local docker-registry on 127.0.0.1 (plain HTTP), measure
  * cold pull into an empty cache of a 64 MiB one-layer image and of a 200-small-layer image,
    as a whole process, vs ``skopeo copy docker://... oci:...`` of the same image (ratio; target <= 1.2x);
  * warm IfNotPresent resolution in-process (target <= 5 ms);
  * the whole ``xp xpkg pull`` process on a cached tag (target <= 0.3 s).
Medians of several repetitions. Prints a table and writes JSON to bench/out/.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.images import canonical_json, layer_tar, sha256  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

PY = sys.executable
XP = [PY, "-m", "xplane.cli.main"]

# A whole-process cold pull with a client that speaks plain HTTP (the registry is local HTTP).
COLD_PULL = """
import sys
from dataclasses import dataclass
from pathlib import Path
from xplane.oci.cache import ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.pull import pull
@dataclass(frozen=True)
class S:
    host: str
    plain_http: bool = True
    insecure_skip_verify: bool = False
    ca_files: tuple = ()
    client_cert: None = None
    client_key: None = None
    source: str = "bench"
class C:
    def for_registry(self, host): return S(host)
class K:
    def lookup(self, registry, repository): return None
    searched = []
with RegistryClient(keychain=K(), config=C()) as c:
    pull(sys.argv[1], cache=ImageCache(Path(sys.argv[2])), client=c)
"""


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
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **(env or {})})


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
            xs, ss = [], []
            for i in range(reps):
                cache = work / f"cache-{name}-{i}"
                xs.append(timed(lambda ref=ref, cache=cache: run([PY, "-c", COLD_PULL, ref, str(cache)])))
                out = work / f"skopeo-{name}-{i}"
                ss.append(
                    timed(
                        lambda ref=ref, out=out: run(
                            ["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{out}:v1"]
                        )
                    )
                )
                shutil.rmtree(out, ignore_errors=True)
                if i < reps - 1:
                    shutil.rmtree(cache, ignore_errors=True)
            x, s = statistics.median(xs), statistics.median(ss)
            results["cases"][f"cold pull {name}"] = {
                "xplane_s": x,
                "skopeo_s": s,
                "ratio": x / s,
                "target": "<= 1.2x skopeo",
                "ok": x / s <= 1.2,
                "xplane_all": xs,
                "skopeo_all": ss,
            }
        # warm paths on the last cache of the small-layer image
        from xplane.oci.cache import ImageCache
        from xplane.oci.pull import PullPolicy, pull

        name = "200-small-layers"
        ref = reg.ref(f"bench/{name}", "v1")
        cache_dir = work / f"cache-{name}-{reps - 1}"
        cache = ImageCache(cache_dir)
        pull(ref, cache=cache, policy=PullPolicy.IF_NOT_PRESENT)  # warm-up
        warm = [timed(lambda: pull(ref, cache=cache, policy=PullPolicy.IF_NOT_PRESENT)) for _ in range(200)]
        results["cases"]["warm IfNotPresent in-process (200 layers)"] = {
            "xplane_s": statistics.median(warm),
            "target": "<= 0.005 s",
            "ok": statistics.median(warm) <= 0.005,
        }
        env = {"XPLANE_CACHE_DIR": str(cache_dir)}
        procs = [timed(lambda: run([*XP, "xpkg", "pull", ref], env)) for _ in range(max(reps, 5))]
        results["cases"]["warm `xp xpkg pull` process"] = {
            "xplane_s": statistics.median(procs),
            "target": "<= 0.3 s",
            "ok": statistics.median(procs) <= 0.3,
            "xplane_all": procs,
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    rows = [("CASE", "XPLANE", "SKOPEO", "RATIO", "TARGET", "OK")]
    for case, r in results["cases"].items():
        rows.append(
            (
                case,
                f"{r['xplane_s'] * 1000:.1f} ms",
                f"{r['skopeo_s'] * 1000:.1f} ms" if "skopeo_s" in r else "-",
                f"{r['ratio']:.2f}x" if "ratio" in r else "-",
                r["target"],
                "yes" if r["ok"] else "NO",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    buf = io.StringIO()
    for r in rows:
        buf.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    print(buf.getvalue(), end="")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=["pull"])
    p.add_argument("--reps", type=int, default=5, help="repetitions per case (median is reported)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="xplane-bench-") as tmp:
        results = suite_pull(args.reps, Path(tmp))
    results.update(
        {"suite": args.suite, "python": sys.version.split()[0], "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    )
    print_table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.suite}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
