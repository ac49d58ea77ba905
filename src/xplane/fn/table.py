"""The table of loaded functions of a runner: which functions serve calls, and how they reload.

:class:`FunctionTable` takes snapshots from a :class:`~xplane.fn.sources.FunctionSource` (where
function bundles come from: a directory, a Secret volume or an HTTP bundle; see
:mod:`xplane.fn.sources`), loads them with ``xplane.fn.loader.discover`` and swaps functions in
without dropping calls: a replaced function is *retired* and closed only when its last in-flight
call has finished, and the source then removes the snapshots no function uses any more. A function
that fails to load is reported; the rest keep serving, and a function that breaks on reload keeps
serving its previous version (marked stale) until it loads again.

(Not a "registry": in xplane that word means an OCI registry, :mod:`xplane.oci`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.fn.sources import FunctionSource, FunctionSourceError, Snapshot, tree_fingerprint

if TYPE_CHECKING:
    from xplane.fn.base import Function
    from xplane.fn.router import CallPlan

__all__ = ["CheckFn", "DiscoverFn", "FunctionTable", "LoadedFunction"]

log = logging.getLogger(__name__)

#: ``discover(root)``: every function under a snapshot's root, by name: the function, or why it did not load.
DiscoverFn = Callable[[Path], Mapping[str, "Function | BaseException"]]
#: ``check(candidates, current)``: the functions a reload would serve and those serving now (name ->
#: function); returns an error per function that must not load (e.g. a port conflict).
CheckFn = Callable[[Mapping[str, "Function"], Mapping[str, "Function"]], Mapping[str, str]]


@dataclass(eq=False)
class LoadedFunction:
    """One function serving calls, with its in-flight count."""

    function: Function
    source: str
    snapshot: Snapshot
    fingerprint: str
    loaded_at: float = field(default_factory=time.time)
    inflight: int = 0
    retired: bool = False
    closed: bool = False
    #: What the router works out once per function for its calls (timeout, entry point, metrics).
    plan: CallPlan | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The function's name (what routing matches)."""
        return self.function.name


class FunctionTable:
    """The loaded functions of one runner; loads, reloads and retires them."""

    def __init__(
        self, source: FunctionSource, *, discover: DiscoverFn | None = None, check: CheckFn | None = None
    ) -> None:
        self.source = source
        self._discover = discover
        #: Rejects functions that loaded but conflict with the rest (see :data:`CheckFn`).
        self.check = check
        #: Awaited after every look at the source, with whether the set of functions changed.
        self.after_refresh: Callable[[bool], Awaitable[None]] | None = None
        #: Extra ``/functions`` fields for a function name (e.g. its gRPC port).
        self.status_extra: Callable[[str], Mapping[str, Any]] | None = None
        self.functions: dict[str, LoadedFunction] = {}
        self.errors: dict[str, str] = {}
        self.source_error: str | None = None
        self.snapshot: Snapshot | None = None
        self.loaded_once = False
        self.reloads = 0
        self._single: LoadedFunction | None = None
        self._retired: set[LoadedFunction] = set()
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    # -- lookups (hot path: plain dict access) -------------------------------------------------
    def get(self, name: str) -> LoadedFunction | None:
        """The function called ``name``, if loaded."""
        return self.functions.get(name)

    def names(self) -> list[str]:
        """Names of the functions serving calls, sorted."""
        return sorted(self.functions)

    @property
    def single(self) -> LoadedFunction | None:
        """The function every call goes to when exactly one is loaded, else ``None``."""
        return self._single

    def _loaded_changed(self) -> None:
        functions = self.functions
        self._single = next(iter(functions.values())) if len(functions) == 1 else None

    @staticmethod
    def acquire(entry: LoadedFunction) -> None:
        """Hold ``entry`` for one call; pair with :meth:`release` (a plain counter, no context manager)."""
        entry.inflight += 1

    def release(self, entry: LoadedFunction) -> None:
        """End a call held by :meth:`acquire`; a retired entry closes after its last call."""
        entry.inflight -= 1
        if entry.retired and entry.inflight == 0:
            self._schedule_close(entry)

    @contextlib.contextmanager
    def using(self, entry: LoadedFunction) -> Iterator[Function]:
        """Hold ``entry`` for the length of a ``with`` block (callers off the hot path)."""
        self.acquire(entry)
        try:
            yield entry.function
        finally:
            self.release(entry)

    # -- loading ---------------------------------------------------------------------------------
    def _discover_fn(self) -> DiscoverFn:
        if self._discover is None:
            from xplane.fn.loader import discover

            self._discover = discover
        return self._discover

    async def refresh(self) -> bool:
        """Look at the source; load what changed. Returns whether the set of functions changed."""
        async with self._lock:
            changed = await self._refresh()
            hook = self.after_refresh
            if hook is not None:
                try:
                    await hook(changed)
                except Exception:  # a hook bug must not stop reloading
                    log.exception("after-refresh hook failed")
            return changed

    async def _refresh(self) -> bool:
        try:
            snapshot = await asyncio.to_thread(self.source.poll, self.snapshot)
        except FunctionSourceError as e:
            if self.source_error != str(e):
                log.error(
                    "cannot read functions",
                    extra={"fields": {"source": self.source.describe(), "error": str(e)}},
                )
            self.source_error = str(e)
            self.loaded_once = True
            return False
        self.source_error = None
        if snapshot is None:
            self.loaded_once = True
            return False
        changed = await self._load_snapshot(snapshot)
        self.loaded_once = True
        return changed

    async def _load_snapshot(self, snapshot: Snapshot) -> bool:
        discover = self._discover_fn()
        try:
            found = await asyncio.to_thread(discover, snapshot.root)
        except Exception as e:  # a loader bug must not take the runner down
            log.exception("loading functions failed", extra={"fields": {"root": str(snapshot.root)}})
            self.source_error = f"loading {snapshot.root} failed: {e}"
            return False
        previous = self.snapshot
        self.snapshot = snapshot
        first = previous is None
        changed = False
        errors: dict[str, str] = {}
        seen: set[str] = set()
        fresh: dict[str, tuple[Function, str]] = {}
        for name, item in found.items():
            seen.add(name)
            if isinstance(item, BaseException):
                errors[name] = str(item)
                log.error("function failed to load", extra={"fields": {"function": name, "error": str(item)}})
                continue
            fingerprint = await asyncio.to_thread(_fingerprint, item)
            old = self.functions.get(name)
            if old is not None and old.fingerprint == fingerprint and old.snapshot.root == snapshot.root:
                await _close_quietly(item)  # unchanged: keep the instance that is already serving
                continue
            fresh[name] = (item, fingerprint)
        for name, message in self._rejected(seen, fresh).items():
            errors[name] = message
            log.error("function failed to load", extra={"fields": {"function": name, "error": message}})
            if name in fresh:
                await _close_quietly(fresh.pop(name)[0])
        for name, (item, fingerprint) in fresh.items():
            old = self.functions.get(name)
            self.functions[name] = LoadedFunction(item, self.source.describe(), snapshot, fingerprint)
            changed = True
            log.info(
                "function loaded" if old is None else "function reloaded",
                extra={"fields": {"function": name, "kind": item.spec.kind, "version": item.version}},
            )
            if old is not None:
                self._retire(old)
        for name in [n for n in self.functions if n not in seen]:
            log.info("function removed", extra={"fields": {"function": name}})
            self._retire(self.functions.pop(name))
            changed = True
        for name in errors:
            if name in self.functions:  # broken on reload: the previous version keeps serving
                errors[name] += " (serving the previous version)"
        self._loaded_changed()
        self.errors = errors
        if not first:
            self.reloads += 1
        self._prune_snapshots()
        return changed

    def _rejected(self, seen: set[str], fresh: Mapping[str, tuple[Function, str]]) -> dict[str, str]:
        """Run :attr:`check` until stable: a rejected function falls back to its previous version."""
        check = self.check
        if check is None:
            return {}
        current = {name: entry.function for name, entry in self.functions.items()}
        rejected: dict[str, str] = {}
        while True:
            candidates: dict[str, Function] = {}
            for name in seen:
                if name in fresh and name not in rejected:
                    candidates[name] = fresh[name][0]
                elif name in current:
                    candidates[name] = current[name]
            new = {n: m for n, m in check(candidates, current).items() if n not in rejected}
            if not new:
                return rejected
            rejected.update(new)

    def _retire(self, entry: LoadedFunction) -> None:
        entry.retired = True
        self._retired.add(entry)
        if entry.inflight == 0:
            self._schedule_close(entry)

    def _schedule_close(self, entry: LoadedFunction) -> None:
        if entry.closed:
            return
        entry.closed = True
        task = asyncio.get_running_loop().create_task(self._close_entry(entry))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_entry(self, entry: LoadedFunction) -> None:
        await _close_quietly(entry.function)
        self._retired.discard(entry)
        self._prune_snapshots()

    def _prune_snapshots(self) -> None:
        live = {e.snapshot for e in self.functions.values()} | {e.snapshot for e in self._retired}
        if self.snapshot is not None:
            live.add(self.snapshot)
        self.source.prune(live)

    async def watch(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # keep watching; the next poll may succeed
                log.exception("reloading functions failed")

    async def close(self) -> None:
        """Close every function (waiting for in-flight calls is the server's job) and the source."""
        for entry in list(self.functions.values()):
            self._retire(entry)
        self.functions.clear()
        self._loaded_changed()
        for entry in list(self._retired):
            if not entry.closed:
                entry.closed = True
                await _close_quietly(entry.function)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await asyncio.to_thread(self.source.close)

    def status(self) -> list[dict[str, Any]]:
        """What ``/functions`` shows: each function (or load error), its kind, origin and version."""
        out: list[dict[str, Any]] = []
        for name in sorted(set(self.functions) | set(self.errors)):
            entry = self.functions.get(name)
            item: dict[str, Any] = {"name": name}
            if entry is not None:
                fn = entry.function
                item.update(
                    {
                        "status": "stale" if name in self.errors else "ready",
                        "kind": fn.spec.kind,
                        "source": entry.source,
                        "path": str(fn.spec.path),
                        "version": fn.version,
                        "loadedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.loaded_at)),
                        "inflight": entry.inflight,
                    }
                )
                item.update(fn.status())  # the kind's own details (e.g. its worker process)
            else:
                item.update({"status": "error", "source": self.source.describe()})
            if name in self.errors:
                item["error"] = self.errors[name]
            if self.status_extra is not None:
                item.update(self.status_extra(name))
            out.append(item)
        return out


def _fingerprint(fn: Function) -> str:
    """What changes when the function's files do: its version and its files' sizes and mtimes."""
    version = fn.version or ""
    path = fn.spec.path
    if path.is_dir():
        return f"{version}:{tree_fingerprint(path)}"
    try:
        st = path.stat()
    except OSError:
        return f"version:{version}"
    return f"{version}:{st.st_size}:{st.st_mtime_ns}"


async def _close_quietly(fn: Function) -> None:
    try:
        await fn.close()
    except Exception:
        log.warning("closing a function failed", exc_info=True, extra={"fields": {"function": fn.name}})
