"""Rows of the object table: encoding, the label and owner indexes, and the change log.

An object is stored in columns: ``metadata``, ``spec``, ``status`` and ``extra`` (every other
top-level field: a Secret's ``type``/``data``, a Lock's ``packages``), each a JSON text encoded by
``orjson`` with sorted keys. Sorted keys make equal values equal texts, so "did the spec change"
(``metadata.generation``) and "is this write a no-op" are text comparisons, and objects read back
with kubectl's key order. ``labels`` and ``owners`` index what selectors and the garbage collector
look up; ``changes`` is the bounded change log watchers read (:mod:`xplane.store.watch`).

Every object write takes the next store-wide resource version and appends one change, in the
caller's transaction.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from xplane.store.db import Database
from xplane.store.errors import InvalidError
from xplane.store.scheme import Kind, Scheme

_SORTED = orjson.OPT_SORT_KEYS
_loads = orjson.loads
COLUMNS = "id, resource, namespace, name, uid, rv, api_version, kind, metadata, spec, extra, status"
SECRETS = "secrets"

Admission = Callable[[Kind, dict[str, Any], "dict[str, Any] | None"], None]
"""``admit(kind, new, old)``: called in the write transaction with the object about to be written (a
copy it may change: defaults) and the stored one (None on create); raise
:class:`~xplane.store.errors.InvalidError` to refuse. Runs before the store's own checks."""


def dumps(value: Any, *, subject: str, name: str, path: str) -> str:
    """``value`` as sorted-key JSON text; a value JSON cannot hold is :class:`InvalidError` about
    ``subject`` (a ``Kind.group``) ``name`` at ``path``."""
    try:
        return orjson.dumps(value, option=_SORTED).decode()
    except (TypeError, orjson.JSONEncodeError) as e:
        raise InvalidError(subject, name, [f"{path}: Invalid value: not JSON ({e})"]) from None


def new_uid() -> str:
    """A random (version 4) UUID string, as the API server assigns ``metadata.uid``."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339(t: float) -> str:
    """``t`` (seconds since the epoch) as Kubernetes writes timestamps: ``2026-08-07T12:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class Row:
    """One stored object, metadata decoded, the rest as stored text."""

    id: int
    resource: str
    namespace: str
    name: str
    uid: str
    rv: int
    api_version: str
    kind: str
    metadata: dict[str, Any]
    spec: str | None
    extra: str | None
    status: str | None
    metadata_text: str

    @classmethod
    def of(cls, r: tuple[Any, ...]) -> Row:
        """A row from a ``SELECT COLUMNS`` tuple."""
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _loads(r[8]), r[9], r[10], r[11], r[8])

    @property
    def finalizers(self) -> list[str]:
        """``metadata.finalizers``."""
        return list(self.metadata.get("finalizers") or [])

    @property
    def owner_references(self) -> list[dict[str, Any]]:
        """``metadata.ownerReferences``."""
        return list(self.metadata.get("ownerReferences") or [])

    @property
    def deleting(self) -> bool:
        """Whether deletion was requested (``metadata.deletionTimestamp`` is set)."""
        return bool(self.metadata.get("deletionTimestamp"))

    def to_object(self) -> dict[str, Any]:
        """The object as the API returns it (freshly decoded: the caller may change it)."""
        return assemble(
            self.api_version, self.kind, _loads(self.metadata_text), self.spec, self.extra, self.status
        )


def assemble(
    api_version: str,
    kind: str,
    metadata: dict[str, Any],
    spec: str | None,
    extra: str | None,
    status: str | None,
) -> dict[str, Any]:
    """An object dict from decoded metadata and the stored texts."""
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if spec is not None:
        obj["spec"] = _loads(spec)
    if extra is not None:
        obj.update(_loads(extra))
    if status is not None:
        obj["status"] = _loads(status)
    return obj


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many (cycle-free) objects.

    Decoding 3,000 revisions allocates enough containers to trigger several collections that
    rescan the growing list: 31-38 ms with the collector, 24-26 ms without (bench/store_bench.py).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def decode(r: tuple[Any, ...]) -> dict[str, Any]:
    """An object dict straight from a ``(api_version, kind, metadata, spec, extra, status)`` tuple: the list fast path."""
    obj: dict[str, Any] = {"apiVersion": r[0], "kind": r[1], "metadata": _loads(r[2])}
    if r[3] is not None:
        obj["spec"] = _loads(r[3])
    if r[4] is not None:
        obj.update(_loads(r[4]))
    if r[5] is not None:
        obj["status"] = _loads(r[5])
    return obj


def _object_text(
    api_version: str, kind: str, meta: str, spec: str | None, extra: str | None, status: str | None
) -> str:
    parts = ['{"apiVersion":', orjson.dumps(api_version).decode(), ',"kind":', orjson.dumps(kind).decode()]
    parts += [',"metadata":', meta]
    if spec is not None:
        parts += [',"spec":', spec]
    if extra is not None and len(extra) > 2:
        parts += [",", extra[1:-1]]
    if status is not None:
        parts += [',"status":', status]
    parts.append("}")
    return "".join(parts)


class Core:
    """What every store operation shares: the database, the kind table, the clock and the limits."""

    def __init__(
        self,
        db: Database,
        scheme: Scheme,
        *,
        clock: Callable[[], float],
        default_namespace: str,
        change_log_size: int,
        events_per_object: int,
        events_total: int,
        admission: Admission | None,
    ) -> None:
        self.db = db
        self.scheme = scheme
        self.clock = clock
        self.default_namespace = default_namespace
        self.change_log_size = change_log_size
        self.events_per_object = events_per_object
        self.events_total = events_total
        self.admission = admission

    def now(self) -> str:
        """The clock's time as an RFC 3339 timestamp."""
        return rfc3339(self.clock())

    # reads -------------------------------------------------------------------------------------

    def select(self, resource: str, namespace: str, name: str) -> Row | None:
        """The stored row of one object, or None."""
        r = self.db.conn.execute(
            f"SELECT {COLUMNS} FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
            (resource, namespace, name),
        ).fetchone()
        return None if r is None else Row.of(r)

    def by_id(self, object_id: int) -> Row | None:
        """The stored row with this id, or None."""
        r = self.db.conn.execute(f"SELECT {COLUMNS} FROM objects WHERE id = ?", (object_id,)).fetchone()
        return None if r is None else Row.of(r)

    def by_uid(self, uid: str) -> Row | None:
        """The stored row with this uid, or None."""
        r = self.db.conn.execute(f"SELECT {COLUMNS} FROM objects WHERE uid = ?", (uid,)).fetchone()
        return None if r is None else Row.of(r)

    def dependent_ids(self, owner_uid: str) -> list[int]:
        """Ids of the objects whose ``ownerReferences`` name ``owner_uid``."""
        rows = self.db.conn.execute(
            "SELECT object_id FROM owners WHERE owner_uid = ? ORDER BY object_id", (owner_uid,)
        )
        return [r[0] for r in rows]

    # writes ------------------------------------------------------------------------------------

    def insert(
        self,
        kind: Kind,
        api_version: str,
        namespace: str,
        name: str,
        metadata: dict[str, Any],
        texts: tuple[str | None, str | None, str | None],
    ) -> dict[str, Any]:
        """Store a new object (``texts``: spec, extra, status); returns it as the API shows it."""
        conn = self.db.conn
        rv = self.db.next_rv()
        metadata["resourceVersion"] = str(rv)
        meta = dumps(metadata, subject=kind.group_kind, name=name, path="metadata")
        spec, extra, status = texts
        cur = conn.execute(
            "INSERT INTO objects (resource, namespace, name, uid, rv, api_version, kind, metadata, spec, extra, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kind.resource,
                namespace,
                name,
                metadata["uid"],
                rv,
                api_version,
                kind.kind,
                meta,
                spec,
                extra,
                status,
            ),
        )
        object_id = int(cur.lastrowid or 0)
        self._index(object_id, metadata, None)
        return self._log(
            rv, "ADDED", kind.resource, _object_text(api_version, kind.kind, meta, spec, extra, status)
        )

    def replace(
        self,
        row: Row,
        api_version: str,
        metadata: dict[str, Any],
        texts: tuple[str | None, str | None, str | None],
    ) -> dict[str, Any]:
        """Overwrite a stored object with a new version (a ``MODIFIED`` change)."""
        rv = self.db.next_rv()
        metadata["resourceVersion"] = str(rv)
        group = api_version.rpartition("/")[0]
        meta = dumps(
            metadata, subject=f"{row.kind}.{group}" if group else row.kind, name=row.name, path="metadata"
        )
        spec, extra, status = texts
        self.db.conn.execute(
            "UPDATE objects SET rv = ?, api_version = ?, metadata = ?, spec = ?, extra = ?, status = ? WHERE id = ?",
            (rv, api_version, meta, spec, extra, status, row.id),
        )
        self._index(row.id, metadata, row.metadata)
        return self._log(
            rv, "MODIFIED", row.resource, _object_text(api_version, row.kind, meta, spec, extra, status)
        )

    def remove(self, row: Row) -> dict[str, Any]:
        """Delete a stored object for good (a ``DELETED`` change carrying its last state)."""
        conn = self.db.conn
        rv = self.db.next_rv()
        conn.execute("DELETE FROM objects WHERE id = ?", (row.id,))
        conn.execute("DELETE FROM labels WHERE object_id = ?", (row.id,))
        conn.execute("DELETE FROM owners WHERE object_id = ?", (row.id,))
        metadata = dict(row.metadata, resourceVersion=str(rv))
        meta = orjson.dumps(metadata, option=_SORTED).decode()
        text = _object_text(row.api_version, row.kind, meta, row.spec, row.extra, row.status)
        return self._log(rv, "DELETED", row.resource, text)

    def _index(self, object_id: int, new: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        conn = self.db.conn
        labels = new.get("labels") or {}
        if old is None or labels != (old.get("labels") or {}):
            if old is not None:
                conn.execute("DELETE FROM labels WHERE object_id = ?", (object_id,))
            conn.executemany(
                "INSERT INTO labels (key, value, object_id) VALUES (?, ?, ?)",
                [(k, v, object_id) for k, v in labels.items()],
            )
        owners = {r["uid"] for r in new.get("ownerReferences") or []}
        if old is None or owners != {r["uid"] for r in old.get("ownerReferences") or []}:
            if old is not None:
                conn.execute("DELETE FROM owners WHERE object_id = ?", (object_id,))
            conn.executemany(
                "INSERT INTO owners (owner_uid, object_id) VALUES (?, ?)",
                [(u, object_id) for u in sorted(owners)],
            )

    def _log(self, rv: int, change: str, resource: str, text: str) -> dict[str, Any]:
        obj: dict[str, Any] = _loads(text)
        logged = text
        if resource == SECRETS and ("data" in obj):
            # The change log keeps no Secret data: watchers learn that a Secret changed and get it.
            logged = orjson.dumps({k: v for k, v in obj.items() if k != "data"}).decode()
        conn = self.db.conn
        conn.execute(
            "INSERT INTO changes (rv, type, resource, object) VALUES (?, ?, ?, ?)",
            (rv, change, resource, logged),
        )
        if rv % 64 == 0:
            self._compact(rv)
        return obj

    def _compact(self, rv: int) -> None:
        floor = rv - self.change_log_size
        if floor <= 0:
            return
        conn = self.db.conn
        (compacted,) = conn.execute("SELECT value FROM state WHERE key = 'compacted'").fetchone()
        if floor > compacted:
            conn.execute("DELETE FROM changes WHERE rv <= ?", (floor,))
            conn.execute("UPDATE state SET value = ? WHERE key = 'compacted'", (floor,))


__all__ = [
    "COLUMNS",
    "Admission",
    "Core",
    "Row",
    "assemble",
    "decode",
    "dumps",
    "new_uid",
    "no_gc",
    "rfc3339",
]
