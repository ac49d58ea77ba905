"""``xp xpkg push``: publish .xpkg files (several make a multi-platform index).

Flags are named like ``crossplane xpkg push``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from xplane.cli.options import cache_option, format_option, make_registry_client, registry_options, split_csv
from xplane.cli.output import print_json


@click.command("push")
@click.argument("ref")
@click.option(
    "-f",
    "--package-files",
    multiple=True,
    help="Comma-separated .xpkg files; several make a multi-platform index (default: the one .xpkg here).",
)
@click.option(
    "-a",
    "--oci-annotation",
    multiple=True,
    metavar="KEY=VALUE",
    help="Annotation on the pushed manifest (or index); repeatable.",
)
@format_option("json")
@cache_option
@registry_options
def push(
    ref: str,
    package_files: tuple[str, ...],
    oci_annotation: tuple[str, ...],
    output: str | None,
    cache_dir: Path | None,
    **registry: Any,
) -> None:
    """Push one or more .xpkg files to REF (registry/repository:tag)."""
    from xplane.oci import ImageCache
    from xplane.xpkg import find_package_files, parse_annotations, push_packages

    files = [Path(p) for p in split_csv(package_files)] or find_package_files(Path("."))
    annotations = parse_annotations(oci_annotation)
    client = make_registry_client(**registry)
    try:
        result = push_packages(
            files, ref, client=client, cache=ImageCache(cache_dir), annotations=annotations
        )
    finally:
        client.close()
    if output == "json":
        print_json({"reference": ref, "digest": result.digest, "images": result.images})
    else:
        click.echo(f"pushed {ref} ({result.digest})")
