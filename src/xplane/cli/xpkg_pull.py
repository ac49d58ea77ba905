"""``xp xpkg pull``: get a package into the local cache.

Startup matters here: a warm ``IfNotPresent`` pull of a cached tag must finish as a whole process
in well under 0.3 s, so ``httpx`` (via the registry client) and ``rich`` are imported only when a
registry must be contacted or a progress bar drawn.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from xplane.cli.options import (
    cache_option,
    format_option,
    make_registry_client,
    pull_limit_options,
    pull_policy_option,
    registry_options,
)
from xplane.cli.output import print_json
from xplane.oci import Image, ImageCache, PullProgress, Reference

if TYPE_CHECKING:
    from xplane.oci import Descriptor


def image_json(image: Image, *, from_cache: bool | None = None) -> dict[str, Any]:
    """The ``-o json`` form of an image."""
    out: dict[str, Any] = {
        "reference": str(image.reference),
        "digest": image.digest,
        "manifestDigest": image.manifest_digest,
        "mediaType": image.media_type,
        "platform": str(image.platform) if image.platform else None,
        "layers": [{"digest": d.digest, "size": d.size, "mediaType": d.media_type} for d in image.layers],
        "cacheDir": str(image.cache.root),
    }
    if from_cache is not None:
        out["fromCache"] = from_cache
    return out


class PlainProgress(PullProgress):
    """One line per event on stderr (not a TTY, or ``-o json``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.from_cache = False
        self._lock = threading.Lock()

    def _say(self, msg: str) -> None:
        if not self.quiet:
            with self._lock:
                click.echo(msg, err=True)

    def resolved(self, ref: Reference, digest: str, *, from_cache: bool) -> None:
        self.from_cache = from_cache
        if not from_cache:  # a cache hit is reported once, by the command's own "Cached ..." line
            self._say(f"{ref}: {digest}")

    def blob_start(self, descriptor: Descriptor, *, cached: bool) -> None:
        if not cached:
            self._say(f"fetching {descriptor.digest[:19]} ({descriptor.size} bytes)")

    def blob_done(self, descriptor: Descriptor) -> None:
        pass


class RichProgress(PlainProgress):
    """A rich progress bar on stderr, created only when the first blob is fetched."""

    def __init__(self) -> None:
        super().__init__()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def resolved(self, ref: Reference, digest: str, *, from_cache: bool) -> None:
        self.from_cache = from_cache

    def _progress(self) -> Any:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
        return self._bar

    def blob_start(self, descriptor: Descriptor, *, cached: bool) -> None:
        if cached:
            return
        with self._lock:
            bar = self._progress()
            self._tasks[descriptor.digest] = bar.add_task(descriptor.digest[7:19], total=descriptor.size)

    def blob_advance(self, descriptor: Descriptor, nbytes: int) -> None:
        task = self._tasks.get(descriptor.digest)
        if task is not None:
            self._bar.advance(task, nbytes)

    def close(self) -> None:
        """Stop the bar (if one was drawn)."""
        if self._bar is not None:
            self._bar.stop()


def report(image: Image, output: str | None, from_cache: bool, verb: str) -> None:
    """Print the outcome of a pull or load: ``VERB REF (DIGEST)``, or the image as JSON."""
    if output == "json":
        print_json(image_json(image, from_cache=from_cache))
        return
    click.echo(f"{verb} {image.reference} ({image.digest})")


@click.command("pull")
@click.argument("ref")
@pull_policy_option
@click.option("--platform", default=None, help="Platform to pick from an index (default linux/amd64).")
@format_option("json")
@cache_option
@registry_options
@pull_limit_options
def pull(
    ref: str,
    pull_policy: str,
    platform: str | None,
    output: str | None,
    cache_dir: Path | None,
    **registry: Any,
) -> None:
    """Pull package REF into the local cache (offline-first; see docs/cache.md)."""
    from xplane.oci import pull as do_pull

    progress: PlainProgress = (
        RichProgress() if (sys.stderr.isatty() and output != "json") else PlainProgress()
    )
    try:
        image = do_pull(
            ref,
            policy=pull_policy,
            cache=ImageCache(cache_dir),
            client_factory=lambda: make_registry_client(**registry),
            platform=platform,
            progress=progress,
        )
    finally:
        if isinstance(progress, RichProgress):
            progress.close()
    report(image, output, progress.from_cache, "Cached" if progress.from_cache else "Pulled")
