"""``dependsOn`` followed as xplane's package manager does: the whole graph through its resolver.

The packages named by Provider/Function/Configuration objects are installed roots (their version
is the one written); a ``crossplane.yaml`` meta is a root of its own. Every ``dependsOn`` edge is a
:class:`xplane.pkg.Need`, and :func:`xplane.pkg.resolve` picks one version per source for the whole
graph: every dependent's constraint counts, a digest pins exactly, the highest satisfying tag wins,
and an impossible graph is one message naming who wants what. Only the pure resolver is used
(``xplane.pkg``'s curated ``__init__``; no store, no reconciler; docs/dev/contracts.md).

Offline first, as upstream's cache lookup: the versions of a source are first the tags xplane's
image cache holds; only when those cannot satisfy the graph (or with ``--update-cache``) are the
registry's tags listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from xplane.oci import Reference, package_source
from xplane.pkg import GraphInput, Installed, Need, ResolutionError, reference_for, resolve

META_ROOT = "crossplane.yaml/"  # the source of a meta root (never fetched)
PKG_API = "pkg.crossplane.io/v1"
DEP_KEYS = {"provider": "Provider", "configuration": "Configuration", "function": "Function"}


class PackageSource(Protocol):
    """Where packages and tags come from (xplane's image cache, or memory in tests)."""

    def read(self, image: str) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        """A package's objects and ``dependsOn`` entries; raise on failure."""
        ...

    def tags(self, source: str, *, remote: bool) -> list[str]:
        """A repository's tags: the cached ones, or (``remote``) the registry's; raise on failure."""
        ...


# xplane.pkg.names has the same two, but importing it loads the store: validate keeps to the pure
# resolver of xplane.pkg (tests/validate/test_deps.py checks which modules load).
def source_of(ref: str) -> str:
    """A reference without its tag or digest, as written (``reg/repo:v1`` -> ``reg/repo``)."""
    return package_source(Reference.parse(ref))


def version_of(ref: str) -> str:
    """The tag or digest of a reference (``latest`` when it names neither)."""
    r = Reference.parse(ref)
    return r.digest or r.tag or "latest"


def needs_of(deps: Iterable[Any], owner: str) -> tuple[tuple[Need, ...], list[str]]:
    """``dependsOn`` entries as resolver edges, and notes for entries that name no package."""
    needs: list[Need] = []
    notes: list[str] = []
    for dep in deps:
        if not isinstance(dep, Mapping):
            continue
        key = next((k for k in ("package", *DEP_KEYS) if dep.get(k)), None)
        if key is None or not isinstance(dep.get(key), str):
            notes.append(f"{owner}: dependsOn entry without a package")
            continue
        kind = str(dep.get("kind") or DEP_KEYS.get(key, "Provider"))
        api = str(dep.get("apiVersion") or PKG_API)
        needs.append(Need(str(dep[key]), str(dep.get("version") or ""), kind, api))
    return tuple(needs), notes


@dataclass
class _Candidates:
    """:class:`xplane.pkg.CandidateData` over a :class:`PackageSource` (each package read once)."""

    packages: PackageSource
    read: Callable[[str], tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]]
    remote: bool
    _tags: dict[str, list[str]] = field(default_factory=dict)

    def versions(self, source: str) -> Sequence[str]:
        if source not in self._tags:
            try:
                self._tags[source] = self.packages.tags(source, remote=self.remote)
            except Exception as e:
                raise ResolutionError(f"cannot list versions of {source}: {e}", source=source) from None
        return self._tags[source]

    def needs(self, source: str, version: str) -> Sequence[Need]:
        ref = reference_for(source, version)
        try:
            _, deps = self.read(ref)
        except Exception as e:
            raise ResolutionError(f"cannot read {ref}: {e}", source=source) from None
        return needs_of(deps, ref)[0]


@dataclass(frozen=True)
class Resolution:
    """The version picked per dependency source, and the resolver's notes."""

    versions: dict[str, str]
    notes: tuple[str, ...] = ()


def resolve_dependencies(
    roots: Sequence[Installed],
    packages: PackageSource,
    read: Callable[[str], tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]],
    *,
    update: bool = False,
) -> Resolution:
    """Resolve the graph under ``roots``: from the cached tags first, then (or with ``update``
    at once) the registry's; raise :class:`xplane.pkg.ResolutionError` naming who wants what."""
    if not any(r.needs for r in roots):
        return Resolution({})
    attempts = [True] if update else [False, True]
    for remote in attempts:
        try:
            plan = resolve(GraphInput(roots, _Candidates(packages, read, remote), names=_name))
        except ResolutionError:
            if remote:
                raise
            continue
        have = {r.source for r in roots}
        versions = {s: v for s, v in plan.versions.items() if s not in have}
        return Resolution(versions, plan.incompatible)
    raise ResolutionError("no set of versions satisfies every dependent")  # not reached


def _name(source: str) -> str:
    return source.removeprefix(META_ROOT) if source.startswith(META_ROOT) else source.rsplit("/", 1)[-1]
