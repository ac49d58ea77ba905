"""``xp validate``'s library against a plain ``jsonschema`` loop over the same resources and schemas.

Usage (from the repository root, with the dev venv):

    .venv/bin/python bench/validate_bench.py [--crds 900] [--resources 1000] [--baseline-python PY] [--out bench/out]

Generates a provider-sized package (``shared/tools/gen_provider_pkg.py N``), reads it with xplane's
YAML loader, and builds ``--resources`` resources against random CRDs of it (about one in five
invalid: a wrong type, an unknown field). Every CRD also gets a CEL rule on ``spec`` on our side.

* ``xplane`` — ``SchemaSet`` from the CRDs, then ``validate_resources`` (defaulting, OpenAPI
  validation, unknown fields, CEL), in this process;
* ``jsonschema`` — the baseline: one ``Draft4Validator`` per GVK (compiled once), ``iter_errors``
  per resource; no unknown fields, no defaults, no CEL. ``jsonschema`` is not one of xplane's
  dependencies: it runs in ``--baseline-python`` (an interpreter that has it; default: this one),
  fed the same documents as JSON.

Also times the package read by fresh processes (parsing, then the parsed-package cache). Prints resources/s of both and the ratio from one run, and writes ``<out>/validate_bench-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT.parent / "shared" / "tools" / "gen_provider_pkg.py"

BASELINE = r"""
import json, sys, time
import jsonschema
data = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
validators = {}
for crd in data["crds"]:
    spec = crd["spec"]
    for v in spec["versions"]:
        key = (spec["group"], v["name"], spec["names"]["kind"])
        validators[key] = jsonschema.Draft4Validator(v["schema"]["openAPIV3Schema"])
t1 = time.perf_counter()
def run():
    invalid = 0
    for r in data["resources"]:
        group, version = r["apiVersion"].rsplit("/", 1)
        val = validators.get((group, version, r["kind"]))
        if val is not None and any(True for _ in val.iter_errors(r)):
            invalid += 1
    return invalid
invalid = run()
t2 = time.perf_counter()
passes = []
for _ in range(3):
    t = time.perf_counter()
    run()
    passes.append(time.perf_counter() - t)
passes.sort()
print(json.dumps({"compile": t1 - t0, "first": t2 - t1, "validate": passes[1], "invalid": invalid}))
"""


def sample(schema: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    """A value that fits ``schema`` (objects keep about half their properties)."""
    t = schema.get("type")
    if t == "object":
        props = schema.get("properties") or {}
        return {k: sample(s, rng, depth + 1) for k, s in props.items() if depth < 2 or rng.random() < 0.5}
    if t == "array":
        return [sample(schema.get("items") or {}, rng, depth + 1) for _ in range(rng.randint(0, 2))]
    if t == "integer":
        return rng.randint(0, 1000)
    if t == "number":
        return rng.random() * 100
    if t == "boolean":
        return rng.random() < 0.5
    return f"value-{rng.randint(0, 999)}"


def make_resources(crds: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        crd = rng.choice(crds)
        spec = crd["spec"]
        version = rng.choice(spec["versions"])
        schema = version["schema"]["openAPIV3Schema"]
        body = sample(schema["properties"]["spec"], rng)
        if i % 5 == 0:
            fp = body.setdefault("forProvider", {})
            fp["notAField"] = "x"
            for k, s in (
                schema["properties"]["spec"]["properties"]["forProvider"].get("properties") or {}
            ).items():
                if s.get("type") == "integer":
                    fp[k] = "not-an-integer"
                    break
        out.append(
            {
                "apiVersion": f"{spec['group']}/{version['name']}",
                "kind": spec["names"]["kind"],
                "metadata": {"name": f"r{i}"},
                "spec": body,
            }
        )
    return out


READ = r"""
import sys, time
t0 = time.perf_counter()
from xplane.validate import fetch_with_cache
objects, _ = fetch_with_cache().read(sys.argv[1])
print(time.perf_counter() - t0, len(objects))
"""


def package_reads(package_yaml: Path, tmp: Path) -> dict[str, float]:
    """The package as ``xp validate`` reads it: built with ``xp xpkg build``, loaded into a fresh
    image cache, then read by two fresh processes (the first parses, the second finds it in the
    parsed-package cache); seconds of each read, imports included."""
    root = tmp / "pkgroot"
    (root / "crds").mkdir(parents=True)
    text = package_yaml.read_text()
    meta, _, crds = text.lstrip("-\n").partition("\n---\n")
    (root / "crossplane.yaml").write_text(meta)
    (root / "crds" / "crds.yaml").write_text(crds)
    env = {**os.environ, "XPLANE_CACHE_DIR": str(tmp / "cache"), "PYTHONPATH": str(ROOT / "src")}
    xpkg = tmp / "provider.xpkg"
    ref = "xpkg.example.com/bench/provider-synthetic:v1.0.0"
    xp = [sys.executable, "-m", "xplane.cli.main", "xpkg"]
    subprocess.run([*xp, "build", "-f", str(root), "-o", str(xpkg)], check=True, env=env, capture_output=True)
    subprocess.run([*xp, "load", str(xpkg), "--ref", ref], check=True, env=env, capture_output=True)
    out: dict[str, float] = {}
    for name in ("first", "second"):
        run = subprocess.run(
            [sys.executable, "-c", READ, ref], check=True, env=env, capture_output=True, text=True
        )
        out[name] = float(run.stdout.split()[0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crds", type=int, default=900)
    ap.add_argument("--resources", type=int, default=1000)
    ap.add_argument("--baseline-python", default=sys.executable)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()

    from xplane.validate import Resource, SchemaSet, validate_resources
    from xplane.xpkg import load_all

    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "package.yaml"
        subprocess.run([sys.executable, str(GEN), str(args.crds), str(pkg)], check=True)
        docs = load_all(pkg.read_bytes(), file=str(pkg))
        crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
        rng = random.Random(7)
        resources = make_resources(crds, args.resources, rng)
        reads = package_reads(pkg, Path(tmp))
        payload = Path(tmp) / "bench.json"
        payload.write_text(json.dumps({"crds": crds, "resources": resources}))
        base_run = subprocess.run(
            [args.baseline_python, "-c", BASELINE, str(payload)], capture_output=True, text=True, check=False
        )

    for crd in crds:  # CEL on our side only
        for v in crd["spec"]["versions"]:
            spec = v["schema"]["openAPIV3Schema"]["properties"]["spec"]
            spec["x-kubernetes-validations"] = [
                {"rule": "!has(self.forProvider) || size(self.forProvider) < 100"}
            ]

    t0 = time.perf_counter()
    schemas = SchemaSet()
    for crd in crds:
        schemas.add(crd)
    t1 = time.perf_counter()
    report = validate_resources(schemas, [Resource(r) for r in resources])  # prepares nodes as reached
    t2 = time.perf_counter()
    passes = []
    for _ in range(3):  # every schema node prepared: the steady throughput
        t = time.perf_counter()
        validate_resources(schemas, [Resource(r) for r in resources])
        passes.append(time.perf_counter() - t)
    ours = {
        "index": t1 - t0,
        "first": t2 - t1,
        "validate": statistics.median(passes),
        "passes": passes,
        "invalid": report.invalid,
    }
    result: dict[str, Any] = {"crds": len(crds), "resources": len(resources), "xplane": ours, "reads": reads}
    print(
        f"package read by a fresh process: {reads['first']:.3f}s parsing it, then {reads['second']:.3f}s "
        f"from the parsed-package cache ({reads['first'] / reads['second']:.1f}x)"
    )
    print(f"{len(crds)} CRDs, {len(resources)} resources ({report.invalid} invalid by xplane)")
    print(
        f"xplane      index {ours['index']:.3f}s  first pass {ours['first']:.3f}s "
        f"({len(resources) / ours['first']:.0f} resources/s, schema nodes prepared as reached)  "
        f"then {ours['validate']:.3f}s ({len(resources) / ours['validate']:.0f} resources/s, median of 3)"
    )
    if base_run.returncode == 0:
        base = json.loads(base_run.stdout)
        result["jsonschema"] = base
        ratio = base["validate"] / ours["validate"]
        result["ratio"] = ratio
        print(
            f"jsonschema  compile {base['compile']:.3f}s  first pass {base['first']:.3f}s  then "
            f"{base['validate']:.3f}s ({len(resources) / base['validate']:.0f} resources/s, median of 3; "
            f"{base['invalid']} invalid)"
        )
        result["ratio_first"] = base["first"] / ours["first"]
        print(
            f"ratio (jsonschema time / xplane time): {ratio:.2f}x with the schemas prepared (target >= 2x); "
            f"first pass {result['ratio_first']:.2f}x"
        )
    else:
        result["jsonschema"] = {"error": base_run.stderr.strip().splitlines()[-1:]}
        print(f"baseline unavailable ({args.baseline_python}): {base_run.stderr.strip().splitlines()[-1:]}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"validate_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
