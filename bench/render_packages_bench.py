"""``xp render`` with sandboxed package functions: cold start-up and warm renders (issue 12).

Usage (from the repository root, with the dev venv; needs bubblewrap and docker-registry):

    .venv/bin/python bench/render_packages_bench.py [--xrs 4] [--functions 3] [--reps 5] [--out bench/out]

Builds the real function image of the package-runtime tests (tests/support/fnimage.py: an
SDK-written function on a copied interpreter, cached by content), starts Debian's
``docker-registry`` on 127.0.0.1 (plain HTTP), and builds and pushes ``--functions`` Function
packages from it with ``xp xpkg build --embed-runtime-image-tarball`` / ``xp xpkg push``: one
runtime image, but each package has its own metadata layer and so its own config digest, rootfs and
sandbox. ``--xrs`` XR/Composition pairs have pipelines of 2-3 steps over those functions. Measures:

* **cold** (empty cache): in process, the phases one after the other: pull every package, unpack
  every rootfs, then one render of the first XR (the engine starts each step's sandbox when the step
  comes, so ``render`` includes the start-ups; ``start`` is the same start-ups timed apart, on a
  second runner whose sandboxes are then used for a second render: ``call``). And ``xp render`` of
  the first XR as a whole process with an empty ``--cache-dir`` (the total a user sees);
* **warm, new process**: ``xp render`` of every XR as a whole process, cache and rootfs present
  (what each later ``xp render`` costs: Python start-up, pull policy check, a sandbox per function);
* **warm, kept process**: one ``PackageRunner(keep_warm=True)`` (what ``xp render --watch`` holds)
  rendering every XR again and again; the first pass starts the sandboxes, later ones reuse them.

Sandboxes get a network namespace of their own (the default) and are reached through the relay;
both warm measures are repeated, interleaved, with ``render.xplane.io/network: Host`` (the host's
network, no relay) to show what the isolation costs.

Medians of ``--reps`` (cold: a fresh cache each rep). Target: later (warm) renders under 2 s each.
Prints a table and writes ``<out>/render-packages-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fnimage import build_function_image  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

WARM_TARGET_S = 2.0
TIMEOUT_S = 60.0
XP = str(Path(sys.executable).with_name("xp"))


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def publish(tmp: Path, registry: RegistryServer, tarball: Path, n: int, env: dict[str, str]) -> list[str]:
    """Build and push ``n`` Function packages embedding the runtime image; their references."""
    refs = []
    for i in range(n):
        pkg = tmp / f"pkg{i}"
        pkg.mkdir()
        (pkg / "crossplane.yaml").write_text(
            f"apiVersion: meta.pkg.crossplane.io/v1beta1\nkind: Function\nmetadata:\n  name: function-pkg-{i}\n"
        )
        xpkg = tmp / f"fn{i}.xpkg"
        _run([XP, "xpkg", "build", "-f", str(pkg), "--embed-runtime-image-tarball", str(tarball),
              "-o", str(xpkg)], env)  # fmt: skip
        ref = registry.ref(f"bench/function-pkg-{i}", "v0.1.0")
        _run([XP, "xpkg", "push", ref, "-f", str(xpkg), "--plain-http"], env)
        refs.append(ref)
    return refs


def write_suite(root: Path, refs: list[str], xrs: int, network: str = "") -> list[Path]:
    """One case directory per XR (xr.yaml, composition.yaml, functions.yaml); pipelines of 2-3 steps.

    ``network`` sets every Function's ``render.xplane.io/network`` annotation (default: none).
    """
    names = [f"function-pkg-{i}" for i in range(len(refs))]
    ann = f"  annotations:\n    render.xplane.io/network: {network}\n" if network else ""
    fns_yaml = "".join(
        f"---\napiVersion: pkg.crossplane.io/v1\nkind: Function\nmetadata:\n  name: {n}\n{ann}"
        f"spec:\n  package: {r}\n"
        for n, r in zip(names, refs, strict=True)
    )
    root.mkdir(parents=True, exist_ok=True)
    cases = []
    for x in range(xrs):
        d = root / f"xr{x}"
        d.mkdir()
        steps = min(len(names), 3 - x % 2)
        pipeline = "".join(
            f"  - step: s{i}\n    functionRef:\n      name: {names[(x + i) % len(names)]}\n"
            for i in range(steps)
        )
        (d / "xr.yaml").write_text(
            f"apiVersion: example.org/v1alpha1\nkind: XBucket\nmetadata:\n  name: bucket-{x}\n"
            f"spec:\n  region: eu-west-{x % 3}\n"
        )
        (d / "composition.yaml").write_text(
            "apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata:\n  name: xbuckets\n"
            "spec:\n  compositeTypeRef:\n    apiVersion: example.org/v1alpha1\n    kind: XBucket\n"
            f"  mode: Pipeline\n  pipeline:\n{pipeline}"
        )
        (d / "functions.yaml").write_text(fns_yaml)
        cases.append(d)
    return cases


def client_factory(env: dict[str, str]) -> Callable[[], Any]:
    from xplane.oci import RegistryClient, RegistryConfig, RegistryOverrides, default_keychain

    def make() -> Any:
        config = RegistryConfig.load(env=env, overrides=RegistryOverrides(plain_http=True))
        return RegistryClient(keychain=default_keychain(env=env), config=config)

    return make


def inputs(d: Path) -> Any:
    from xplane.compose import RenderInputs, load_composition, load_functions, load_xr

    return RenderInputs(
        xr=load_xr(d / "xr.yaml"),
        composition=load_composition(d / "composition.yaml"),
        functions=load_functions(d / "functions.yaml"),
    )


async def render_case(d: Path, runner: Any, *, start_first: bool = False) -> tuple[float, float]:
    """One render of case ``d`` as ``xp render`` does (load, open runtimes, render, YAML).

    Returns (seconds spent starting the sandboxes before the render when ``start_first``, seconds
    of the rest).
    """
    from xplane.compose import dump_render, open_runtimes, render_async

    t0 = time.perf_counter()
    i = inputs(d)
    rts = await asyncio.to_thread(open_runtimes, list(i.functions), packages=runner)
    started = 0.0
    try:
        if start_first:
            t = time.perf_counter()
            for rt in rts.values():
                await rt.start(timeout=TIMEOUT_S)
            started = time.perf_counter() - t
        out = await render_async(i, runtimes=rts, timeout=TIMEOUT_S)
        text = dump_render(out.documents(include_results=True))
        if "kind: Bucket" not in text:
            raise SystemExit(f"unexpected render output:\n{text}")
    finally:
        await asyncio.gather(*(rt.close() for rt in rts.values()), return_exceptions=True)
    return started, time.perf_counter() - t0 - started


def cold_phases(refs: list[str], case: Path, cache: Path, env: dict[str, str]) -> dict[str, float]:
    """Pull, unpack, render (starting the sandboxes); then start and call apart, on a second runner."""
    from xplane.compose import PackageRunner, PackageSpec
    from xplane.oci import ImageCache, pull

    factory = client_factory(env)
    t = time.perf_counter()
    for ref in refs:
        pull(ref, cache=ImageCache(cache), client_factory=factory)
    pulled = time.perf_counter() - t
    with PackageRunner(cache_root=cache, client_factory=factory) as runner:
        t = time.perf_counter()
        for i, ref in enumerate(refs):
            if not runner.prepare(PackageSpec(f"function-pkg-{i}", ref)).unpacked:
                raise SystemExit("the cold cache already held a rootfs")
        unpacked = time.perf_counter() - t
        _, rendered = asyncio.run(render_case(case, runner))
    with PackageRunner(cache_root=cache, client_factory=factory) as runner:
        started, called = asyncio.run(render_case(case, runner, start_first=True))
    return {
        "pull_s": pulled,
        "unpack_s": unpacked,
        "render_s": rendered,
        "start_s": started,
        "call_s": called,
    }


def cli_render(case: Path, cache: Path, env: dict[str, str]) -> float:
    """``xp render`` of ``case`` as a whole process; wall seconds."""
    t = time.perf_counter()
    _run([XP, "render", "xr.yaml", "composition.yaml", "functions.yaml", "-r", "--plain-http",
          "--cache-dir", str(cache)], env, cwd=case)  # fmt: skip
    return time.perf_counter() - t


def warm_kept(cases: list[Path], cache: Path, env: dict[str, str], reps: int) -> dict[str, Any]:
    """One keep-warm runner rendering every case ``reps + 1`` times; the first pass starts the sandboxes."""
    from xplane.compose import PackageRunner

    passes: list[list[float]] = []
    with PackageRunner(cache_root=cache, client_factory=client_factory(env), keep_warm=True) as runner:
        for _ in range(reps + 1):
            passes.append([sum(asyncio.run(render_case(d, runner))) for d in cases])
    later = [s for p in passes[1:] for s in p]
    return {
        "first_pass_s": sum(passes[0]),
        "first_pass_max_render_s": max(passes[0]),
        "pass_median_s": statistics.median(sum(p) for p in passes[1:]),
        "render_median_s": statistics.median(later),
        "render_max_s": max(later),
    }


def row(label: str, value: str) -> None:
    print(f"  {label:38s} {value}")


def ms(samples: list[float]) -> str:
    return (
        f"{statistics.median(samples) * 1000:,.0f} ms [{min(samples) * 1000:,.0f}-{max(samples) * 1000:,.0f}]"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xrs", type=int, default=4)
    ap.add_argument("--functions", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    a = ap.parse_args()
    if not shutil.which("bwrap") and not os.path.exists("/usr/bin/bwrap"):
        print("bubblewrap (bwrap) is not installed", file=sys.stderr)
        return 2
    t = time.perf_counter()
    image = build_function_image(a.out / "fnimage-cache")
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="render-packages-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "docker").mkdir()
        env = {
            **os.environ,
            "DOCKER_CONFIG": str(tmp / "docker"),
            "XPLANE_CACHE_DIR": str(tmp / "build-cache"),
        }
        registry = RegistryServer(tmp / "registry").start()
        try:
            refs = publish(tmp, registry, image.tarball, a.functions, env)
            cases = write_suite(tmp, refs, a.xrs)
            per_case = [d.joinpath("composition.yaml").read_text().count("- step:") for d in cases]
            cold = [cold_phases(refs, cases[0], tmp / f"cold{r}", env) for r in range(a.reps)]
            cold_cli = [cli_render(cases[0], tmp / f"cold-cli{r}", env) for r in range(a.reps)]
            cache = tmp / "cold-cli0"  # warm from here on: packages and rootfs present
            host_cases = write_suite(tmp / "host-network", refs, a.xrs, network="Host")
            new_proc, new_proc_host = [], []
            for _ in range(a.reps):  # interleaved: both networks see the same machine
                new_proc.append([cli_render(d, cache, env) for d in cases])
                new_proc_host.append([cli_render(d, cache, env) for d in host_cases])
            kept = warm_kept(cases, cache, env, a.reps)
            kept_host = warm_kept(host_cases, cache, env, a.reps)
        finally:
            registry.stop()
    phases = {k: statistics.median(c[k] for c in cold) for k in cold[0]}
    per_render = [s for p in new_proc for s in p]
    per_render_host = [s for p in new_proc_host for s in p]
    result = {
        "xrs": a.xrs,
        "functions": a.functions,
        "steps": per_case,
        "image_build_s": build_s,
        "image_bytes": image.tarball.stat().st_size,
        "cold_phases_median_s": phases,
        "cold_cli_s": cold_cli,
        "warm_new_process_render_s": per_render,
        "warm_new_process_suite_s": [sum(p) for p in new_proc],
        "warm_kept": kept,
        "host_network_warm_new_process_render_s": per_render_host,
        "host_network_warm_kept": kept_host,
        "warm_target_s": WARM_TARGET_S,
    }
    shape = "/".join(map(str, per_case))
    print(
        f"suite: {a.xrs} XRs, {a.functions} package functions, {sum(per_case)} steps ({shape}); reps {a.reps}"
    )
    print(f"  function image: {image.tarball.stat().st_size / 1e6:.1f} MB, built/cached in {build_s:.1f} s")
    print(f"cold (empty cache), first XR ({per_case[0]} steps):")
    for k, what in [
        ("pull_s", f"pull {a.functions} packages"),
        ("unpack_s", f"unpack {a.functions} rootfs"),
        ("render_s", "render (starts its sandboxes together)"),
        ("start_s", "  apart: start the sandboxes one by one"),
        ("call_s", "  apart: the render once started"),
    ]:
        row(what, f"{phases[k] * 1000:,.0f} ms")
    row("`xp render` as a process, total", ms(cold_cli))
    print("warm, new process (`xp render` again, cache and rootfs present):")
    row("one XR", ms(per_render))
    row(f"the {a.xrs} XRs, one process each", ms(result["warm_new_process_suite_s"]))
    print("warm, kept process (keep_warm, as --watch):")
    row("first pass (starts the sandboxes)", f"{kept['first_pass_s'] * 1000:,.0f} ms")
    row(f"later pass of {a.xrs} XRs", f"{kept['pass_median_s'] * 1000:,.1f} ms")
    row(
        "later render of one XR",
        f"{kept['render_median_s'] * 1000:,.1f} ms (max {kept['render_max_s'] * 1000:,.1f})",
    )
    print("the same with render.xplane.io/network: Host (no network namespace, no relay), same run:")
    row("warm, new process, one XR", ms(per_render_host))
    row(
        "warm, kept process, later render of one XR",
        f"{kept_host['render_median_s'] * 1000:,.1f} ms (max {kept_host['render_max_s'] * 1000:,.1f})",
    )
    worst = max(statistics.median(per_render), kept["render_median_s"])
    ok = worst < WARM_TARGET_S
    print(
        f"later renders (warm) under {WARM_TARGET_S} s: {'yes' if ok else 'NO'} (worst median {worst:.3f} s)"
    )
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"render-packages-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
