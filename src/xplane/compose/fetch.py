"""Answers to a function's requirements from files: required resources, schemas, credentials.

Classic render's ``FilteringFetcher``: resources sorted by name (stable); same apiVersion and kind;
``match_name`` returns just that one, ``match_labels`` every resource carrying all the labels; the
namespace is ignored; a selector with neither match finds nothing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from xplane.compose.errors import ComposeError, q

if TYPE_CHECKING:
    from xplane.fn import fnv1


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


class ResourceFetcher:
    """Required (and extra) resources from the objects given with ``-e``/``--extra-resources``."""

    def __init__(self, resources: Sequence[Mapping[str, Any]]) -> None:
        self.resources = sorted(resources, key=_name)
        self.empty = not resources

    def fetch(self, sel: fnv1.ResourceSelector) -> list[Mapping[str, Any]] | None:
        """The objects ``sel`` selects (None when no resources were supplied at all)."""
        if self.empty:
            return None
        out: list[Mapping[str, Any]] = []
        which = sel.WhichOneof("match")
        for r in self.resources:
            if r.get("apiVersion") != sel.api_version or r.get("kind") != sel.kind:
                continue
            if which == "match_name":
                if _name(r) == sel.match_name:
                    return [r]
            elif which == "match_labels":
                labels = (r.get("metadata") or {}).get("labels") or {}
                if all(labels.get(k) == v for k, v in sel.match_labels.labels.items()):
                    out.append(r)
        return out


class SchemaFetcher:
    """OpenAPI v3 schemas (``kubectl get --raw /openapi/v3/<group-version>`` documents)."""

    def __init__(self, documents: Sequence[Mapping[str, Any]]) -> None:
        self.documents = documents

    def fetch(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """The flattened schema of ``kind`` in ``api_version`` (None when no document has it)."""
        group, _, version = api_version.rpartition("/")
        for doc in self.documents:
            schemas = (doc.get("components") or {}).get("schemas") or {}
            for schema in schemas.values():
                gvks = schema.get("x-kubernetes-group-version-kind") or []
                if len(gvks) != 1:
                    continue
                g = gvks[0]
                if (
                    str(g.get("group", "")).lower() == group.lower()
                    and str(g.get("version", "")).lower() == version.lower()
                    and g.get("kind") == kind
                ):
                    flat: dict[str, Any] = _flatten(schema, schemas, 0)
                    return flat
        return None


def _flatten(node: Any, schemas: Mapping[str, Any], depth: int) -> Any:
    if depth > 64:
        return node
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            target = schemas.get(ref.rsplit("/", 1)[1], {})
            rest = {k: _flatten(v, schemas, depth + 1) for k, v in node.items() if k != "$ref"}
            return {**_flatten(target, schemas, depth + 1), **rest}
        return {k: _flatten(v, schemas, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_flatten(v, schemas, depth + 1) for v in node]
    return node


def secret_data(secrets: Sequence[Mapping[str, Any]], name: str, namespace: str) -> dict[str, bytes]:
    """The decoded ``.data`` of the Secret ``namespace/name`` (``stringData`` is ignored, as upstream)."""
    for s in secrets:
        meta = s.get("metadata") or {}
        if meta.get("name") == name and (meta.get("namespace") or "") == (namespace or ""):
            out: dict[str, bytes] = {}
            for k, v in (s.get("data") or {}).items():
                try:
                    out[str(k)] = base64.b64decode(str(v), validate=True)
                except (binascii.Error, ValueError):
                    raise ComposeError(
                        f"cannot get credentials from secret {q(name)}: key {q(str(k))} is not valid base64"
                    ) from None
            return out
    raise ComposeError(f"cannot get credentials from secret {q(name)}: secret {q(name)} not found")
