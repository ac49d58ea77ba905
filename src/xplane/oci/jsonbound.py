"""JSON parsing with a nesting bound, for every document a registry, archive or cache hands us.

``json.loads`` recurses once per level of nesting: a few hundred kilobytes of ``[[[[...`` make it
raise :class:`RecursionError` (or, parsed at a lower depth, make every later recursive walk of the
document do so). :func:`loads_bounded` measures the depth first, with one regular-expression pass
that skips strings whole (so it runs at C speed over string-heavy documents), and refuses a
document nested deeper than ``max_depth`` before ``json.loads`` sees it. Manifests, indexes,
configs, tag lists and token responses are a handful of levels deep; the default leaves room for
any real one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from xplane.oci.errors import InvalidJSONError

DEFAULT_MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (an OCI manifest is 4 levels deep)."""

# A whole string (escapes included, unrolled so long strings cost one match) or one bracket.
_TOKENS_B = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_TOKENS_S = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset((b"[", b"{", "[", "{"))


def json_depth(data: bytes | str, limit: int) -> int:
    """The nesting depth of ``data`` (brackets outside strings), stopping once it passes ``limit``.

    When ``data`` has no more than ``limit`` opening brackets in all, their count is returned
    without scanning: it bounds the depth, which is all callers need.
    """
    if isinstance(data, bytes):
        opening = data.count(b"[") + data.count(b"{")
        tokens: Iterator[re.Match[bytes]] | Iterator[re.Match[str]] = _TOKENS_B.finditer(data)
    else:
        opening = data.count("[") + data.count("{")
        tokens = _TOKENS_S.finditer(data)
    if opening <= limit:
        return opening  # cannot nest deeper than it has brackets (a bound, not the depth)
    depth = deepest = 0
    for m in tokens:
        token = m.group()
        if len(token) != 1:
            continue  # a string
        if token in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif depth:
            depth -= 1
    return deepest


def loads_bounded(data: bytes | str, *, what: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads(data)``, refusing documents nested deeper than ``max_depth``.

    ``what`` names the document in errors (e.g. ``"manifest reg/repo:tag from reg"``). Raises
    :class:`InvalidJSONError` (a :class:`ValueError` too) for invalid or too deeply nested JSON.
    """
    if json_depth(data, max_depth) > max_depth:
        raise InvalidJSONError(
            f"{what} is JSON nested deeper than {max_depth} levels; refusing to parse it",
            hint="the document is malformed or hostile; no real manifest, index or config nests that deep",
        )
    try:
        return json.loads(data)
    except RecursionError:  # pragma: no cover - the depth scan runs first
        raise InvalidJSONError(f"{what} is JSON nested too deeply to parse") from None
    except ValueError as e:
        raise InvalidJSONError(f"{what} is not valid JSON: {e}") from None


__all__ = ["DEFAULT_MAX_DEPTH", "json_depth", "loads_bounded"]
