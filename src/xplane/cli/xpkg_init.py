"""``xp xpkg init``: write a package skeleton that builds as it is."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("name")
@click.option(
    "--type",
    "package_type",
    type=click.Choice(["configuration", "function", "provider"]),
    required=True,
    help="What kind of package to create.",
)
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write it (default: ./NAME).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(name: str, package_type: str, directory: Path | None, force: bool) -> None:
    """Write a package skeleton NAME that builds as it is."""
    from xplane.xpkg import init_package

    target = directory or Path(name)
    files = init_package(name, package_type, target, force=force)
    for f in files:
        click.echo(f"created {f}")
    root = target / "package" if package_type == "function" else target
    examples = f" -e {target / 'examples'}" if package_type == "configuration" else ""
    click.echo(f"build it with: xp xpkg build -f {root}{examples}")
