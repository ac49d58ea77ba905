"""The one place the control loop runs after a command changed the state, and the control plane's
settings.

Every mutating control-plane command (``xp apply``, ``delete``, ``patch``, ``create``, ``xp xpkg
install|update|activate``) calls :func:`settle` once, after its writes are committed, so that what the
package manager derives (revisions, conditions, installed objects, garbage collection) is in the
store when the command returns (issue #10: "run until the state settles after each command").

The settings of the control plane (the emulated Crossplane version) live next to the state, in
``<home>/controlplane.json``, written by ``xp controlplane init``; ``$XPLANE_CROSSPLANE_VERSION``
overrides the file for one command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from xplane.pkg import ControlPlaneSettings
    from xplane.store import Store

SETTINGS_FILE = "controlplane.json"
VERSION_ENV = "XPLANE_CROSSPLANE_VERSION"


def read_settings_file(home: Path) -> dict[str, Any]:
    """``<home>/controlplane.json`` as a dict (empty when there is none)."""
    path = home / SETTINGS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        from xplane.errors import XplaneError

        raise XplaneError(
            f"cannot read the control plane's settings {path}: {e}",
            hint="fix the file, or write it again with 'xp controlplane init --crossplane-version V'",
        ) from None
    return data if isinstance(data, dict) else {}


def write_settings_file(home: Path, settings: dict[str, Any]) -> Path:
    """Write ``settings`` to ``<home>/controlplane.json`` atomically; the path written."""
    from xplane.oci import atomic_output

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / SETTINGS_FILE
    with atomic_output(path) as out:
        out.write((json.dumps(settings, indent=2, sort_keys=True) + "\n").encode())
    return path


def control_plane_settings(home: Path) -> ControlPlaneSettings:
    """The settings of the control plane whose state is in ``home``."""
    from xplane.pkg import DEFAULT_CROSSPLANE_VERSION, ControlPlaneSettings

    stored = read_settings_file(home)
    version = os.environ.get(VERSION_ENV) or stored.get("crossplaneVersion") or DEFAULT_CROSSPLANE_VERSION
    return ControlPlaneSettings(
        crossplane_version=str(version),
        dependency_upgrades=bool(stored.get("dependencyUpgrades", False)),
        dependency_downgrades=bool(stored.get("dependencyDowngrades", False)),
        dependency_resolution="upstream" if stored.get("dependencyResolution") == "upstream" else "graph",
    )


def settle(store: Store, home: Path) -> None:
    """Run the package manager over ``store`` until nothing is left to reconcile.

    ``home`` is the state directory in use. A package that fails to install is not an error of the
    command: its conditions and events say why (``xp describe``), and a warning line on stderr names
    each package whose failure is new or changed by this command.
    """
    from xplane.pkg import ControlPlane

    plane = ControlPlane(store, control_plane_settings(home))
    before = plane.status_summary()
    summary = plane.reconcile()
    for key, state in summary.packages.items():
        message = state.get("message")
        if message and (before.get(key) or {}).get("message") != message:
            kind, _, name = key.partition("/")
            click.echo(f"xp: warning: {kind.lower()}/{name}: {message}", err=True)
    if not summary.settled:
        click.echo(
            f"xp: warning: the control plane did not settle within {summary.passes} passes; "
            "'xp controlplane run' goes on reconciling",
            err=True,
        )


__all__ = ["control_plane_settings", "read_settings_file", "settle", "write_settings_file"]
