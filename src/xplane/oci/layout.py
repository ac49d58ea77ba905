"""Writing images to files, deterministically: OCI image layouts, OCI archives, ``docker save`` tarballs.

The same images and blobs always give the same bytes (sorted members, mode 0644, uid/gid 0,
mtime 0), so ``xp xpkg build`` output is reproducible. The docker-save form is the one
``crossplane xpkg build`` writes (go-containerregistry's ``tarball.Write``): ``sha256:<config hex>``,
``<layer hex>.tar.gz`` per distinct layer, then ``manifest.json``.

Every file is written through :func:`atomic_output` (a fresh, unguessable temp file, then a rename),
the one way xplane writes files (:mod:`xplane.oci.atomicfile`).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from xplane.oci.atomicfile import atomic_output
from xplane.oci.errors import ArchiveError, ManifestError
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.models import (
    DOCKER_LAYER,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    Descriptor,
    Index,
    Manifest,
    parse_manifest,
)
from xplane.oci.reference import Digest

OCI_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


class BlobReader(Protocol):
    """Where a writer reads blobs from: :class:`~xplane.oci.cache.ImageCache` or :class:`MemoryBlobs`."""

    def open_blob(self, digest: str) -> IO[bytes]: ...


class MemoryBlobs:
    """Blobs held in memory, by digest (what ``xp xpkg build`` produces before writing)."""

    def __init__(self, blobs: Mapping[str, bytes] | None = None) -> None:
        self.blobs: dict[str, bytes] = dict(blobs or {})

    def add(self, data: bytes) -> str:
        """Add ``data``; return its sha256 digest."""
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    def open_blob(self, digest: str) -> BinaryIO:
        """A stream of blob ``digest``."""
        try:
            return io.BytesIO(self.blobs[digest])
        except KeyError:
            raise FileNotFoundError(digest) from None


@dataclass(frozen=True)
class LayoutEntry:
    """One image (manifest or index) to write, and the name to give it."""

    descriptor: Descriptor
    name: str | None = None  # OCI: org.opencontainers.image.ref.name (a tag); docker: a RepoTag


def _read(blobs: BlobReader, digest: str) -> bytes:
    try:
        with blobs.open_blob(digest) as f:
            return f.read()
    except FileNotFoundError:
        raise ArchiveError(f"blob {digest} is not available to write") from None


def _walk(blobs: BlobReader, root: Descriptor) -> Iterator[Descriptor]:
    """Every descriptor reachable from ``root`` (root first), skipping foreign layers."""
    yield root
    if root.media_type not in INDEX_TYPES and not _is_manifest_type(root.media_type):
        return
    parsed = parse_manifest(_read(blobs, root.digest), root.media_type)
    if isinstance(parsed, Index):
        for child in parsed.manifests:
            yield from _walk(blobs, child)
    else:
        yield parsed.config
        for layer in parsed.layers:
            if not layer.urls:
                yield layer


def _is_manifest_type(media_type: str) -> bool:
    return media_type.endswith("manifest.v1+json") or media_type.endswith("manifest.v2+json")


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _index_json(entries: Sequence[LayoutEntry]) -> bytes:
    manifests = []
    for e in entries:
        d = e.descriptor.to_json()
        if e.name:
            d["annotations"] = {**d.get("annotations", {}), REF_NAME_ANNOTATION: e.name}
        manifests.append(d)
    return _canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})


def _layout_members(entries: Sequence[LayoutEntry], blobs: BlobReader) -> list[tuple[str, Descriptor]]:
    seen: dict[str, Descriptor] = {}
    for e in entries:
        for d in _walk(blobs, e.descriptor):
            seen.setdefault(d.digest, d)
    out = []
    for digest in sorted(seen):
        dg = Digest.parse(digest)
        out.append((f"blobs/{dg.algorithm}/{dg.hex}", seen[digest]))
    return out


def write_oci_layout(dest: Path, entries: Sequence[LayoutEntry], blobs: BlobReader) -> None:
    """Write (or add to) an OCI image layout directory holding ``entries`` and all their blobs.

    Entries already in ``index.json`` with the same ref name are replaced.
    """
    dest.mkdir(parents=True, exist_ok=True)
    existing = _existing_entries(dest / "index.json", {e.name for e in entries if e.name})
    for name, desc in _layout_members(entries, blobs):
        path = dest / name
        if path.is_file() and path.stat().st_size == desc.size:
            continue
        with blobs.open_blob(desc.digest) as src, atomic_output(path) as out:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
    with atomic_output(dest / "oci-layout") as out:
        out.write(OCI_LAYOUT_FILE)
    with atomic_output(dest / "index.json") as out:
        out.write(_index_json([*existing, *entries]))


def _existing_entries(index_path: Path, replaced: set[str]) -> list[LayoutEntry]:
    """The entries of an existing ``index.json`` whose ref name is not in ``replaced``."""
    if not index_path.is_file():
        return []
    try:
        index = Index.from_json(loads_bounded(index_path.read_bytes(), what=str(index_path)), OCI_INDEX)
    except ManifestError as e:
        raise ArchiveError(
            f"{index_path}: cannot add to this layout: {e.message}",
            hint="write the image to a new directory, or repair or remove this index.json",
        ) from e
    return [
        LayoutEntry(d, None)
        for d in index.manifests
        if d.annotations.get(REF_NAME_ANNOTATION) not in replaced
    ]


def _tarinfo(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@contextlib.contextmanager
def _open_tar(dest: Path | IO[bytes]) -> Iterator[tarfile.TarFile]:
    """A tar writer on ``dest``: a stream, or a path written atomically (:func:`atomic_output`)."""
    if isinstance(dest, Path | str):
        with (
            atomic_output(Path(dest)) as f,
            tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tf,
        ):
            yield tf
        return
    with tarfile.open(fileobj=dest, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        yield tf


def _add_blob(tf: tarfile.TarFile, name: str, desc: Descriptor, blobs: BlobReader) -> None:
    with blobs.open_blob(desc.digest) as f:
        tf.addfile(_tarinfo(name, desc.size), f)


def write_oci_archive(dest: Path | IO[bytes], entries: Sequence[LayoutEntry], blobs: BlobReader) -> None:
    """Write an OCI archive: a tar of an OCI layout (``skopeo``'s ``oci-archive:`` form)."""
    members = _layout_members(entries, blobs)
    with _open_tar(dest) as tf:
        tf.addfile(_tarinfo("oci-layout", len(OCI_LAYOUT_FILE)), io.BytesIO(OCI_LAYOUT_FILE))
        index = _index_json(entries)
        tf.addfile(_tarinfo("index.json", len(index)), io.BytesIO(index))
        tf.addfile(_tarinfo("blobs", 0, directory=True))
        for algorithm in sorted({n.split("/")[1] for n, _ in members}):
            tf.addfile(_tarinfo(f"blobs/{algorithm}", 0, directory=True))
        for name, desc in members:
            _add_blob(tf, name, desc, blobs)


def _docker_layer_name(desc: Descriptor) -> str:
    hexpart = Digest.parse(desc.digest).hex
    if desc.media_type in (DOCKER_LAYER, OCI_LAYER_GZIP):
        return f"{hexpart}.tar.gz"
    if desc.media_type == OCI_LAYER_ZSTD:
        return f"{hexpart}.tar.zst"
    return f"{hexpart}.tar"


def write_docker_archive(dest: Path | IO[bytes], entries: Sequence[LayoutEntry], blobs: BlobReader) -> None:
    """Write a ``docker save`` tarball of image manifests (the ``.xpkg`` file format).

    Each entry must be an image manifest (pick a platform from an index first); its ``name``
    becomes the ``RepoTags`` entry (``null`` when unset, as ``crossplane xpkg build`` writes).
    """
    written: set[str] = set()
    records: list[dict[str, Any]] = []
    with _open_tar(dest) as tf:
        for e in entries:
            parsed = parse_manifest(_read(blobs, e.descriptor.digest), e.descriptor.media_type)
            if not isinstance(parsed, Manifest):
                raise ArchiveError(
                    f"{e.descriptor.digest} is an image index; a docker archive holds image manifests only",
                    hint="choose one platform's manifest from the index",
                )
            config_name = parsed.config.digest
            if config_name not in written:
                _add_blob(tf, config_name, parsed.config, blobs)
                written.add(config_name)
            layer_names = []
            for layer in parsed.layers:
                name = _docker_layer_name(layer)
                layer_names.append(name)
                if name not in written:
                    _add_blob(tf, name, layer, blobs)
                    written.add(name)
            records.append(
                {"Config": config_name, "RepoTags": [e.name] if e.name else None, "Layers": layer_names}
            )
        manifest = _canonical(records)
        tf.addfile(_tarinfo("manifest.json", len(manifest)), io.BytesIO(manifest))


__all__ = [
    "BlobReader",
    "LayoutEntry",
    "MemoryBlobs",
    "atomic_output",
    "write_docker_archive",
    "write_oci_archive",
    "write_oci_layout",
]
