"""What the API server checks and fills in before an object is stored (metadata rules, Secrets).

:func:`parse_incoming` turns a caller's dict into an :class:`Incoming`: user-settable metadata
checked with Kubernetes' rules and messages, server-set fields (``uid``, ``resourceVersion``,
``generation``, timestamps) kept only as preconditions or dropped. Every problem of an object is
reported at once, as the API server's ``is invalid: [a, b]`` does.

Secrets get the API server's treatment (:func:`normalize_secret`): ``stringData`` is merged into
``data`` (base64), ``type`` defaults to ``Opaque`` and is immutable, ``data`` must be base64, and
the typed Secrets need their keys (``kubernetes.io/dockerconfigjson`` needs ``.dockerconfigjson``
holding JSON). A value is never quoted in a message: Kubernetes' ``<secret contents redacted>``
stands in for it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xplane.fieldtypes import object_name
from xplane.store.errors import InvalidError
from xplane.store.names import dns1123_subdomain, label_value, qualified_name
from xplane.store.scheme import Kind

USER_METADATA = (
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
)
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_SECRET_BYTES = 1024 * 1024
REDACTED = "<secret contents redacted>"
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's: no vowels, no 0/1/3
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+\Z")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


@dataclass
class Incoming:
    """A caller's object, checked: what it asks to be stored and under which preconditions."""

    kind: Kind
    api_version: str
    name: str
    namespace: str  # "" for cluster-scoped kinds
    labels: dict[str, str]
    annotations: dict[str, str]
    finalizers: list[str]
    owner_references: list[dict[str, Any]]
    body: dict[str, Any]  # every top-level field but apiVersion, kind, metadata and status
    status: Any = None
    has_status: bool = False
    uid: str | None = None  # precondition when given
    resource_version: int | None = None  # precondition when given
    given: frozenset[str] = field(default_factory=frozenset)  # metadata keys the caller wrote


def generate_name(prefix: str) -> str:
    """``prefix`` plus five random characters, as the API server fills ``generateName``."""
    raw = os.urandom(5)
    return prefix + "".join(_GENERATE_ALPHABET[b % len(_GENERATE_ALPHABET)] for b in raw)


def parse_resource_version(value: Any) -> int | None:
    """A ``metadata.resourceVersion`` as the integer the store uses; None when absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return -1  # unparseable: never equal to a stored version, so the write conflicts


def _string_map(meta: Mapping[str, Any], key: str, causes: list[str]) -> dict[str, str]:
    value = meta.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        causes.append(f"metadata.{key}: Invalid value: must be a map of string keys to string values")
        return {}
    return dict(value)


def _check_labels(labels: dict[str, str], causes: list[str]) -> None:
    for k, v in labels.items():
        causes.extend(f'metadata.labels: Invalid value: "{k}": {p}' for p in qualified_name(k))
        causes.extend(f'metadata.labels: Invalid value: "{v}": {p}' for p in label_value(v))


def _check_annotations(annotations: dict[str, str], causes: list[str]) -> None:
    for k in annotations:
        causes.extend(f'metadata.annotations: Invalid value: "{k}": {p}' for p in qualified_name(k.lower()))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        causes.append(f"metadata.annotations: Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")


def _finalizers(meta: Mapping[str, Any], causes: list[str]) -> list[str]:
    value = meta.get("finalizers")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        causes.append("metadata.finalizers: Invalid value: must be a list of strings")
        return []
    for f in value:
        causes.extend(f'metadata.finalizers: Invalid value: "{f}": {p}' for p in qualified_name(f))
    return list(dict.fromkeys(value))


def _owner_references(meta: Mapping[str, Any], causes: list[str]) -> list[dict[str, Any]]:
    value = meta.get("ownerReferences")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
        causes.append("metadata.ownerReferences: Invalid value: must be a list of objects")
        return []
    refs: list[dict[str, Any]] = []
    controllers = 0
    for i, ref in enumerate(value):
        path = f"metadata.ownerReferences[{i}]"
        for key in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref.get(key), str) or not ref.get(key):
                causes.append(f'{path}.{key}: Invalid value: "": {key} must not be empty')
        for key in ("controller", "blockOwnerDeletion"):
            if ref.get(key) is not None and not isinstance(ref.get(key), bool):
                causes.append(f"{path}.{key}: Invalid value: must be a boolean")
        controllers += ref.get("controller") is True
        refs.append({k: ref[k] for k in sorted(ref) if ref[k] is not None})
    if controllers > 1:
        causes.append(
            "metadata.ownerReferences: Invalid value: Only one reference can have Controller set to true"
        )
    uids = [r.get("uid") for r in refs]
    if len(set(uids)) != len(uids):
        causes.append("metadata.ownerReferences: Duplicate value: the same owner uid appears twice")
    return refs


def parse_incoming(kind: Kind, obj: Mapping[str, Any], *, default_namespace: str) -> Incoming:
    """Check ``obj`` (a dict of ``kind``) as the API server would; raises :class:`InvalidError`."""
    causes: list[str] = []
    meta = obj.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        raise InvalidError(kind.group_kind, "", ["metadata: Invalid value: must be an object"])
    unknown = [k for k in meta if k not in USER_METADATA and k not in SERVER_METADATA]
    causes.extend(f'unknown field "metadata.{k}"' for k in unknown)
    name = meta.get("name")
    if name is None or name == "":
        prefix = meta.get("generateName")
        if isinstance(prefix, str) and prefix:
            name = generate_name(prefix)
        else:
            causes.append("metadata.name: Required value: name or generateName is required")
            name = ""
    if not isinstance(name, str):
        causes.append("metadata.name: Invalid value: must be a string")
        name = ""
    elif name:
        causes.extend(f'metadata.name: Invalid value: "{name}": {p}' for p in dns1123_subdomain(name))
    namespace = ""
    if kind.namespaced:
        ns = meta.get("namespace") or default_namespace
        if not isinstance(ns, str) or not _DNS1123_LABEL.match(ns) or len(ns) > 63:
            causes.append(
                f'metadata.namespace: Invalid value: "{ns}": a lowercase RFC 1123 label must consist of '
                "lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
            )
        else:
            namespace = ns
    labels = _string_map(meta, "labels", causes)
    _check_labels(labels, causes)
    annotations = _string_map(meta, "annotations", causes)
    _check_annotations(annotations, causes)
    finalizers = _finalizers(meta, causes)
    owners = _owner_references(meta, causes)
    uid = meta.get("uid")
    if uid is not None and not isinstance(uid, str):
        causes.append("metadata.uid: Invalid value: must be a string")
        uid = None
    if causes:
        raise InvalidError(kind.group_kind, name, causes)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    return Incoming(
        kind=kind,
        api_version=str(obj.get("apiVersion")),
        name=name,
        namespace=namespace,
        labels=labels,
        annotations=annotations,
        finalizers=finalizers,
        owner_references=owners,
        body=body,
        status=obj.get("status"),
        has_status="status" in obj,
        uid=uid or None,
        resource_version=parse_resource_version(meta.get("resourceVersion")),
        given=frozenset(k for k in USER_METADATA if k in meta),
    )


# Secret types with the data keys they require (k8s.io/kubernetes pkg/apis/core/validation).
_SECRET_REQUIRED = {
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def normalize_secret(inc: Incoming, old_body: Mapping[str, Any] | None) -> None:
    """Apply the API server's Secret rules to ``inc.body`` in place; raises :class:`InvalidError`."""
    body = inc.body
    causes: list[str] = []
    data = body.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        raise InvalidError(
            inc.kind.group_kind, inc.name, ["data: Invalid value: must be a map of base64 strings"]
        )
    merged = dict(data)
    string_data = body.pop("stringData", None)
    if string_data is not None:
        if not isinstance(string_data, Mapping) or not all(isinstance(v, str) for v in string_data.values()):
            raise InvalidError(
                inc.kind.group_kind, inc.name, ["stringData: Invalid value: must be a map of strings"]
            )
        for k, v in string_data.items():
            merged[k] = base64.b64encode(v.encode()).decode()
    decoded: dict[str, bytes] = {}
    for k, v in merged.items():
        if not _SECRET_KEY.match(k) or len(k) > 253:
            causes.append(
                f'data[{k}]: Invalid value: "{k}": a valid config key must consist of alphanumeric '
                "characters, '-', '_' or '.'"
            )
        try:
            decoded[k] = binascii.a2b_base64(v.encode(), strict_mode=True)
        except (binascii.Error, ValueError):
            causes.append(f'data[{k}]: Invalid value: "{REDACTED}": illegal base64 data')
    if sum(len(v) for v in decoded.values()) > MAX_SECRET_BYTES:
        causes.append(f"data: Too long: must have at most {MAX_SECRET_BYTES} bytes")
    secret_type = body.get("type") or "Opaque"
    if not isinstance(secret_type, str):
        causes.append("type: Invalid value: must be a string")
        secret_type = "Opaque"
    for key in _SECRET_REQUIRED.get(secret_type, ()):
        if key not in merged:
            causes.append(f"data[{key}]: Required value")
    if secret_type in ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"):
        key = ".dockerconfigjson" if secret_type.endswith("json") else ".dockercfg"
        if key in decoded and not _is_json_object(decoded[key]):
            causes.append(f'data[{key}]: Invalid value: "{REDACTED}": must be a JSON object')
    if secret_type == "kubernetes.io/basic-auth" and not ({"username", "password"} & set(merged)):
        causes.append("data[username]: Required value: one of username or password is required")
    old_type = (old_body or {}).get("type") if old_body is not None else None
    if old_body is not None and (old_type or "Opaque") != secret_type:
        causes.append(f'type: Invalid value: "{secret_type}": field is immutable')
    if causes:
        raise InvalidError(inc.kind.group_kind, inc.name, causes)
    if merged:
        body["data"] = merged
    else:
        body.pop("data", None)
    body["type"] = secret_type


def _is_json_object(raw: bytes) -> bool:
    import orjson

    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


__all__ = [
    "REDACTED",
    "Incoming",
    "generate_name",
    "normalize_secret",
    "object_name",
    "parse_incoming",
    "parse_resource_version",
]
