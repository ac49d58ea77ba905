"""The one place the control loop runs after a command changed the state.

Every mutating control-plane command (``xp apply``, ``delete``, ``patch``, ``create``) calls
:func:`settle` once, after its writes are committed and before it prints its last line, so that
what a reconciler derives (revisions, conditions, installed objects, garbage collection of
finalized objects) is in the store when the command returns, as issue #10 asks ("run until the state
settles after each command").

Integration point: the package manager (``xplane.pkg``) plugs in here, e.g.
``ControlPlane(store, settings).reconcile()``; until then this does nothing, and the commands behave as
``kubectl`` against an API server whose controllers are not running.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xplane.store import Store


def settle(store: Store, home: Path) -> None:
    """Run the control loop over ``store`` until nothing is left to reconcile.

    ``home`` is the state directory in use (``--home``, else ``$XPLANE_HOME``, else
    ``$XDG_DATA_HOME/xplane``): where settings next to the state live. Returns when the state has
    settled; raises an ``XplaneError`` only for a failure of the loop itself (a package that fails
    to install is reported in its conditions and events, not raised).
    """
    del store, home  # no reconciler yet: xplane.pkg wires itself in here


__all__ = ["settle"]
