"""``xp xpkg install|update KIND REF [NAME]`` and ``xp xpkg activate REVISION``: packages into the
embedded control plane, with the arguments and flags of ``crossplane xpkg install|update``.

The package object is written and the package manager settles before the command returns (pulling
the package into xplane's cache, creating its revision, installing its objects), so ``--wait`` only
has to wait for what takes longer: a dependency another process installs, a registry coming back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from xplane.cli.statestore import home_option, writing

F = TypeVar("F", bound=Callable[..., Any])

KINDS = {"configuration": "Configuration", "provider": "Provider", "function": "Function"}
REVISION_KINDS = ("ConfigurationRevision", "ProviderRevision", "FunctionRevision")


def _wait_option(f: F) -> F:
    return click.option(
        "-w",
        "--wait",
        default="0s",
        show_default=True,
        metavar="DURATION",
        help="Wait this long for the package to become installed and healthy (e.g. 2m); 0s: don't wait.",
    )(f)


def _seconds(text: str) -> float:
    from xplane.oci import parse_duration

    try:
        return float(parse_duration(text))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--wait") from None


def _healthy(obj: dict[str, Any]) -> tuple[bool, str]:
    """Whether ``Installed`` and ``Healthy`` are both True; else the message of the first that isn't."""
    conditions = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    for kind in ("Installed", "Healthy"):
        c = conditions.get(kind) or {}
        if c.get("status") != "True":
            return False, str(c.get("message") or c.get("reason") or f"{kind} is not yet True")
    return True, ""


def _wait_healthy(home: Path | None, kind: str, name: str, seconds: float) -> None:
    """Settle again every second until ``kind/name`` is installed and healthy, or fail after ``seconds``."""
    from xplane.store import Store

    deadline = time.monotonic() + seconds
    while True:
        with Store.open(home=home) as store:
            ok, why = _healthy(store.get(kind, name))
        if ok:
            return
        if time.monotonic() >= deadline:
            raise click.ClickException(f"{kind.lower()}/{name} is not healthy after {seconds:g}s: {why}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        with writing(home):
            pass  # the package manager settles when the block ends


def _dry_run_option(f: F) -> F:
    f = click.option(
        "--format",
        "output",
        type=click.Choice(["table", "json", "yaml"]),
        default="table",
        show_default=True,
        help="How --dry-run prints its plan (-o/--output name files in the xpkg group).",
    )(f)
    return click.option(
        "--dry-run",
        is_flag=True,
        help="Print what would be installed, upgraded or left alone, and why; change nothing.",
    )(f)


def _print_plan(plan: Any, output: str) -> None:
    """The plan as a kubectl-style table (or JSON/YAML); exit 1 when the install would fail."""
    from xplane.cli.kubeformat import table, to_json, to_yaml

    if output != "table":
        click.echo(to_json(plan.as_dict()) if output == "json" else to_yaml(plan.as_dict()), nl=False)
    else:
        rows = [
            [
                s["action"].upper(),
                s["kind"] or "-",
                s["name"],
                s["package"],
                s["previous"] or "-",
                s["reason"],
            ]
            for s in plan.as_dict()["steps"]
        ]
        click.echo(table(["ACTION", "KIND", "NAME", "PACKAGE", "PREVIOUS", "WHY"], rows), nl=False)
        for note in plan.notes:
            click.echo(f"note: {note}")
        click.echo("dry run: nothing was changed")
    if plan.error is not None:
        raise click.ClickException(f"the install would fail: {plan.error}")
    if plan.incompatible:
        raise click.ClickException(
            "the package would be unhealthy: incompatible dependencies: " + "; ".join(plan.incompatible)
        )


def _dry_run(home: Path | None, obj: dict[str, Any], existing_spec: bool, output: str) -> None:
    """Plan ``obj`` against the state in ``home`` (or an empty control plane) without writing it."""
    import tempfile

    from xplane.cli.controlplane_hook import control_plane_settings
    from xplane.cli.statestore import open_for_reading
    from xplane.pkg import plan_install
    from xplane.store import Store, state_dir

    settings = control_plane_settings(state_dir(home))
    store = open_for_reading(home)
    with tempfile.TemporaryDirectory(prefix="xp-dry-run-") as empty:
        if store is None:  # no state yet: plan against an empty control plane, written nowhere
            store = Store.open(home=Path(empty))
        try:
            if existing_spec:
                old = store.try_get(obj["kind"], obj["metadata"]["name"])
                if old is None:
                    raise click.ClickException(
                        f"{obj['kind'].lower()}/{obj['metadata']['name']} does not exist; install it with "
                        f"'xp xpkg install {obj['kind'].lower()} {obj['spec']['package']}'"
                    )
                obj = {**old, "spec": {**old.get("spec", {}), "package": obj["spec"]["package"]}}
            plan = plan_install(store, settings, obj)
        finally:
            store.close()
    _print_plan(plan, output)


def _install(
    verb: str,
    kind_arg: str,
    ref: str,
    name: str | None,
    home: Path | None,
    wait: str,
    fields: dict[str, Any],
    dry_run: str | None = None,
) -> None:
    from xplane.cli.controlplane import package_object

    kind = KINDS[kind_arg.lower()]
    seconds = _seconds(wait)
    obj = package_object(kind, ref, name, **fields)
    name = obj["metadata"]["name"]
    if dry_run is not None:
        _dry_run(home, obj, verb == "update", dry_run)
        return
    with writing(home) as store:
        existing = store.try_get(kind, name)
        if verb == "install" and existing is not None:
            raise click.ClickException(
                f"{kind.lower()}/{name} already exists (package {existing['spec'].get('package')}); "
                f"use 'xp xpkg update {kind_arg.lower()} {ref} {name}' to change it"
            )
        if verb == "update":
            if existing is None:
                raise click.ClickException(
                    f"{kind.lower()}/{name} does not exist; install it with "
                    f"'xp xpkg install {kind_arg.lower()} {ref} {name}'"
                )
            obj = {**existing, "spec": {**existing.get("spec", {}), "package": ref}}
            obj["metadata"] = {k: v for k, v in existing["metadata"].items() if k != "resourceVersion"}
        store.apply(obj)
    click.echo(f"{kind.lower()}/{name} {'created' if verb == 'install' else 'updated'}")
    if seconds > 0:
        _wait_healthy(home, kind, name, seconds)


@click.command("install")
@click.argument("kind_arg", metavar="KIND", type=click.Choice(sorted(KINDS), case_sensitive=False))
@click.argument("ref")
@click.argument("name", required=False)
@click.option(
    "--runtime-config",
    default=None,
    help="Name of the DeploymentRuntimeConfig of a Provider or Function (runtimeConfigRef).",
)
@click.option("-m", "--manual-activation", is_flag=True, help="Set revisionActivationPolicy to Manual.")
@click.option(
    "--package-pull-secrets",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Secrets (type kubernetes.io/dockerconfigjson, namespace crossplane-system) to pull with.",
)
@click.option(
    "-r",
    "--revision-history-limit",
    type=click.IntRange(min=0),
    default=None,
    help="Inactive revisions to keep (0: all) [default: 1].",
)
@_wait_option
@_dry_run_option
@home_option
def install(
    kind_arg: str,
    ref: str,
    name: str | None,
    runtime_config: str | None,
    manual_activation: bool,
    package_pull_secrets: tuple[str, ...],
    revision_history_limit: int | None,
    wait: str,
    dry_run: bool,
    output: str,
    home: Path | None,
) -> None:
    """Install a Crossplane package (KIND: configuration, provider or function) from REF.

    NAME defaults to the repository of REF as a DNS label, as crossplane xpkg install does.
    --dry-run resolves the package's dependencies with the installed graph and prints the plan.
    """
    from xplane.cli.options import split_csv

    if runtime_config is not None and kind_arg.lower() == "configuration":
        raise click.UsageError("--runtime-config applies to providers and functions only")
    secrets = [{"name": n} for n in split_csv(package_pull_secrets)] or None
    fields: dict[str, Any] = {
        "revisionActivationPolicy": "Manual" if manual_activation else None,
        "packagePullSecrets": secrets,
        "revisionHistoryLimit": revision_history_limit,
        "runtimeConfigRef": {"name": runtime_config} if runtime_config else None,
    }
    _install("install", kind_arg, ref, name, home, wait, fields, output if dry_run else None)


@click.command("update")
@click.argument("kind_arg", metavar="KIND", type=click.Choice(sorted(KINDS), case_sensitive=False))
@click.argument("ref")
@click.argument("name", required=False)
@_wait_option
@_dry_run_option
@home_option
def update(
    kind_arg: str, ref: str, name: str | None, wait: str, dry_run: bool, output: str, home: Path | None
) -> None:
    """Point an installed package at REF (a new tag or digest): a new revision takes over."""
    _install("update", kind_arg, ref, name, home, wait, {}, output if dry_run else None)


@click.command("activate")
@click.argument("revision")
@home_option
def activate(revision: str, home: Path | None) -> None:
    """Activate REVISION (revisionActivationPolicy: Manual): set its spec.desiredState to Active."""
    with writing(home) as store:
        found = [k for k in REVISION_KINDS if store.try_get(k, revision) is not None]
        if not found:
            raise click.ClickException(f'no package revision "{revision}" (see: xp get pkgrev)')
        kind = found[0]

        def activate_spec(obj: dict[str, Any]) -> None:
            obj.setdefault("spec", {})["desiredState"] = "Active"

        store.modify(kind, revision, activate_spec)
    click.echo(f"{kind.lower()}.pkg.crossplane.io/{revision} activated")
