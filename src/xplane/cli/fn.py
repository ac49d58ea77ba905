"""``xp fn``: the function runner from the ``xp`` command (same code as the ``xfn`` script)."""

from __future__ import annotations

import click

from xplane.cli.xfn import call, run, serve


@click.group("fn")
def fn() -> None:
    """Serve composition functions, run one request through a function locally, or call a served one."""


fn.add_command(serve)
fn.add_command(run)
fn.add_command(call)
