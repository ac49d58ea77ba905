"""Reading Crossplane packages from the image cache, a registry or a file.

``open_package`` accepts what users type: a path to an ``.xpkg`` / ``docker save`` tarball / OCI
layout or archive, or an image reference (pulled with a pull policy). The package's
``package.yaml`` is located with upstream's rules (:mod:`xplane.xpkg.extract`), decoded with
Kubernetes' YAML rules, and the decoded documents are cached by image manifest digest
(:class:`~xplane.xpkg.parsedcache.ParsedCache`), so reading a package a second time costs a small
fraction of the first.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.oci import Image, ImageCache, PullPolicy, atomic_output
from xplane.xpkg.errors import PackageError
from xplane.xpkg.extract import MAX_LAYER_ENTRIES, base_layer_index, read_package_yaml
from xplane.xpkg.layers import ANNOTATION_KEY, PACKAGE_ANNOTATION, xpkg_labels
from xplane.xpkg.meta import PackageMeta
from xplane.xpkg.objects import is_meta_package
from xplane.xpkg.parsedcache import ParsedCache
from xplane.xpkg.yaml import Document, DocumentStream

if TYPE_CHECKING:
    from xplane.oci import RegistryClient


@dataclass(frozen=True)
class Package:
    """A decoded package: its meta object, its other objects, and the image it came from."""

    meta: PackageMeta
    meta_document: Document
    objects: tuple[Document, ...]
    image: Image
    source: str
    stream: DocumentStream

    @property
    def digest(self) -> str:
        """The digest the source resolved to (an index digest for multi-platform packages)."""
        return self.image.digest

    def kinds(self) -> Counter[str]:
        """Object counts by ``apiVersion/kind`` (the meta object excluded)."""
        return Counter(f"{d.api_version}/{d.kind}" for d in self.objects)

    def summary(self) -> dict[str, Any]:
        """What ``xp xpkg inspect`` shows, as plain data."""
        labels = xpkg_labels(self.image.config)
        base = base_layer_index(self.image.layers, dict(self.image.config))
        layers = []
        for i, d in enumerate(self.image.layers):
            annotation = d.annotations.get(ANNOTATION_KEY) or labels.get(d.digest)
            layers.append(
                {
                    "digest": d.digest,
                    "size": d.size,
                    "mediaType": d.media_type,
                    "annotation": annotation,
                    "package": i == base,
                }
            )
        deps = []
        for dep in self.meta.depends_on:
            r = dep.resolve()
            deps.append({"kind": r.package_kind, "package": r.package, "version": r.constraints})
        return {
            "apiVersion": self.meta.api_version,
            "kind": self.meta.kind,
            "name": self.meta.name,
            "source": self.source,
            "digest": self.digest,
            "manifestDigest": self.image.manifest_digest,
            "crossplaneVersion": self.meta.crossplane.version if self.meta.crossplane else None,
            "capabilities": list(self.meta.effective_capabilities),
            "annotations": dict(self.meta.annotations),
            "dependencies": deps,
            "objects": dict(sorted(self.kinds().items())),
            "layers": layers,
        }


def package_yaml_of(image: Image, *, max_entries: int = MAX_LAYER_ENTRIES) -> bytes:
    """The raw ``package.yaml`` bytes of a cached package image (``max_entries``: see :mod:`.extract`)."""
    paths = [image.layer_path(i) for i in range(len(image.layers))]
    return read_package_yaml(paths, image.layers, dict(image.config), max_entries=max_entries)


def read_image_package(
    image: Image,
    *,
    source: str | None = None,
    parsed: ParsedCache | None = None,
    max_entries: int = MAX_LAYER_ENTRIES,
) -> Package:
    """Decode the package in ``image`` (using the parsed-package cache of the image's cache root)."""
    parsed = parsed or ParsedCache(image.cache.root / "parsed")  # beside blobs/ and refs/
    stream = parsed.load(
        image.manifest_digest, lambda: package_yaml_of(image, max_entries=max_entries), file="package.yaml"
    )
    metas = [d for d in stream if is_meta_package(d.api_version, d.kind)]
    if len(metas) != 1:
        raise PackageError(
            f"{source or image.reference}: not exactly one package meta type ({len(metas)} found in package.yaml)",
            hint="a package's package.yaml holds exactly one meta.pkg.crossplane.io/v1 Configuration, Provider "
            "or Function; 'xp xpkg build' and 'crossplane xpkg build' refuse to build one without",
        )
    meta = PackageMeta.from_dict(metas[0].doc)
    objects = tuple(d for d in stream if d is not metas[0])
    return Package(meta, metas[0], objects, image, source or str(image.reference), stream)


def open_image(
    source: str,
    *,
    cache: ImageCache | None = None,
    policy: PullPolicy | str = PullPolicy.IF_NOT_PRESENT,
    platform: str | None = None,
    client_factory: Callable[[], RegistryClient] | None = None,
    image_name: str | None = None,
) -> Image:
    """The image behind ``source``: a file (loaded into the cache once) or a reference (pulled).

    ``image_name`` picks one image of a file that holds several (a RepoTag or an OCI ref name).
    A file's image is not tagged in the cache (:mod:`xplane.oci.localfiles`): hold
    ``cache.writer()`` while reading it, as :func:`open_package` and :func:`extract_to_gzip` do.
    """
    cache = cache or ImageCache()
    path = Path(source)
    if path.exists():
        from xplane.oci import load_file

        return load_file(path, cache=cache, platform=platform, image_name=image_name)
    if image_name is not None:
        raise PackageError(
            f"{source} is a reference, not a file: --ref only picks an image inside an archive or layout"
        )
    from xplane.oci import pull

    return pull(source, policy=policy, cache=cache, client_factory=client_factory, platform=platform)


def open_package(
    source: str,
    *,
    cache: ImageCache | None = None,
    policy: PullPolicy | str = PullPolicy.IF_NOT_PRESENT,
    platform: str | None = None,
    client_factory: Callable[[], RegistryClient] | None = None,
    image_name: str | None = None,
    max_layer_entries: int = MAX_LAYER_ENTRIES,
) -> Package:
    """Read the package at ``source`` (a file path or an image reference; see :func:`open_image`).

    ``max_layer_entries`` bounds the tar entries read while looking for package.yaml.
    """
    cache = cache or ImageCache()
    with cache.writer():  # a file's image is untagged: keep a prune off its blobs until it is read
        image = open_image(
            source,
            cache=cache,
            policy=policy,
            platform=platform,
            client_factory=client_factory,
            image_name=image_name,
        )
        return read_image_package(image, source=source, max_entries=max_layer_entries)


def extract_to_gzip(
    source: str,
    out: Path,
    *,
    cache: ImageCache | None = None,
    policy: PullPolicy | str = PullPolicy.IF_NOT_PRESENT,
    client_factory: Callable[[], RegistryClient] | None = None,
    image_name: str | None = None,
    max_layer_entries: int = MAX_LAYER_ENTRIES,
) -> Path:
    """Write gzip(package.yaml) of ``source`` to ``out`` (Crossplane's package-cache format), atomically.

    Missing parent directories of ``out`` are created. Like ``crossplane xpkg extract``, an image
    with several layers annotated ``base`` is refused. ``max_layer_entries`` as for :func:`open_package`.
    The file is written through a fresh, unguessable temp file (never one planted in advance).
    """
    cache = cache or ImageCache()
    with cache.writer():  # a file's image is untagged: keep a prune off its blobs until it is read
        image = open_image(
            source, cache=cache, policy=policy, client_factory=client_factory, image_name=image_name
        )
        bases = [d for d in image.layers if d.annotations.get(ANNOTATION_KEY) == PACKAGE_ANNOTATION]
        if len(bases) > 1:
            raise PackageError(
                f"{source}: package is invalid due to multiple annotated base layers",
                hint="layers "
                + ", ".join(d.digest for d in bases)
                + " are all annotated io.crossplane.xpkg: base",
            )
        data = package_yaml_of(image, max_entries=max_layer_entries)
    try:
        with (
            atomic_output(out) as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
        ):  # no file name, no mtime in the header (as Go writes it): reproducible
            gz.write(data)
    except OSError as e:
        raise PackageError(f"cannot write {out}: {e.strerror or e}") from e
    return out
