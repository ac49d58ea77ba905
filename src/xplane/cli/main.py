"""The ``xp`` command: a thin layer over the xplane library.

Exit codes (documented in docs/cli.md): 0 success, 1 an xplane error (registry, package, function,
...), 2 usage error (click), 3 not found / not in cache under the chosen pull policy,
4 authentication or authorisation failure, 5 TLS failure, 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from xplane._version import __version__
from xplane.cli.lazy import LazyGroup

XPKG_COMMANDS = {
    "pull": "xplane.cli.xpkg_pull:pull",
    "load": "xplane.cli.xpkg_load:load",
    "build": "xplane.cli.xpkg_build:build",
    "push": "xplane.cli.xpkg_push:push",
    "inspect": "xplane.cli.xpkg_inspect:inspect",
    "extract": "xplane.cli.xpkg_extract:extract",
    "init": "xplane.cli.xpkg_init:init",
    # packages into the embedded control plane, as crossplane xpkg install|update
    "install": "xplane.cli.xpkg_install:install",
    "update": "xplane.cli.xpkg_install:update",
    "activate": "xplane.cli.xpkg_install:activate",
}

TOP_COMMANDS = {
    "cache": "xplane.cli.cache:cache",
    "registry": "xplane.cli.registry:registry",
    "fn": "xplane.cli.fn:fn",
    # the embedded control plane, kubectl's verbs (docs/controlplane.md)
    "apply": "xplane.cli.apply:apply",
    "get": "xplane.cli.get:get",
    "describe": "xplane.cli.describe:describe",
    "delete": "xplane.cli.delete:delete",
    "create": "xplane.cli.create:create",
    "patch": "xplane.cli.patch:patch",
    "tree": "xplane.cli.tree:tree",
    "controlplane": "xplane.cli.controlplane:controlplane",
    # resources against CRD/XRD schemas, as crossplane beta validate (docs/validate.md)
    "validate": "xplane.cli.validate:validate",
    # a Composition's function pipeline, as classic crossplane render (docs/render.md)
    "render": "xplane.cli.render:render",
}


@click.group(
    cls=LazyGroup, lazy_commands=TOP_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="xp")
@click.option(
    "-v", "--verbose", count=True, help="More log output (-v info, -vv debug, -vvv libraries' debug too)."
)
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """xplane: Crossplane packages and functions on one machine, no cluster, no Docker."""
    from xplane.cli.output import configure_logging

    configure_logging(verbose)
    ctx.ensure_object(dict)


@cli.group(cls=LazyGroup, lazy_commands=XPKG_COMMANDS)
def xpkg() -> None:
    """Build, pull, load, push and inspect Crossplane packages."""


def main() -> None:
    """Entry point of the ``xp`` console script."""
    from xplane.cli.output import run_cli

    sys.exit(run_cli(cli))


if __name__ == "__main__":
    main()
