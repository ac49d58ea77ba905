"""Shared CLI flags: registries, the image cache, pull policy and limits, output format.

``@cache_option`` adds ``--cache-dir``; ``@pull_policy_option`` adds ``--pull-policy``;
``@format_option(...)`` adds ``--format`` for machine-readable output of ``xp xpkg`` commands.
``@registry_options`` adds ``--ca-file``, ``--insecure-skip-tls-verify``, ``--plain-http``,
``--username`` and ``--password-stdin``; ``@pull_limit_options`` adds ``--pull-timeout`` and
``--min-transfer-rate`` to commands that pull. The command passes those keyword arguments on to
:func:`build_registry_access`, which turns them into a keychain and registry settings.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import click

if TYPE_CHECKING:
    from xplane.oci import Credentials, Keychain, RegistryClient, RegistryConfig

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY_OPTION_NAMES = ("ca_file", "insecure_skip_tls_verify", "plain_http", "username", "password_stdin")


if TYPE_CHECKING:  # click 8.1 (the range's floor) has no generic ParamType at run time
    _FloatParam = click.ParamType[float, Any]
else:
    _FloatParam = click.ParamType


class _Limit(_FloatParam):
    """A duration or a rate, parsed by ``xplane.oci.limits`` as the config file's values are."""

    def __init__(self, name: str, parse: Callable[[str], float]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return self._parse(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def pull_limit_options(f: F) -> F:
    """Add ``--pull-timeout`` and ``--min-transfer-rate`` (see docs/registries.md, "Limits")."""
    from xplane.oci import parse_duration, parse_rate

    options = [
        click.option(
            "--pull-timeout",
            type=_Limit("duration", parse_duration),
            default=None,
            metavar="DURATION",
            help="Give up a pull that takes longer, retries included (e.g. 90s, 30m; 0: no limit) "
            "[default: the registry's pullTimeout, else 10m].",
        ),
        click.option(
            "--min-transfer-rate",
            type=_Limit("rate", parse_rate),
            default=None,
            metavar="BYTES/S",
            help="Fail a download slower than this, averaged over 30s (e.g. 512, 64K; 0: no minimum) "
            "[default: the registry's minTransferRate, else 1K].",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def cache_option(f: F) -> F:
    """``--cache-dir`` (default ``$XPLANE_CACHE_DIR`` or ``$XDG_CACHE_HOME/xplane``)."""
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Cache directory (default: $XPLANE_CACHE_DIR, else $XDG_CACHE_HOME/xplane).",
    )(f)


def pull_policy_option(f: F) -> F:
    """``--pull-policy IfNotPresent|Always|Never`` (Kubernetes semantics; see docs/cache.md)."""
    from xplane.oci import PullPolicy

    return click.option(
        "--pull-policy",
        type=click.Choice([p.value for p in PullPolicy], case_sensitive=False),
        default=PullPolicy.IF_NOT_PRESENT.value,
        show_default=True,
        help="IfNotPresent: use the cache, no registry call; Always: re-resolve the tag; Never: cache only.",
    )(f)


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
    from xplane.xpkg import MAX_LAYER_ENTRIES

    return click.option(
        "--max-layer-entries",
        type=click.IntRange(min=1),
        default=MAX_LAYER_ENTRIES,
        show_default=True,
        help="Refuse images whose layers hold more tar entries than this before package.yaml.",
    )(f)


def split_csv(values: tuple[str, ...]) -> list[str]:
    """Repeatable, comma-separated flag values as one list (``-f a,b -f c`` -> ``[a, b, c]``)."""
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def format_option(*choices: str, old: tuple[str, ...] = ("-o", "--output")) -> Callable[[F], F]:
    """``--format FORMAT`` for an ``xp xpkg`` command's machine-readable output (passed as ``output``).

    In the ``xpkg`` group ``-o``/``--output`` name a *file* (``build -o/--package-file`` and
    ``extract -o/--output``, as upstream), so no sibling uses them for a format. ``old`` are the
    spellings this command used to accept for the format: they still work, hidden, with a
    deprecation warning on stderr.
    """

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, output: str | None, old_output: str | None, **kwargs: Any) -> Any:
            if old_output is not None:
                name = click.get_current_context().command_path
                click.echo(
                    f"xp: warning: '{old[-1]} {old_output}' is deprecated for '{name}'; "
                    f"use '--format {old_output}'",
                    err=True,
                )
                output = output or old_output
            return f(*args, output=output, **kwargs)

        command = click.option(*old, "old_output", type=click.Choice(choices), default=None, hidden=True)(
            command
        )
        command = click.option(
            "--format",
            "output",
            type=click.Choice(choices),
            default=None,
            help=f"Machine-readable output ({' or '.join(choices)}) on stdout.",
        )(command)
        return cast(F, command)

    return decorate


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


def registry_options(f: F) -> F:
    """Add the registry TLS and credential flags to a click command."""
    options = [
        click.option(
            "--ca-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="Also trust this CA bundle (PEM) for every registry of this command.",
        ),
        click.option(
            "--insecure-skip-tls-verify",
            is_flag=True,
            default=False,
            help="Do not verify registry TLS certificates (unsafe; prefer --ca-file).",
        ),
        click.option(
            "--plain-http",
            is_flag=True,
            default=False,
            help="Talk plain HTTP, not HTTPS, to the registries of this command.",
        ),
        click.option(
            "-u", "--username", default=None, help="Registry username (the password comes from stdin)."
        ),
        click.option(
            "--password-stdin",
            is_flag=True,
            default=False,
            help="Read the password (or token) from stdin, one line.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def read_password(stream: IO[str] | None = None) -> str:
    """The password from ``stream`` (default stdin): its text without the trailing newline."""
    stream = stream if stream is not None else sys.stdin
    password = stream.read().rstrip("\r\n")
    if not password:
        raise click.UsageError("--password-stdin: nothing was read from stdin")
    return password


def explicit_credentials(
    username: str | None, password_stdin: bool, *, stdin: IO[str] | None = None
) -> Credentials | None:
    """Credentials from ``--username`` + ``--password-stdin`` (both or neither)."""
    from xplane.oci import Credentials

    if password_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if username and not password_stdin:
        raise click.UsageError("--username needs --password-stdin (pipe the password in)")
    if not username:
        return None
    return Credentials(username=username, password=read_password(stdin))


def build_registry_access(
    ca_file: Path | None = None,
    insecure_skip_tls_verify: bool = False,
    plain_http: bool = False,
    username: str | None = None,
    password_stdin: bool = False,
    pull_timeout: float | None = None,
    min_transfer_rate: int | None = None,
    *,
    pull_secrets: Sequence[Mapping[str, Any]] = (),
    env: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
) -> tuple[Keychain, RegistryConfig]:
    """The keychain and registry settings for the flags of :func:`registry_options`.

    Use them as ``RegistryClient(keychain=keychain, config=config)``. ``env`` defaults to
    ``os.environ``; ``stdin`` to the process's stdin (read only with ``--password-stdin``).
    """
    from xplane.oci import RegistryConfig, RegistryOverrides, default_keychain

    env = os.environ if env is None else env
    explicit = explicit_credentials(username, password_stdin, stdin=stdin)
    keychain = default_keychain(explicit=explicit, pull_secrets=pull_secrets, env=env)
    overrides = RegistryOverrides(
        ca_file=ca_file,
        insecure_skip_verify=insecure_skip_tls_verify,
        plain_http=plain_http,
        pull_timeout=pull_timeout,
        min_transfer_rate=min_transfer_rate,
    )
    return keychain, RegistryConfig.load(env=env, overrides=overrides)


def make_registry_client(**options: Any) -> RegistryClient:
    """A :class:`RegistryClient` for the flags of :func:`registry_options` (``**options`` as click
    passes them; keyword arguments of :func:`build_registry_access` also work)."""
    from xplane.oci import RegistryClient

    keychain, config = build_registry_access(**options)
    return RegistryClient(keychain=keychain, config=config)
