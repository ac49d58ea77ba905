"""xplane.oci: image references, the registry client, image models, archives and the offline-first cache.

This is the curated public API: other packages import from ``xplane.oci`` only these names.
They load lazily (PEP 562), so ``from xplane.oci import pull`` does not import ``httpx``: a warm
``xp xpkg pull`` stays fast. Modules whose owners have not landed them yet simply do not
resolve (``AttributeError``) until they do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # errors
    "OCIError": "errors",
    "InvalidReferenceError": "errors",
    "RegistryError": "errors",
    "RegistryUnavailableError": "errors",
    "AuthenticationError": "errors",
    "AuthorizationError": "errors",
    "NotFoundError": "errors",
    "TLSError": "errors",
    "BlockedRegistryError": "errors",
    "DigestMismatchError": "errors",
    "ManifestError": "errors",
    "CacheMissError": "errors",
    "ArchiveError": "errors",
    "CredentialsError": "errors",
    "ConfigError": "errors",
    # references
    "Reference": "reference",
    "Digest": "reference",
    "to_dns_label": "reference",
    "friendly_id": "reference",
    "package_source": "reference",
    # models
    "Platform": "models",
    "Descriptor": "models",
    "Manifest": "models",
    "Index": "models",
    "parse_manifest": "models",
    "select_platform": "models",
    "sha256_digest": "models",
    "DEFAULT_PLATFORM": "models",
    "OCI_MANIFEST": "models",
    "OCI_INDEX": "models",
    "OCI_CONFIG": "models",
    "OCI_LAYER": "models",
    "OCI_LAYER_GZIP": "models",
    "DOCKER_MANIFEST": "models",
    "DOCKER_MANIFEST_LIST": "models",
    "DOCKER_CONFIG": "models",
    "DOCKER_LAYER": "models",
    # registry client
    "RegistryClient": "client",
    "RetryPolicy": "transport",
    # registries.conf routing
    "Endpoint": "mirrors",
    "pull_sources": "mirrors",
    "push_endpoint": "mirrors",
    # credentials and settings
    "Credentials": "credentials",
    "CredentialMatch": "credentials",
    "Keychain": "credentials",
    "default_keychain": "credentials",
    "RegistrySettings": "settings",
    "RegistryConfig": "settings",
    "RegistryOverrides": "settings",
    "ssl_context_for": "settings",
    # cache and pull
    "ImageCache": "cache",
    "TagEntry": "cache",
    "PruneResult": "cache",
    "DiskUsage": "cache",
    "default_cache_root": "cache",
    "Image": "pull",
    "PullPolicy": "pull",
    "PullProgress": "pull",
    "pull": "pull",
    "cached_image": "pull",
    # archives and layouts
    "ArchiveLimits": "archive",
    "load_archive": "archive",
    "docker_manifest_bytes": "archive",
    "DOCKER_LAYER_UNCOMPRESSED": "archive",
    "BlobReader": "layout",
    "MemoryBlobs": "layout",
    "LayoutEntry": "layout",
    "write_docker_archive": "layout",
    "write_oci_layout": "layout",
    "write_oci_archive": "layout",
    # push
    "PushProgress": "push",
    "push_image": "push",
    "push_index": "push",
    "push_archive": "push",
    "index_bytes_for": "push",
}

# ``pull`` is both a submodule and a function: import it eagerly so the function wins (once a
# submodule is imported, Python binds its name on the package). pull.py does not import httpx.
from xplane.oci.pull import pull  # noqa: E402

__all__ = [
    "DEFAULT_PLATFORM",
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LAYER_UNCOMPRESSED",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "ArchiveError",
    "ArchiveLimits",
    "AuthenticationError",
    "AuthorizationError",
    "BlobReader",
    "BlockedRegistryError",
    "CacheMissError",
    "ConfigError",
    "CredentialMatch",
    "Credentials",
    "CredentialsError",
    "Descriptor",
    "Digest",
    "DigestMismatchError",
    "DiskUsage",
    "Endpoint",
    "Image",
    "ImageCache",
    "Index",
    "InvalidReferenceError",
    "Keychain",
    "LayoutEntry",
    "Manifest",
    "ManifestError",
    "MemoryBlobs",
    "NotFoundError",
    "OCIError",
    "Platform",
    "PruneResult",
    "PullPolicy",
    "PullProgress",
    "PushProgress",
    "Reference",
    "RegistryClient",
    "RegistryConfig",
    "RegistryError",
    "RegistryOverrides",
    "RegistrySettings",
    "RegistryUnavailableError",
    "RetryPolicy",
    "TLSError",
    "TagEntry",
    "cached_image",
    "default_cache_root",
    "default_keychain",
    "docker_manifest_bytes",
    "friendly_id",
    "index_bytes_for",
    "load_archive",
    "package_source",
    "parse_manifest",
    "pull",
    "pull_sources",
    "push_archive",
    "push_endpoint",
    "push_image",
    "push_index",
    "select_platform",
    "sha256_digest",
    "ssl_context_for",
    "to_dns_label",
    "write_docker_archive",
    "write_oci_archive",
    "write_oci_layout",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xplane.oci' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"xplane.oci.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from xplane.oci.archive import (
        DOCKER_LAYER_UNCOMPRESSED,
        ArchiveLimits,
        docker_manifest_bytes,
        load_archive,
    )
    from xplane.oci.cache import DiskUsage, ImageCache, PruneResult, TagEntry, default_cache_root
    from xplane.oci.client import RegistryClient
    from xplane.oci.errors import (
        ArchiveError,
        AuthenticationError,
        AuthorizationError,
        BlockedRegistryError,
        CacheMissError,
        ConfigError,
        CredentialsError,
        DigestMismatchError,
        InvalidReferenceError,
        ManifestError,
        NotFoundError,
        OCIError,
        RegistryError,
        RegistryUnavailableError,
        TLSError,
    )
    from xplane.oci.layout import (
        BlobReader,
        LayoutEntry,
        MemoryBlobs,
        write_docker_archive,
        write_oci_archive,
        write_oci_layout,
    )
    from xplane.oci.mirrors import Endpoint, pull_sources, push_endpoint
    from xplane.oci.models import (
        DEFAULT_PLATFORM,
        DOCKER_CONFIG,
        DOCKER_LAYER,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        OCI_CONFIG,
        OCI_INDEX,
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_MANIFEST,
        Descriptor,
        Index,
        Manifest,
        Platform,
        parse_manifest,
        select_platform,
        sha256_digest,
    )
    from xplane.oci.pull import Image, PullPolicy, PullProgress, cached_image
    from xplane.oci.push import PushProgress, index_bytes_for, push_archive, push_image, push_index
    from xplane.oci.reference import Digest, Reference, friendly_id, package_source, to_dns_label
    from xplane.oci.transport import RetryPolicy
