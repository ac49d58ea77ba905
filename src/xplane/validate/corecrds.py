"""Crossplane's own CRDs, shipped with xplane (``--crossplane-version``).

Upstream adds the Crossplane core image as a package dependency and pulls its ``crds/`` files
(spec §4.3, ``--crossplane-image``). xplane ships the CRDs of a few releases instead
(``crds/<version>.tar.xz``: upstream's ``cluster/crds`` files, unmodified, in one xz-compressed tar
per release — about 55 kB each, a third of gzipping each file; see ``crds/README.md``), read with
:mod:`importlib.resources`; only the files of the groups a resource needs are parsed. Schemas given
as extensions win over the shipped ones.
"""

from __future__ import annotations

import io
import lzma
import tarfile
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from xplane.validate.errors import ValidateError
from xplane.validate.validator import Resource, SchemaSet, group_of

DEFAULT_VERSION = "v2.3.4"  # the Crossplane version xplane's control plane emulates
ALIASES = ("stable", "latest")
MAX_FILE = 8 << 20  # bytes, decompressed: the largest upstream file is under 1 MiB
MAX_ARCHIVE = 32 << 20  # bytes, decompressed, per release (about 1 MiB today)
SUFFIX = ".tar.xz"


def _root() -> Traversable:
    return resources.files("xplane.validate").joinpath("crds")


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in version.lstrip("v").split("."))


@lru_cache(maxsize=1)
def shipped_versions() -> tuple[str, ...]:
    """The Crossplane versions whose CRDs are shipped, oldest first (``v1.20.11``, …)."""
    found = [f.name.removesuffix(SUFFIX) for f in _root().iterdir() if f.name.endswith(SUFFIX)]
    return tuple(sorted(found, key=_key))


def resolve_crossplane_version(version: str | None) -> str:
    """A shipped version for ``version``: exact (``v2.3.4``/``2.3.4``), a minor (``v2.3``), ``stable``.

    None means :data:`DEFAULT_VERSION`. Raises :class:`ValidateError` listing the shipped ones.
    """
    shipped = shipped_versions()
    if version is None:
        return DEFAULT_VERSION if DEFAULT_VERSION in shipped else shipped[-1]
    want = version.strip()
    if want in ALIASES:
        return shipped[-1]
    want = want if want.startswith("v") else f"v{want}"
    if want in shipped:
        return want
    same_minor = [v for v in shipped if want.count(".") == 1 and v.startswith(want + ".")]
    if same_minor:
        return same_minor[-1]
    raise ValidateError(
        f"Crossplane {version}: its CRDs are not shipped with xplane; "
        f"shipped: {', '.join(shipped)} (or {', '.join(ALIASES)}); "
        "give other versions' CRDs as EXTENSIONS"
    )


def shipped_groups(version: str) -> frozenset[str]:
    """The API groups whose CRDs are shipped for ``version`` (a shipped version)."""
    return frozenset(name.split("_", 1)[0] for name in _archive(version))


@lru_cache(maxsize=4)
def _archive(version: str) -> dict[str, bytes]:
    """The files of one release's archive, by name (bounded: per file and in all)."""
    f = _root().joinpath(version + SUFFIX)
    if not f.is_file():
        raise ValidateError(f"Crossplane {version}: its CRDs are not shipped with xplane")
    out: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(f.read_bytes()), mode="r:xz") as tar:
            for m in tar:
                if not m.isfile() or not m.name.endswith(".yaml"):
                    continue
                total += m.size
                if m.size > MAX_FILE or total > MAX_ARCHIVE:
                    raise ValidateError(f"shipped CRDs {version}: {m.name} is too large")
                data = tar.extractfile(m)
                if data is not None:
                    out[m.name.rsplit("/", 1)[-1]] = data.read(MAX_FILE + 1)
    except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as e:
        raise ValidateError(f"shipped CRDs {version}: cannot read {f.name}: {e}") from None
    return out


@lru_cache(maxsize=64)
def _read(version: str, name: str) -> tuple[Mapping[str, Any], ...]:
    from xplane.xpkg import YAMLError, parse_stream

    try:
        stream = parse_stream(_archive(version)[name], file=f"crds/{version}/{name}")
    except YAMLError as e:
        raise ValidateError(f"shipped CRD {version}/{name}: {e}") from None
    return tuple(d.doc for d in stream.documents if isinstance(d.doc, Mapping))


def crossplane_crds(version: str, groups: Iterable[str] | None = None) -> list[Mapping[str, Any]]:
    """The shipped CRDs of ``version`` (resolved with :func:`resolve_crossplane_version`), optionally of some groups."""
    version = resolve_crossplane_version(version)
    wanted = None if groups is None else set(groups)
    out: list[Mapping[str, Any]] = []
    for name in sorted(_archive(version)):
        if wanted is None or name.split("_", 1)[0] in wanted:
            out.extend(_read(version, name))
    return out


def add_crossplane_schemas(schemas: SchemaSet, docs: Iterable[Resource], version: str | None) -> list[str]:
    """Add the shipped CRDs for Crossplane kinds among ``docs`` that have no schema yet.

    Only the groups such a resource needs are read, and a GVK an extension already describes keeps
    that schema. Returns the names of the CRDs added.
    """
    version = resolve_crossplane_version(version)
    groups = shipped_groups(version)
    needed: set[str] = set()
    for r in docs:
        g = group_of(r.api_version)
        if g in groups and schemas.lookup(r.api_version, r.kind) is None:
            needed.add(g)
    added: list[str] = []
    for crd in crossplane_crds(version, needed):
        spec = crd.get("spec") or {}
        kind = str((spec.get("names") or {}).get("kind", ""))
        group = str(spec.get("group", ""))
        versions = [str(v.get("name", "")) for v in spec.get("versions") or ()]
        if all(schemas.lookup(f"{group}/{v}", kind) is None for v in versions):
            schemas.add_crd(crd)
            added.append(str((crd.get("metadata") or {}).get("name", "")))
    return added
