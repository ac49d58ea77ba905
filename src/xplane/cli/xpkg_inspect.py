"""``xp xpkg inspect``: a package's meta, dependencies, object counts and layers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from xplane.cli.options import (
    cache_option,
    format_option,
    image_name_option,
    make_registry_client,
    max_layer_entries_option,
    pull_limit_options,
    pull_policy_option,
    registry_options,
)
from xplane.cli.output import print_json, print_yaml


@click.command("inspect")
@click.argument("source")
@format_option("yaml", "json")
@pull_policy_option
@click.option("--platform", default=None, help="Platform to pick from an index (default linux/amd64).")
@image_name_option
@max_layer_entries_option
@cache_option
@registry_options
@pull_limit_options
def inspect(
    source: str,
    output: str | None,
    pull_policy: str,
    platform: str | None,
    image_name: str | None,
    max_layer_entries: int,
    cache_dir: Path | None,
    **registry: Any,
) -> None:
    """Show a package's meta, dependencies, object counts and layers (SOURCE: a file or a reference)."""
    from xplane.oci import ImageCache
    from xplane.xpkg import open_package

    pkg = open_package(
        source,
        cache=ImageCache(cache_dir),
        policy=pull_policy,
        platform=platform,
        client_factory=lambda: make_registry_client(**registry),
        image_name=image_name,
        max_layer_entries=max_layer_entries,
    )
    summary = pkg.summary()
    if output == "json":
        print_json(summary)
    elif output == "yaml":
        print_yaml(summary)
    else:
        _print_summary(summary)


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Digests and package references must stay whole (users copy them): never truncate with "…";
    # a column too narrow for the terminal folds its text onto the next line instead.
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, soft_wrap=True, width=200)  # piped: keep every row on one line
    console.print(f"[bold]{s['kind']}[/bold] {s['name']}  ({s['apiVersion']})")
    console.print(f"source:     {s['source']}", markup=False)
    console.print(f"digest:     {s['digest']}", markup=False)
    if s.get("crossplaneVersion"):
        console.print(f"crossplane: {s['crossplaneVersion']}", markup=False)
    if s.get("capabilities"):
        console.print(f"capabilities: {', '.join(s['capabilities'])}", markup=False)

    def table(title: str, *columns: str) -> Table:
        t = Table(title=title, title_justify="left", box=None)
        for col in columns:
            t.add_column(col, overflow="fold", justify="right" if col in ("COUNT", "SIZE") else "left")
        return t

    if s["dependencies"]:
        t = table("Dependencies", "KIND", "PACKAGE", "VERSION")
        for d in s["dependencies"]:
            t.add_row(d["kind"], d["package"], d["version"])
        console.print(t, soft_wrap=False)
    t = table("Objects", "KIND", "COUNT")
    for kind, n in s["objects"].items():
        t.add_row(kind, str(n))
    console.print(t, soft_wrap=False)
    t = table("Layers", "DIGEST", "SIZE", "ANNOTATION")
    for layer in s["layers"]:
        t.add_row(layer["digest"], str(layer["size"]), layer.get("annotation") or "")
    console.print(t, soft_wrap=False)
