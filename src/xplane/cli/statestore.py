"""What the control-plane commands share: ``--home``, opening the state store, reporting errors.

Reading commands (``get``, ``describe``) open the store without creating it: no state yet reads as
an empty control plane. Writing commands open it with the package kinds' admission
(:func:`xplane.pkg.package_admission`: CRD defaults and schema) and call
:func:`xplane.cli.controlplane_hook.settle` after their writes (:func:`writing`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from xplane.errors import XplaneError
    from xplane.store import Kind, Store

F = TypeVar("F", bound=Callable[..., Any])


def home_option(f: F) -> F:
    """``--home DIR``: the state directory (docs/controlplane.md)."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="State directory (default: $XPLANE_HOME, else $XDG_DATA_HOME/xplane).",
    )(f)


def namespace_options(f: F) -> F:
    """``-n/--namespace`` and ``-A/--all-namespaces`` for namespaced kinds (Secrets)."""
    f = click.option(
        "-A", "--all-namespaces", is_flag=True, help="List the namespaced kinds in every namespace."
    )(f)
    return click.option(
        "-n", "--namespace", default=None, help="Namespace of namespaced kinds (default: crossplane-system)."
    )(f)


def open_for_reading(home: Path | None) -> Store | None:
    """The store at ``home``, or None when no state was ever written there."""
    from xplane.store import Store, StoreMissingError

    try:
        return Store.open(home=home, create=False)
    except StoreMissingError:
        return None


def resolve(store: Store | None, name: str) -> tuple[Kind, ...]:
    """The kinds ``name`` stands for (kubectl's names and categories), with or without a store."""
    if store is not None:
        return store.resolve(name)
    from xplane.store import Scheme

    return Scheme().resolve(name)


@contextlib.contextmanager
def writing(home: Path | None) -> Iterator[Store]:
    """The store for a mutating command; the control loop settles when the block ends without error."""
    from xplane.cli.controlplane_hook import settle
    from xplane.pkg import package_admission
    from xplane.store import Store, state_dir

    store = Store.open(home=home, admission=package_admission)
    try:
        yield store
        settle(store, state_dir(home))
    finally:
        store.close()


class Errors:
    """Errors a command reports one by one while it carries on (kubectl's ``ContinueOnError``)."""

    def __init__(self) -> None:
        self.codes: list[int] = []

    def report(self, error: XplaneError | str, code: int = 1) -> None:
        """Print ``xp: error: ...`` on stderr and remember the exit code."""
        if isinstance(error, str):
            click.echo(f"xp: error: {error}", err=True)
            self.codes.append(code)
        else:
            click.echo(f"xp: error: {error}", err=True)
            self.codes.append(error.exit_code)

    @property
    def exit_code(self) -> int:
        """0, or the first reported error's code."""
        return self.codes[0] if self.codes else 0


__all__ = ["Errors", "home_option", "namespace_options", "open_for_reading", "resolve", "writing"]
