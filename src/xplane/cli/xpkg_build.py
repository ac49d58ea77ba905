"""``xp xpkg build``: make a Crossplane package from a directory of YAML.

Flags are named like ``crossplane xpkg build``'s, so existing scripts keep working.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from xplane.cli.options import (
    cache_option,
    format_option,
    make_registry_client,
    pull_limit_options,
    pull_policy_option,
    registry_options,
    split_csv,
)
from xplane.cli.output import print_json


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
@format_option("json", old=("--output",))
@pull_policy_option
@cache_option
@registry_options
@pull_limit_options
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
    from xplane.oci import ImageCache
    from xplane.xpkg import BuildOptions, build_package

    if embed_runtime_image and embed_runtime_image_tarball:
        raise click.UsageError("use --embed-runtime-image or --embed-runtime-image-tarball, not both")
    embeds = embed_runtime_image_tarball is not None or embed_runtime_image is not None
    cache = ImageCache(cache_dir) if embeds else None
    # A runtime tarball's layers sit untagged in the cache until the package is written.
    with cache.writer() if cache is not None else contextlib.nullcontext():
        runtime = None
        if embed_runtime_image is not None:
            assert cache is not None
            from xplane.xpkg import open_image

            runtime = open_image(
                embed_runtime_image,
                cache=cache,
                policy=pull_policy,
                platform=platform,
                client_factory=lambda: make_registry_client(**registry),
            )
        built = build_package(
            BuildOptions(
                package_root=package_root,
                examples_root=examples_root,
                ignore=split_csv(ignore),
                examples_ignore=split_csv(examples_ignore),
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
