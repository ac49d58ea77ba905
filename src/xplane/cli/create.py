"""``xp create secret docker-registry|generic NAME``: create a Secret exactly as ``kubectl create secret`` does.

``docker-registry`` builds a ``kubernetes.io/dockerconfigjson`` Secret whose ``.dockerconfigjson`` is
Go's JSON of ``{"auths":{SERVER:{"username","password","email"?,"auth":base64(user:password)}}}``;
the password comes from ``--docker-password`` or, better (it then stays out of shell history and
the process list), ``--docker-password-stdin``. The password is never printed: the only output that
carries it is ``-o yaml|json``'s base64 ``data``, as kubectl's. The Secret goes to
``crossplane-system`` unless ``-n`` says otherwise: where Crossplane looks up ``packagePullSecrets``.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import click

from xplane.cli.statestore import home_option, writing

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value: Any) -> str:
    """Compact JSON as Go's ``json.Marshal`` writes it (UTF-8 kept; ``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def docker_config_json(server: str, username: str, password: str, email: str | None) -> bytes:
    """The ``.dockerconfigjson`` kubectl writes (fields in Go's struct order, empty ones omitted)."""
    entry = {"username": username, "password": password}
    if email:
        entry["email"] = email
    entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
    entry = {k: v for k, v in entry.items() if v}
    return go_json({"auths": {server: entry}}).encode()


def secret_object(name: str, namespace: str, secret_type: str, data: dict[str, bytes]) -> dict[str, Any]:
    """The Secret as ``kubectl create secret --dry-run=client -o yaml`` shows it."""
    return {
        "apiVersion": "v1",
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(data.items())},
        "kind": "Secret",
        "metadata": {"creationTimestamp": None, "name": name, "namespace": namespace},
        "type": secret_type,
    }


def _finish(secret: dict[str, Any], dry_run: str, output: str | None, home: Path | None) -> None:
    from xplane.cli.kubeformat import to_json, to_yaml

    if dry_run == "none":
        with writing(home) as store:
            stored = store.create(secret)
        shown = stored
    else:
        shown = secret
    if output == "yaml":
        click.echo(to_yaml(shown), nl=False)
    elif output == "json":
        click.echo(to_json(shown))
    elif output == "name":
        click.echo(f"secret/{secret['metadata']['name']}")
    else:
        suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
        click.echo(f"secret/{secret['metadata']['name']} created{suffix}")


def _common(f: Any) -> Any:
    f = home_option(f)
    f = click.option(
        "-o", "--output", type=click.Choice(["yaml", "json", "name"]), default=None, help="Print the Secret."
    )(f)
    f = click.option(
        "--dry-run",
        type=click.Choice(["none", "client", "server"]),
        default="none",
        help="Only print the Secret that would be created (client and server alike: nothing is stored).",
    )(f)
    from xplane.store import CROSSPLANE_NAMESPACE

    return click.option(
        "-n", "--namespace", default=CROSSPLANE_NAMESPACE, show_default=True, help="The Secret's namespace."
    )(f)


@click.group("create")
def create() -> None:
    """Create an object from flags (kubectl's 'create secret')."""


@create.group("secret")
def secret() -> None:
    """Create a Secret (package pull credentials, generic data)."""


@secret.command("docker-registry")
@click.argument("name")
@click.option(
    "--docker-server", default="https://index.docker.io/v1/", show_default=True, help="Registry host."
)
@click.option("--docker-username", required=True, help="Username for the registry.")
@click.option("--docker-password", default=None, help="Password (prefer --docker-password-stdin).")
@click.option("--docker-password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--docker-email", default=None, help="Email for the registry.")
@_common
def docker_registry(
    name: str,
    docker_server: str,
    docker_username: str,
    docker_password: str | None,
    docker_password_stdin: bool,
    docker_email: str | None,
    namespace: str,
    dry_run: str,
    output: str | None,
    home: Path | None,
) -> None:
    """Create a kubernetes.io/dockerconfigjson Secret for packagePullSecrets."""
    if docker_password_stdin == (docker_password is not None):
        raise click.UsageError("give the password with --docker-password-stdin (or --docker-password)")
    if docker_password_stdin:
        docker_password = sys.stdin.read().rstrip("\r\n")
        if not docker_password:
            raise click.UsageError("--docker-password-stdin: nothing was read from stdin")
    assert docker_password is not None
    data = {
        ".dockerconfigjson": docker_config_json(docker_server, docker_username, docker_password, docker_email)
    }
    _finish(secret_object(name, namespace, "kubernetes.io/dockerconfigjson", data), dry_run, output, home)


def _key_value(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise click.UsageError(f"{flag} {item!r}: expected KEY=VALUE")
    return key, value


@secret.command("generic")
@click.argument("name")
@click.option("--from-literal", multiple=True, help="KEY=VALUE; repeatable.")
@click.option("--from-file", multiple=True, help="[KEY=]PATH: a file's bytes under KEY (default: its name).")
@click.option("--type", "secret_type", default="Opaque", show_default=True, help="The Secret's type.")
@_common
def generic(
    name: str,
    from_literal: tuple[str, ...],
    from_file: tuple[str, ...],
    secret_type: str,
    namespace: str,
    dry_run: str,
    output: str | None,
    home: Path | None,
) -> None:
    """Create a Secret from literal values and files."""
    data: dict[str, bytes] = {}
    for item in from_literal:
        key, value = _key_value(item, "--from-literal")
        data[key] = value.encode()
    for item in from_file:
        key, sep, path = item.partition("=")
        if not sep:
            key, path = Path(item).name, item
        try:
            data[key] = Path(path).read_bytes()
        except OSError as e:
            raise click.UsageError(f"--from-file {item!r}: {e.strerror or e}") from None
    _finish(secret_object(name, namespace, secret_type, data), dry_run, output, home)
