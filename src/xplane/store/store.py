"""The store's public face: :class:`Store` opens the state database and offers the API server's verbs.

Objects go in and come out as plain dicts, the shape ``kubectl get -o yaml`` shows. A kind argument
is a :class:`~xplane.store.scheme.Kind` or any name kubectl accepts for it (``configurations``,
``configuration``, ``Configuration``, ``configurations.pkg.crossplane.io``, ``xrd``). Every write is
one transaction; :meth:`Store.batch` makes several writes one (one commit, all or nothing).

One ``Store`` may be used from several threads (a lock serialises its connection); several
processes may open the same file at once (SQLite WAL: readers never wait, writers take turns).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from xplane.store import events as _events
from xplane.store import gc, objects
from xplane.store import watch as _watch
from xplane.store.db import Database, open_connection, state_path
from xplane.store.errors import BadRequestError, ConflictError, InvalidError, NotFoundError, UnknownKindError
from xplane.store.rows import Admission, Core, decode, no_gc
from xplane.store.scheme import CROSSPLANE_NAMESPACE, EVENT_KIND, Kind, Scheme
from xplane.store.selectors import Selector
from xplane.store.validation import object_name

log = logging.getLogger(__name__)

CRD_RESOURCE = "customresourcedefinitions.apiextensions.k8s.io"
KindRef = Kind | str
Objects = list[dict[str, Any]]
Changes = list[_watch.Change]
Resources = list[str] | None
Problems = list[str]


class ObjectList(list[dict[str, Any]]):
    """The objects a :meth:`Store.list` found, with the store's ``resource_version`` at that moment
    (watch from it to miss nothing)."""

    resource_version: str = "0"


class Store:
    """A Kubernetes-shaped object store in one SQLite file. Open with :meth:`Store.open`."""

    def __init__(self, db: Database, core: Core) -> None:
        self._db = db
        self._core = core

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        create: bool = True,
        synchronous: str = "NORMAL",
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        default_namespace: str = CROSSPLANE_NAMESPACE,
        change_log_size: int = 10_000,
        events_per_object: int = 100,
        events_total: int = 10_000,
        admission: Admission | None = None,
        scheme: Scheme | None = None,
    ) -> Store:
        """Open (creating it unless ``create=False``) the state database.

        ``path`` defaults to ``state_path(home)``: ``$XPLANE_HOME/state.db``, else
        ``$XDG_DATA_HOME/xplane/state.db``. ``default_namespace`` is where namespaced objects without
        ``metadata.namespace`` go (Crossplane's namespace, where ``packagePullSecrets`` are looked up).
        ``synchronous``: ``NORMAL`` or ``FULL`` (see :mod:`xplane.store.db`). ``admission``: a hook
        that may default or refuse every object before it is written (:data:`~xplane.store.rows.Admission`).
        """
        where = Path(path) if path is not None else state_path(home)
        conn = open_connection(where, create=create, synchronous=synchronous, busy_timeout=busy_timeout)
        db = Database(conn, where)
        core = Core(
            db,
            (scheme or Scheme()).copy(),
            clock=clock,
            default_namespace=default_namespace,
            change_log_size=change_log_size,
            events_per_object=events_per_object,
            events_total=events_total,
            admission=admission,
        )
        return cls(db, core)

    # plumbing ----------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    @property
    def scheme(self) -> Scheme:
        """This store's kind table (built-ins, registered kinds, kinds of stored CRDs once looked up)."""
        return self._core.scheme

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[Store]:
        """Make every write inside the block one transaction: committed at the end, rolled back on an
        exception. A write that raises inside the block is undone alone (the others stay)."""
        with self._db.write():
            yield self

    def register(self, kind: Kind) -> None:
        """Add a kind to this store's scheme (in this process; stored CRDs are found by every process)."""
        self._core.scheme.register(kind)

    def _load_crd_kinds(self) -> bool:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT api_version, kind, metadata, spec, extra, status FROM objects WHERE resource = ?",
                (CRD_RESOURCE,),
            ).fetchall()
        added = False
        for r in rows:
            try:
                kind = Kind.from_crd(decode(r))
            except InvalidError as e:
                log.warning("skipping a stored CustomResourceDefinition: %s", e)
                continue
            if self._core.scheme.get(kind.group, kind.kind) != kind:
                self._core.scheme.register(kind)
                added = True
        return added

    def resolve(self, name: str) -> tuple[Kind, ...]:
        """Every kind ``name`` stands for as kubectl resolves it (a category such as ``pkg`` gives several)."""
        try:
            return self._core.scheme.resolve(name)
        except UnknownKindError:
            if not self._load_crd_kinds():
                raise
            return self._core.scheme.resolve(name)

    def kind(self, ref: KindRef) -> Kind:
        """The one kind ``ref`` names (a :class:`Kind` is returned as is)."""
        if isinstance(ref, Kind):
            return ref
        try:
            return self._core.scheme.lookup(ref)
        except UnknownKindError:
            if not self._load_crd_kinds():
                raise
            return self._core.scheme.lookup(ref)

    def kind_of(self, obj: Mapping[str, Any]) -> Kind:
        """The kind of an object dict, from its ``apiVersion`` and ``kind``."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
            causes = [
                f"{k}: Required value" for k, v in (("apiVersion", api_version), ("kind", kind)) if not v
            ]
            raise InvalidError("Object", object_name(obj), causes or ["apiVersion, kind: must be strings"])
        try:
            return self._core.scheme.for_object(api_version, kind)
        except UnknownKindError:
            if not self._load_crd_kinds():
                raise
            return self._core.scheme.for_object(api_version, kind)

    def _namespace(self, kind: Kind, namespace: str | None) -> str:
        if not kind.namespaced:
            return ""
        return namespace or self._core.default_namespace

    def _writable(self, obj: Mapping[str, Any]) -> Kind:
        if not isinstance(obj, Mapping):
            raise InvalidError("Object", "", ["must be a JSON object"])
        kind = self.kind_of(obj)
        if kind == EVENT_KIND:
            raise BadRequestError("events are recorded with record_event(), not written as objects")
        return kind

    def _after_write(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        if kind.resource == CRD_RESOURCE:
            try:
                self._core.scheme.register(Kind.from_crd(obj))
            except InvalidError as e:
                log.warning("a stored CustomResourceDefinition defines no usable kind: %s", e)
        return obj

    # objects -----------------------------------------------------------------------------------

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new object; returns it as stored (uid, resourceVersion, generation, creationTimestamp).

        Raises :class:`AlreadyExistsError`, :class:`InvalidError`, :class:`UnknownKindError`.
        """
        kind = self._writable(obj)
        return self._after_write(kind, objects.create(self._core, kind, obj))

    def get(self, kind: KindRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        """One object; :class:`NotFoundError` (``configurations.pkg.crossplane.io "x" not found``) if absent.

        ``namespace`` defaults to the store's default namespace for namespaced kinds.
        """
        k = self.kind(kind)
        ns = self._namespace(k, namespace)
        if k == EVENT_KIND:
            return _events.get_event(self._core, name, namespace or _events.DEFAULT_NAMESPACE)
        with self._db.read():
            row = self._core.select(k.resource, ns, name)
        if row is None:
            raise NotFoundError(k.resource, name, ns or None)
        return row.to_object()

    def try_get(self, kind: KindRef, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Like :meth:`get`, but None when the object does not exist."""
        try:
            return self.get(kind, name, namespace)
        except NotFoundError:
            return None

    def list(
        self, kind: KindRef, *, namespace: str | None = None, selector: str | Selector | None = None
    ) -> ObjectList:
        """Objects of one kind, by namespace then name (``namespace=None``: every namespace).

        ``selector`` is a label selector in kubectl's syntax (``a=b,c in (d),!e``) or a :class:`Selector`;
        a bad one raises :class:`InvalidSelectorError`.
        """
        k = self.kind(kind)
        sel = Selector.parse(selector) if isinstance(selector, str) else selector
        if k == EVENT_KIND:
            out = ObjectList(_events.list_events(self._core, namespace))
            out[:] = [e for e in out if sel is None or sel.matches(e["metadata"].get("labels"))]
            out.resource_version = self.resource_version
            return out
        sql = "SELECT api_version, kind, metadata, spec, extra, status FROM objects WHERE resource = ?"
        args: list[Any] = [k.resource]
        if k.namespaced and namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        for key, values in sel.equalities() if sel is not None else ():
            marks = ",".join("?" * len(values))
            sql += f" AND id IN (SELECT object_id FROM labels WHERE key = ? AND value IN ({marks}))"
            args += [key, *values]
        sql += " ORDER BY namespace, name"
        with self._db.read() as conn:
            rows = conn.execute(sql, args).fetchall()
            rv = conn.execute("SELECT value FROM state WHERE key = 'rv'").fetchone()[0]
        with no_gc():
            out = ObjectList(decode(r) for r in rows)
        if sel is not None and not sel.empty:
            out[:] = [o for o in out if sel.matches(o["metadata"].get("labels"))]
        out.resource_version = str(rv)
        return out

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object (not its status, for kinds with a status subresource).

        ``metadata.resourceVersion`` is required and must be the stored one, else
        :class:`ConflictError`: re-read, re-apply the change, retry. A write that changes nothing
        returns the stored object untouched.
        """
        kind = self._writable(obj)
        return self._after_write(kind, objects.update(self._core, kind, obj, mode="update"))

    def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace only ``status`` (the status subresource); ``metadata.generation`` never moves.

        ``metadata.resourceVersion`` is required, as for :meth:`update`.
        """
        kind = self._writable(obj)
        return objects.update(self._core, kind, obj, mode="status")

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create the object, or make the stored one what ``obj`` says, without a resourceVersion.

        Replaced: every field outside ``metadata`` and ``status``, ``labels`` and ``annotations``
        (absent means none). Kept unless ``obj`` has them: ``finalizers`` and ``ownerReferences``
        (controllers own those). ``status`` is kept for kinds with a status subresource. A
        ``resourceVersion`` or ``uid`` in ``obj`` is still checked. Atomic: the read and the write
        are one transaction.
        """
        kind = self._writable(obj)
        return self._after_write(kind, objects.update(self._core, kind, obj, mode="apply"))

    def modify(
        self,
        kind: KindRef,
        name: str,
        fn: Callable[[dict[str, Any]], object],
        *,
        namespace: str | None = None,
        status: bool = False,
    ) -> dict[str, Any]:
        """Read an object, change it in place with ``fn`` (its return value is ignored), write it back: one
        transaction, so no :class:`ConflictError`. ``status=True`` writes through the status
        subresource. ``fn`` runs holding the write lock: keep it short and do not call the store."""
        k = self.kind(kind)
        written = objects.modify(self._core, k, name, self._namespace(k, namespace), fn, status=status)
        return written if status else self._after_write(k, written)

    def delete(
        self,
        kind: KindRef,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        resource_version: str | int | None = None,
        uid: str | None = None,
    ) -> dict[str, Any] | None:
        """Delete an object: the object (with ``deletionTimestamp``) while finalizers keep it, else None.

        ``propagation``: ``Background``, ``Foreground`` or ``Orphan`` (:mod:`xplane.store.gc`).
        ``resource_version``/``uid`` are preconditions (:class:`ConflictError`).
        """
        k = self.kind(kind)
        if k == EVENT_KIND:
            raise BadRequestError("events are not deleted one by one; they expire (see xplane.store.events)")
        ns = self._namespace(k, namespace)
        with self._db.write():
            row = self._core.select(k.resource, ns, name)
            if row is None:
                raise NotFoundError(k.resource, name, ns or None)
            if resource_version is not None and str(resource_version) != str(row.rv):
                raise ConflictError(k.resource, name, ns or None)
            if uid is not None and uid != row.uid:
                raise ConflictError(
                    k.resource,
                    name,
                    ns or None,
                    detail=f"Precondition failed: UID in precondition: {uid}, UID in object meta: {row.uid}",
                )
            return gc.delete(self._core, row, propagation)

    def dependents(self, owner: str | Mapping[str, Any]) -> Objects:
        """Objects whose ``ownerReferences`` name ``owner`` (a uid, or an object dict)."""
        uid = owner if isinstance(owner, str) else str((owner.get("metadata") or {}).get("uid", ""))
        with self._db.read():
            rows = [self._core.by_id(i) for i in self._core.dependent_ids(uid)]
        return [r.to_object() for r in rows if r is not None]

    def collect_garbage(self) -> int:
        """A full garbage-collection sweep (deletes dependents whose owners are all gone, drops
        references to absent owners, finishes foreground deletions); returns objects changed."""
        with self._db.write():
            return gc.collect(self._core)

    # watch -------------------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The newest resource version the store handed out (watch from here to see only what comes next)."""
        return str(self._db.current_rv())

    def _resources(self, kinds: Collection[KindRef] | None) -> Resources:
        return None if kinds is None else [self.kind(k).resource for k in kinds]

    def changes_since(
        self, since: int | str, *, kinds: Collection[KindRef] | None = None, limit: int | None = None
    ) -> Changes:
        """Changes after resource version ``since``, oldest first; :class:`GoneError` if compacted away."""
        return _watch.changes_since(self._core, since, resources=self._resources(kinds), limit=limit)

    def watch(
        self,
        since: int | str,
        timeout: float | None = None,
        *,
        kinds: Collection[KindRef] | None = None,
        stop: Any = None,
    ) -> Changes:
        """Block until there are changes after ``since`` (any process's), or ``timeout`` seconds pass
        (then ``[]``), or ``stop`` (a ``threading.Event``) is set. Polls cheaply; see :mod:`xplane.store.watch`."""
        return _watch.watch(self._core, since, timeout, resources=self._resources(kinds), stop=stop)

    # events ------------------------------------------------------------------------------------

    def record_event(
        self, involved: Mapping[str, Any], type: str, reason: str, message: str, *, source: str = "xplane"
    ) -> dict[str, Any]:
        """Record an event about an object (``type``: ``Normal`` or ``Warning``); a repeat of the same
        event increments its ``count``. ``source`` is the reporting component
        (Crossplane's: ``packages/configuration.pkg.crossplane.io``)."""
        return _events.record(self._core, involved, type, reason, message, source=source)

    def events_for(self, involved: Mapping[str, Any]) -> Objects:
        """The events about one object (what ``describe`` shows), oldest first."""
        return _events.events_for(self._core, involved)

    # health ------------------------------------------------------------------------------------

    def verify(self) -> Problems:
        """Check the database and the store's invariants; returns the problems (empty: healthy).

        SQLite's ``integrity_check``; every object's resourceVersion within the store's; metadata,
        label and owner indexes agreeing with the objects; the change log within bounds.
        """
        problems: list[str] = []
        with self._db.read() as conn:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems += [f"integrity_check: {r}" for r in result]
            (store_rv,) = conn.execute("SELECT value FROM state WHERE key = 'rv'").fetchone()
            (compacted,) = conn.execute("SELECT value FROM state WHERE key = 'compacted'").fetchone()
            labels: set[tuple[str, str, int]] = set(conn.execute("SELECT key, value, object_id FROM labels"))
            owners: set[tuple[str, int]] = set(conn.execute("SELECT owner_uid, object_id FROM owners"))
            want_labels: set[tuple[str, str, int]] = set()
            want_owners: set[tuple[str, int]] = set()
            for r in conn.execute("SELECT id, resource, namespace, name, rv, metadata FROM objects"):
                object_id, resource, ns, name, rv, meta_text = r
                meta = orjson.loads(meta_text)
                where = f"{resource} {ns + '/' if ns else ''}{name}"
                if rv > store_rv:
                    problems.append(f"{where}: resourceVersion {rv} is above the store's {store_rv}")
                if meta.get("resourceVersion") != str(rv) or meta.get("name") != name:
                    problems.append(f"{where}: metadata disagrees with its row")
                want_labels |= {(k, v, object_id) for k, v in (meta.get("labels") or {}).items()}
                want_owners |= {(o["uid"], object_id) for o in meta.get("ownerReferences") or []}
            if labels != want_labels:
                problems.append(f"label index: {len(labels ^ want_labels)} entries disagree with the objects")
            if owners != want_owners:
                problems.append(f"owner index: {len(owners ^ want_owners)} entries disagree with the objects")
            (top,) = conn.execute("SELECT coalesce(max(rv), 0) FROM changes").fetchone()
            (bottom,) = conn.execute("SELECT coalesce(min(rv), 0) FROM changes").fetchone()
            if top > store_rv:
                problems.append(f"change log: resourceVersion {top} is above the store's {store_rv}")
            if bottom and bottom <= compacted:
                problems.append(
                    f"change log: resourceVersion {bottom} should have been compacted (at {compacted})"
                )
            (event_rv,) = conn.execute("SELECT coalesce(max(rv), 0) FROM events").fetchone()
            if event_rv > store_rv:
                problems.append(f"events: resourceVersion {event_rv} is above the store's {store_rv}")
        return problems


__all__ = ["KindRef", "ObjectList", "Store"]
