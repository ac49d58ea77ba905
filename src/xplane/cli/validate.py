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
from xplane.cli.statestore import home_option, open_for_reading

EXIT_INVALID = 1
EXIT_MISSING_SCHEMAS = 3


@click.command("validate")
@click.argument("sources", nargs=-1, metavar="[EXTENSIONS] RESOURCES")
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
@click.option(
    "--update-cache",
    is_flag=True,
    default=False,
    help="Resolve dependsOn ranges against the registry's tags (not the cached ones) and pull "
    "every package again (pull policy Always).",
)
@click.option(
    "--installed",
    is_flag=True,
    default=False,
    help="Also use the CRDs and XRDs of the packages installed in xplane's control plane (--home); "
    "EXTENSIONS may then be omitted.",
)
@home_option
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
    help="Crossplane release whose own CRDs (Composition, XRD, pkg types …) validate Crossplane kinds: "
    "a shipped version (v1.20.11, v2.2.4, v2.3.4), a minor (v2.2) or 'stable' (default: v2.3.4).",
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", help="Output format."
)
@registry_options
def validate(
    sources: tuple[str, ...],
    cache_dir: Path | None,
    clean_cache: bool,
    update_cache: bool,
    installed: bool,
    home: Path | None,
    skip_success_results: bool,
    error_on_missing_schemas: bool,
    crossplane_version: str | None,
    output: str,
    **registry: Any,
) -> int:
    """Validate RESOURCES against the schemas in EXTENSIONS (and, with --installed, the control plane's).

    Each is a comma-separated list of files, directories (walked recursively for *.yaml/*.yml) or
    '-' for stdin. Extensions are CRDs, XRDs, Provider/Function/Configuration objects and
    crossplane.yaml metas (their packages, and their dependsOn graph as the package manager
    resolves it, are read through xplane's image cache).
    """
    from xplane.validate import (
        ValidateError,
        add_crossplane_schemas,
        fetch_with_cache,
        load_extensions,
        read_sources,
        resolve_crossplane_version,
        split_sources,
        validate_resources,
    )

    try:
        xp_version = resolve_crossplane_version(crossplane_version)
    except ValidateError as e:
        raise click.BadParameter(e.message, param_hint="--crossplane-version") from None

    if len(sources) == 2:
        extensions, resources = sources
    elif len(sources) == 1 and installed:
        extensions, resources = "", sources[0]
    else:
        raise click.UsageError(
            "expected EXTENSIONS RESOURCES" + (" (or RESOURCES alone with --installed)" if installed else "")
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
    from_store = installed_extensions(home) if installed else []
    fetch = fetch_with_cache(
        cache_dir=cache_dir,
        refresh=update_cache or (clean_cache and cache_dir is None),
        client_factory=lambda: make_registry_client(**registry),
    )
    ext = load_extensions(
        [*from_store, *ext_docs.resources],
        fetch=fetch,
        on_download=lambda image: click.echo(f"reading package {image}", err=True),
        update=update_cache,
    )
    res_docs = read_sources(res_sources, stdin=stdin)
    add_crossplane_schemas(ext.schemas, res_docs.resources, xp_version)
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


def installed_extensions(home: Path | None) -> list[dict[str, Any]]:
    """The CRDs and XRDs xplane's control plane at ``home`` established (what its packages installed).

    Read here so ``xplane.validate`` stays free of the store; they are handed over as extension
    documents (extensions given on the command line come after them, so they win for a GVK).
    """
    from xplane.errors import XplaneError

    store = open_for_reading(home)
    if store is None:
        raise click.UsageError(
            "--installed: no control plane state here (install packages with xp xpkg install, or pass --home)"
        )
    docs: list[dict[str, Any]] = []
    try:
        for name in ("customresourcedefinitions", "compositeresourcedefinitions"):
            try:
                kinds = store.resolve(name)
            except XplaneError:
                continue
            for kind in kinds:
                docs += [dict(o) for o in store.list(kind)]
    finally:
        store.close()
    return docs
