"""``xp cache ls|rm|prune|du``: inspect and clean the local image cache.

A damaged entry (a cached manifest that does not parse, nests too deep or is too large) never
stops a command: it is reported as a warning on stderr, and the other entries are listed,
counted and pruned as usual.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from xplane.cli.options import cache_option
from xplane.cli.output import print_json
from xplane.oci import CacheProblem, ImageCache, Reference, TagEntry

REMOVE_HINT = "hint: remove a damaged image with 'xp cache rm REF'; the other images are not affected"


def human_size(n: int) -> str:
    """Bytes in binary units, kubectl-style compact (``512B``, ``4.0KiB``, ``1.2MiB``)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"  # pragma: no cover


def age(timestamp: str | None, now: float | None = None) -> str:
    """kubectl's AGE column: ``45s``, ``12m``, ``5h``, ``3d``; ``<unknown>`` without a time."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return "<unknown>"
    secs = max(0, int((now or time.time()) - then))
    for unit, width in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= width * (2 if unit != "m" else 1):
            return f"{secs // width}{unit}"
    return f"{secs}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A kubectl-like table: upper-case headers, columns left-aligned, three spaces apart."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]
    ]
    return "\n".join(lines)


def _where(e: TagEntry) -> str:
    return f"{e.name}:{e.tag}" if e.tag else f"{e.name}@{e.digest}"


def _warn(problems: Sequence[CacheProblem]) -> None:
    """Each damaged entry on stderr, compiler-style, then how to get rid of it."""
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        click.echo(REMOVE_HINT, err=True)


def _sized(cache: ImageCache, entries: Sequence[TagEntry]) -> tuple[list[int], list[list[str]]]:
    """Each entry's size and the problems found measuring it (a damaged entry counts what it reaches)."""
    sizes, found = [], []
    for e in entries:
        problems: list[str] = []
        sizes.append(cache.image_size(e.digest, problems))
        found.append(problems)
    return sizes, found


def _entry_json(e: TagEntry, size: int, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "repository": e.name,
        "tag": e.tag,
        "digest": e.digest,
        "size": size,
        "pulledAt": e.pulled_at,
        "resolvedAt": e.resolved_at,
        "source": e.source,
    }
    if problems:
        out["problems"] = problems
    return out


@click.group("cache")
def cache() -> None:
    """Inspect and clean the local image cache (see docs/cache.md)."""


@cache.command("ls")
@click.option("-o", "--output", type=click.Choice(["json", "wide"]), default=None, help="Output format.")
@cache_option
def ls(output: str | None, cache_dir: Path | None) -> None:
    """List cached images: repository, tag, digest, size, when pulled."""
    c = ImageCache(cache_dir)
    entries = c.entries()
    sizes, found = _sized(c, entries)
    _warn([CacheProblem(_where(e), text) for e, texts in zip(entries, found, strict=True) for text in texts])
    if output == "json":
        images = [_entry_json(e, n, p) for e, n, p in zip(entries, sizes, found, strict=True)]
        print_json({"cacheDir": str(c.root), "images": images})
        return
    if not entries:
        click.echo(f"No images in the cache ({c.root}).", err=True)
        return
    headers = ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED"]
    if output == "wide":
        headers.append("SOURCE")
    rows = []
    for e, size, problems in zip(entries, sizes, found, strict=True):
        row = [
            e.name,
            e.tag or "<none>",
            e.digest if output == "wide" else e.digest[:19],
            human_size(size) + (" (damaged)" if problems else ""),
            age(e.pulled_at),
        ]
        if output == "wide":
            row.append(e.source or "")
        rows.append(row)
    click.echo(table(headers, rows))


@cache.command("rm")
@click.argument("refs", nargs=-1, required=True)
@click.option("--no-prune", is_flag=True, help="Only forget the references; keep the blobs until 'prune'.")
@cache_option
def rm(refs: tuple[str, ...], no_prune: bool, cache_dir: Path | None) -> None:
    """Remove REFS (tags or digests) from the cache, then delete blobs nothing uses any more."""
    c = ImageCache(cache_dir)
    missing = []
    for r in refs:
        removed = c.remove(Reference.parse(r))
        if not removed:
            missing.append(r)
        for e in removed:
            click.echo(f"Untagged: {e.name}:{e.tag}" if e.tag else f"Deleted: {e.name}@{e.digest}")
    if not no_prune:
        result = c.prune()
        _warn(result.problems)
        if result.blobs:
            click.echo(f"Deleted {result.blobs} blobs ({human_size(result.bytes)}).")
    if missing:
        from xplane.oci import CacheMissError

        raise CacheMissError(f"not in the cache: {', '.join(missing)}", hint="see 'xp cache ls'")


@cache.command("prune")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("-o", "--output", type=click.Choice(["json"]), default=None, help="Machine-readable output.")
@cache_option
def prune(dry_run: bool, output: str | None, cache_dir: Path | None) -> None:
    """Delete blobs no cached tag or digest uses, and temp files of interrupted pulls."""
    result = ImageCache(cache_dir).prune(dry_run=dry_run)
    _warn(result.problems)
    if output == "json":
        print_json(
            {"blobs": result.blobs, "bytes": result.bytes, "tempFiles": result.temp_files, "dryRun": dry_run}
        )
        return
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(
        f"{verb} {result.blobs} blobs ({human_size(result.bytes)}) and {result.temp_files} temp files."
    )


@cache.command("du")
@click.option("-o", "--output", type=click.Choice(["json"]), default=None, help="Machine-readable output.")
@cache_option
def du(output: str | None, cache_dir: Path | None) -> None:
    """Show how much disk the cache uses and how much 'prune' would free."""
    u = ImageCache(cache_dir).disk_usage()
    _warn(u.problems)
    if output == "json":
        print_json(
            {
                "cacheDir": u.root,
                "images": u.images,
                "blobs": u.blobs,
                "bytes": u.bytes,
                "referencedBytes": u.referenced_bytes,
                "reclaimableBytes": u.reclaimable_bytes,
                "tempBytes": u.temp_bytes,
            }
        )
        return
    click.echo(
        table(
            ["CACHE", "IMAGES", "BLOBS", "SIZE", "RECLAIMABLE"],
            [
                [
                    u.root,
                    str(u.images),
                    str(u.blobs),
                    human_size(u.bytes),
                    human_size(u.reclaimable_bytes + u.temp_bytes),
                ]
            ],
        )
    )
