"""``xp xpkg build``: a Crossplane package image from a directory of YAML, as upstream builds it.

Steps (crossplane/cli ``xpkg build``, crossplane-runtime ``xpkg.Build``): find the YAML files
(:mod:`xplane.xpkg.discover`), parse every document with Kubernetes' YAML rules, require exactly one
meta object and lint the package for its type, re-serialise the objects into ``package.yaml``
(meta first, then the objects in walk order, each preceded by ``---``), add the raw examples
stream as ``.up/examples.yaml`` when the examples root exists, and assemble a Docker schema 2
image whose config labels name the annotated layers. With a runtime image tarball the package
layers go on top of that image and its runtime config (entrypoint, env, user, labels) is kept.

The result is held in memory until :meth:`BuiltPackage.write` writes the ``docker save``
tarball (``.xpkg``) atomically. Same inputs, same digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from xplane.oci import (
    DOCKER_MANIFEST,
    Descriptor,
    ImageCache,
    LayoutEntry,
    MemoryBlobs,
    atomic_output,
    friendly_id,
    write_docker_archive,
)
from xplane.xpkg.discover import FILE_SEPARATOR, find_yaml_files
from xplane.xpkg.errors import PackageError
from xplane.xpkg.layers import (
    EXAMPLES_ANNOTATION,
    EXAMPLES_FILE,
    PACKAGE_ANNOTATION,
    PACKAGE_FILE,
    config_bytes,
    make_layer,
    manifest_bytes,
    package_config,
)
from xplane.xpkg.lint import LintResult, lint_package
from xplane.xpkg.meta import PackageMeta
from xplane.xpkg.yaml import Document, YAMLWarning, dump_documents, load_file_documents

if TYPE_CHECKING:
    from xplane.oci import Image


class BuildError(PackageError):
    """The package could not be built: no meta object, lint errors, unreadable files."""


@dataclass(frozen=True)
class BuildOptions:
    """What to build, named like ``crossplane xpkg build``'s flags."""

    package_root: Path = Path(".")
    examples_root: Path | None = Path("./examples")
    ignore: Sequence[str] = ()
    examples_ignore: Sequence[str] = ()
    runtime_image_tarball: Path | None = None
    runtime_image: Image | None = None
    """A runtime image already in the cache (``--embed-runtime-image``: pulled by the caller)."""
    cache: ImageCache | None = None
    """Where a runtime image tarball's layers are staged, untagged (default: the user's image cache).
    Hold its ``writer()`` from :func:`build_package` until :meth:`BuiltPackage.write`."""


@dataclass
class BuiltPackage:
    """A built package image, in memory."""

    meta: PackageMeta
    lint: LintResult
    package_yaml: bytes
    examples_yaml: bytes | None
    manifest: bytes
    config: bytes
    blobs: MemoryBlobs
    base_blobs: Any = None  # a BlobReader for runtime-image layers (the image cache), if any
    files: list[Path] = field(default_factory=list)
    warnings: list[YAMLWarning] = field(default_factory=list)
    object_count: int = 0  # objects in package.yaml besides the meta object

    @property
    def digest(self) -> str:
        """The image manifest digest (``sha256:<hex>``)."""
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    def default_file_name(self) -> str:
        """``FriendlyID(meta name, manifest digest hex)`` + ``.xpkg``, as upstream names its output."""
        return friendly_id(self.meta.name, self.digest.partition(":")[2]) + ".xpkg"

    def open_blob(self, digest: str) -> IO[bytes]:
        """Read a blob of this image (package layers from memory, runtime layers from the cache)."""
        if digest in self.blobs.blobs:
            return self.blobs.open_blob(digest)
        if self.base_blobs is not None:
            f: IO[bytes] = self.base_blobs.open_blob(digest)
            return f
        raise FileNotFoundError(digest)

    def write(self, path: Path) -> Path:
        """Write the ``.xpkg`` (docker-save tarball) to ``path`` atomically; return ``path``.

        Missing parent directories are created (``-o dist/x.xpkg``), as upstream creates them.
        """
        path = Path(path)
        desc = Descriptor(DOCKER_MANIFEST, self.digest, len(self.manifest))
        blobs = MemoryBlobs({**self.blobs.blobs, self.digest: self.manifest})

        class _Reader:
            def open_blob(_self, digest: str) -> IO[bytes]:
                if digest in blobs.blobs:
                    return blobs.open_blob(digest)
                try:
                    return self.open_blob(digest)
                except FileNotFoundError:
                    raise BuildError(
                        f"runtime image layer {digest} is no longer in the image cache",
                        hint="a cache prune ran between building and writing the package; build again",
                    ) from None

        try:
            with atomic_output(path) as f:
                write_docker_archive(f, [LayoutEntry(desc)], _Reader())
        except OSError as e:
            raise BuildError(f"cannot write the package to {path}: {e.strerror or e}") from e
        return path


def _read_files(files: Sequence[Path]) -> tuple[list[Document], list[YAMLWarning]]:
    docs: list[Document] = []
    warnings: list[YAMLWarning] = []
    for path in files:
        found, warns = load_file_documents(path)
        docs.extend(found)
        warnings.extend(warns)
    return docs, warnings


def _examples_stream(files: Sequence[Path]) -> bytes:
    parts: list[bytes] = []
    for path in files:
        parts.append(path.read_bytes())
        parts.append(FILE_SEPARATOR)
    return b"".join(parts)


def build_package(options: BuildOptions) -> BuiltPackage:
    """Build the package described by ``options``; raise :class:`BuildError` or a lint error."""
    root = Path(options.package_root)
    if not root.is_dir():
        raise BuildError(f"package root {root} is not a directory", hint="pass --package-root/-f DIR")
    examples_root = Path(options.examples_root) if options.examples_root is not None else None
    # Upstream skips package paths containing the examples root even when that directory is missing.
    files = find_yaml_files(root, ignore=options.ignore, exclude_containing=examples_root)
    if examples_root is not None and not examples_root.is_dir():
        examples_root = None  # upstream: a missing examples root means no examples layer
    docs, warnings = _read_files(files)
    result = lint_package(docs, source=str(root.resolve()))
    result.raise_for_errors()
    meta_docs = [d for d in docs if result.meta is not None and d.kind == result.meta.kind and _is_meta(d)]
    objects = [d for d in docs if not any(d is m for m in meta_docs)]
    assert result.meta is not None  # lint guarantees exactly one meta object
    package_yaml = dump_documents([meta_docs[0].doc, *(o.doc for o in objects)])

    examples_yaml = None
    if examples_root is not None:
        example_files = find_yaml_files(examples_root, ignore=options.examples_ignore)
        for path in example_files:  # each document must at least parse (upstream: "failed to parse examples")
            load_file_documents(path)
        examples_yaml = _examples_stream(example_files)

    layers = [make_layer(PACKAGE_FILE, package_yaml, PACKAGE_ANNOTATION)]
    if examples_yaml is not None:
        layers.append(make_layer(EXAMPLES_FILE, examples_yaml, EXAMPLES_ANNOTATION))

    base_config: Mapping[str, Any] | None = None
    base_layers: list[Descriptor] = []
    base_blobs = None
    if options.runtime_image_tarball is not None and options.runtime_image is not None:
        raise BuildError("embed a runtime image or a runtime image tarball, not both")
    if options.runtime_image_tarball is not None:
        base_config, base_layers, base_blobs = _runtime_base(options.runtime_image_tarball, options.cache)
    elif options.runtime_image is not None:
        base_config, base_layers, base_blobs = _runtime_layers(options.runtime_image)

    cfg = config_bytes(package_config(base_config, layers))
    blobs = MemoryBlobs()
    blobs.add(cfg)
    for layer in layers:
        blobs.add(layer.blob)
    manifest = manifest_bytes(cfg, [*base_layers, *(layer.descriptor() for layer in layers)])
    return BuiltPackage(
        meta=result.meta,
        lint=result,
        package_yaml=package_yaml,
        examples_yaml=examples_yaml,
        manifest=manifest,
        config=cfg,
        blobs=blobs,
        base_blobs=base_blobs,
        files=files,
        warnings=warnings,
        object_count=len(objects),
    )


def _is_meta(loc: Document) -> bool:
    from xplane.xpkg.objects import is_meta_package

    return is_meta_package(loc.api_version, loc.kind)


def _runtime_base(tarball: Path, cache: ImageCache | None) -> tuple[Mapping[str, Any], list[Descriptor], Any]:
    """Load a docker-save or OCI tarball (the runtime image) into the cache, untagged; its config and
    layers. :meth:`BuiltPackage.write` reads the layers from the cache: hold ``cache.writer()`` from
    the build until the write, or a concurrent prune may remove them."""
    from xplane.oci import load_file

    if not Path(tarball).exists():
        raise BuildError(f"runtime image tarball {tarball} does not exist")
    return _runtime_layers(load_file(tarball, cache=cache or ImageCache()))


def _runtime_layers(image: Image) -> tuple[Mapping[str, Any], list[Descriptor], Any]:
    """A runtime image's config and its layers as the package's first layers (gzip layers only)."""
    from xplane.oci import DOCKER_LAYER, OCI_LAYER_GZIP

    layers = []
    for d in image.layers:
        if d.media_type not in (DOCKER_LAYER, OCI_LAYER_GZIP):
            raise BuildError(
                f"runtime image layer {d.digest} has media type {d.media_type}; only gzip layers can be embedded"
            )
        layers.append(Descriptor(DOCKER_LAYER, d.digest, d.size))
    return image.config, layers, image.cache
