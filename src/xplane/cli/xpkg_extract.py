"""``xp xpkg extract``: write a package's package.yaml, gzipped, as Crossplane's package cache holds it.

Flags are named like ``crossplane xpkg extract``'s (``-o/--output FILE``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from xplane.cli.options import (
    cache_option,
    image_name_option,
    make_registry_client,
    max_layer_entries_option,
    pull_limit_options,
    pull_policy_option,
    registry_options,
)


@click.command("extract")
@click.argument("source", required=False)
@click.option(
    "--from-xpkg",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the package from this .xpkg file instead of a reference.",
)
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out.gz"),
    show_default=True,
    help="Where to write gzip(package.yaml); the extension is forced to .gz.",
)
@pull_policy_option
@image_name_option
@max_layer_entries_option
@cache_option
@registry_options
@pull_limit_options
def extract(
    source: str | None,
    from_xpkg: Path | None,
    out: Path,
    pull_policy: str,
    image_name: str | None,
    max_layer_entries: int,
    cache_dir: Path | None,
    **registry: Any,
) -> None:
    """Write a package's package.yaml, gzipped, in the format of Crossplane's package cache."""
    from xplane.oci import ImageCache
    from xplane.xpkg import extract_to_gzip

    if (source is None) == (from_xpkg is None):
        raise click.UsageError("give either a package reference or --from-xpkg FILE")
    path = extract_to_gzip(
        str(from_xpkg) if from_xpkg is not None else str(source),
        out.with_suffix(".gz"),
        cache=ImageCache(cache_dir),
        policy=pull_policy,
        client_factory=lambda: make_registry_client(**registry),
        image_name=image_name,
        max_layer_entries=max_layer_entries,
    )
    click.echo(f"package.yaml written to {path}", err=not sys.stdout.isatty())
