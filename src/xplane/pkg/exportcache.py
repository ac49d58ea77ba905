"""Preparing an air-gapped cluster (spec §5.3-§5.4): the files Crossplane's package manager reads from
its cache directory, and the manifests that install from them with no registry.

For every package revision: ``<FriendlyID(source, digest)>.gz`` = gzip(package.yaml), where
``source`` is the revision's ``spec.image`` without its tag or digest (as written; an ImageConfig
rewrite does not change it) and ``digest`` keeps its ``sha256:`` (so 5 hex digits survive). For
every package: its manifest with ``spec.package`` pinned to ``source@digest`` of its current
revision and ``packagePullPolicy: Never`` (Crossplane ≥ v2.2 then installs from the cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.oci import Reference, atomic_output
from xplane.pkg.names import (
    DIGEST_ANNOTATION,
    PACKAGE_KINDS,
    REVISION_KIND,
    cache_file_name,
    fully_qualified,
    kind_named,
    source_of,
)
from xplane.xpkg import dump_documents, extract_to_gzip

if TYPE_CHECKING:
    from xplane.pkg.settings import ControlPlaneSettings
    from xplane.store import Store

MANIFESTS = "packages.yaml"


@dataclass
class ExportResult:
    """What ``export_cache`` wrote."""

    cache_files: list[Path] = field(default_factory=list)
    manifests: Path | None = None
    warnings: list[str] = field(default_factory=list)


def export_cache(store: Store, settings: ControlPlaneSettings, directory: Path) -> ExportResult:
    """Write ``<directory>/<key>.gz`` for every revision and ``<directory>/packages.yaml`` (pinned)."""
    directory.mkdir(parents=True, exist_ok=True)
    cache = settings.image_cache()
    result = ExportResult()
    pinned: dict[tuple[str, str], str] = {}  # (package kind, revision name) -> pinned reference
    for kind in PACKAGE_KINDS:
        for rev in store.list(kind_named(store, REVISION_KIND[kind])):
            digest = (rev["metadata"].get("annotations") or {}).get(DIGEST_ANNOTATION)
            image = str((rev.get("spec") or {}).get("image") or "")
            if not digest or not image:
                result.warnings.append(
                    f"{rev['kind']}/{rev['metadata']['name']}: no digest recorded; skipped"
                )
                continue
            source = source_of(image)
            resolved = str((rev.get("status") or {}).get("resolvedImage") or image)
            out = directory / cache_file_name(source, digest)
            extract_to_gzip(
                str(Reference.parse(resolved).with_digest(digest)), out, cache=cache, policy="Never"
            )
            result.cache_files.append(out)
            pinned[(kind, rev["metadata"]["name"])] = f"{source}@{digest}"
    docs: list[dict[str, Any]] = []
    for kind in PACKAGE_KINDS:
        for pkg in store.list(kind_named(store, kind)):
            current = (pkg.get("status") or {}).get("currentRevision")
            ref = pinned.get((kind, str(current)))
            name = pkg["metadata"]["name"]
            if ref is None:
                result.warnings.append(f"{kind}/{name}: no installed revision; not in {MANIFESTS}")
                continue
            if not fully_qualified(ref):
                result.warnings.append(
                    f"{kind}/{name}: {ref} is not fully qualified; Crossplane's API server will refuse it"
                )
            meta: dict[str, Any] = {"name": name}
            for key in ("labels", "annotations"):
                if pkg["metadata"].get(key):
                    meta[key] = dict(pkg["metadata"][key])
            spec = dict(pkg.get("spec") or {})
            spec["package"] = ref
            spec["packagePullPolicy"] = "Never"
            docs.append({"apiVersion": pkg["apiVersion"], "kind": kind, "metadata": meta, "spec": spec})
    manifests = directory / MANIFESTS
    with atomic_output(manifests) as f:
        f.write(dump_documents(docs))
    result.manifests = manifests
    return result
