"""``xp xpkg pull`` and ``xp xpkg load``: get packages into the local cache.

Startup matters here: a warm ``IfNotPresent`` pull of a cached tag must finish as a whole process
in well under 0.3 s, so ``httpx`` (via the registry client) and ``rich`` are imported only when a
registry must be contacted or a progress bar drawn.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from xplane.cli.output import print_json
from xplane.oci.cache import ImageCache
from xplane.oci.pull import Image, PullPolicy, PullProgress
from xplane.oci.reference import Reference

if TYPE_CHECKING:
    from xplane.oci.client import RegistryClient
    from xplane.oci.models import Descriptor

F = TypeVar("F", bound=Callable[..., Any])


def registry_flags(f: F) -> F:
    """The shared registry flags (``--ca-file``, ``--plain-http``, ``--username``...)."""
    from xplane.cli.options import registry_options

    return registry_options(f)


def pull_limit_flags(f: F) -> F:
    """``--pull-timeout`` and ``--min-transfer-rate`` for the commands that pull."""
    from xplane.cli.options import pull_limit_options

    return pull_limit_options(f)


def make_client(options: dict[str, Any]) -> RegistryClient:
    """A registry client built from the shared registry flags."""
    from xplane.cli.options import make_registry_client

    return make_registry_client(**options)


def pull_policy_option(f: F) -> F:
    """``--pull-policy IfNotPresent|Always|Never`` (Kubernetes semantics; see docs/cache.md)."""
    return click.option(
        "--pull-policy",
        type=click.Choice([p.value for p in PullPolicy], case_sensitive=False),
        default=PullPolicy.IF_NOT_PRESENT.value,
        show_default=True,
        help="IfNotPresent: use the cache, no registry call; Always: re-resolve the tag; Never: cache only.",
    )(f)


def cache_option(f: F) -> F:
    """``--cache-dir`` (default ``$XPLANE_CACHE_DIR`` or ``$XDG_CACHE_HOME/xplane``)."""
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Cache directory (default: $XPLANE_CACHE_DIR, else $XDG_CACHE_HOME/xplane).",
    )(f)


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


def _report(image: Image, output: str | None, from_cache: bool, verb: str) -> None:
    if output == "json":
        print_json(image_json(image, from_cache=from_cache))
        return
    click.echo(f"{verb} {image.reference} ({image.digest})")


@click.command("pull")
@click.argument("ref")
@pull_policy_option
@click.option("--platform", default=None, help="Platform to pick from an index (default linux/amd64).")
@click.option("-o", "--output", type=click.Choice(["json"]), default=None, help="Machine-readable output.")
@cache_option
@registry_flags
@pull_limit_flags
def pull(
    ref: str,
    pull_policy: str,
    platform: str | None,
    output: str | None,
    cache_dir: Path | None,
    **registry: Any,
) -> None:
    """Pull package REF into the local cache (offline-first; see docs/cache.md)."""
    from xplane.oci.pull import pull as do_pull

    progress: PlainProgress = (
        RichProgress() if (sys.stderr.isatty() and output != "json") else PlainProgress()
    )
    try:
        image = do_pull(
            ref,
            policy=pull_policy,
            cache=ImageCache(cache_dir),
            client_factory=lambda: make_client(registry),
            platform=platform,
            progress=progress,
        )
    finally:
        if isinstance(progress, RichProgress):
            progress.close()
    _report(image, output, progress.from_cache, "Cached" if progress.from_cache else "Pulled")


def parse_size(value: str) -> int:
    """``1048576``, ``512K``, ``64M``, ``8G`` (binary units) -> bytes."""
    v = value.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if v and v[-1] in units:
            return int(float(v[:-1]) * units[v[-1]])
        return int(v)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size (e.g. 512M, 8G)") from None


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
@click.option("-o", "--output", type=click.Choice(["json"]), default=None, help="Machine-readable output.")
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
    from xplane.oci.archive import ArchiveLimits, load_archive

    limits = ArchiveLimits(
        max_member_bytes=parse_size(max_member_size), max_total_bytes=parse_size(max_total_size)
    )
    image = load_archive(file, ref, cache=ImageCache(cache_dir), platform=platform, limits=limits)
    _report(image, output, False, "Loaded")
