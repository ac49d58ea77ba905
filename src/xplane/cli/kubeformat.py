"""kubectl's text conventions: durations (AGE), Go's tabwriter alignment, ``kind.group/name`` names,
``-o json|yaml`` documents and ``v1/List``.

Pure functions over plain values; the commands (get, describe, apply, delete) print what they return.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xplane.store import Kind

_MINUTE, _HOUR, _DAY, _YEAR = 60, 3600, 86400, 365 * 86400


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints ages (apimachinery ``duration.HumanDuration``): ``45s``, ``3m12s``,
    ``12m``, ``5h10m``, ``20h``, ``2d3h``, ``9d``, ``2y30d``, ``9y``; ``<invalid>`` below -1 s."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 2 * _MINUTE:
        return f"{s}s"
    minutes = s // _MINUTE
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = s // _HOUR
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


_EPOCHS: dict[str, float | None] = {}


def epoch(timestamp: str) -> float | None:
    """An RFC 3339 timestamp (``2026-08-07T12:00:00Z``) as seconds since the epoch; None if unparsable."""
    t = _EPOCHS.get(timestamp, -1.0)
    if t == -1.0:
        try:
            t = datetime.fromisoformat(timestamp).timestamp()
        except ValueError:
            t = None
        _EPOCHS[timestamp] = t
    return t


def age(timestamp: Any, now: float | None = None) -> str:
    """kubectl's AGE of a timestamp (``translateTimestampSince``); ``<unknown>`` without one."""
    t = epoch(timestamp) if isinstance(timestamp, str) and timestamp else None
    if t is None:
        return "<unknown>"
    return human_duration((time.time() if now is None else now) - t)


def tabwrite(lines: Sequence[Sequence[str]], *, padding: int, minwidth: int = 0) -> str:
    """Cells aligned as Go's ``text/tabwriter`` aligns ``\\t``-separated lines (flags 0).

    Every cell but a line's last is padded; a column's width is set per *block* of consecutive lines
    that have a cell there (so ``describe``'s sections align separately, as kubectl's do).
    """
    widths: list[list[int]] = [[0] * max(len(cells) - 1, 0) for cells in lines]

    def fmt(first: int, last: int, column: int) -> None:
        i = first
        while i < last:
            if column >= len(lines[i]) - 1:
                i += 1
                continue
            j, width = i, minwidth
            while j < last and column < len(lines[j]) - 1:
                width = max(width, len(lines[j][column]) + padding)
                j += 1
            for k in range(i, j):
                widths[k][column] = width
            fmt(i, j, column + 1)
            i = j

    fmt(0, len(lines), 0)
    out = []
    for cells, ws in zip(lines, widths, strict=True):
        out.append(
            "".join(c.ljust(w) for c, w in zip(cells, ws, strict=False)) + (cells[-1] if cells else "")
        )
    return "\n".join(out)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A ``kubectl get`` table (tabwriter minwidth 6, padding 3): one block, every line the same width."""
    lines = [headers, *rows]
    if any(len(r) != len(headers) for r in rows):
        return tabwrite(lines, padding=3, minwidth=6)
    widths = [max(6, max(map(len, column)) + 3) for column in zip(*lines, strict=True)][:-1]
    return "\n".join(
        "".join([c.ljust(w) for c, w in zip(line, widths, strict=False)]) + line[-1] for line in lines
    )


def resource_name(kind: Kind) -> str:
    """How kubectl names a kind in ``-o name`` and in apply/delete lines: ``configuration.pkg.crossplane.io``,
    ``secret`` for the core group."""
    return f"{kind.kind.lower()}.{kind.group}" if kind.group else kind.kind.lower()


def object_ref(kind: Kind, name: str) -> str:
    """``configuration.pkg.crossplane.io/platform-ref-aws`` (``-o name``, apply's lines)."""
    return f"{resource_name(kind)}/{name}"


def as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Objects as the ``v1/List`` kubectl prints for ``-o yaml|json`` of several."""
    return {"apiVersion": "v1", "items": list(items), "kind": "List", "metadata": {"resourceVersion": ""}}


def to_json(obj: Any) -> str:
    """kubectl's ``-o json``: four-space indentation, keys sorted."""
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)


def to_yaml(obj: Any) -> str:
    """kubectl's ``-o yaml`` (go-yaml v2): block style, keys sorted, a string that would read back as
    another type double-quoted (``creationTimestamp: "2026-08-07T12:00:00Z"``), multi-line text as
    a literal block."""
    import yaml

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc]
        pass

    def text(dumper: Any, value: str) -> Any:
        style = None
        if "\n" in value:
            style = "|"
        elif dumper.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
            style = '"'
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    out: str = yaml.dump(obj, Dumper=Dumper, sort_keys=True, allow_unicode=True, default_flow_style=False)
    return out


__all__ = [
    "age",
    "as_list",
    "epoch",
    "human_duration",
    "object_ref",
    "resource_name",
    "table",
    "tabwrite",
    "to_json",
    "to_yaml",
]
