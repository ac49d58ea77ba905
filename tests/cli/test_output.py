"""run_cli: the exit code a command asks for is the exit code the process gets."""

from __future__ import annotations

import click

from xplane.cli.output import EXIT_OK, run_cli


@click.command()
@click.option("--code", type=int, default=None)
@click.pass_context
def _cmd(ctx: click.Context, code: int | None) -> None:
    if code is not None:
        ctx.exit(code)


def test_ctx_exit_code_is_returned() -> None:
    assert run_cli(_cmd, ["--code", "3"]) == 3
    assert run_cli(_cmd, ["--code", "0"]) == EXIT_OK


def test_a_command_that_returns_nothing_exits_0() -> None:
    assert run_cli(_cmd, []) == EXIT_OK


def test_usage_errors_exit_2() -> None:
    assert run_cli(_cmd, ["--code", "x"]) == 2
