"""What a control plane needs besides its store: the emulated Crossplane version, the image cache,
how registry clients are made, the namespace of pull Secrets, and a clock (fixed in tests)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xplane.oci import ImageCache, Keychain, RegistryClient, RegistryConfig

DEFAULT_CROSSPLANE_VERSION = "v2.3.4"
"""The current upstream release (spec/packages.md, "Sources": last release v2.3.4)."""

CROSSPLANE_NAMESPACE = "crossplane-system"

KeychainFactory = Callable[[Sequence[Mapping[str, Any]]], "Keychain"]
"""Makes the credential chain from the pull-secret Secret objects of one fetch."""
ClientFactory = Callable[["Keychain"], "RegistryClient"]
"""Makes a registry client with a keychain (called only when a registry must be contacted)."""


def _default_keychain(secrets: Sequence[Mapping[str, Any]]) -> Keychain:
    from xplane.oci import default_keychain

    return default_keychain(pull_secrets=secrets)


@dataclass(frozen=True)
class ControlPlaneSettings:
    """Settings of one embedded control plane (``ControlPlane(store, settings)``).

    ``registry_config``/``keychain``/``client_factory`` are the network seam: production uses the
    defaults (``RegistryConfig.load()``, the default credential chain with the package's pull
    Secrets first); tests pass a plain-HTTP configuration or a keychain that ignores the host's
    logins. ``clock`` returns seconds since the epoch (conditions' ``lastTransitionTime``).
    """

    crossplane_version: str = DEFAULT_CROSSPLANE_VERSION
    cache_dir: Path | None = None
    namespace: str = CROSSPLANE_NAMESPACE
    registry_config: Callable[[], RegistryConfig] | None = None
    keychain: KeychainFactory = _default_keychain
    client_factory: ClientFactory | None = None
    clock: Callable[[], float] = time.time
    max_passes: int = 25
    always_interval: float = 60.0
    """How often ``run`` re-checks packages with ``packagePullPolicy: Always`` (upstream: 1 minute)."""
    platform: str | None = None
    dependency_upgrades: bool = False
    """Upstream's ``--enable-dependency-version-upgrades``: installed dependencies move to the lowest
    version at or above theirs that every dependent accepts (spec/packages.md §6.4), graph-wide."""
    dependency_downgrades: bool = False
    """Upstream's ``--enable-dependency-version-downgrades`` (implies upgrades): when only lower
    versions satisfy every dependent, take the highest of them."""
    dependency_resolution: str = "graph"
    """``graph``: xplane's whole-graph resolver (every dependent's constraint counts); ``upstream``:
    Crossplane's own, one dependency per pass, the first dependent's constraint only (§6.3)."""
    tag_ttl: float = 300.0
    """How long a dependency's listed tags are reused before the registry is asked again (seconds)."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def image_cache(self) -> ImageCache:
        """The image cache packages are pulled into (``cache_dir`` or the user's default)."""
        from xplane.oci import ImageCache

        return ImageCache(self.cache_dir)

    def make_client(self, keychain: Keychain) -> RegistryClient:
        """A registry client for one fetch (``client_factory`` if given)."""
        if self.client_factory is not None:
            return self.client_factory(keychain)
        from xplane.oci import RegistryClient, RegistryConfig

        config = self.registry_config() if self.registry_config is not None else RegistryConfig.load()
        return RegistryClient(keychain=keychain, config=config)

    def now(self) -> str:
        """The clock's time as Kubernetes writes it (``2026-05-21T10:00:00Z``)."""
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
