"""``xp xpkg load``: put a package or image file into the cache, to be served offline."""

from __future__ import annotations

from pathlib import Path

import click

from xplane.cli.options import cache_option, format_option, parse_size
from xplane.cli.xpkg_pull import report
from xplane.oci import ImageCache


@click.command("load")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--ref", "ref", default=None, help="Reference to record the image under (default: its own name)."
)
@click.option("--platform", default=None, help="Platform to pick from an index (default linux/amd64).")
@click.option(
    "--max-member-size",
    default="8G",
    show_default=True,
    help="Refuse archives with a file larger than this (e.g. 512M).",
)
@click.option(
    "--max-total-size", default="32G", show_default=True, help="Refuse archives larger than this in total."
)
@format_option("json")
@cache_option
def load(
    file: Path,
    ref: str | None,
    platform: str | None,
    max_member_size: str,
    max_total_size: str,
    output: str | None,
    cache_dir: Path | None,
) -> None:
    """Load an .xpkg, docker/podman save tarball, OCI layout or OCI archive FILE into the cache.

    Afterwards REF is served offline with any pull policy (the ``kind load`` case).
    """
    from xplane.oci import ArchiveLimits, load_archive

    limits = ArchiveLimits(
        max_member_bytes=parse_size(max_member_size), max_total_bytes=parse_size(max_total_size)
    )
    image = load_archive(file, ref, cache=ImageCache(cache_dir), platform=platform, limits=limits)
    report(image, output, False, "Loaded")
