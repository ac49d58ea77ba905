"""Finding ``package.yaml`` in a package image, exactly as Crossplane does (and a little faster).

Upstream's reader (crossplane-runtime ``ExtractPackageYAML``): take the first layer annotated
``io.crossplane.xpkg: base``; if none is annotated, flatten all layers (the top layer wins, whiteouts
are honoured); the first file whose *basename* is ``package.yaml`` is the package, in any
directory. The content is read through a 200 MiB limit.

xplane adds one step between the two: an image whose layer descriptors lost their annotations (a
``.xpkg`` side-loaded from a docker-save tarball has none) but whose config still carries the
``io.crossplane.xpkg:<digest>`` labels is read from the labelled layer directly. Contents are the
same as the flatten fallback would give; it just avoids reading runtime layers.

Layers are untrusted, so reading them is bounded: tar entries are streamed and counted, and more
than ``max_entries`` (default :data:`MAX_LAYER_ENTRIES`, ``--max-layer-entries``) in the layers
read for one package are refused. Nothing is kept per entry beyond the names the flatten needs
(``tarfile`` itself would keep every entry it passed: a layer of a million empty files took
600 MB and 22 s).
"""

from __future__ import annotations

import posixpath
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from xplane.oci import Descriptor, StreamingTar, open_layer
from xplane.xpkg.errors import PackageError
from xplane.xpkg.layers import ANNOTATION_KEY, PACKAGE_ANNOTATION, xpkg_labels

MAX_PACKAGE_SIZE = 200 << 20
MAX_LAYER_ENTRIES = 100_000
"""Tar entries read at most while looking for package.yaml, over all layers of one image."""
PACKAGE_FILE = "package.yaml"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


class PackageNotFoundError(PackageError):
    """The image holds no ``package.yaml``: it is not a Crossplane package."""


class PackageTooLargeError(PackageError):
    """``package.yaml`` is larger than the limit Crossplane reads (200 MiB)."""


class TooManyEntriesError(PackageError):
    """The layers hold more tar entries than ``max_entries`` before package.yaml is found."""


class _EntryBudget:
    """Tar entries left to read for one package."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.read = 0

    def take(self, where: str) -> None:
        self.read += 1
        if self.read > self.limit:
            raise TooManyEntriesError(
                f"{where}: more than {self.limit} tar entries read while looking for package.yaml; "
                "refusing a possible tar bomb",
                hint="raise --max-layer-entries (max_entries) if the image is trusted",
            )


def base_layer_index(layers: Sequence[Descriptor], config: dict[str, object] | None = None) -> int | None:
    """Index of the package layer: the first annotated ``base``, else the first labelled ``base``."""
    for i, d in enumerate(layers):
        if d.annotations.get(ANNOTATION_KEY) == PACKAGE_ANNOTATION:
            return i
    if config:
        labelled = {digest for digest, value in xpkg_labels(config).items() if value == PACKAGE_ANNOTATION}
        for i, d in enumerate(layers):
            if d.digest in labelled:
                return i
    return None


def _open_layer(path: Path, where: str) -> IO[bytes]:
    try:
        return open_layer(path)
    except OSError as e:
        raise _unreadable(where, e) from e


_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError)


def _unreadable(where: str, e: BaseException) -> PackageError:
    return PackageError(
        f"{where} is not a readable tar (gzip, zstd or uncompressed): {e}",
        hint="the blob may be damaged; remove it from the cache (xp cache) and pull again",
    )


def _members(
    path: Path, where: str, budget: _EntryBudget
) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    with _open_layer(path, where) as raw:
        try:
            with StreamingTar.open(fileobj=raw, mode="r|") as tf:
                for member in tf:
                    budget.take(where)
                    yield member, tf
        except _READ_ERRORS as e:
            raise _unreadable(where, e) from e


def _read_limited(tf: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
    if member.size > MAX_PACKAGE_SIZE:
        raise PackageTooLargeError(
            f"{where}: package.yaml ({member.name}) is {member.size} bytes, over the "
            f"{MAX_PACKAGE_SIZE >> 20} MiB limit Crossplane reads",
            hint="split the package or remove objects it does not need",
        )
    try:
        f = tf.extractfile(member)
        if f is None:
            raise PackageError(f"{where}: package.yaml is not a regular file")
        return f.read()
    except _READ_ERRORS as e:
        raise _unreadable(where, e) from e


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def read_package_yaml(
    layer_paths: Sequence[Path],
    layers: Sequence[Descriptor],
    config: dict[str, object] | None = None,
    *,
    max_entries: int = MAX_LAYER_ENTRIES,
) -> bytes:
    """The bytes of ``package.yaml`` from an image's layers (blob paths in the same order as ``layers``).

    Raises :class:`TooManyEntriesError` after ``max_entries`` tar entries without finding it.
    """
    budget = _EntryBudget(max_entries)
    i = base_layer_index(layers, config)
    if i is not None:
        for member, tf in _members(layer_paths[i], f"layer {layers[i].digest}", budget):
            if member.isreg() and posixpath.basename(member.name) == PACKAGE_FILE:
                return _read_limited(tf, member, f"layer {layers[i].digest}")
        raise PackageNotFoundError(
            f"package.yaml not found in package: layer {layers[i].digest} is marked as the package "
            "layer but holds no package.yaml"
        )
    return _flattened_package_yaml(layer_paths, layers, budget)


def _flattened_package_yaml(
    layer_paths: Sequence[Path], layers: Sequence[Descriptor], budget: _EntryBudget
) -> bytes:
    """Flatten from the top layer down, honouring whiteouts; the first visible package.yaml wins."""
    seen: set[str] = set()
    hidden: set[str] = set()  # paths deleted (or made opaque) by an upper layer
    for idx in range(len(layers) - 1, -1, -1):
        layer_hidden: set[str] = set()
        for member, tf in _members(layer_paths[idx], f"layer {layers[idx].digest}", budget):
            name = _clean(member.name)
            base = posixpath.basename(name)
            parent = posixpath.dirname(name)
            if base == _OPAQUE:
                layer_hidden.add(parent + "/" if parent else "")
                continue
            if base.startswith(_WHITEOUT):
                layer_hidden.add(posixpath.join(parent, base[len(_WHITEOUT) :]))
                continue
            if name in seen or _is_hidden(name, hidden):
                continue
            seen.add(name)
            if member.isreg() and base == PACKAGE_FILE:
                return _read_limited(tf, member, f"layer {layers[idx].digest}")
            if not member.isdir():
                layer_hidden.add(name)  # a file hides whatever lower layers hold below its path
        hidden |= layer_hidden
    raise PackageNotFoundError(
        "package.yaml not found in package: no layer is annotated 'io.crossplane.xpkg: base' and no "
        "layer holds a package.yaml",
        hint="is this a Crossplane package? Build one with 'xp xpkg build'",
    )


def _is_hidden(name: str, hidden: set[str]) -> bool:
    if name in hidden:
        return True
    parts = name.split("/")
    for k in range(len(parts) - 1, -1, -1):
        prefix = "/".join(parts[:k])
        if prefix in hidden or (prefix + "/") in hidden or (k == 0 and "" in hidden):
            return True
    return False
