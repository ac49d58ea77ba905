"""Upstream's resolver, step for step (spec/packages.md §6.3-§6.4): the ``upstream`` resolution mode.

Crossplane's resolver controller handles one *implied* dependency per reconcile: the first target
of a Lock edge that is not installed (with upgrades on, also the first installed one whose version
violates an edge's constraint). A missing dependency gets the highest tag that satisfies the
constraint of the **first** edge pointing at it, whatever the other dependents want; an installed
one (upgrades) moves to the lowest version at or above it that satisfies every parent, else
(downgrades) the highest below it.

xplane resolves the whole graph instead (:mod:`xplane.pkg.resolver`). This mode exists so a user can
see what a cluster would do with the same packages (``xp controlplane init --dependency-resolution
upstream``), and so the tests can show the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xplane.pkg.resolver import Installed, Need, ResolutionError, Step, satisfies, tag_version
from xplane.xpkg import Version, is_digest_constraint

NO_VALID_VERSION = (
    "dependency ({}) does not have a valid version to upgrade that satisfies all constraints. "
    "If there is a valid version that requires downgrade, manual intervention is required. "
    "Constraints: [{}]"
)


@dataclass(frozen=True)
class Implied:
    """A dependency upstream would handle: its source, the edges pointing at it, what is installed."""

    source: str
    edges: tuple[Need, ...]
    installed: Installed | None


def implied(installed: Sequence[Installed], *, upgrades: bool) -> list[Implied]:
    """Upstream's implied nodes in Lock order: missing targets (and, with ``upgrades``, installed
    targets whose version violates an edge's constraint)."""
    have = {p.source: p for p in installed}
    edges: dict[str, list[Need]] = {}
    order: list[str] = []
    for p in installed:
        for n in p.needs:
            if n.package not in edges:
                order.append(n.package)
            edges.setdefault(n.package, []).append(n)
    out: list[Implied] = []
    for source in order:
        target = have.get(source)
        if target is None:
            out.append(Implied(source, tuple(edges[source]), None))
        elif upgrades and any(
            n.constraints != target.version and not satisfies(n.constraints, target.version)
            for n in edges[source]
        ):
            out.append(Implied(source, tuple(edges[source]), target))
    return out


def upstream_step(
    node: Implied,
    versions: Callable[[str], Sequence[str]],
    *,
    downgrades: bool,
    name: str,
) -> Step:
    """The one change upstream makes for ``node``; raise :class:`ResolutionError` with its message."""
    constraints = [n.constraints for n in node.edges]
    first = node.edges[0]
    if node.installed is None:
        if is_digest_constraint(first.constraints):
            version = first.constraints
        else:
            ok = [v for v in _sorted(versions(node.source)) if satisfies(first.constraints, str(v.original))]
            if not ok:
                raise ResolutionError(NO_VALID_VERSION.format(node.source, " ".join(constraints)))
            version = str(ok[-1].original)
        why = f"upstream: the first dependent requires {first.constraints or 'any version'}"
        return Step(node.source, name, first.kind, first.api_version, version, "install", None, why)
    have = node.installed
    digests = {c for c in constraints if is_digest_constraint(c)}
    if digests:
        if len(digests) > 1:
            raise ResolutionError(
                f"a dependency package has different digests in parent constraints ([{' '.join(constraints)}])"
            )
        if len(digests) != len(constraints):
            raise ResolutionError(
                f"a dependency package has different types of parent constraints ([{' '.join(constraints)}])"
            )
        version, action = digests.pop(), "upgrade"
    else:
        every = [
            v
            for v in _sorted(versions(node.source))
            if all(satisfies(c, str(v.original)) for c in constraints)
        ]
        current = tag_version(have.version)
        up = [v for v in every if current is None or v >= current]
        down = [v for v in every if current is not None and v < current]
        if up:
            version, action = str(up[0].original), "upgrade"
        elif downgrades and down:
            version, action = str(down[-1].original), "downgrade"
        else:
            raise ResolutionError(NO_VALID_VERSION.format(node.source, " ".join(constraints)))
    why = "upstream: every dependent's constraint (" + ", ".join(constraints) + ")"
    return Step(node.source, have.name, first.kind, first.api_version, version, action, have.version, why)


def _sorted(tags: Sequence[str]) -> list[Version]:
    """Complete semver tags, ascending (upstream drops the rest)."""
    return sorted(v for v in (tag_version(t) for t in tags) if v is not None)


__all__ = ["NO_VALID_VERSION", "Implied", "implied", "upstream_step"]
