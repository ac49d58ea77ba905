"""Fetching a package for the manager and revision reconcilers: upstream's ``xpkg.Client.Get`` (§5.1),
offline-first.

The pull-policy decision belongs to :func:`xplane.oci.pull`: ``IfNotPresent`` answers a cached tag
or digest with no registry call, ``Never`` works fully offline (tags, digests and names a package
was loaded under, such as ``platform-ref-aws``), ``Always`` re-resolves the tag. ImageConfig
rewrites and pull secrets apply first. Pull Secrets are read from the store (namespace
``crossplane-system``) only when a registry must be contacted, and go first in the credential chain.

One :class:`Fetcher` serves one ``ControlPlane.reconcile()``: a reference is fetched at most once per
call (``reset()`` starts the next), so ``Always`` contacts the registry once per reconcile, not once
per pass, and an unreachable registry is not retried in a tight loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xplane.oci import Keychain, PullPolicy, RegistryClient, pull
from xplane.pkg import imageconfig
from xplane.pkg.errors import PullSecretError
from xplane.pkg.names import CEL_MESSAGE, fully_qualified, identifier_of, kind_named, secret_kind, source_of
from xplane.xpkg import Package, read_image_package

if TYPE_CHECKING:
    from xplane.oci import ImageCache
    from xplane.pkg.settings import ControlPlaneSettings
    from xplane.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedPackage:
    """A package read for a reconcile, with where it came from."""

    package: Package
    digest: str  # what the reference resolved to (the index digest of a multi-platform package)
    source: str  # the original reference without its tag or digest, as written
    version: str  # the original reference's tag or digest
    resolved: str  # the reference pulled (after an ImageConfig rewrite), as written
    applied_image_configs: tuple[dict[str, str], ...]
    warnings: tuple[str, ...] = ()


class Fetcher:
    """Fetches packages with a pull policy, ImageConfigs and pull Secrets from the store."""

    def __init__(self, store: Store, settings: ControlPlaneSettings, cache: ImageCache | None = None) -> None:
        self._store = store
        self._settings = settings
        self._cache = cache or settings.image_cache()
        self._memo: dict[tuple[str, tuple[str, ...], str], FetchedPackage | BaseException] = {}
        self._lock = threading.Lock()
        self.epoch = 0  # counts reset()s: what else is remembered "for one reconcile" keys on it

    def reset(self) -> None:
        """Forget what was fetched (the next reconcile fetches again)."""
        with self._lock:
            self._memo.clear()
            self.epoch += 1

    def get(self, ref: str, pull_secrets: Sequence[str] = (), policy: str = "IfNotPresent") -> FetchedPackage:
        """Fetch the package ``ref`` names; raises the pull's error (an :class:`~xplane.errors.XplaneError`)."""
        key = (ref, tuple(pull_secrets), policy)
        with self._lock:
            hit = self._memo.get(key)
        if isinstance(hit, BaseException):
            raise hit
        if hit is not None:
            return hit
        try:
            out: FetchedPackage | BaseException = self._get(ref, pull_secrets, policy)
        except Exception as e:  # remembered for this reconcile, then raised
            out = e
        with self._lock:
            self._memo[key] = out
        if isinstance(out, BaseException):
            raise out
        return out

    def _get(self, ref: str, pull_secrets: Sequence[str], policy: str) -> FetchedPackage:
        configs: list[Mapping[str, Any]] = list(self._store.list(kind_named(self._store, "ImageConfig")))
        applied = imageconfig.apply(configs, ref)
        names = [*pull_secrets, *([applied.pull_secret] if applied.pull_secret else [])]

        def client_factory() -> RegistryClient:  # only when a registry must be contacted
            return self._settings.make_client(self._keychain(names))

        image = pull(
            applied.resolved,
            policy=PullPolicy.parse(policy or "IfNotPresent"),
            cache=self._cache,
            client_factory=client_factory,
            platform=self._settings.platform,
        )
        package = read_image_package(image, source=ref)
        warnings: tuple[str, ...] = ()
        if not fully_qualified(ref):
            warnings = (
                f"spec.package {ref!r} is not a fully qualified reference: Crossplane would reject it "
                f"({CEL_MESSAGE.rstrip('.')}); xplane installed it from {image.reference.name}@{image.digest}",
            )
        return FetchedPackage(
            package=package,
            digest=image.digest,
            source=source_of(ref),
            version=identifier_of(ref),
            resolved=applied.resolved,
            applied_image_configs=applied.refs,
            warnings=warnings,
        )

    def _keychain(self, names: Sequence[str]) -> Keychain:
        ns = self._settings.namespace
        secrets: list[Mapping[str, Any]] = []
        for name in names:
            secret = self._store.try_get(secret_kind(self._store), name, ns)
            if secret is None:
                raise PullSecretError(
                    f'cannot get pull secret {ns}/{name}: secrets "{name}" not found',
                    hint=f"create it: xp create secret docker-registry {name} --docker-server REGISTRY "
                    "--docker-username USER --docker-password-stdin",
                )
            secrets.append(secret)
        return self._settings.keychain(secrets)
