"""``xp xpkg build|push|inspect|extract|init``: make, publish and look into Crossplane packages.

Flags are named like ``crossplane xpkg``'s, so existing scripts keep working.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from xplane.cli.output import print_json, print_yaml
from xplane.cli.xpkg_pull import (
    cache_option,
    make_client,
    pull_limit_flags,
    pull_policy_option,
    registry_flags,
)

F = TypeVar("F", bound=Callable[..., Any])


def image_name_option(f: F) -> F:
    """``--ref NAME``: which image of an archive or layout holding several (``inspect``, ``extract``)."""
    return click.option(
        "--ref",
        "image_name",
        default=None,
        help="For a file holding several images: which one (a RepoTag or OCI ref name).",
    )(f)


def max_layer_entries_option(f: F) -> F:
    """``--max-layer-entries N``: tar entries read at most while looking for package.yaml (docs/xpkg.md)."""
    from xplane.xpkg.extract import MAX_LAYER_ENTRIES

    return click.option(
        "--max-layer-entries",
        type=click.IntRange(min=1),
        default=MAX_LAYER_ENTRIES,
        show_default=True,
        help="Refuse images whose layers hold more tar entries than this before package.yaml.",
    )(f)


def _split_csv(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command("build")
@click.option(
    "-f",
    "--package-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory holding the package's YAML (crossplane.yaml and its objects).",
)
@click.option(
    "-e",
    "--examples-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("./examples"),
    show_default=True,
    help="Directory of example objects (packed as .up/examples.yaml when it exists).",
)
@click.option("--ignore", multiple=True, help="Comma-separated globs of package files to leave out.")
@click.option("--examples-ignore", multiple=True, help="Comma-separated globs of example files to leave out.")
@click.option(
    "-o",
    "--package-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file (default: <name>-<12 hex of the digest>.xpkg in the package root).",
)
@click.option(
    "--embed-runtime-image-tarball",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A docker-save or OCI tarball of the runtime image to build the package on (Providers, Functions).",
)
@click.option(
    "--embed-runtime-image",
    "embed_runtime_image",
    default=None,
    metavar="REF",
    help="The runtime image to build the package on, from the image cache or its registry (no Docker).",
)
@click.option(
    "--platform",
    default=None,
    help="Platform of --embed-runtime-image when it is an index, e.g. linux/arm64 [linux/amd64].",
)
@click.option(
    "--output", "output", type=click.Choice(["json"]), default=None, help="Machine-readable summary."
)
@pull_policy_option
@cache_option
@registry_flags
@pull_limit_flags
def build(
    package_root: Path,
    examples_root: Path,
    ignore: tuple[str, ...],
    examples_ignore: tuple[str, ...],
    package_file: Path | None,
    embed_runtime_image_tarball: Path | None,
    embed_runtime_image: str | None,
    platform: str | None,
    output: str | None,
    pull_policy: str,
    cache_dir: Path | None,
    **registry: Any,
) -> None:
    """Build a Crossplane package (.xpkg) from a directory of YAML.

    --embed-runtime-image takes the image from xplane's cache, pulling it first if needed
    (--pull-policy, and the registry flags), where upstream reads a Docker daemon.
    """
    from xplane.oci.cache import ImageCache
    from xplane.xpkg.build import BuildOptions, build_package

    if embed_runtime_image and embed_runtime_image_tarball:
        raise click.UsageError("use --embed-runtime-image or --embed-runtime-image-tarball, not both")
    embeds = embed_runtime_image_tarball is not None or embed_runtime_image is not None
    cache = ImageCache(cache_dir) if embeds else None
    # A runtime tarball's layers sit untagged in the cache until the package is written.
    with cache.writer() if cache is not None else contextlib.nullcontext():
        runtime = None
        if embed_runtime_image is not None:
            assert cache is not None
            from xplane.xpkg.package import open_image

            runtime = open_image(
                embed_runtime_image,
                cache=cache,
                policy=pull_policy,
                platform=platform,
                client_factory=lambda: make_client(registry),
            )
        built = build_package(
            BuildOptions(
                package_root=package_root,
                examples_root=examples_root,
                ignore=_split_csv(ignore),
                examples_ignore=_split_csv(examples_ignore),
                runtime_image_tarball=embed_runtime_image_tarball,
                runtime_image=runtime,
                cache=cache,
            )
        )
        # Both kinds of warning say "warning:" themselves, compiler-style, after where they are.
        for w in [*built.warnings, *built.lint.warnings]:
            click.echo(str(w), err=True)
        path = package_file or package_root / built.default_file_name()
        built.write(path)
    if output == "json":
        print_json(
            {
                "file": str(path),
                "digest": built.digest,
                "name": built.meta.name,
                "kind": built.meta.kind,
                "files": [str(f) for f in built.files],
                "objects": built.object_count,
                "warnings": [str(f) for f in built.lint.warnings] + [str(w) for w in built.warnings],
            }
        )
    else:
        click.echo(f"xpkg saved to {path} ({built.digest})")


@click.command("init")
@click.argument("name")
@click.option(
    "--type",
    "package_type",
    type=click.Choice(["configuration", "function", "provider"]),
    required=True,
    help="What kind of package to create.",
)
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write it (default: ./NAME).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(name: str, package_type: str, directory: Path | None, force: bool) -> None:
    """Write a package skeleton NAME that builds as it is."""
    from xplane.xpkg.init import init_package

    target = directory or Path(name)
    files = init_package(name, package_type, target, force=force)
    for f in files:
        click.echo(f"created {f}")
    root = target / "package" if package_type == "function" else target
    examples = f" -e {target / 'examples'}" if package_type == "configuration" else ""
    click.echo(f"build it with: xp xpkg build -f {root}{examples}")


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
@click.option("-o", "--output", type=click.Choice(["json"]), default=None, help="Machine-readable output.")
@cache_option
@registry_flags
def push(
    ref: str,
    package_files: tuple[str, ...],
    oci_annotation: tuple[str, ...],
    output: str | None,
    cache_dir: Path | None,
    **registry: Any,
) -> None:
    """Push one or more .xpkg files to REF (registry/repository:tag)."""
    from xplane.oci.cache import ImageCache
    from xplane.xpkg.publish import find_package_files, parse_annotations, push_packages

    files = [Path(p) for p in _split_csv(package_files)] or find_package_files(Path("."))
    annotations = parse_annotations(oci_annotation)
    client = make_client(registry)
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


@click.command("inspect")
@click.argument("source")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default=None, help="Output format.")
@pull_policy_option
@click.option("--platform", default=None, help="Platform to pick from an index (default linux/amd64).")
@image_name_option
@max_layer_entries_option
@cache_option
@registry_flags
@pull_limit_flags
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
    from xplane.oci.cache import ImageCache
    from xplane.xpkg.package import open_package

    pkg = open_package(
        source,
        cache=ImageCache(cache_dir),
        policy=pull_policy,
        platform=platform,
        client_factory=lambda: make_client(registry),
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
@registry_flags
@pull_limit_flags
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
    from xplane.oci.cache import ImageCache
    from xplane.xpkg.package import extract_to_gzip

    if (source is None) == (from_xpkg is None):
        raise click.UsageError("give either a package reference or --from-xpkg FILE")
    path = extract_to_gzip(
        str(from_xpkg) if from_xpkg is not None else str(source),
        out.with_suffix(".gz"),
        cache=ImageCache(cache_dir),
        policy=pull_policy,
        client_factory=lambda: make_client(registry),
        image_name=image_name,
        max_layer_entries=max_layer_entries,
    )
    click.echo(f"package.yaml written to {path}", err=not sys.stdout.isatty())
