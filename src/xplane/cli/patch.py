"""``xp patch KIND NAME -p PATCH [--type merge|json]``: change fields of an object, as ``kubectl patch``.

The patch (JSON or YAML) applies to the stored object in one transaction (no conflict to retry);
the package kinds' defaults and schema apply to the result as to any write. Prints
``configurationrevision.pkg.crossplane.io/x patched`` (``(no change)`` when nothing changed), then
the control loop settles. Typical use: activate a revision under ``revisionActivationPolicy:
Manual`` with ``-p '{"spec":{"desiredState":"Active"}}'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from xplane.cli.statestore import home_option, resolve, writing


def _parse(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        pass
    from xplane.xpkg import loads

    return loads(text)


@click.command("patch")
@click.argument("args", nargs=-1, required=True, metavar="KIND NAME | KIND/NAME")
@click.option("-p", "--patch", "patch_text", default=None, help="The patch, JSON or YAML.")
@click.option(
    "--patch-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the patch from a file.",
)
@click.option(
    "--type",
    "patch_type",
    type=click.Choice(["merge", "json"]),
    default="merge",
    show_default=True,
    help="merge: JSON merge patch (RFC 7386); json: JSON patch (RFC 6902).",
)
@click.option("--subresource", type=click.Choice(["status"]), default=None, help="Patch the status instead.")
@click.option(
    "-n", "--namespace", default=None, help="Namespace of namespaced kinds (default: crossplane-system)."
)
@home_option
def patch(
    args: tuple[str, ...],
    patch_text: str | None,
    patch_file: Path | None,
    patch_type: str,
    subresource: str | None,
    namespace: str | None,
    home: Path | None,
) -> None:
    """Update fields of one object with a JSON merge patch or a JSON patch."""
    from xplane.cli.kubeformat import object_ref
    from xplane.cli.patching import json_patch, merge_patch
    from xplane.cli.resources import parse_targets

    if (patch_text is None) == (patch_file is None):
        raise click.UsageError("give the patch with -p PATCH or --patch-file FILE")
    text = patch_text if patch_text is not None else patch_file.read_text()  # type: ignore[union-attr]
    try:
        operations = _parse(text)
    except Exception as e:
        raise click.UsageError(f"unable to parse the patch: {e}") from None
    if patch_type == "merge" and not isinstance(operations, dict):
        raise click.UsageError("a merge patch must be an object")
    with writing(home) as store:
        targets = parse_targets(args, lambda n: resolve(store, n))
        named = [(t.kind, n) for t in targets.targets for n in t.names]
        if len(named) != 1:
            raise click.UsageError("patch needs exactly one object: KIND NAME or KIND/NAME")
        kind, name = named[0]

        def change(obj: dict[str, Any]) -> None:
            patched = merge_patch(obj, operations) if patch_type == "merge" else json_patch(obj, operations)
            obj.clear()
            obj.update(patched)

        before = store.get(kind, name, namespace)["metadata"]["resourceVersion"]
        after = store.modify(kind, name, change, namespace=namespace, status=subresource == "status")
        unchanged = after["metadata"]["resourceVersion"] == before
        click.echo(f"{object_ref(kind, name)} patched{' (no change)' if unchanged else ''}")
