"""Create, read, update: the API server's rules for objects (deletion is :mod:`xplane.store.gc`).

Rules kept from Kubernetes:

* ``metadata.uid``, ``creationTimestamp``, ``generation``, ``deletionTimestamp`` and
  ``resourceVersion`` are the server's; a caller's values are ignored, except that a given ``uid`` or
  ``resourceVersion`` is a precondition (a mismatch is a :class:`ConflictError`).
* ``update`` needs the ``resourceVersion`` it read: without one it is refused, as the API server
  refuses it for custom resources (``metadata.resourceVersion: Invalid value: 0x0: must be specified
  for an update``). :meth:`apply` is the explicit unconditional write.
* For kinds with a status subresource, ``create``/``update``/``apply`` ignore ``status`` and
  ``update_status`` writes only ``status`` (metadata and spec as stored).
* ``metadata.generation`` starts at 1 and goes up by one when anything outside ``metadata`` and
  ``status`` changes; never on a status write.
* A write that changes nothing is not a write: same ``resourceVersion``, no change in the log.
* No new finalizers once deletion was requested; removing the last finalizer of an object being
  deleted deletes it (and its dependents, :mod:`xplane.store.gc`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from xplane.store import gc
from xplane.store.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    InvalidError,
    NotFoundError,
)
from xplane.store.rows import Core, Row, dumps, new_uid
from xplane.store.scheme import Kind
from xplane.store.validation import Incoming, normalize_secret, object_name, parse_incoming


def _admit(core: Core, kind: Kind, obj: Mapping[str, Any], old: Row | None) -> Mapping[str, Any]:
    if core.admission is None:
        return obj
    try:
        copy: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError) as e:
        raise InvalidError(kind.group_kind, object_name(obj), [f"Invalid value: not JSON ({e})"]) from None
    core.admission(kind, copy, None if old is None else old.to_object())
    return copy


def _incoming(core: Core, kind: Kind, obj: Mapping[str, Any], old: Row | None) -> Incoming:
    inc = parse_incoming(kind, _admit(core, kind, obj, old), default_namespace=core.default_namespace)
    if kind.resource == "secrets":
        old_body = None
        if old is not None:
            old_body = orjson.loads(old.extra) if old.extra else {}
        normalize_secret(inc, old_body)
    return inc


def _body_texts(kind: Kind, inc: Incoming) -> tuple[str | None, str | None]:
    body = inc.body
    spec = (
        dumps(body["spec"], subject=kind.group_kind, name=inc.name, path="spec") if "spec" in body else None
    )
    rest = {k: v for k, v in body.items() if k != "spec"}
    extra = dumps(rest, subject=kind.group_kind, name=inc.name, path=next(iter(rest), "")) if rest else None
    return spec, extra


def _status_text(kind: Kind, inc: Incoming) -> str | None:
    if not inc.has_status or inc.status is None:
        return None
    return dumps(inc.status, subject=kind.group_kind, name=inc.name, path="status")


def _set(meta: dict[str, Any], key: str, value: Any) -> None:
    if value:
        meta[key] = value
    else:
        meta.pop(key, None)


def _user_metadata(meta: dict[str, Any], inc: Incoming, *, only_given: bool) -> None:
    """Put the caller's labels, annotations, finalizers and ownerReferences in ``meta``.

    With ``only_given`` (apply), finalizers and ownerReferences the caller did not write are kept.
    """
    _set(meta, "labels", inc.labels)
    _set(meta, "annotations", inc.annotations)
    for key, value in (("finalizers", inc.finalizers), ("ownerReferences", inc.owner_references)):
        if not only_given or key in inc.given:
            _set(meta, key, value)


def create(core: Core, kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Store a new object; :class:`AlreadyExistsError` when the name is taken."""
    with core.db.write():
        return _create(core, kind, obj)


def _create(core: Core, kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
    inc = _incoming(core, kind, obj, None)
    if core.select(kind.resource, inc.namespace, inc.name) is not None:
        raise AlreadyExistsError(kind.resource, inc.name, inc.namespace or None)
    meta: dict[str, Any] = {"name": inc.name, "uid": new_uid(), "creationTimestamp": core.now()}
    if inc.namespace:
        meta["namespace"] = inc.namespace
    if kind.generation:
        meta["generation"] = 1
    _user_metadata(meta, inc, only_given=False)
    spec, extra = _body_texts(kind, inc)
    status = None if kind.status_subresource else _status_text(kind, inc)
    return core.insert(kind, inc.api_version, inc.namespace, inc.name, meta, (spec, extra, status))


def _key(core: Core, kind: Kind, obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(name, namespace)`` an object is stored under (namespace ``""`` for cluster-scoped kinds)."""
    namespace = ""
    if kind.namespaced:
        meta = obj.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, Mapping) else None
        namespace = ns if isinstance(ns, str) and ns else core.default_namespace
    return object_name(obj), namespace


def _stored(core: Core, kind: Kind, obj: Mapping[str, Any]) -> Row:
    name, namespace = _key(core, kind, obj)
    if not name:
        raise InvalidError(kind.group_kind, "", ["metadata.name: Required value: name is required"])
    row = core.select(kind.resource, namespace, name)
    if row is None:
        raise NotFoundError(kind.resource, name, namespace or None)
    return row


def _preconditions(kind: Kind, row: Row, inc: Incoming, *, required: bool) -> None:
    if inc.resource_version is None:
        if required:
            raise InvalidError(
                kind.group_kind,
                row.name,
                ["metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"],
                hint="read the object, change it and update it (or use apply for an unconditional write)",
            )
    elif inc.resource_version != row.rv:
        raise ConflictError(kind.resource, row.name, row.namespace or None)
    if inc.uid is not None and inc.uid != row.uid:
        raise ConflictError(
            kind.resource,
            row.name,
            row.namespace or None,
            detail=f"Precondition failed: UID in precondition: {inc.uid}, UID in object meta: {row.uid}",
        )


def update(core: Core, kind: Kind, obj: Mapping[str, Any], *, mode: str = "update") -> dict[str, Any]:
    """Write a new version of an object (``mode``: ``update``, ``apply`` or ``status``)."""
    with core.db.write():
        if mode == "apply":
            name, namespace = _key(core, kind, obj)
            if not name or core.select(kind.resource, namespace, name) is None:
                return _create(core, kind, obj)
        return _update(core, kind, _stored(core, kind, obj), obj, mode)


def _update(core: Core, kind: Kind, row: Row, obj: Mapping[str, Any], mode: str) -> dict[str, Any]:
    if mode == "status" and not kind.status_subresource:
        raise BadRequestError(f"{kind.resource} has no status subresource: update the object itself")
    inc = _incoming(core, kind, obj, row)
    _preconditions(kind, row, inc, required=mode != "apply")
    meta = dict(row.metadata)
    meta.pop("resourceVersion", None)
    if mode == "status":
        spec, extra, status = row.spec, row.extra, _status_text(kind, inc)
    else:
        _user_metadata(meta, inc, only_given=mode == "apply")
        spec, extra = _body_texts(kind, inc)
        if kind.status_subresource:
            status = row.status
        elif inc.has_status or mode == "update":
            status = _status_text(kind, inc)
        else:
            status = row.status
        if kind.generation and (spec, extra) != (row.spec, row.extra):
            meta["generation"] = int(meta.get("generation") or 1) + 1
    if row.deleting:
        added = [f for f in meta.get("finalizers") or [] if f not in row.finalizers]
        if added:
            raise InvalidError(
                kind.group_kind,
                row.name,
                [
                    f"metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {added}"
                ],
            )
    old_meta = dict(row.metadata)
    old_meta.pop("resourceVersion", None)
    if (
        (spec, extra, status) == (row.spec, row.extra, row.status)
        and _same(meta, old_meta)
        and (inc.api_version == row.api_version or mode == "status")
    ):
        return row.to_object()  # nothing changed: no write, no new resourceVersion
    api_version = row.api_version if mode == "status" else inc.api_version
    written = core.replace(row, api_version, meta, (spec, extra, status))
    if row.deleting and not meta.get("finalizers"):
        gc.delete(core, core.by_id(row.id) or row, "Background")
    return written


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


def modify(
    core: Core,
    kind: Kind,
    name: str,
    namespace: str,
    fn: Callable[[dict[str, Any]], object],
    *,
    status: bool,
) -> dict[str, Any]:
    """Read, change in place with ``fn`` (its return value is ignored) and write back, in one
    transaction (no conflict possible)."""
    with core.db.write():
        row = core.select(kind.resource, namespace, name)
        if row is None:
            raise NotFoundError(kind.resource, name, namespace or None)
        current = row.to_object()
        fn(current)
        return _update(core, kind, row, current, "status" if status else "update")


__all__ = ["create", "modify", "update"]
