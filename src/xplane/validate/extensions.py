"""Reading sources (files, directories, stdin) and turning extensions into schemas (spec §4.2-4.3).

Extensions are CRDs and XRDs as they are, and the packages that Provider, Function and
Configuration objects and ``crossplane.yaml`` metas point at: those are read through xplane's image
cache and parsed-package cache (:func:`xplane.xpkg.open_package`), so every credential source,
registries.conf rule and per-registry TLS setting applies. ``dependsOn`` is followed over the whole
graph with the package manager's resolver (:mod:`.deps`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xplane.pkg import Installed, ResolutionError, reference_for
from xplane.validate.deps import (
    META_ROOT,
    PackageSource,
    needs_of,
    resolve_dependencies,
    source_of,
    version_of,
)
from xplane.validate.errors import ValidateError
from xplane.validate.validator import Resource, SchemaSet, group_of

log = logging.getLogger(__name__)

PKG_GROUP = "pkg.crossplane.io"
META_GROUP = "meta.pkg.crossplane.io"
STDIN = "-"


@dataclass
class Loaded:
    """Documents read from sources, and the sources that could not be read (``file:line: why``)."""

    resources: list[Resource] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def split_sources(values: Iterable[str]) -> list[str]:
    """Comma-separated source lists, flattened (empty items dropped)."""
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def expand_paths(source: str) -> list[Path]:
    """A file as is; a directory walked recursively for ``*.yaml``/``*.yml`` (sorted)."""
    p = Path(source).expanduser()
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".yaml", ".yml"))
    return [p]


def read_sources(sources: Sequence[str], *, stdin: Callable[[], bytes] | None = None) -> Loaded:
    """Every document of every source; a file that does not parse is an error, the others still load."""
    from xplane.xpkg import YAMLError, parse_stream

    out = Loaded()
    for source in sources:
        if source == STDIN:
            if stdin is None:
                raise ValidateError("stdin is not available")
            items: list[tuple[str, bytes | None]] = [("<stdin>", stdin())]
        else:
            paths = expand_paths(source)
            if len(paths) == 1 and not paths[0].exists():
                out.errors.append(f"{source}: no such file or directory")
                continue
            items = []
            for path in paths:
                try:
                    items.append((str(path), path.read_bytes()))
                except OSError as e:
                    out.errors.append(f"{path}: cannot read: {e.strerror or e}")
        for name, data in items:
            if data is None:
                continue
            try:
                stream = parse_stream(data, file=name)
            except YAMLError as e:
                out.errors.append(str(e))
                continue
            for d in stream.documents:
                if isinstance(d.doc, dict):
                    out.resources.append(Resource(d.doc, d.where))
                elif d.doc is not None:
                    out.errors.append(f"{d.where}: not an object")
    return out


@dataclass(frozen=True)
class PackageRef:
    """A package to read for its schemas, and why (``Provider/provider-aws``)."""

    image: str
    why: str


def package_refs(docs: Iterable[Mapping[str, Any]]) -> tuple[list[PackageRef], list[Installed], list[str]]:
    """Packages named by Provider/Function/Configuration objects, the ``crossplane.yaml`` metas as
    resolver roots (their ``dependsOn``), and notes for entries that name no package."""
    refs: list[PackageRef] = []
    metas: list[Installed] = []
    notes: list[str] = []
    for doc in docs:
        group, kind = group_of(str(doc.get("apiVersion", ""))), doc.get("kind")
        name = str((doc.get("metadata") or {}).get("name", ""))
        if group == PKG_GROUP and kind in ("Provider", "Function", "Configuration"):
            pkg = (doc.get("spec") or {}).get("package")
            if isinstance(pkg, str) and pkg:
                refs.append(PackageRef(pkg, f"{kind}/{name}"))
        elif group == META_GROUP and kind == "Configuration":
            owner = f"Configuration/{name}"
            deps = (doc.get("spec") or {}).get("dependsOn")
            needs, skipped = needs_of(deps if isinstance(deps, list) else [], owner)
            metas.append(Installed(META_ROOT + name, "", owner, needs))
            notes += skipped
    return refs, metas, notes


Contents = tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]
Fetcher = Callable[[str], Contents]


@dataclass
class CachedPackages:
    """Packages and tags through xplane's image cache (a :class:`~.deps.PackageSource`)."""

    cache_dir: Path | None = None
    refresh: bool = False  # pull policy Always: --update-cache, --clean-cache without --cache-dir
    client_factory: Callable[[], Any] | None = None
    _image_cache: Any = field(default=None, init=False, repr=False)

    def read(self, image: str) -> Contents:
        """``image -> (objects, dependsOn entries)``, through the image and parsed-package caches."""
        from xplane.oci import PullPolicy
        from xplane.xpkg import open_package

        policy = PullPolicy.ALWAYS if self.refresh else PullPolicy.IF_NOT_PRESENT
        pkg = open_package(image, cache=self._cache(), policy=policy, client_factory=self.client_factory)
        objects = [d.doc for d in pkg.objects if isinstance(d.doc, Mapping)]
        deps = (pkg.meta_document.doc.get("spec") or {}).get("dependsOn") or []
        return objects, [d for d in deps if isinstance(d, Mapping)]

    __call__ = read

    def tags(self, source: str, *, remote: bool) -> list[str]:
        """The cached tags of ``source``, or (``remote``) the registry's (the cached ones if it fails)."""
        from xplane.errors import XplaneError
        from xplane.oci import Reference, RegistryClient

        ref = Reference.parse(source)
        cached = sorted({e.tag for e in self._cache().entries_for(ref) if e.tag})
        if not remote:
            return cached
        try:
            with self.client_factory() if self.client_factory else RegistryClient() as client:
                return list(client.list_tags(ref))
        except XplaneError as e:
            if cached:
                log.info("%s: %s; using the %d cached tags", source, e.message, len(cached))
                return cached
            raise

    def _cache(self) -> Any:
        from xplane.oci import ImageCache

        if self._image_cache is None:
            self._image_cache = ImageCache(self.cache_dir)
        return self._image_cache


def fetch_with_cache(
    *, cache_dir: Path | None = None, refresh: bool = False, client_factory: Callable[[], Any] | None = None
) -> CachedPackages:
    """Packages through xplane's image cache; ``refresh`` pulls every package again (``Always``)."""
    return CachedPackages(cache_dir, refresh, client_factory)


@dataclass
class Extensions:
    """The schemas, and what happened collecting them (notes: skipped; errors: could not read)."""

    schemas: SchemaSet
    packages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def load_extensions(
    docs: Iterable[Mapping[str, Any] | Resource],
    *,
    fetch: PackageSource | None = None,
    on_download: Callable[[str], None] | None = None,
    update: bool = False,
) -> Extensions:
    """Schemas from extension documents, the packages they name and their ``dependsOn`` graph.

    The graph is resolved as the package manager does (:mod:`.deps`); ``update`` lists the
    registry's tags at once instead of trying the cached ones first (``--update-cache``). A
    document given as a :class:`Resource` (from :func:`read_sources`) is named by where it was
    read (``file:line``) when it cannot be used; a plain one as ``extensions``.
    """
    given = [(d.obj, d.where or "extensions") if isinstance(d, Resource) else (d, "extensions") for d in docs]
    ext = Extensions(SchemaSet())
    for doc, where in given:
        _add_all(ext, (doc,), where)
    refs, roots, notes = package_refs([doc for doc, _ in given])
    ext.notes += notes
    if fetch is None:
        ext.notes += [f"{r.image} ({r.why}): package not read (no fetcher)" for r in refs]
        if any(r.needs for r in roots):
            ext.notes.append("dependsOn not followed (no fetcher)")
        return ext
    read = _Reader(fetch, on_download)
    chosen: list[str] = []  # the resolver reads other versions too, to rule them out
    for ref in refs:
        try:
            _, deps = read(ref.image)
        except Exception as e:
            ext.errors.append(f"cannot read package {ref.image} ({ref.why}): {e}")
            continue
        source = source_of(ref.image)
        if any(r.source == source for r in roots):
            ext.notes.append(f"{ref.image} ({ref.why}): another object already installs {source}")
            continue
        needs, skipped = needs_of(deps, ref.image)
        chosen.append(ref.image)
        roots.append(Installed(source, version_of(ref.image), ref.why, needs))
        ext.notes += skipped
    try:
        resolution = resolve_dependencies(roots, fetch, read, update=update)
    except ResolutionError as e:
        ext.errors.append(f"cannot resolve dependencies: {e.message}")
    else:
        ext.notes += resolution.notes
        for source, version in sorted(resolution.versions.items()):
            image = reference_for(source, version)
            try:
                read(image)
            except Exception as e:
                ext.errors.append(f"cannot read package {image} (a dependency): {e}")
            else:
                chosen.append(image)
    for image in chosen:
        objects, _ = read.done[image]
        ext.packages.append(image)
        _add_all(ext, objects, image)
    return ext


@dataclass
class _Reader:
    """Reads each package once (the resolver and the schema loading share it)."""

    fetch: PackageSource
    on_download: Callable[[str], None] | None
    done: dict[str, Contents] = field(default_factory=dict)

    def __call__(self, image: str) -> Contents:
        if image not in self.done:
            if self.on_download is not None:
                self.on_download(image)
            self.done[image] = self.fetch.read(image)
        return self.done[image]


def _add_all(ext: Extensions, docs: Iterable[Mapping[str, Any]], where: str) -> None:
    for doc in docs:
        try:
            ext.schemas.add(doc)
        except ValidateError as e:
            ext.errors.append(f"{where}: {e}")
