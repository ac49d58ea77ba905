"""``xp describe KIND [NAME...]``: an object, its conditions and its events, laid out as ``kubectl describe``.

The layout is kubectl's generic describer (fields sorted, camelCase keys as words: ``API Version``,
``Package Pull Policy``; columns aligned as Go's tabwriter does), with one change: ``status.conditions``
is a table (Type, Status, Last Transition Time, Reason, Message), as kubectl shows a Node's. Events come
from the store (``Type Reason Age From Message``, ``5m (x3 over 12m)`` for repeats). Secrets get
kubectl's Secret describer: the type and each data key with its size in bytes, never a value.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from xplane.cli.statestore import Errors, home_option, open_for_reading, resolve

if TYPE_CHECKING:
    from xplane.store import Kind, Store

Lines = list[list[str]]
_ACRONYMS = ("API", "URL", "UID", "OSB", "GUID")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|-")
_SKIP_METADATA = ("name", "namespace", "labels", "annotations", "managedFields")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def smart_label(key: str) -> str:
    """kubectl's ``smartLabelFor``: ``packagePullPolicy`` -> ``Package Pull Policy``, ``uid`` -> ``UID``;
    a key with characters other than letters and ``-`` is kept as is."""
    if not key or any(not (c.isalpha() or c == "-") for c in key):
        return key
    parts = _WORDS.findall(key)
    return " ".join(p.upper() if p.upper() in _ACRONYMS else p[:1].upper() + p[1:] for p in parts)


def _scalar(value: Any) -> str:
    """A value as Go's ``%v`` prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pad(level: int) -> str:
    return "  " * level


def _conditions(conditions: list[Any], level: int, segments: list[Lines]) -> None:
    rows = [["Type", "Status", "Last Transition Time", "Reason", "Message"]]
    rows.append(["-" * len(h) for h in rows[0]])
    for c in conditions:
        c = c if isinstance(c, Mapping) else {}
        rows.append(
            [_scalar(c.get(k, "")) for k in ("type", "status", "lastTransitionTime", "reason", "message")]
        )
    segments.append([[_pad(level) + r[0], *r[1:]] for r in rows])
    segments.append([])


def _content(
    content: Mapping[str, Any], level: int, segments: list[Lines], *, skip: tuple[str, ...] = ()
) -> None:
    """kubectl's ``printUnstructuredContent``, conditions excepted (a table)."""
    out = segments[-1]
    for key in sorted(content):
        if key in skip:
            continue
        value = content[key]
        label = _pad(level) + smart_label(key)
        if key == "conditions" and isinstance(value, list) and value:
            out.append([label + ":"])
            _conditions(value, level + 1, segments)
            out = segments[-1]
        elif isinstance(value, Mapping):
            out.append([label + ":"])
            _content(value, level + 1, segments)
            out = segments[-1]
        elif isinstance(value, list):
            out.append([label + ":"])
            for item in value:
                if isinstance(item, Mapping):
                    _content(item, level + 1, segments)
                    out = segments[-1]
                else:
                    out.append([_pad(level + 1) + _scalar(item)])
        else:
            out.append([label + ":", _scalar(value)])


def _multiline(title: str, values: Mapping[str, str], sep: str) -> Lines:
    items = sorted((k, v) for k, v in values.items() if k != _LAST_APPLIED)
    if not items:
        return [[f"{title}:", "<none>"]]
    return [[f"{title}:" if i == 0 else "", f"{k}{sep}{v}"] for i, (k, v) in enumerate(items)]


def _header(obj: Mapping[str, Any]) -> Lines:
    meta = obj.get("metadata") or {}
    return [
        ["Name:", str(meta.get("name", ""))],
        ["Namespace:", str(meta.get("namespace", ""))],
        *_multiline("Labels", meta.get("labels") or {}, "="),
        *_multiline("Annotations", meta.get("annotations") or {}, ": "),
    ]


def _events(events: list[dict[str, Any]], now: float) -> Lines:
    from xplane.cli.kubeformat import age

    if not events:
        return [["Events:", "<none>"]]
    lines = [
        ["Events:"],
        ["  Type", "Reason", "Age", "From", "Message"],
        ["  ----", "------", "----", "----", "-------"],
    ]
    for e in events:
        count = int(e.get("count") or 1)
        first = e.get("firstTimestamp")
        when = age(first, now)
        if count > 1:
            when = f"{age(e.get('lastTimestamp'), now)} (x{count} over {when})"
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        lines.append(
            [
                f"  {e.get('type', '')}",
                str(e.get("reason", "")),
                when,
                source,
                str(e.get("message", "")).strip(),
            ]
        )
    return lines


def _secret_size(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return 0


def describe_secret(obj: Mapping[str, Any]) -> str:
    """kubectl's Secret describer: type and data sizes, never data."""
    from xplane.cli.kubeformat import tabwrite

    lines = _header(obj)
    lines += [[""], ["Type:", str(obj.get("type", ""))], [""], ["Data"], ["===="]]
    data = obj.get("data") or {}
    lines += [[f"{k}:", f"{_secret_size(v)} bytes"] for k, v in sorted(data.items())]
    return tabwrite(lines, padding=2) + "\n"


def describe_object(obj: Mapping[str, Any], events: list[dict[str, Any]] | None, now: float) -> str:
    """The ``kubectl describe`` text of one object (generic describer) with its events."""
    from xplane.cli.kubeformat import tabwrite

    segments: list[Lines] = [_header(obj)]
    body = {k: v for k, v in obj.items() if k != "metadata"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SKIP_METADATA}
    if meta:
        body["metadata"] = meta
    _content(body, 0, segments)
    if events is not None:
        segments.append(_events(events, now))
    return "".join(tabwrite(s, padding=2) + "\n" for s in segments if s)


def _describe(store: Store, kind: Kind, obj: dict[str, Any], now: float) -> str:
    if kind.group == "" and kind.kind == "Secret":
        return describe_secret(obj)
    events = None if kind.group == "" and kind.kind == "Event" else store.events_for(obj)
    return describe_object(obj, events, now)


@click.command("describe")
@click.argument("args", nargs=-1, required=True, metavar="KIND [NAME...] | KIND/NAME...")
@click.option("-l", "--selector", default=None, help="Label selector (without names).")
@click.option(
    "-n", "--namespace", default=None, help="Namespace of namespaced kinds (default: crossplane-system)."
)
@home_option
def describe(args: tuple[str, ...], selector: str | None, namespace: str | None, home: Path | None) -> int:
    """Show an object in detail: metadata, spec, status with conditions, and its events."""
    from xplane.cli.resources import parse_targets
    from xplane.store import NotFoundError

    errors = Errors()
    store = open_for_reading(home)
    texts: list[str] = []
    try:
        targets = parse_targets(args, lambda n: resolve(store, n))
        now = time.time()
        for t in targets.targets:
            ns = (namespace or None) if t.kind.namespaced else None
            if not t.names:
                for obj in store.list(t.kind, namespace=ns, selector=selector) if store is not None else []:
                    texts.append(_describe(store, t.kind, obj, now))  # type: ignore[arg-type]
            for name in t.names:
                try:
                    if store is None:
                        raise NotFoundError(t.kind.resource, name, ns)
                    texts.append(_describe(store, t.kind, store.get(t.kind, name, ns), now))
                except NotFoundError as e:
                    errors.report(e)
    finally:
        if store is not None:
            store.close()
    if texts:
        click.echo("\n\n".join(texts), nl=False)
    elif not errors.codes:
        click.echo("No resources found", err=True)
    return errors.exit_code
