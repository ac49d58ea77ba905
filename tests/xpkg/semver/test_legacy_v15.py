"""Masterminds/semver v1.5.0 (Crossplane ≤ v2.2) against v3, as tables plus hypothesis properties.

Rows are derived from v1.5.0's constraints.go and version.go (read for this table) and packages.md §3.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xplane.xpkg.errors import SemverError
from xplane.xpkg.semver import Constraint, Version, v15_difference
from xplane.xpkg.semver.legacy_v15 import check_v15, parse_v15

# (constraint, the exact sentence v15_difference returns, or None when v1.5 and v3 read it alike)
V15 = [
    (">=1.0.0, <2.0.0", None),
    (">=v2.0.0", None),
    (">=v1.14.0-0", None),
    (">=1.0.0-0, <2.0.0-0", None),
    ("^1.2.3", None),
    ("^0.x", None),
    ("~v1.2", None),
    ("~1", None),
    ("1.2.x", None),
    ("*", None),
    ("!=1.2.x", None),
    (">=1.2 || <0.5", None),
    ("1.0.0 - 2.0.0", None),
    ("sha256:" + "a" * 64, None),
    ("", None),  # a parse error in both
    ("foo", None),
    (
        ">=1.0.0 <2.0.0",
        "'>=1.0.0 <2.0.0' is a parse error on Crossplane ≤ v2.2 (Masterminds/semver v1.5 splits AND groups "
        "on commas only); write '>=1.0.0, <2.0.0'",
    ),
    (
        ">=1.0.0 <2.0.0 || >=3.0.0",
        "'>=1.0.0 <2.0.0 || >=3.0.0' is a parse error on Crossplane ≤ v2.2 (Masterminds/semver v1.5 splits "
        "AND groups on commas only); write '>=1.0.0, <2.0.0 || >=3.0.0'",
    ),
    (
        ">=v2.0.0-0 <v3",
        "'>=v2.0.0-0 <v3' is a parse error on Crossplane ≤ v2.2 (Masterminds/semver v1.5 splits AND groups "
        "on commas only); write '>=v2.0.0-0, <v3', though '>=v2.0.0-0, <v3' rejects 2.0.0-0 on Crossplane "
        "≤ v2.2, which v2.3+ admits (Masterminds/semver v1.5 admits a prerelease only if every comparison "
        "carries one, e.g. '<v3.0.0-0')",
    ),
    (
        ">=9223372036854775808",
        "'>=9223372036854775808' is a parse error on Crossplane ≤ v2.2 (Masterminds/semver v1.5: "
        "constraint Parser Error)",
    ),
    (
        ">=1.0.0-01",
        "'>=1.0.0-01' parses on Crossplane ≤ v2.2 (Masterminds/semver v1.5) but not on v2.3+: "
        "constraint parser error",
    ),
    (
        "^0.2.3",
        "'^0.2.3' admits 0.3.0 on Crossplane ≤ v2.2, which v2.3+ rejects (Masterminds/semver v1.5's caret "
        "pins only the major: '^0.2.3' is '>=0.2.3 <1.0.0' there, '>=0.2.3 <0.3.0' on v2.3+); "
        "write '>=0.2.3, <0.3.0'",
    ),
    (
        "^v0.0.3",
        "'^v0.0.3' admits 0.0.4 on Crossplane ≤ v2.2, which v2.3+ rejects (Masterminds/semver v1.5's caret "
        "pins only the major: '^v0.0.3' is '>=v0.0.3 <v1.0.0' there, '>=v0.0.3 <v0.0.4' on v2.3+); "
        "write '>=v0.0.3, <v0.0.4'",
    ),
    (
        "^0.2.3-rc.1",  # the plain rewrite would reject prereleases on v2.2, so none is offered
        "'^0.2.3-rc.1' admits 0.3.0-0 on Crossplane ≤ v2.2, which v2.3+ rejects (Masterminds/semver v1.5's "
        "caret pins only the major: '^0.2.3-rc.1' is '>=0.2.3-rc.1 <1.0.0' there, '>=0.2.3-rc.1 <0.3.0' "
        "on v2.3+)",
    ),
    (
        ">=1.0.0-0, <2.0.0",
        "'>=1.0.0-0, <2.0.0' rejects 1.0.0-0 on Crossplane ≤ v2.2, which v2.3+ admits (Masterminds/semver "
        "v1.5 admits a prerelease only if every comparison carries one, e.g. '<2.0.0-0')",
    ),
    (
        "!=1.2.3",
        "'!=1.2.3' admits 0.0.0-0 on Crossplane ≤ v2.2, which v2.3+ rejects (Masterminds/semver v1.5 does "
        "not apply the prerelease rule to '!=1.2.3')",
    ),
    (
        "<v3",
        "'<v3' admits 3.0.0 on Crossplane ≤ v2.2, which v2.3+ rejects (Masterminds/semver v1.5 reads '<v3' "
        "differently; spell out MAJOR.MINOR.PATCH)",
    ),
    (
        "1.2",
        "'1.2' rejects 1.2.1 on Crossplane ≤ v2.2, which v2.3+ admits (Masterminds/semver v1.5 reads '1.2' "
        "differently; spell out MAJOR.MINOR.PATCH)",
    ),
    (
        ">1.2",
        "'>1.2' admits 1.2.1 on Crossplane ≤ v2.2, which v2.3+ rejects (Masterminds/semver v1.5 reads '>1.2' "
        "differently; spell out MAJOR.MINOR.PATCH)",
    ),
    (
        "1.0 - 2.0",
        "'1.0 - 2.0' rejects 2.0.1 on Crossplane ≤ v2.2, which v2.3+ admits (Masterminds/semver v1.5 reads "
        "'<=2.0' differently; spell out MAJOR.MINOR.PATCH)",
    ),
]


@pytest.mark.parametrize(("constraint", "sentence"), V15)
def test_v15_difference(constraint: str, sentence: str | None) -> None:
    assert v15_difference(constraint) == sentence


# (constraint, version, admitted by v1.5.0): its rules read straight from its constraints.go
V15_CHECK = [
    ("^0.2.3", "0.9.0", True),  # caret pins only the major
    ("^0.2.3", "1.0.0", False),
    ("<v3", "3.5.0", True),  # a dirty < admits the whole wildcard
    ("<2.1.x", "2.1.9", True),
    ("<=2.1.x", "1.5.0", False),  # the dirty <= compares minors without checking majors
    (">1", "1.0.1", True),  # > ignores wildcards
    ("1.2", "1.2.1", False),  # a missing patch is not a wildcard
    ("1.2", "1.2.0", True),
    ("1", "1.9.0", True),  # a missing minor is
    (">=1.0.0-0, <2.0.0", "1.5.0-rc.1", False),  # the prerelease rule is per comparison
    (">=1.0.0-0, <2.0.0-0", "1.5.0-rc.1", True),
    ("!=1.2.3", "2.0.0-rc.1", True),  # a plain != never rejects a prerelease
    ("!=1.2.x", "2.0.0-rc.1", False),
    ("*", "1.0.0-rc.1", False),
    ("~1.2", "1.2.9", True),
    ("~1.2", "1.3.0", False),
    ("1 - 2", "2.9.0", True),
    ("1.0 - 2.0", "2.0.1", False),
    (">= 1.0, < 1.2", "1.1.5", True),
]


@pytest.mark.parametrize(("constraint", "version", "admitted"), V15_CHECK)
def test_v15_rules(constraint: str, version: str, admitted: bool) -> None:
    assert check_v15(parse_v15(constraint), Version.parse(version)) is admitted


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        (">=1.0.0 <2.0.0", "improper constraint: >=1.0.0 <2.0.0"),  # unquoted, as v1.5 words it
        (">=1.0.0,", "improper constraint: "),
        ("1.0 - 2.0 <3", "improper constraint:  <= 2.0<3"),  # the range is rewritten without a tail
        ("1.0 - 2.0 x", "constraint Parser Error"),  # '2.0x': x is a digit to the segment pattern
    ],
)
def test_v15_parse_errors(constraint: str, message: str) -> None:
    with pytest.raises(SemverError) as e:
        parse_v15(constraint)
    assert e.value.message == message


_DENSE = [
    Version(a, b, c, p)
    for a, b, c in itertools.product(range(5), repeat=3)
    for p in ("", "0", "0.0", "alpha", "rc.1", "rc.1.0", "rc.2")
]


@pytest.mark.parametrize(
    "constraint", [c for c, _ in V15 if c and not c.startswith(("sha", "foo", ">=9", ">=1.0.0-01"))]
)
def test_v15_difference_agrees_with_brute_force(constraint: str) -> None:
    """Equal on the grid is equal everywhere: a dense scan finds a difference exactly when one is named."""
    try:
        groups = parse_v15(constraint)
    except SemverError:
        return  # a parse difference, checked above
    c3 = Constraint.parse(constraint)
    differs = [v for v in _DENSE if check_v15(groups, v) != c3.check(v)]
    assert (v15_difference(constraint) is None) == (not differs), differs[:3]


_ATOM = st.builds(
    lambda op, parts, pre: op + ".".join(parts) + pre,
    st.sampled_from(["", "=", "!=", ">", "<", ">=", "<=", "~", "^"]),
    st.lists(st.sampled_from(["0", "1", "2", "3", "x"]), min_size=1, max_size=3),
    st.sampled_from(["", "", "-0", "-rc.1"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_ATOM, min_size=1, max_size=3), min_size=1, max_size=2))
def test_v15_difference_is_exact(groups: list[list[str]]) -> None:
    """Comma-joined constraints over small numbers: named difference <=> a dense scan finds one."""
    text = " || ".join(", ".join(g) for g in groups)
    try:
        c3, c15 = Constraint.parse(text), parse_v15(text)
    except SemverError:
        return
    differs = any(check_v15(c15, v) != c3.check(v) for v in _DENSE)
    assert (v15_difference(text) is not None) == differs
