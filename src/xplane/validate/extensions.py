"""Reading sources (files, directories, stdin) and turning extensions into schemas (spec §4.2-4.3).

Extensions are CRDs and XRDs as they are, and the packages that Provider, Function and
Configuration objects and ``crossplane.yaml`` metas point at: those are read through xplane's image
cache and parsed-package cache (:func:`xplane.xpkg.open_package`), so every credential source,
registries.conf rule and per-registry TLS setting applies. ``dependsOn`` entries are followed when
they name an exact digest or an exact version tag; ranges need the resolver and are reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """A package to read for its schemas, and why (``Provider/provider-aws``, ``dependsOn of ...``)."""

    image: str
    why: str


def dependency_image(dep: Mapping[str, Any]) -> tuple[str | None, str]:
    """The image of one ``dependsOn`` entry (exact digests and tags only) or a reason to skip it."""
    from xplane.xpkg import is_complete_tag, is_digest_constraint

    image = next(
        (dep.get(k) for k in ("package", "configuration", "provider", "function") if dep.get(k)), None
    )
    if not isinstance(image, str):
        return None, "dependsOn entry without a package"
    version = str(dep.get("version") or "")
    if is_digest_constraint(version):
        return f"{image}@{version}", ""
    if is_complete_tag(version):
        return f"{image}:{version}", ""
    return (
        None,
        f"{image} {version or '(no version)'}: version ranges need the dependency resolver (not followed)",
    )


def package_refs(docs: Iterable[Mapping[str, Any]]) -> tuple[list[PackageRef], list[str]]:
    """Packages named by Provider/Function/Configuration objects and meta ``dependsOn`` (and skips)."""
    refs: list[PackageRef] = []
    notes: list[str] = []
    for doc in docs:
        group, kind = group_of(str(doc.get("apiVersion", ""))), doc.get("kind")
        name = str((doc.get("metadata") or {}).get("name", ""))
        if group == PKG_GROUP and kind in ("Provider", "Function", "Configuration"):
            pkg = (doc.get("spec") or {}).get("package")
            if isinstance(pkg, str) and pkg:
                refs.append(PackageRef(pkg, f"{kind}/{name}"))
        elif group == META_GROUP and kind == "Configuration":
            r, n = _depends_on((doc.get("spec") or {}).get("dependsOn"), f"Configuration/{name}")
            refs += r
            notes += n
    return refs, notes


def _depends_on(deps: Any, owner: str) -> tuple[list[PackageRef], list[str]]:
    refs: list[PackageRef] = []
    notes: list[str] = []
    for dep in deps if isinstance(deps, list) else []:
        if not isinstance(dep, Mapping):
            continue
        image, why = dependency_image(dep)
        if image:
            refs.append(PackageRef(image, f"dependsOn of {owner}"))
        else:
            notes.append(f"{owner}: {why}")
    return refs, notes


Fetcher = Callable[[str], tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]]


def fetch_with_cache(
    *, cache_dir: Path | None = None, refresh: bool = False, client_factory: Callable[[], Any] | None = None
) -> Fetcher:
    """A fetcher over xplane's image cache: ``image -> (objects, dependsOn entries)``."""
    from xplane.oci import ImageCache, PullPolicy
    from xplane.xpkg import open_package

    cache = ImageCache(cache_dir)
    policy = PullPolicy.ALWAYS if refresh else PullPolicy.IF_NOT_PRESENT

    def fetch(image: str) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        pkg = open_package(image, cache=cache, policy=policy, client_factory=client_factory)
        objects = [d.doc for d in pkg.objects if isinstance(d.doc, Mapping)]
        deps = (pkg.meta_document.doc.get("spec") or {}).get("dependsOn") or []
        return objects, [d for d in deps if isinstance(d, Mapping)]

    return fetch


@dataclass
class Extensions:
    """The schemas, and what happened collecting them (notes: skipped; errors: could not read)."""

    schemas: SchemaSet
    packages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def load_extensions(
    docs: Iterable[Mapping[str, Any]],
    *,
    fetch: Fetcher | None = None,
    on_download: Callable[[str], None] | None = None,
) -> Extensions:
    """Schemas from extension documents and the packages they name (followed recursively)."""
    docs = list(docs)
    ext = Extensions(SchemaSet())
    _add_all(ext, docs, "extensions")
    queue, notes = package_refs(docs)
    ext.notes += notes
    seen: set[str] = set()
    while queue:
        ref = queue.pop(0)
        if ref.image in seen:
            continue
        seen.add(ref.image)
        if fetch is None:
            ext.notes.append(f"{ref.image} ({ref.why}): package not read (no fetcher)")
            continue
        if on_download is not None:
            on_download(ref.image)
        try:
            objects, deps = fetch(ref.image)
        except Exception as e:
            ext.errors.append(f"cannot read package {ref.image} ({ref.why}): {e}")
            continue
        ext.packages.append(ref.image)
        _add_all(ext, objects, ref.image)
        more, skipped = _depends_on(deps, ref.image)
        queue += more
        ext.notes += skipped
    return ext


def _add_all(ext: Extensions, docs: Iterable[Mapping[str, Any]], where: str) -> None:
    for doc in docs:
        try:
            ext.schemas.add(doc)
        except ValidateError as e:
            ext.errors.append(f"{where}: {e}")
