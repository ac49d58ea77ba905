"""Events (core ``v1`` Event), recorded and correlated as client-go's event recorder does.

Recording an event with the same involved object, type, reason, message and source as an existing
one increments its ``count`` and moves its ``lastTimestamp`` (client-go's correlator key; xplane
does not merge *similar* events into "combined from similar events"). An event of a cluster-scoped
object lives in namespace ``default``, as Kubernetes puts it.

Events are kept in their own table, not with the objects: they are not in the change log and do
not wake watchers' loops (their writes still move the store's resource version). Retention is
bounded twice: the last ``events_per_object`` per involved object, and ``events_total`` overall
(oldest first; checked every 64 recordings). Messages longer than 1024 characters are cut there,
as events.k8s.io limits its ``note``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from xplane.store.errors import InvalidError, NotFoundError
from xplane.store.rows import Core, new_uid

EVENT_TYPES = ("Normal", "Warning")
MAX_MESSAGE = 1024
DEFAULT_NAMESPACE = "default"
_COLUMNS = (
    "namespace, name, uid, rv, type, reason, message, source, count, first_seen, last_seen, created, involved"
)


def involved_object(obj: Mapping[str, Any]) -> dict[str, str]:
    """The ``involvedObject`` reference for an object dict, or for a reference dict
    (``apiVersion``, ``kind``, ``name``, ``namespace``, ``uid``)."""
    meta = obj.get("metadata")
    src: Mapping[str, Any] = meta if isinstance(meta, Mapping) else obj
    ref = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": src.get("name")}
    ref["namespace"] = src.get("namespace")
    ref["uid"] = src.get("uid")
    return {k: str(v) for k, v in ref.items() if v}


def _subject(ref: Mapping[str, str]) -> str:
    if ref.get("uid"):
        return ref["uid"]
    return "/".join(
        (ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""))
    )


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    ns, name, uid, rv, type_, reason, message, source, count, first, last, created, involved = row
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "creationTimestamp": created,
            "name": name,
            "namespace": ns,
            "resourceVersion": str(rv),
            "uid": uid,
        },
        "count": count,
        "firstTimestamp": first,
        "involvedObject": orjson.loads(involved),
        "lastTimestamp": last,
        "message": message,
        "reason": reason,
        "reportingComponent": source,
        "source": {"component": source},
        "type": type_,
    }


def record(
    core: Core, involved: Mapping[str, Any], event_type: str, reason: str, message: str, *, source: str
) -> dict[str, Any]:
    """Record an event about ``involved`` (an object or a reference); returns the stored Event."""
    ref = involved_object(involved)
    causes = []
    if event_type not in EVENT_TYPES:
        causes.append(f'type: Unsupported value: "{event_type}": supported values: "Normal", "Warning"')
    if not reason:
        causes.append("reason: Required value")
    if not ref.get("kind") or not ref.get("name"):
        causes.append("involvedObject: Required value: kind and name are required")
    if causes:
        raise InvalidError("Event", "", causes)
    message = message[:MAX_MESSAGE]
    subject = _subject(ref)
    now = core.now()
    with core.db.write() as conn:
        rv = core.db.next_rv()
        row = conn.execute(
            "UPDATE events SET count = count + 1, last_seen = ?, rv = ? "
            "WHERE subject = ? AND type = ? AND reason = ? AND source = ? AND message = ? "
            f"RETURNING {_COLUMNS}",
            (now, rv, subject, event_type, reason, source, message),
        ).fetchone()
        if row is None:
            name = f"{ref['name']}.{time.time_ns():x}"  # client-go: name.<UnixNano in hex>
            row = conn.execute(
                f"INSERT INTO events (subject, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) "
                f"RETURNING {_COLUMNS}",
                (
                    subject,
                    ref.get("namespace") or DEFAULT_NAMESPACE,
                    name,
                    new_uid(),
                    rv,
                    event_type,
                    reason,
                    message,
                    source,
                    now,
                    now,
                    now,
                    orjson.dumps(ref).decode(),
                ),
            ).fetchone()
            _trim(core, subject)
            if rv % 64 == 0:
                _trim_all(core)
    return _event(row)


def _trim(core: Core, subject: str) -> None:
    conn = core.db.conn
    (n,) = conn.execute("SELECT count(*) FROM events WHERE subject = ?", (subject,)).fetchone()
    if n > core.events_per_object:
        conn.execute(
            "DELETE FROM events WHERE subject = ? AND rv <= "
            "(SELECT rv FROM events WHERE subject = ? ORDER BY rv DESC LIMIT 1 OFFSET ?)",
            (subject, subject, core.events_per_object),
        )


def _trim_all(core: Core) -> None:
    conn = core.db.conn
    (n,) = conn.execute("SELECT count(*) FROM events").fetchone()
    if n > core.events_total:
        conn.execute(
            "DELETE FROM events WHERE rv <= (SELECT rv FROM events ORDER BY rv DESC LIMIT 1 OFFSET ?)",
            (core.events_total,),
        )


def events_for(core: Core, involved: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Events about one object (matched by uid when it has one), oldest ``lastTimestamp`` first."""
    subject = _subject(involved_object(involved))
    with core.db.read() as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE subject = ? ORDER BY last_seen, rv", (subject,)
        )
        return [_event(r) for r in rows]


def list_events(core: Core, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every event (in ``namespace`` when given), oldest ``lastTimestamp`` first."""
    sql = f"SELECT {_COLUMNS} FROM events"
    args: tuple[str, ...] = ()
    if namespace is not None:
        sql += " WHERE namespace = ?"
        args = (namespace,)
    with core.db.read() as conn:
        return [_event(r) for r in conn.execute(sql + " ORDER BY last_seen, rv", args)]


def get_event(core: Core, name: str, namespace: str) -> dict[str, Any]:
    """One event by name; :class:`NotFoundError` (``events "x" not found``) when absent."""
    with core.db.read() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
    if row is None:
        raise NotFoundError("events", name, namespace)
    return _event(row)


__all__ = [
    "EVENT_TYPES",
    "MAX_MESSAGE",
    "events_for",
    "get_event",
    "involved_object",
    "list_events",
    "record",
]
