"""``xp validate EXTENSIONS RESOURCES``: resources against CRD/XRD schemas, as ``crossplane beta validate``.

Exit codes: 0 every resource valid; 1 a resource is invalid or a source could not be read;
3 schemas missing under ``--error-on-missing-schemas``; 2 usage errors (docs/cli.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click

from xplane.cli.options import make_registry_client, registry_options

EXIT_INVALID = 1
EXIT_MISSING_SCHEMAS = 3


@click.command("validate")
@click.argument("extensions")
@click.argument("resources")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Image cache packages are read through (default: xplane's cache, see docs/cache.md).",
)
@click.option(
    "--clean-cache",
    is_flag=True,
    default=False,
    help="Start clean: delete --cache-dir first, or (without it) pull every package again.",
)
@click.option("--skip-success-results", is_flag=True, default=False, help="Do not print [✓] lines.")
@click.option(
    "--error-on-missing-schemas",
    is_flag=True,
    default=False,
    help=f"Exit {EXIT_MISSING_SCHEMAS} when a resource has no schema (after the invalid check).",
)
@click.option(
    "--crossplane-version",
    default=None,
    help="Crossplane version whose own CRDs (Composition, XRD, pkg types) to use (see docs/validate.md).",
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", help="Output format."
)
@registry_options
def validate(
    extensions: str,
    resources: str,
    cache_dir: Path | None,
    clean_cache: bool,
    skip_success_results: bool,
    error_on_missing_schemas: bool,
    crossplane_version: str | None,
    output: str,
    **registry: Any,
) -> int:
    """Validate RESOURCES against the schemas in EXTENSIONS.

    Each is a comma-separated list of files, directories (walked recursively for *.yaml/*.yml) or
    '-' for stdin. Extensions are CRDs, XRDs, Provider/Function/Configuration objects and
    crossplane.yaml metas (their packages are read through xplane's image cache).
    """
    from xplane.validate import (
        fetch_with_cache,
        load_extensions,
        read_sources,
        split_sources,
        validate_resources,
    )

    ext_sources, res_sources = split_sources([extensions]), split_sources([resources])
    if "-" in ext_sources and "-" in res_sources:
        raise click.UsageError("cannot use stdin for both extensions and resources")
    if ("-" in ext_sources or "-" in res_sources) and registry.get("password_stdin"):
        raise click.UsageError("cannot read both the password and resources from stdin")
    if clean_cache and cache_dir is not None:
        shutil.rmtree(cache_dir.expanduser(), ignore_errors=True)
    if cache_dir is not None:
        cache_dir = cache_dir.expanduser()

    def stdin() -> bytes:
        return sys.stdin.buffer.read()

    ext_docs = read_sources(ext_sources, stdin=stdin)
    fetch = fetch_with_cache(
        cache_dir=cache_dir,
        refresh=clean_cache and cache_dir is None,
        client_factory=lambda: make_registry_client(**registry),
    )
    ext = load_extensions(
        [r.obj for r in ext_docs.resources],
        fetch=fetch,
        on_download=lambda image: click.echo(f"reading package {image}", err=True),
    )
    if crossplane_version:
        click.echo(
            f"[!] --crossplane-version {crossplane_version}: Crossplane's own CRDs are not shipped yet; "
            "Crossplane kinds without a CRD in EXTENSIONS are reported as missing schemas",
            err=True,
        )
    res_docs = read_sources(res_sources, stdin=stdin)
    report = validate_resources(ext.schemas, res_docs.resources)

    problems = ext_docs.errors + ext.errors + res_docs.errors
    for note in ext.notes:
        click.echo(f"[!] {note}", err=True)
    for p in problems:
        click.echo(f"[x] {p}", err=True)
    if output == "json":
        from xplane.cli.output import print_json

        print_json(report.to_dict())
    elif output == "yaml":
        from xplane.cli.output import print_yaml

        print_yaml(report.to_dict())
    else:
        for line in report.lines(skip_success=skip_success_results):
            click.echo(line)
    if report.invalid or problems:
        what = "could not validate all resources" if report.invalid else "could not read all sources"
        click.echo(f"xp: error: cannot validate resources: {what}", err=True)
        return EXIT_INVALID
    if error_on_missing_schemas and report.missing:
        click.echo(
            "xp: error: cannot validate resources: could not validate all resources, schema(s) missing",
            err=True,
        )
        return EXIT_MISSING_SCHEMAS
    return 0
