"""Listing a dependency's versions: registry tags, concurrently, cached with a TTL, ImageConfig-aware.

Upstream lists tags through ``ListVersions`` after the ImageConfig rewrite (spec/packages.md §6.3
step 7). xplane lists every source a resolution needs at once (a thread each, bounded), keeps
each list for ``ttl`` seconds (shared by every reconcile of one control plane) and, when the
registry cannot be reached, falls back to the tags the image cache holds for the repository, so a
graph whose every version is cached resolves offline. A listing that fails is remembered until
:meth:`TagLister.forget_failures` (the Lock side calls it once per reconcile), so the passes of one
reconcile do not each retry an unreachable registry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from xplane.errors import XplaneError
from xplane.oci import Reference
from xplane.pkg import imageconfig
from xplane.pkg.names import kind_named, secret_kind

if TYPE_CHECKING:
    from xplane.oci import ImageCache
    from xplane.pkg.settings import ControlPlaneSettings
    from xplane.store import Store

log = logging.getLogger(__name__)

DEFAULT_TTL = 300.0
MAX_WORKERS = 8


class TagListError(XplaneError):
    """The tags of a dependency's repository could not be listed (and none are cached)."""


class TagLister:
    """Lists (and caches) the tags of package sources for the resolver."""

    def __init__(
        self,
        store: Store,
        settings: ControlPlaneSettings,
        cache: ImageCache | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._settings = settings
        self._cache = cache or settings.image_cache()
        self._ttl = ttl
        self._clock = clock
        self._memo: dict[tuple[str, tuple[str, ...]], tuple[float, list[str]]] = {}
        self._failed: dict[tuple[str, tuple[str, ...]], TagListError] = {}
        self._lock = threading.Lock()
        self.registry_calls = 0

    def list_many(self, wanted: Mapping[str, Sequence[str]]) -> dict[str, list[str] | TagListError]:
        """Tags of every source in ``wanted`` (source -> pull Secret names), listed concurrently."""
        out: dict[str, list[str] | TagListError] = {}
        todo = list(wanted.items())
        if len(todo) <= 1:
            for source, secrets in todo:
                out[source] = self._try(source, secrets)
            return out
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(todo))) as pool:
            futures = {source: pool.submit(self._try, source, secrets) for source, secrets in todo}
            for source, fut in futures.items():
                out[source] = fut.result()
        return out

    def _try(self, source: str, secrets: Sequence[str]) -> list[str] | TagListError:
        try:
            return self.tags(source, secrets)
        except TagListError as e:
            return e

    def tags(self, source: str, pull_secrets: Sequence[str] = ()) -> list[str]:
        """Every tag of ``source`` (after an ImageConfig rewrite); raise :class:`TagListError`."""
        key = (source, tuple(pull_secrets))
        now = self._clock()
        with self._lock:
            hit = self._memo.get(key)
            failed = self._failed.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        if failed is not None:
            raise failed
        try:
            tags = self._list(source, pull_secrets)
        except TagListError as e:
            with self._lock:
                self._failed[key] = e
            raise
        with self._lock:
            self._memo[key] = (now, tags)
        return tags

    def forget(self) -> None:
        """Drop every cached list and failure (the next resolution lists again)."""
        with self._lock:
            self._memo.clear()
            self._failed.clear()

    def forget_failures(self) -> None:
        """Drop the remembered failures (a new reconcile tries those registries again)."""
        with self._lock:
            self._failed.clear()

    def _list(self, source: str, pull_secrets: Sequence[str]) -> list[str]:
        try:
            configs: list[Mapping[str, Any]] = list(self._store.list(kind_named(self._store, "ImageConfig")))
            applied = imageconfig.apply(configs, source)
            ref = Reference.parse(applied.resolved)
        except XplaneError as e:
            raise TagListError(f"cannot list versions of {source}: {e.message}") from e
        names = [*pull_secrets, *([applied.pull_secret] if applied.pull_secret else [])]
        try:
            client = self._settings.make_client(self._settings.keychain(self._secrets(names)))
            with self._lock:
                self.registry_calls += 1
            with client:
                return list(client.list_tags(ref))
        except XplaneError as e:
            cached = self.cached_tags(ref)
            if cached:
                log.info("%s: %s; using the %d cached tags", source, e.message, len(cached))
                return cached
            raise TagListError(f"cannot list versions of {source}: {e.message}") from e

    def cached_tags(self, ref: Reference) -> list[str]:
        """The tags the image cache holds for ``ref``'s repository."""
        return sorted({e.tag for e in self._cache.entries_for(ref) if e.tag})

    def _secrets(self, names: Iterable[str]) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        for name in names:
            secret = self._store.try_get(secret_kind(self._store), name, self._settings.namespace)
            if secret is not None:
                out.append(secret)
        return out
