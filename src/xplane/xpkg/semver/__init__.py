"""Semantic versions and constraints as Crossplane reads them (Masterminds/semver).

Crossplane v2.3+ checks ``spec.crossplane.version`` and ``dependsOn[].version`` with
Masterminds/semver v3.5 (:mod:`.version`, :mod:`.constraint`); up to v2.2 it used v1.5, and
:func:`v15_difference` (:mod:`.legacy_v15`) says where that older line reads a constraint
differently. Other packages import these names from here; the modules' other public names are
shared inside this package (the v1.5 reader builds on the v3 grammar).
"""

from __future__ import annotations

from xplane.xpkg.semver.constraint import (
    MAX_CONSTRAINT_GROUPS,
    MAX_CONSTRAINT_LEN,
    Constraint,
    latest_satisfying,
    parse_tags,
    satisfies,
    sort_versions,
)
from xplane.xpkg.semver.legacy_v15 import v15_difference
from xplane.xpkg.semver.version import (
    MAX_VERSION_LEN,
    Version,
    compare_prerelease,
    go_quote,
    is_complete_tag,
    is_digest_constraint,
)

__all__ = [
    "MAX_CONSTRAINT_GROUPS",
    "MAX_CONSTRAINT_LEN",
    "MAX_VERSION_LEN",
    "Constraint",
    "Version",
    "compare_prerelease",
    "go_quote",
    "is_complete_tag",
    "is_digest_constraint",
    "latest_satisfying",
    "parse_tags",
    "satisfies",
    "sort_versions",
    "v15_difference",
]
