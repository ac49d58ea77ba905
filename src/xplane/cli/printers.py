"""``xp get``'s tables: which columns a kind shows and how each cell is read from an object.

Columns come from the kind (``Kind.columns``: Crossplane's ``additionalPrinterColumns``, or a stored
CRD's), evaluated as the API server's table convertor does: the first match of a simple JSONPath,
``date`` columns as an AGE, a missing value as an empty cell. Two layouts are xplane's choice:

* **package revisions** show issue #10's layout (Crossplane v1.x's, all columns without ``-o
  wide``) plus the runtime column of v2.x for Provider/Function revisions:
  ``NAME HEALTHY [RUNTIME] REVISION IMAGE STATE DEP-FOUND DEP-INSTALLED AGE``;
* kinds kubectl prints with built-in printers: Secrets (``TYPE DATA AGE``) and Events
  (``LAST SEEN TYPE REASON OBJECT MESSAGE``); any other kind without columns shows ``NAME AGE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xplane.cli.kubeformat import age, object_ref

if TYPE_CHECKING:
    from xplane.store import Kind

Getter = Callable[[dict[str, Any]], Any]
Cell = Callable[[dict[str, Any], float], str]

REVISION_KINDS = ("ConfigurationRevision", "ProviderRevision", "FunctionRevision")
REVISION_ORDER = ("HEALTHY", "RUNTIME", "REVISION", "IMAGE", "STATE", "DEP-FOUND", "DEP-INSTALLED", "AGE")
_FILTER = re.compile(r"\[\?\(@\.([A-Za-z0-9_]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]")
_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|" + _FILTER.pattern)


@dataclass(frozen=True)
class Column:
    """One column of a table: its header and how to render a cell for an object at time ``now``."""

    header: str
    cell: Cell


def compile_path(path: str) -> Getter:
    """A getter for the JSONPath subset printer columns use: ``.a.b``, ``[0]`` and
    ``[?(@.type=='Ready')]`` (first match). Unsupported syntax gives a getter that finds nothing."""
    text = path.strip().removeprefix("{").removesuffix("}").removeprefix("$")
    steps: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            return lambda obj: None
        key, index, fkey, fval = m.groups()
        if key is not None:
            steps.append(("key", key, ""))
        elif index is not None:
            steps.append(("index", index, ""))
        else:
            steps.append(("filter", fkey, fval))
        pos = m.end()

    def get(obj: dict[str, Any]) -> Any:
        value: Any = obj
        for op, a, b in steps:
            if op == "key":
                value = value.get(a) if isinstance(value, dict) else None
            elif op == "index":
                i = int(a)
                value = value[i] if isinstance(value, list) and i < len(value) else None
            else:
                found = None
                for item in value if isinstance(value, list) else ():
                    if isinstance(item, dict) and str(item.get(a)) == b:
                        found = item
                        break
                value = found
            if value is None:
                return None
        return value

    return get


def render(value: Any) -> str:
    """A cell as kubectl prints a JSON value: strings as is, ``true``/``false``, numbers, JSON otherwise."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    import json

    return json.dumps(value, separators=(",", ":"))


def _path_column(header: str, path: str, type_: str) -> Column:
    get = compile_path(path)
    if type_ == "date" and header != "CREATED AT":

        def date(o: dict[str, Any], now: float) -> str:
            value = get(o)
            return age(value, now) if value else ""

        return Column(header, date)
    return Column(header, lambda o, now: render(get(o)))


def _data_count(obj: dict[str, Any], now: float) -> str:
    return str(len(obj.get("data") or {}))


def _creation_age(obj: dict[str, Any], now: float) -> str:
    return age(obj["metadata"].get("creationTimestamp"), now)


def _event_object(obj: dict[str, Any], now: float) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


_SECRET = (
    Column("TYPE", lambda o, now: render(o.get("type"))),
    Column("DATA", _data_count),
    Column("AGE", _creation_age),
)
_EVENT = (
    Column(
        "LAST SEEN", lambda o, now: age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp"), now)
    ),
    Column("TYPE", lambda o, now: render(o.get("type"))),
    Column("REASON", lambda o, now: render(o.get("reason"))),
    Column("OBJECT", _event_object),
    Column("MESSAGE", lambda o, now: render(o.get("message"))),
)


def columns(kind: Kind, *, wide: bool) -> tuple[Column, ...]:
    """The columns after NAME for ``kind`` (``wide``: ``-o wide``). Events have no NAME column."""
    if kind.group == "" and kind.kind == "Secret":
        return _SECRET
    if kind.group == "" and kind.kind == "Event":
        return _EVENT
    specs = list(kind.columns)
    if kind.group == "pkg.crossplane.io" and kind.kind in REVISION_KINDS:
        order = {h: i for i, h in enumerate(REVISION_ORDER)}
        specs = sorted((c for c in specs if c.name in order), key=lambda c: order[c.name])
    elif not wide:
        specs = [c for c in specs if c.priority == 0]
    if not specs:
        return (Column("AGE", _creation_age),)
    return tuple(_path_column(c.name, c.json_path, c.type) for c in specs)


def has_name_column(kind: Kind) -> bool:
    """Whether ``get`` prints a NAME column (all kinds but Events)."""
    return not (kind.group == "" and kind.kind == "Event")


def rows(
    kind: Kind,
    objects: Sequence[dict[str, Any]],
    *,
    wide: bool,
    now: float,
    with_kind: bool = False,
    with_namespace: bool = False,
    show_labels: bool = False,
) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of ``objects``' table. ``with_kind``: names as ``kind.group/name`` (several
    kinds in one listing); ``with_namespace``: a NAMESPACE column first (``-A``)."""
    cols = columns(kind, wide=wide)
    named = has_name_column(kind)
    headers = [*(["NAMESPACE"] if with_namespace else []), *(["NAME"] if named else [])]
    headers += [c.header for c in cols] + (["LABELS"] if show_labels else [])
    out = []
    for o in objects:
        meta = o["metadata"]
        row = [meta.get("namespace", "")] if with_namespace else []
        if named:
            row.append(object_ref(kind, meta["name"]) if with_kind else meta["name"])
        row += [c.cell(o, now) for c in cols]
        if show_labels:
            labels = meta.get("labels") or {}
            row.append(",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
        out.append(row)
    return headers, out


__all__ = ["REVISION_ORDER", "Column", "columns", "compile_path", "has_name_column", "render", "rows"]
