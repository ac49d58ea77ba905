"""``xp apply -f FILE|DIR|- [-f ...] [-R]``: create or update control-plane objects, as ``kubectl apply``.

Every file is checked before anything is written (:mod:`xplane.cli.manifests`); then every object
of every good file is applied in one transaction, each file in a savepoint of its own, so a file
the store refuses is rolled back alone. Lines name each object and what happened to it
(``configuration.pkg.crossplane.io/platform-ref-aws created|configured|unchanged``); problems go to
stderr as ``xp: error: ...`` and make the exit code 1 after the good files are applied. The control
loop then settles (:func:`xplane.cli.controlplane_hook.settle`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from xplane.cli.statestore import Errors, home_option, writing

if TYPE_CHECKING:
    from xplane.cli.manifests import Manifest, ManifestFile
    from xplane.store import Store


class _DryRun(Exception):
    """Rolls a file's savepoint back under ``--dry-run=server``."""


def _apply_one(store: Store, m: Manifest) -> str:
    from xplane.cli.kubeformat import object_ref

    old = store.try_get(m.kind, m.name, m.namespace) if m.name else None
    new = store.apply(m.obj)
    ref = object_ref(m.kind, new["metadata"]["name"])
    if old is None:
        return f"{ref} created"
    same = old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion")
    return f"{ref} {'unchanged' if same else 'configured'}"


def _apply_file(store: Store, mf: ManifestFile, dry_run: str, errors: Errors) -> list[str]:
    from xplane.store import StoreError

    lines: list[str] = []
    suffix = {"server": " (server dry run)", "client": " (dry run)"}.get(dry_run, "")
    if dry_run == "client":
        from xplane.cli.kubeformat import object_ref

        return [
            f"{object_ref(m.kind, m.name)} {'configured' if m.exists else 'created'}{suffix}"
            for m in mf.manifests
        ]
    try:
        with store.batch():
            for m in mf.manifests:
                try:
                    lines.append(_apply_one(store, m) + suffix)
                except StoreError as e:
                    e.add_note(f"at {m.where}; nothing from {mf.name} was applied")
                    verb = "patching" if m.exists else "creating"
                    errors.report(f'error when {verb} "{mf.name}": {e}')
                    raise
            if dry_run == "server":
                raise _DryRun
    except _DryRun:
        return lines
    except StoreError:
        return []
    return lines


@click.command("apply")
@click.option(
    "-f",
    "--filename",
    "filenames",
    multiple=True,
    required=True,
    help="A manifest file, a directory of them (.yaml, .yml, .json), or - for stdin; repeatable.",
)
@click.option("-R", "--recursive", is_flag=True, help="Read directories given with -f recursively.")
@click.option("-n", "--namespace", default=None, help="Namespace for namespaced objects that name none.")
@click.option(
    "--dry-run",
    type=click.Choice(["none", "client", "server"]),
    default="none",
    help="client: only check the manifests; server: apply and roll back.",
)
@home_option
def apply(
    filenames: tuple[str, ...], recursive: bool, namespace: str | None, dry_run: str, home: Path | None
) -> int:
    """Create or update objects from manifests (multi-document YAML or JSON), as kubectl apply does.

    A file with a problem (bad YAML, an unknown kind or field) is applied not at all; the other
    files are. Exit code 1 if any file had a problem.
    """
    from xplane.cli.manifests import load

    errors = Errors()
    with writing(home) as store:
        files, missing = load(store, filenames, recursive=recursive, namespace=namespace)
        for p in missing:
            errors.report(p)
        for mf in files:
            for w in mf.warnings:
                click.echo(w, err=True)
            for p in mf.problems:
                errors.report(p)
            if mf.problems and mf.manifests:
                click.echo(f"  nothing from {mf.name} was applied", err=True)
        good = [mf for mf in files if not mf.problems]
        if not errors.codes and not any(mf.manifests for mf in good):
            errors.report("no objects passed to apply")
        lines: list[str] = []
        with store.batch():
            for mf in good:
                lines += _apply_file(store, mf, dry_run, errors)
    if lines:
        click.echo("\n".join(lines))
    return errors.exit_code
