"""``xp tree KIND NAME``: the installed dependency graph of a package (issue 11, docs/packages.md).

A rich tree on a terminal, the same lines as plain text otherwise (stable for scripts and tests),
``-o json`` (nested, :meth:`xplane.pkg.TreeNode.to_dict`), ``-o dot`` (Graphviz DOT) and
``--svg FILE`` (Graphviz's ``dot -Tsvg``, bounded in time, the file written atomically).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from xplane.cli.statestore import home_option, open_for_reading, resolve

if TYPE_CHECKING:
    from rich.text import Text

    from xplane.pkg import TreeNode

DOT_TIMEOUT = 60.0


def line_parts(t: TreeNode) -> list[tuple[str, str]]:
    """One node's line as (text, rich style) parts: Kind/name, reference, constraint, health, marks."""
    n, e = t.node, t.edge
    parts: list[tuple[str, str]] = [(n.label, "bold")]
    if n.package:
        parts.append((f"  {n.package}", "cyan"))
    if e is not None:
        parts.append((f"  requires {e.constraints or 'any version'}", "dim"))
    health = n.health + (f" ({n.reason})" if n.reason else "")
    if n.message and n.health != "Healthy":
        health += f": {n.message}"
    style = {"Healthy": "green", "Unknown": "yellow"}.get(n.health, "bold red")
    parts.append((f"  {health}", style))
    if e is not None and e.status == "conflict":
        parts.append((f"  CONFLICT: {n.version or '?'} does not satisfy {e.constraints}", "bold red"))
    if n.skip_resolution:
        parts.append(("  (skipDependencyResolution: dependencies not followed)", "yellow"))
    elif not n.in_lock and n.name is not None:
        parts.append(("  (not in the Lock: dependencies unknown)", "yellow"))
    if t.cycle:
        parts.append(("  (cycle)", "bold red"))
    elif t.see_above:
        parts.append(("  (see above)", "dim"))
    return parts


def render_text(root: TreeNode) -> str:
    """The tree as plain text, with rich's guide characters (``├── ``, ``│   ``, ``└── ``)."""
    out: list[str] = []

    def walk(t: TreeNode, prefix: str, branch: str) -> None:
        out.append(prefix + branch + "".join(p for p, _ in line_parts(t)))
        inner = prefix + ("" if not branch else ("    " if branch == "└── " else "│   "))
        for i, c in enumerate(t.children):
            walk(c, inner, "└── " if i == len(t.children) - 1 else "├── ")

    walk(root, "", "")
    return "\n".join(out) + "\n"


def _text(t: TreeNode) -> Text:
    from rich.text import Text

    return Text.assemble(*line_parts(t))


def print_rich(root: TreeNode) -> None:
    """The tree with rich on the terminal."""
    from rich.console import Console
    from rich.tree import Tree

    def build(t: TreeNode, into: Tree) -> None:
        for c in t.children:
            build(c, into.add(_text(c)))

    tree = Tree(_text(root))
    build(root, tree)
    Console(highlight=False).print(tree)


def write_svg(dot: str, path: Path, timeout: float = DOT_TIMEOUT) -> None:
    """Render ``dot`` with Graphviz's ``dot -Tsvg`` into ``path`` (atomically); XplaneError on failure."""
    from xplane.errors import XplaneError
    from xplane.oci import atomic_output

    exe = shutil.which("dot")
    if exe is None:
        raise XplaneError(
            "cannot draw the graph: Graphviz's 'dot' is not installed",
            hint="apt-get install -y graphviz (scripts/setup.sh installs it), or pipe 'xp tree KIND NAME -o dot' "
            "to another DOT renderer",
        )
    try:
        done = subprocess.run(
            [exe, "-Tsvg"], input=dot.encode(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise XplaneError(f"cannot draw the graph: dot did not finish within {timeout:g}s") from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise XplaneError(f"cannot draw the graph: dot exited with {done.returncode}: {err}")
    with atomic_output(path) as out:
        out.write(done.stdout)


@click.command("tree")
@click.argument("kind", metavar="KIND")
@click.argument("name", metavar="NAME")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "dot"]),
    default=None,
    help="Output format (default: a tree; rich on a terminal).",
)
@click.option(
    "--svg",
    "svg",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw the graph into FILE with Graphviz (dot -Tsvg); prints nothing else unless -o is given.",
)
@home_option
def tree(kind: str, name: str, output: str | None, svg: Path | None, home: Path | None) -> int:
    """Show a package's installed dependency graph: versions, constraints and health.

    KIND is configuration, provider or function (any name 'xp get' accepts for them).
    """
    from xplane.pkg import PACKAGE_KINDS, package_graph
    from xplane.store import NotFoundError

    store = open_for_reading(home)
    try:
        kinds = [
            k for k in resolve(store, kind) if k.group == "pkg.crossplane.io" and k.kind in PACKAGE_KINDS
        ]
        if not kinds:
            raise click.UsageError(f"{kind!r} is not a package kind: use configuration, provider or function")
        if store is None:
            raise NotFoundError(kinds[0].resource, name)
        found = [k for k in kinds if store.try_get(k, name) is not None]
        if len(found) > 1:
            raise click.UsageError(f"{name!r} is a {' and a '.join(k.kind for k in found)}: name the kind")
        graph = package_graph(store, (found or kinds)[0].kind, name)
    finally:
        if store is not None:
            store.close()
    root = graph.tree()
    if svg is not None:
        write_svg(graph.to_dot(), svg)
        if output is None:
            return 0
    if output == "json":
        from xplane.cli.output import print_json

        print_json(root.to_dict())
    elif output == "dot":
        click.echo(graph.to_dot(), nl=False)
    elif output is None and sys.stdout.isatty():
        print_rich(root)
    else:
        click.echo(render_text(root), nl=False)
    return 0


__all__ = ["print_rich", "render_text", "tree", "write_svg"]
