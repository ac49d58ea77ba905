"""``xp registry login|logout``: save and remove registry logins in Docker's config.json.

``login`` first checks the credentials against the registry (``RegistryClient.check_auth``), so a
wrong password exits 4 and writes nothing. See docs/registries.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from xplane.cli.options import read_password, registry_options


@click.group("registry")
def registry() -> None:
    """Log in to and out of container registries."""


def _split(target: str) -> tuple[str, str]:
    from xplane.oci import normalize_key

    if not target or target.startswith("/"):
        raise click.BadParameter(f"{target!r} is not a registry host[:port][/repository]", param_hint="HOST")
    host, _, repo = normalize_key(target).partition("/")
    return host, repo


def _interactive() -> bool:
    return sys.stdin.isatty()


def _other_login(host: str, repo: str, env: Mapping[str, str]) -> str | None:
    """Where a login for this registry comes from when not Docker's config.json (None if nowhere)."""
    from xplane.oci import CredentialsError, default_keychain, docker_config_path

    docker = str(docker_config_path(env))
    try:
        match = default_keychain(env=env).lookup(host, repo)
    except CredentialsError:
        return None
    if match is None or match.source.startswith(docker) or f"in {docker})" in match.source:
        return None
    return match.source


@registry.command("login")
@click.argument("host")
@registry_options
def login(
    host: str,
    ca_file: Path | None,
    insecure_skip_tls_verify: bool,
    plain_http: bool,
    username: str | None,
    password_stdin: bool,
) -> None:
    """Log in to registry HOST (host[:port], or host[:port]/repository for a repository login).

    The credentials are checked against the registry, then saved in Docker's config.json
    ($DOCKER_CONFIG/config.json or ~/.docker/config.json, mode 0600), or in its credential helper.
    """
    from xplane.oci import (
        Credentials,
        ExplicitSource,
        Keychain,
        RegistryClient,
        RegistryConfig,
        RegistryOverrides,
        store_login,
    )

    env = os.environ
    reg, repo = _split(host)
    if not username:
        if password_stdin or not _interactive():
            raise click.UsageError("give the username with -u/--username")
        username = click.prompt("Username")
    if password_stdin:
        password = read_password()
    elif _interactive():
        password = click.prompt("Password", hide_input=True)
    else:
        raise click.UsageError("stdin is not a terminal: pipe the password in with --password-stdin")
    creds = Credentials(username=username, password=password)
    keychain = Keychain([ExplicitSource(creds, label="given to xp registry login")])
    overrides = RegistryOverrides(
        ca_file=ca_file, insecure_skip_verify=insecure_skip_tls_verify, plain_http=plain_http
    )
    config = RegistryConfig.load(env=env, overrides=overrides)
    with RegistryClient(keychain=keychain, config=config) as client:
        client.check_auth(reg, repo or None)
    saved = store_login(host, creds, env=env)
    click.echo(f"Login Succeeded: {host} (saved in {saved})")
    other = _other_login(reg, repo, env)
    if other is not None:
        click.echo(f"note: {other} also holds a login for {host} and is read first", err=True)


@registry.command("logout")
@click.argument("host")
def logout(host: str) -> None:
    """Remove the login for HOST from Docker's config.json (and its credential helper)."""
    from xplane.oci import docker_config_path, remove_login

    env = os.environ
    reg, repo = _split(host)
    if remove_login(host, env=env):
        click.echo(f"Removed login credentials for {host} from {docker_config_path(env)}")
    else:
        click.echo(f"Not logged in to {host} in {docker_config_path(env)}", err=True)
    other = _other_login(reg, repo, env)
    if other is not None:
        click.echo(f"note: xplane still finds a login for {host} in {other}", err=True)
