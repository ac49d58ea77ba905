"""kubectl's resource arguments: ``KIND[,KIND...] [NAME...]`` or ``KIND/NAME [KIND/NAME...]``.

A kind is any name kubectl accepts (plural, singular, short name, ``kind.group``) or a category
(``pkg``, ``pkgrev``, ``crossplane``), which stands for several kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from xplane.store import Kind


@dataclass
class Target:
    """One kind to act on and the names asked for (none: every object of the kind)."""

    kind: Kind
    names: list[str] = field(default_factory=list)


@dataclass
class Targets:
    """What the arguments ask for; ``several`` when names must carry their kind (``kind.group/name``)."""

    targets: list[Target]
    several: bool


def parse_targets(args: Sequence[str], resolve: Callable[[str], tuple[Kind, ...]]) -> Targets:
    """Kinds and names from ``args``; a usage error when they do not fit kubectl's forms.

    ``resolve`` maps a kind name to its kinds (raising ``UnknownKindError``).
    """
    if not args:
        raise click.UsageError("you must specify the type of resource to get (e.g. 'xp get pkg')")
    if "/" in args[0]:
        out: dict[Kind, Target] = {}
        for arg in args:
            kind_name, sep, name = arg.partition("/")
            if not sep or not kind_name or not name:
                raise click.UsageError(
                    "there is no need to specify a resource type as a separate argument when "
                    f"passing arguments in resource/name form (e.g. 'xp get configuration/x'): {arg!r}"
                )
            found = resolve(kind_name)
            if len(found) > 1:
                raise click.UsageError(f'"{kind_name}" is a category; name one kind in {arg!r}')
            out.setdefault(found[0], Target(found[0])).names.append(name)
        return Targets(list(out.values()), several=True)
    kinds: list[Kind] = []
    for part in args[0].split(","):
        for k in resolve(part):
            if k not in kinds:
                kinds.append(k)
    names = list(args[1:])
    if any("/" in n for n in names):
        raise click.UsageError("arguments in resource/name form must have a single resource and name")
    several = len(kinds) > 1 or "," in args[0]
    return Targets([Target(k, list(names)) for k in kinds], several=several)


__all__ = ["Target", "Targets", "parse_targets"]
