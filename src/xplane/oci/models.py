"""OCI and Docker image models: media types, descriptors, platforms, manifests and indexes.

Value types with parsing in classmethods and no I/O. Both the OCI image spec and Docker's
schema 2 are read (they share one JSON shape); Docker schema 1 is rejected with a clear error.
Platform selection follows go-containerregistry, which Crossplane uses: a child of an index
without a ``platform`` counts as ``linux/amd64``.

Documents come from registries, archives and the cache, so they are untrusted: JSON is parsed with
a depth bound (:mod:`xplane.oci.jsonbound`) and every field is type-checked, so malformed input
raises :class:`ManifestError` and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xplane.oci.errors import ManifestError
from xplane.oci.jsonbound import loads_bounded

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

IMAGE_MANIFEST_TYPES: frozenset[str] = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES: frozenset[str] = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES: tuple[str, ...] = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
"""Every manifest media type xplane reads, in the order sent in ``Accept``."""

# ggcr treats a missing variant on arm64 as v8 (and on arm as v7) when comparing.
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _strings(value: Any, what: str) -> tuple[str, ...]:
    """A JSON list of strings (``null`` for none) as a tuple; :class:`ManifestError` otherwise."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"invalid {what}: want a list of strings, got {_shown(value)}")
    return tuple(value)


def _string_map(value: Any, what: str) -> dict[str, str]:
    """A JSON object of strings (``null`` for none) as a dict; :class:`ManifestError` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestError(f"invalid {what}: want an object of strings, got {_shown(value)}")
    return {str(k): v for k, v in value.items()}


def _optional_string(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ManifestError(f"invalid {what}: want a string, got {_shown(value)}")


def _shown(value: Any) -> str:
    """A short description of a JSON value for an error message (never the whole value)."""
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value))
    return kind or ("null" if value is None else f"the number {value!r}"[:40])


def new_hasher(digest: str) -> Any:
    """A hashlib object for the algorithm of ``digest`` (sha256, sha384 or sha512)."""
    algorithm = digest.partition(":")[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise ManifestError(f"unsupported digest algorithm {algorithm!r} in {digest!r}")
    return hashlib.new(algorithm)


def compute_digest(data: bytes, like: str = "sha256:") -> str:
    """The digest of ``data`` using the algorithm of ``like`` (default sha256)."""
    h = new_hasher(like)
    h.update(data)
    return f"{h.name}:{h.hexdigest()}"


@dataclass(frozen=True)
class Platform:
    """An image platform such as ``linux/arm64/v8``."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Platform:
        """Parse ``os/arch[/variant]`` (e.g. ``linux/arm64/v8``)."""
        parts = value.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(f"invalid platform {value!r}: want os/arch[/variant], e.g. linux/arm64")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Platform:
        """Build from the ``platform`` object of an index entry."""
        if not isinstance(d, Mapping):
            raise ManifestError("invalid platform: not a JSON object")
        return cls(
            os=_optional_string(d.get("os"), "platform os") or "",
            architecture=_optional_string(d.get("architecture"), "platform architecture") or "",
            variant=_optional_string(d.get("variant"), "platform variant"),
            os_version=_optional_string(d.get("os.version"), "platform os.version"),
            os_features=_strings(d.get("os.features"), "platform os.features"),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object used in an index entry."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    def satisfies(self, wanted: Platform) -> bool:
        """True when this (offered) platform can serve ``wanted``: same OS and architecture, and the
        same variant if ``wanted`` names one (a missing arm/arm64 variant counts as the default)."""
        if self.os != wanted.os or self.architecture != wanted.architecture:
            return False
        if wanted.variant:
            have = self.variant or _DEFAULT_VARIANTS.get(self.architecture)
            return have == wanted.variant
        return not (wanted.os_version and self.os_version and self.os_version != wanted.os_version)

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


DEFAULT_PLATFORM = Platform()


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest or index points at."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Descriptor:
        """Parse a descriptor object; raise :class:`ManifestError` when it is malformed."""
        if not isinstance(d, Mapping):
            raise ManifestError("invalid descriptor: not a JSON object")
        digest, size = d.get("digest"), d.get("size")
        if not isinstance(digest, str) or ":" not in digest:
            raise ManifestError(f"invalid descriptor: missing or bad digest {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"invalid descriptor {digest}: missing or bad size {size!r}")
        annotations = d.get("annotations")
        if annotations is None:
            annotations = {}
        if not isinstance(annotations, Mapping):
            raise ManifestError(f"invalid descriptor {digest}: annotations must be an object")
        platform = d.get("platform")
        return cls(
            media_type=_optional_string(d.get("mediaType"), f"descriptor {digest} mediaType") or "",
            digest=digest,
            size=size,
            annotations={str(k): str(v) for k, v in annotations.items()},
            platform=Platform.from_json(platform) if platform is not None else None,
            urls=_strings(d.get("urls"), f"descriptor {digest} urls"),
            artifact_type=_optional_string(d.get("artifactType"), f"descriptor {digest} artifactType"),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object, with the keys the OCI spec defines (empty ones omitted)."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


@dataclass(frozen=True)
class Manifest:
    """An image manifest (OCI or Docker schema 2)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any], media_type: str | None = None) -> Manifest:
        """Parse an image manifest object."""
        if not isinstance(d, Mapping):
            raise ManifestError("invalid image manifest: not a JSON object")
        mt = _media_type(d, media_type)
        if mt not in IMAGE_MANIFEST_TYPES:
            raise ManifestError(f"not an image manifest: media type {mt!r}")
        config = d.get("config")
        layers = d.get("layers")
        if config is None or not isinstance(layers, list):
            raise ManifestError("invalid image manifest: it needs 'config' and a 'layers' list")
        return cls(
            media_type=mt,
            config=Descriptor.from_json(config),
            layers=tuple(Descriptor.from_json(x) for x in layers),
            annotations=_string_map(d.get("annotations"), "manifest annotations"),
            raw=d,
        )


@dataclass(frozen=True)
class Index:
    """An image index (OCI) or manifest list (Docker)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any], media_type: str | None = None) -> Index:
        """Parse an index object."""
        if not isinstance(d, Mapping):
            raise ManifestError("invalid image index: not a JSON object")
        mt = _media_type(d, media_type)
        if mt not in INDEX_TYPES:
            raise ManifestError(f"not an image index: media type {mt!r}")
        manifests = d.get("manifests")
        if not isinstance(manifests, list):
            raise ManifestError("invalid image index: it needs a 'manifests' list")
        return cls(
            media_type=mt,
            manifests=tuple(Descriptor.from_json(x) for x in manifests),
            annotations=_string_map(d.get("annotations"), "index annotations"),
            raw=d,
        )

    def select(self, platform: Platform | None = None) -> Descriptor:
        """The child for ``platform`` (default ``linux/amd64``), as go-containerregistry picks it.

        A child without a platform counts as ``linux/amd64``. Raises :class:`ManifestError` naming
        the platforms on offer when none matches.
        """
        return select_platform(self.manifests, platform or DEFAULT_PLATFORM)


def select_platform(children: Iterable[Descriptor], wanted: Platform) -> Descriptor:
    """The first of ``children`` whose platform satisfies ``wanted`` (see :meth:`Index.select`)."""
    offered: list[str] = []
    for child in children:
        have = child.platform or DEFAULT_PLATFORM
        offered.append(str(have))
        if have.satisfies(wanted):
            return child
    on_offer = ", ".join(sorted(set(offered))) or "none"
    raise ManifestError(
        f"no image for platform {wanted} in the index (it offers: {on_offer})",
        hint="choose one of the offered platforms (e.g. --platform linux/amd64)",
    )


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse manifest bytes into a :class:`Manifest` or an :class:`Index`.

    ``media_type`` is the ``Content-Type`` the registry sent, used when the JSON has no
    ``mediaType`` field (allowed by OCI). Raises :class:`ManifestError` for anything malformed,
    JSON nested deeper than :data:`~xplane.oci.jsonbound.DEFAULT_MAX_DEPTH` included.
    """
    d = loads_bounded(data, what="manifest")
    if not isinstance(d, dict):
        raise ManifestError("manifest is not a JSON object")
    mt = _media_type(d, media_type)
    if mt in INDEX_TYPES:
        return Index.from_json(d, mt)
    if mt in IMAGE_MANIFEST_TYPES:
        return Manifest.from_json(d, mt)
    if mt in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED) or d.get("schemaVersion") == 1:
        raise ManifestError(
            "Docker schema 1 manifests are not supported",
            hint="re-push the image with a current client (it writes schema 2 or OCI)",
        )
    raise ManifestError(f"unsupported manifest media type {mt!r}")


def _media_type(d: Mapping[str, Any], fallback: str | None) -> str:
    mt = d.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    if mt is not None and not isinstance(mt, str):
        raise ManifestError(f"invalid mediaType: want a string, got {_shown(mt)}")
    fb = (fallback or "").split(";")[0].strip()
    if fb in INDEX_TYPES or fb in IMAGE_MANIFEST_TYPES:
        return fb
    # OCI allows omitting mediaType: infer from the shape.
    if "manifests" in d:
        return OCI_INDEX
    if "config" in d and "layers" in d:
        return OCI_MANIFEST
    return fb or ""
