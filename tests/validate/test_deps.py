"""``dependsOn`` through the package manager's resolver, over an in-memory package source."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from xplane.validate import load_extensions

PROVIDER = "registry.example.org/acme/provider-s3"
CONFIG = "registry.example.org/acme/platform"


def crd(version: str) -> dict[str, Any]:
    """A CRD whose kind names the provider version it came from (``BucketV1_1_0``)."""
    kind = "Bucket" + version.replace(".", "_").upper()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.lower()}s.s3.example.org"},
        "spec": {
            "group": "s3.example.org",
            "names": {"kind": kind, "plural": f"{kind.lower()}s"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    }


class Memory:
    """A :class:`xplane.validate.deps.PackageSource`: tags and packages in dicts; counts listings."""

    def __init__(self, cached: Mapping[str, list[str]], remote: Mapping[str, list[str]]) -> None:
        self.cached, self.remote = cached, remote
        self.packages: dict[str, tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]] = {}
        self.listed: list[tuple[str, bool]] = []

    def read(self, image: str) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        if image not in self.packages:
            raise LookupError(f"{image}: not found")
        return self.packages[image]

    def tags(self, source: str, *, remote: bool) -> list[str]:
        self.listed.append((source, remote))
        return list((self.remote if remote else self.cached).get(source, []))


def memory(cached: list[str], remote: list[str]) -> Memory:
    m = Memory({PROVIDER: cached}, {PROVIDER: remote, CONFIG: ["v0.1.0"]})
    for v in ("v1.0.0", "v1.1.0", "v2.0.0"):
        m.packages[f"{PROVIDER}:{v}"] = ([crd(v)], [])
    m.packages[f"{CONFIG}:v0.1.0"] = ([], [{"provider": PROVIDER, "version": "<v2.0.0"}])
    return m


def meta(*deps: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Configuration",
        "metadata": {"name": "app"},
        "spec": {"dependsOn": list(deps)},
    }


def kinds(ext: Any) -> list[str]:
    return sorted(n.split(".")[0] for n in ext.schemas.crd_names)


def test_every_dependents_constraint_counts() -> None:
    src = memory([], ["v1.0.0", "v1.1.0", "v2.0.0", "latest"])
    doc = meta(
        {"provider": PROVIDER, "version": ">=v1.0.0"}, {"configuration": CONFIG, "version": ">=v0.1.0"}
    )
    ext = load_extensions([doc], fetch=src)
    assert ext.errors == []
    assert kinds(ext) == ["bucketv1_1_0s"]  # >=v1.0.0 and the platform's <v2.0.0
    assert f"{PROVIDER}:v1.1.0" in ext.packages and f"{CONFIG}:v0.1.0" in ext.packages


def test_the_highest_satisfying_tag_and_a_digest_pin() -> None:
    src = memory([], ["v1.0.0", "v1.1.0", "v2.0.0"])
    assert kinds(load_extensions([meta({"provider": PROVIDER, "version": ">=v1.0.0"})], fetch=src)) == [
        "bucketv2_0_0s"
    ]
    digest = "sha256:" + "a" * 64
    src.packages[f"{PROVIDER}@{digest}"] = ([crd("pinned")], [])
    ext = load_extensions([meta({"provider": PROVIDER, "version": digest})], fetch=src)
    assert kinds(ext) == ["bucketpinneds"]


def test_an_unresolvable_graph_names_who_wants_what() -> None:
    src = memory([], ["v1.0.0", "v1.1.0", "v2.0.0"])
    doc = meta({"provider": PROVIDER, "version": ">=v2.0.0"}, {"configuration": CONFIG, "version": "v0.1.0"})
    ext = load_extensions([doc], fetch=src)
    assert len(ext.errors) == 1
    err = ext.errors[0]
    assert err.startswith("cannot resolve dependencies: provider-s3: ")
    assert "Configuration/app requires >=v2.0.0" in err and "platform@v0.1.0 requires <v2.0.0" in err
    assert "available: v1.0.0, v1.1.0, v2.0.0" in err


def test_cached_tags_first_then_the_registry_or_at_once_with_update() -> None:
    doc = meta({"provider": PROVIDER, "version": ">=v1.0.0"})
    src = memory(["v1.0.0"], ["v1.0.0", "v1.1.0"])
    assert kinds(load_extensions([doc], fetch=src)) == ["bucketv1_0_0s"]
    assert src.listed == [(PROVIDER, False)]  # offline: the cache satisfied the graph
    src.listed.clear()
    assert kinds(load_extensions([doc], fetch=src, update=True)) == ["bucketv1_1_0s"]
    assert src.listed == [(PROVIDER, True)]
    src = memory(["v0.9.0"], ["v1.0.0"])  # nothing cached satisfies: the registry is asked
    assert kinds(load_extensions([doc], fetch=src)) == ["bucketv1_0_0s"]
    assert src.listed == [(PROVIDER, False), (PROVIDER, True)]


def test_an_invalid_constraint_is_the_resolvers_error() -> None:
    ext = load_extensions([meta({"provider": PROVIDER, "version": "not a version"})], fetch=memory([], []))
    assert ext.errors and "invalid constraint 'not a version'" in ext.errors[0]


def test_validate_loads_only_the_pure_resolver_of_the_package_manager() -> None:
    code = (
        "import sys\n"
        "from xplane.validate import load_extensions\n"
        "from tests.validate.test_deps import memory, meta, PROVIDER\n"
        "load_extensions([meta({'provider': PROVIDER, 'version': '>=v1.0.0'})], fetch=memory([], ['v1.0.0']))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('xplane.pkg.', 'xplane.store', 'xplane.cli'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['xplane.pkg.resolver', 'xplane.pkg.search']"
