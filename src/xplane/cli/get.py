"""``xp get KIND [NAME...]``: list control-plane objects as ``kubectl get`` does.

Tables use the kinds' printer columns (:mod:`xplane.cli.printers`); a category (``pkg``,
``pkgrev``) or several kinds print one table per kind with ``kind.group/name`` names; ``-o
yaml|json`` prints one object, or a ``v1/List`` of several; ``-o name`` prints ``kind.group/name``.
Nothing found: ``No resources found`` on stderr, exit 0. A name not found: kubectl's message and
exit code 3. Start-up stays lean: no YAML library unless ``-o yaml``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from xplane.cli.statestore import Errors, home_option, namespace_options, open_for_reading, resolve

if TYPE_CHECKING:
    from xplane.store import Kind, Store

Found = list[tuple["Kind", list[dict[str, Any]]]]


def _namespace(kind: Kind, namespace: str | None, all_namespaces: bool) -> str | None:
    from xplane.store import CROSSPLANE_NAMESPACE

    if not kind.namespaced or all_namespaces:
        return None
    return namespace or CROSSPLANE_NAMESPACE


def _fetch(
    store: Store | None,
    args: tuple[str, ...],
    selector: str | None,
    namespace: str | None,
    all_namespaces: bool,
    errors: Errors,
) -> tuple[Found, bool, bool]:
    """(objects per kind, whether names carry their kind, whether one object was asked for)."""
    from xplane.cli.resources import parse_targets
    from xplane.store import NotFoundError

    targets = parse_targets(args, lambda n: resolve(store, n))
    asked = sum(len(t.names) for t in targets.targets)
    if asked and selector:
        raise click.UsageError("a selector (-l) cannot be combined with names")
    if asked and all_namespaces:
        raise click.UsageError("a resource cannot be retrieved by name across all namespaces")
    found: Found = []
    for t in targets.targets:
        ns = _namespace(t.kind, namespace, all_namespaces)
        objects: list[dict[str, Any]] = []
        for name in t.names:
            try:
                if store is None:
                    raise NotFoundError(t.kind.resource, name, ns)
                objects.append(store.get(t.kind, name, ns))
            except NotFoundError as e:
                errors.report(e)
        if not t.names and store is not None:
            objects = store.list(t.kind, namespace=ns, selector=selector)
        found.append((t.kind, objects))
    return found, targets.several, asked == 1 and len(targets.targets) == 1


def _tables(found: Found, *, wide: bool, several: bool, all_namespaces: bool, show_labels: bool) -> str:
    from xplane.cli.kubeformat import table
    from xplane.cli.printers import rows

    now = time.time()
    out = []
    for kind, objects in found:
        if not objects:
            continue
        headers, cells = rows(
            kind,
            objects,
            wide=wide,
            now=now,
            with_kind=several,
            with_namespace=all_namespaces and kind.namespaced,
            show_labels=show_labels,
        )
        out.append(table(headers, cells))
    return "\n\n".join(out)


def _none_found(found: Found, namespace: str | None, all_namespaces: bool) -> str:
    from xplane.store import CROSSPLANE_NAMESPACE

    if not all_namespaces and any(k.namespaced for k, _ in found):
        return f"No resources found in {namespace or CROSSPLANE_NAMESPACE} namespace."
    return "No resources found"


@click.command("get")
@click.argument("args", nargs=-1, metavar="KIND[,KIND...] [NAME...] | KIND/NAME...")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["wide", "yaml", "json", "name"]),
    default=None,
    help="Output format (default: a table).",
)
@click.option("-l", "--selector", default=None, help="Label selector (e.g. 'a=b,c in (d),!e').")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@namespace_options
@home_option
def get(
    args: tuple[str, ...],
    output: str | None,
    selector: str | None,
    show_labels: bool,
    namespace: str | None,
    all_namespaces: bool,
    home: Path | None,
) -> int:
    """Show control-plane objects: packages (pkg), revisions (pkgrev), xrds, compositions, crds, mrds...

    KIND is a plural, singular or short name, KIND.GROUP, or a category such as pkg or pkgrev.
    """
    if selector:
        from xplane.store import Selector

        Selector.parse(selector)
    errors = Errors()
    store = open_for_reading(home)
    try:
        found, several, single = _fetch(store, args, selector, namespace, all_namespaces, errors)
    finally:
        if store is not None:
            store.close()
    objects = [o for _, objs in found for o in objs]
    if output in ("yaml", "json"):
        from xplane.cli.kubeformat import as_list, to_json, to_yaml

        if single and not objects:
            return errors.exit_code
        doc = objects[0] if single else as_list(objects)
        click.echo(to_yaml(doc) if output == "yaml" else to_json(doc), nl=output == "json")
    elif objects and output == "name":
        from xplane.cli.kubeformat import object_ref

        click.echo("\n".join(object_ref(k, o["metadata"]["name"]) for k, objs in found for o in objs))
    elif objects:
        text = _tables(
            found,
            wide=output == "wide",
            several=several,
            all_namespaces=all_namespaces,
            show_labels=show_labels,
        )
        click.echo(text)
    elif not errors.codes:
        click.echo(_none_found(found, namespace, all_namespaces), err=True)
    return errors.exit_code
