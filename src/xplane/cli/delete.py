"""``xp delete KIND NAME...|-f FILE``: delete control-plane objects, as ``kubectl delete``.

Prints ``configuration.pkg.crossplane.io "x" deleted`` per object (also when finalizers keep it
for now, as kubectl does). Owner-reference garbage collection (a package's revisions, what a
revision installed) is the store's, in the same transaction; finalizers are the control loop's,
which settles before the command returns. ``--wait`` then waits until the objects are gone.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from xplane.cli.statestore import Errors, home_option, open_for_reading, resolve, writing

if TYPE_CHECKING:
    from xplane.store import Kind, Store

Pending = list[tuple["Kind", str, "str | None", str]]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?\Z")


def parse_timeout(value: str) -> float:
    """``60``, ``90s``, ``5m``, ``1h`` -> seconds."""
    m = _DURATION.match(value.strip())
    if m is None:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 30s, 5m)")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]
    return float(m.group(1)) * scale


def _what(
    store: Store,
    args: tuple[str, ...],
    filenames: tuple[str, ...],
    recursive: bool,
    selector: str | None,
    all_: bool,
    namespace: str | None,
    errors: Errors,
) -> list[tuple[Kind, str, str | None]]:
    """(kind, name, namespace) of every object the arguments name."""
    from xplane.cli.manifests import load
    from xplane.cli.resources import parse_targets

    out: list[tuple[Kind, str, str | None]] = []
    if filenames:
        if args:
            raise click.UsageError("give either KIND NAME... or -f FILE, not both")
        files, missing = load(store, filenames, recursive=recursive, namespace=namespace, strict=False)
        for p in missing:
            errors.report(p)
        for mf in files:
            for p in mf.problems:
                errors.report(p)
            if not mf.problems:
                out += [(m.kind, m.name, m.namespace or namespace) for m in mf.manifests]
        return out
    targets = parse_targets(args, lambda n: resolve(store, n))
    for t in targets.targets:
        ns = namespace if t.kind.namespaced else None
        if t.names and (selector or all_):
            raise click.UsageError("names cannot be combined with --selector or --all")
        if not t.names and not (selector or all_):
            raise click.UsageError("resource(s) were provided, but no name was specified (or use -l/--all)")
        names = t.names or [
            o["metadata"]["name"] for o in store.list(t.kind, namespace=ns, selector=selector)
        ]
        out += [(t.kind, n, ns) for n in names]
    return out


def _wait(home: Path | None, pending: Pending, timeout: float, errors: Errors) -> None:
    """Wait until every pending object (by uid) is gone, watching the store."""
    store = open_for_reading(home)
    if store is None:
        return
    deadline = time.monotonic() + timeout
    try:
        since = store.resource_version
        while True:
            pending = [
                p
                for p in pending
                if (o := store.try_get(p[0], p[1], p[2])) and o["metadata"].get("uid") == p[3]
            ]
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                break
            store.watch(since, timeout=min(left, 1.0))
            since = store.resource_version
    finally:
        store.close()
    for kind, name, _, _ in pending:
        errors.report(f"timed out waiting for the condition on {kind.plural}/{name}")


@click.command("delete")
@click.argument("args", nargs=-1, metavar="[KIND NAME... | KIND/NAME...]")
@click.option("-f", "--filename", "filenames", multiple=True, help="Delete the objects these manifests name.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given with -f recursively.")
@click.option("-l", "--selector", default=None, help="Delete the objects of KIND with these labels.")
@click.option("--all", "all_", is_flag=True, help="Delete every object of KIND.")
@click.option(
    "-n", "--namespace", default=None, help="Namespace of namespaced kinds (default: crossplane-system)."
)
@click.option(
    "--cascade",
    type=click.Choice(["background", "foreground", "orphan"]),
    default="background",
    show_default=True,
    help="What happens to dependents (objects owned by the deleted ones).",
)
@click.option("--ignore-not-found", is_flag=True, help="An object that does not exist is not an error.")
@click.option("--wait", is_flag=True, help="Wait until the objects are gone (their finalizers done).")
@click.option("--timeout", default="60s", show_default=True, help="How long --wait waits.")
@home_option
def delete(
    args: tuple[str, ...],
    filenames: tuple[str, ...],
    recursive: bool,
    selector: str | None,
    all_: bool,
    namespace: str | None,
    cascade: str,
    ignore_not_found: bool,
    wait: bool,
    timeout: str,
    home: Path | None,
) -> int:
    """Delete objects by kind and name, by label, or as named in manifests."""
    from xplane.cli.kubeformat import resource_name
    from xplane.store import NotFoundError

    seconds = parse_timeout(timeout)
    if not args and not filenames:
        raise click.UsageError("You must provide one or more resources by argument or filename.")
    errors = Errors()
    lines: list[str] = []
    pending: Pending = []
    with writing(home) as store:
        for kind, name, ns in _what(store, args, filenames, recursive, selector, all_, namespace, errors):
            try:
                left = store.delete(kind, name, ns, propagation=cascade.capitalize())
            except NotFoundError as e:
                if not ignore_not_found:
                    errors.report(e)
                continue
            lines.append(f'{resource_name(kind)} "{name}" deleted')
            if left is not None:
                pending.append((kind, name, ns, left["metadata"]["uid"]))
        if lines:
            click.echo("\n".join(lines))
    if wait and pending:
        _wait(home, pending, seconds, errors)
    return errors.exit_code
