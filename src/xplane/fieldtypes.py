"""The JSON types of the fields read from documents, checked: ``metadata.labels is an array; want an object``.

Kubernetes decodes objects into typed fields and refuses a value of the wrong type. Code that
reads the same fields from plain YAML/JSON (render's inputs and its functions' answers, validate's
CRDs and XRDs) checks them with these helpers instead of failing later with a Python error. A
field that is ``null`` reads as absent, as it does in Kubernetes. Every helper raises
:class:`FieldTypeError`; callers add which document it was as they pass it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xplane.errors import XplaneError, a_json_type


class FieldTypeError(XplaneError):
    """A field holds a value of the wrong type; ``path`` names it (``spec.versions[0].served``)."""

    def __init__(self, path: str, value: Any, want: str) -> None:
        super().__init__(f"{path} is {a_json_type(value)}; want {want}")
        self.path = path


def field(parent: Mapping[str, Any], key: str, path: str, types: type | tuple[type, ...], want: str) -> Any:
    """``parent[key]`` when it is one of ``types``; None when absent or null; else FieldTypeError."""
    value = parent.get(key)
    if value is not None and not isinstance(value, types):
        raise FieldTypeError(path, value, want)
    return value


def obj(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    """``parent[key]``, which must be an object when present; ``{}`` when absent or null."""
    value: dict[str, Any] = field(parent, key, path, dict, "an object") or {}
    return value


def string(parent: Mapping[str, Any], key: str, path: str) -> None:
    """``parent[key]`` must be a string when present."""
    field(parent, key, path, str, "a string")


def string_values(value: Mapping[str, Any], path: str) -> None:
    """Every value of the object ``value`` (labels, annotations, a Secret's data) must be a string."""
    for k, v in value.items():
        if not isinstance(v, str):
            raise FieldTypeError(f"{path}.{k}", v, "a string")


def string_map(parent: Mapping[str, Any], key: str, path: str) -> None:
    """``parent[key]``, when present, must be an object of strings."""
    string_values(obj(parent, key, path), path)


def strings(value: Any, path: str) -> None:
    """``value`` must be an array of strings (``required``, ``shortNames``)."""
    if not isinstance(value, list):
        raise FieldTypeError(path, value, "an array of strings")
    for i, x in enumerate(value):
        if not isinstance(x, str):
            raise FieldTypeError(f"{path}[{i}]", x, "a string")


def objects(parent: Mapping[str, Any], key: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    """The objects of the array ``parent[key]`` (absent or null: none), each with its path."""
    out = []
    for i, item in enumerate(field(parent, key, path, list, "an array") or ()):
        if not isinstance(item, dict):
            raise FieldTypeError(f"{path}[{i}]", item, "an object")
        out.append((f"{path}[{i}]", item))
    return out


def object_name(doc: Any) -> str:
    """``metadata.name`` when the document has one (a string), else ``""``: safe on any value."""
    meta = doc.get("metadata") if isinstance(doc, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""
