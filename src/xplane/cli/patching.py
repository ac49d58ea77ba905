"""Patches as the API server applies them: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

Pure functions over JSON-like values; errors are :class:`PatchError` with the API server's words.
"""

from __future__ import annotations

import copy
from typing import Any

from xplane.errors import XplaneError


class PatchError(XplaneError):
    """A patch that cannot be applied (a JSON patch ``test`` that fails, a path that does not exist)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{pointer}": must start with "/"')
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f'invalid array index "{token}"')
    i = int(token)
    if i > len(container) or (i == len(container) and not adding):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("the whole document cannot be the target of this operation")
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(node, t, adding=False)]
        else:
            raise PatchError(f'path "{pointer}" does not exist')
    return node, tokens[-1]


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for t in _tokens(pointer):
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(node, t, adding=False)]
        else:
            raise PatchError(f'path "{pointer}" does not exist')
    return node


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'path "{pointer}" does not exist')
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, adding=False))
    raise PatchError(f'path "{pointer}" does not exist')


def _add(doc: Any, pointer: str, value: Any, *, replace: bool = False) -> Any:
    if pointer == "":
        return value
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f'path "{pointer}" does not exist')
        parent[last] = value
    elif isinstance(parent, list):
        i = _index(parent, last, adding=not replace)
        if replace:
            parent[i] = value
        else:
            parent.insert(i, value)
    else:
        raise PatchError(f'path "{pointer}" does not exist')
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902: apply ``operations`` (a list of ``{op, path, value|from}``) to a copy of ``doc``."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    out = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise PatchError("every JSON patch operation needs an op and a path")
        name, path = op.get("op"), op["path"]
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f'operation "{name}" needs a value')
        if name == "add":
            out = _add(out, path, copy.deepcopy(op["value"]))
        elif name == "replace":
            out = _add(out, path, copy.deepcopy(op["value"]), replace=True)
        elif name == "remove":
            _remove(out, path)
        elif name in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f'operation "{name}" needs from')
            value = _remove(out, source) if name == "move" else copy.deepcopy(_get(out, source))
            out = _add(out, path, value)
        elif name == "test":
            if _get(out, path) != op["value"]:
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f'unknown JSON patch operation "{name}"')
    return out


__all__ = ["PatchError", "json_patch", "merge_patch"]
