"""Shared CLI flags for commands that talk to registries (pull, push, login).

``@registry_options`` adds ``--ca-file``, ``--insecure-skip-tls-verify``, ``--plain-http``,
``--username`` and ``--password-stdin``; the command passes those keyword arguments on to
:func:`build_registry_access`, which turns them into a keychain and registry settings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from xplane.oci.client import RegistryClient
    from xplane.oci.credentials import Credentials, Keychain
    from xplane.oci.settings import RegistryConfig

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY_OPTION_NAMES = ("ca_file", "insecure_skip_tls_verify", "plain_http", "username", "password_stdin")


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
    from xplane.oci.credentials import Credentials

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
    *,
    pull_secrets: Sequence[Mapping[str, Any]] = (),
    env: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
) -> tuple[Keychain, RegistryConfig]:
    """The keychain and registry settings for the flags of :func:`registry_options`.

    Use them as ``RegistryClient(keychain=keychain, config=config)``. ``env`` defaults to
    ``os.environ``; ``stdin`` to the process's stdin (read only with ``--password-stdin``).
    """
    from xplane.oci.credentials import default_keychain
    from xplane.oci.settings import RegistryConfig, RegistryOverrides

    env = os.environ if env is None else env
    explicit = explicit_credentials(username, password_stdin, stdin=stdin)
    keychain = default_keychain(explicit=explicit, pull_secrets=pull_secrets, env=env)
    overrides = RegistryOverrides(
        ca_file=ca_file, insecure_skip_verify=insecure_skip_tls_verify, plain_http=plain_http
    )
    return keychain, RegistryConfig.load(env=env, overrides=overrides)


def make_registry_client(**options: Any) -> RegistryClient:
    """A :class:`RegistryClient` for the flags of :func:`registry_options` (``**options`` as click
    passes them; keyword arguments of :func:`build_registry_access` also work)."""
    from xplane.oci.client import RegistryClient

    keychain, config = build_registry_access(**options)
    return RegistryClient(keychain=keychain, config=config)
