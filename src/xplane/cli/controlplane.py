"""``xp controlplane init|run|export-cache``: set up, keep running and export the embedded control plane.

``init`` is the equivalent of installing Crossplane with Helm's ``--set
configuration.packages='{...}'`` (and ``provider.packages``, ``function.packages``): it records the
emulated Crossplane version, creates the ``default`` DeploymentRuntimeConfig as ``crossplane core
init`` does, and installs the packages it is given. ``run`` keeps the package manager reconciling
(store changes from any ``xp`` process, ``Always`` packages every minute) until SIGTERM or Ctrl-C.
``export-cache`` writes what an air-gapped cluster's package-cache volume needs (docs/packages.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from xplane.cli.statestore import home_option, writing

F = TypeVar("F", bound=Callable[..., Any])

RUNTIME_CONFIG = {
    "apiVersion": "pkg.crossplane.io/v1beta1",
    "kind": "DeploymentRuntimeConfig",
    "metadata": {"name": "default"},
    "spec": {},
}


@click.group("controlplane")
def controlplane() -> None:
    """The embedded control plane: set it up, keep it running, export its package cache."""


def package_object(kind: str, ref: str, name: str | None = None, **spec: Any) -> dict[str, Any]:
    """A Configuration, Provider or Function installing ``ref``, named as ``crossplane xpkg install``
    and ``crossplane core init`` name it when no name is given: the repository as a DNS label."""
    from xplane.oci import Reference, to_dns_label

    if name is None:
        name = to_dns_label(Reference.parse(ref).repository)
    return {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"package": ref, **{k: v for k, v in spec.items() if v is not None}},
    }


def _packages_option(kind: str) -> Callable[[F], F]:
    return click.option(
        f"--{kind.lower()}-packages",
        f"{kind.lower()}_packages",
        multiple=True,
        metavar="REF[,REF...]",
        help=f"{kind} packages to install (comma-separated, repeatable), as Helm's {kind.lower()}.packages.",
    )


@controlplane.command("init")
@click.option(
    "--crossplane-version",
    default=None,
    metavar="VERSION",
    help="The Crossplane version packages' spec.crossplane.version constraints are checked against "
    "[default: the current upstream release]; kept for later commands.",
)
@click.option(
    "--dependency-upgrades/--no-dependency-upgrades",
    default=None,
    help="Let the resolver upgrade installed dependencies to the lowest version every dependent "
    "accepts (upstream's --enable-dependency-version-upgrades); kept for later commands.",
)
@click.option(
    "--dependency-downgrades/--no-dependency-downgrades",
    default=None,
    help="Also let it downgrade them when only lower versions satisfy every dependent (upstream's "
    "--enable-dependency-version-downgrades; implies upgrades); kept for later commands.",
)
@click.option(
    "--dependency-resolution",
    type=click.Choice(["graph", "upstream"]),
    default=None,
    help="graph: resolve the whole dependency graph, every dependent's constraint counts [default]; "
    "upstream: Crossplane's resolver, one dependency at a time, the first dependent's constraint "
    "only (to see what a cluster would do); kept for later commands.",
)
@_packages_option("Configuration")
@_packages_option("Provider")
@_packages_option("Function")
@home_option
def init(
    crossplane_version: str | None,
    dependency_upgrades: bool | None,
    dependency_downgrades: bool | None,
    dependency_resolution: str | None,
    configuration_packages: tuple[str, ...],
    provider_packages: tuple[str, ...],
    function_packages: tuple[str, ...],
    home: Path | None,
) -> None:
    """Create the control plane's state, optionally with packages installed (as Helm's --set)."""
    from xplane.cli.controlplane_hook import read_settings_file, write_settings_file
    from xplane.cli.options import split_csv
    from xplane.store import state_dir

    where = state_dir(home)
    if crossplane_version is not None:
        from xplane.xpkg import SemverError, Version

        try:
            Version.parse(crossplane_version)
        except SemverError as e:
            raise click.BadParameter(str(e), param_hint="--crossplane-version") from None
        write_settings_file(where, {**read_settings_file(where), "crossplaneVersion": crossplane_version})
    for key, flag in (
        ("dependencyUpgrades", dependency_upgrades),
        ("dependencyDowngrades", dependency_downgrades),
        ("dependencyResolution", dependency_resolution),
    ):
        if flag is not None:
            write_settings_file(where, {**read_settings_file(where), key: flag})
    wanted = [
        package_object(kind, ref)
        for kind, refs in (
            ("Configuration", configuration_packages),
            ("Provider", provider_packages),
            ("Function", function_packages),
        )
        for ref in split_csv(refs)
    ]
    with writing(home) as store:
        if store.try_get("DeploymentRuntimeConfig", "default") is None:
            store.create(RUNTIME_CONFIG)
            click.echo("deploymentruntimeconfig.pkg.crossplane.io/default created")
        for obj in wanted:
            existing = store.try_get(obj["kind"], obj["metadata"]["name"])
            store.apply(obj)
            verb = "created" if existing is None else "configured"
            click.echo(f"{obj['kind'].lower()}.pkg.crossplane.io/{obj['metadata']['name']} {verb}")
    click.echo(f"control plane state in {where}", err=True)


@controlplane.command("run")
@home_option
def run(home: Path | None) -> None:
    """Keep the package manager reconciling until SIGTERM or Ctrl-C (exit 0).

    Reacts to every change any xp process makes to the state and re-checks packages with
    packagePullPolicy: Always every minute, as Crossplane's package manager does.
    """
    import signal
    import threading

    from xplane.cli.controlplane_hook import control_plane_settings
    from xplane.pkg import ControlPlane, package_admission
    from xplane.store import Store, state_dir

    stop = threading.Event()

    def stop_on(signum: int, _frame: object) -> None:
        click.echo(f"{signal.Signals(signum).name}: stopping", err=True)
        stop.set()

    previous = {s: signal.signal(s, stop_on) for s in (signal.SIGTERM, signal.SIGINT)}
    where = state_dir(home)
    try:
        with Store.open(home=home, admission=package_admission) as store:
            click.echo(f"control plane running (state in {where}); SIGTERM or Ctrl-C stops it", err=True)
            ControlPlane(store, control_plane_settings(where)).run(stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@controlplane.command("export-cache")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@home_option
def export_cache(directory: Path, home: Path | None) -> None:
    """Write Crossplane's package-cache files for every installed revision, and manifests to apply.

    DIRECTORY receives <FriendlyID(source, digest)>.gz per revision (what Crossplane's package manager
    reads from its cache volume) and packages.yaml (the packages pinned to their digests with
    packagePullPolicy: Never), so a cluster with that volume installs them with no registry.
    """
    from xplane.cli.controlplane_hook import control_plane_settings
    from xplane.cli.statestore import open_for_reading
    from xplane.pkg import ControlPlane
    from xplane.store import state_dir

    store = open_for_reading(home)
    if store is None:
        raise click.ClickException(f"no control plane state in {state_dir(home)}: nothing to export")
    with store:
        result = ControlPlane(store, control_plane_settings(state_dir(home))).export_cache(directory)
    for warning in result.warnings:
        click.echo(f"xp: warning: {warning}", err=True)
    for path in result.cache_files:
        click.echo(str(path))
    if result.manifests is not None:
        click.echo(str(result.manifests))
