"""Shared CLI plumbing: logging set-up, error-to-exit-code mapping, machine-readable output."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from xplane.errors import XplaneError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class VerbosityFilter(logging.Filter):
    """xplane's own records from ``own`` up; every library's (httpx, httpcore, grpc...) from ``libraries`` up."""

    def __init__(self, own: int, libraries: int) -> None:
        super().__init__()
        self.own = own
        self.libraries = libraries

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "xplane" or record.name.startswith("xplane.")
        return record.levelno >= (self.own if ours else self.libraries)


def verbosity_levels(verbose: int) -> tuple[int, int]:
    """(xplane's level, the libraries' level) for ``-v`` given ``verbose`` times.

    Default WARNING; ``-v`` xplane at INFO, ``-vv`` xplane at DEBUG; ``-vvv`` libraries at DEBUG too.
    """
    own = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    return own, logging.DEBUG if verbose >= 3 else logging.WARNING


def configure_logging(verbose: int) -> None:
    """Send log records to stderr at the levels of :func:`verbosity_levels`.

    Like :func:`logging.basicConfig`, this does nothing when the root logger already has handlers
    (a program embedding the CLI, or pytest, configured logging itself).
    """
    root = logging.getLogger()
    if root.handlers:
        return
    own, libraries = verbosity_levels(verbose)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(VerbosityFilter(own, libraries))
    root.addHandler(handler)
    root.setLevel(min(own, libraries))


def run_cli(command: click.Command, args: list[str] | None = None, *, prog_name: str = "xp") -> int:
    """Run a click command; turn :class:`XplaneError` into its message on stderr and its exit code."""
    try:
        # Without standalone mode click returns a ctx.exit(code) as the code (and a callback's value):
        # an int is the exit code a command asked for.
        rv = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except XplaneError as e:
        click.echo(f"{prog_name}: error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    return rv if isinstance(rv, int) else EXIT_OK


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (for ``-o json``)."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def print_yaml(data: Any) -> None:
    """Print ``data`` as YAML on stdout (for ``-o yaml``)."""
    import yaml

    click.echo(
        yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False), nl=False
    )
