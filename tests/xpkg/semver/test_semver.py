"""Masterminds v3.5 semantics, as tables (add a case = add a row) plus hypothesis properties.

Rows marked "MM" come from Masterminds/semver's own tests (constraints_test.go, version_test.go);
the others are derived from the rules in docs/spec packages.md §3.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xplane.xpkg.errors import SemverError
from xplane.xpkg.semver import (
    Constraint,
    Version,
    go_quote,
    is_complete_tag,
    is_digest_constraint,
    latest_satisfying,
    parse_tags,
    satisfies,
    sort_versions,
)

# (constraint, version, satisfied)
CHECK = [
    # MM TestConstraintsCheck
    ("*", "1.2.3", True),
    ("~0.0.0", "1.2.3", True),
    ("0.x.x", "1.2.3", False),
    ("0.0.x", "1.2.3", False),
    ("0.0.0", "1.2.3", False),
    ("^0.0.0", "1.2.3", False),
    ("= 2.0", "1.2.3", False),
    ("= 2.0", "2.0.0", True),
    ("4.1", "4.1.0", True),
    ("4.1.x", "4.1.3", True),
    ("1.x", "1.4", True),
    ("!=4.1", "4.1.0", False),
    ("!=4.1-alpha", "4.1.0-alpha", False),
    ("!=4.1-alpha", "4.1.1-alpha", False),
    ("!=4.1-alpha", "4.1.0", True),
    ("!=4.1", "5.1.0", True),
    ("!=4.x", "5.1.0", True),
    ("!=4.x", "4.1.0", False),
    ("!=4.1.x", "4.2.0", True),
    ("!=4.2.x", "4.2.3", False),
    (">1.1", "4.1.0", True),
    (">1.1", "1.1.0", False),
    ("<1.1", "0.1.0", True),
    ("<1.1", "1.1.0", False),
    ("<1.1", "1.1.1", False),
    ("<1.x", "1.1.1", False),
    ("<1.x", "0.1.1", True),
    ("<1.x", "2.0.0", False),
    ("<1.1.x", "1.2.1", False),
    ("<1.1.x", "1.1.500", False),
    ("<1.1.x", "1.0.500", True),
    ("<1.2.x", "1.1.1", True),
    (">=1.1", "4.1.0", True),
    (">=1.1", "4.1.0-beta", False),
    (">=1.1", "1.1.0", True),
    (">=1.1", "0.0.9", False),
    ("<=1.1", "0.1.0", True),
    ("<=1.1", "0.1.0-alpha", False),
    ("<=1.1-a", "0.1.0-alpha", True),
    ("<=1.1", "1.1.0", True),
    ("<=1.x", "1.1.0", True),
    ("<=2.x", "3.0.0", False),
    ("<=1.1", "1.1.1", True),
    ("<=1.1.x", "1.2.500", False),
    ("<=4.5", "3.4.0", True),
    ("<=4.5", "3.7.0", True),
    ("<=4.5", "4.6.3", False),
    (">1.1, <2", "1.1.1", False),
    (">1.1, <2", "1.2.1", True),
    (">1.1, <3", "4.3.2", False),
    (">=1.1, <2, !=1.2.3", "1.2.3", False),
    (">1.1 <2", "1.1.1", False),
    (">1.1 <2", "1.2.1", True),
    (">1.1    <3", "4.3.2", False),
    (">=1.1    <2    !=1.2.3", "1.2.3", False),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", False),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", False),
    (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", False),
    (">=1.1 <2 !=1.2.3", "1.2.3", False),
    (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", False),
    (">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", True),
    ("> 1.1, <     2", "1.1.1", False),
    (">   1.1, <2", "1.2.1", True),
    (">1.1, <  3", "4.3.2", False),
    (">= 1.1, <     2, !=1.2.3", "1.2.3", False),
    ("> 1.1 < 2", "1.1.1", False),
    (">1.1 < 2", "1.2.1", True),
    ("> 1.1    <3", "4.3.2", False),
    (">=1.1    < 2    != 1.2.3", "1.2.3", False),
    (">= 1.1, <2, != 1.2.3 || > 3", "3.1.2", False),
    (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", True),
    ("1.1 - 2", "1.1.1", True),
    ("1.5.0 - 4.5", "3.7.0", True),
    ("1.1-3", "4.3.2", False),
    ("^1.1", "1.1.1", True),
    ("^1.1", "4.3.2", False),
    ("^1.x", "1.1.1", True),
    ("^2.x", "1.1.1", False),
    ("^1.x", "2.1.1", False),
    ("^1.x", "1.1.1-beta1", False),
    ("^1.1.2-alpha", "1.2.1-beta1", True),
    ("^1.2.x-alpha", "1.1.1-beta1", False),
    ("^0.0.1", "0.0.1", True),
    ("^0.0.1", "0.3.1", False),
    ("~*", "2.1.1", True),
    ("~1", "2.1.1", False),
    ("~1", "1.3.5", True),
    ("~1", "1.4", True),
    ("~1.x", "2.1.1", False),
    ("~1.x", "1.3.5", True),
    ("~1.1", "1.1.1", True),
    ("~1.1", "1.1.1-alpha", False),
    ("~1.1-alpha", "1.1.1-beta", True),
    ("~1.1.1-beta", "1.1.1-alpha", False),
    ("~1.1.1-beta", "1.1.1", True),
    ("~1.2.3", "1.2.5", True),
    ("~1.2.3", "1.2.2", False),
    ("~1.2.3", "1.3.2", False),
    ("~1.1", "1.2.3", False),
    ("~1.3", "2.4.5", False),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", True),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", True),
    # MM TestConstraintCheck (single constraints)
    ("=2.0.0", "1.2.3", False),
    ("=2.0.0", "2.0.0", True),
    ("=2.0", "2.0.1", True),
    ("!=4.1.0", "4.1.0", False),
    ("!=4.1.0", "4.1.1", True),
    ("!=4.1", "4.1.1", False),
    ("!=4.1", "5.1.0-alpha.1", False),
    ("<11", "0.1.0", True),
    ("<11", "11.1.0", False),
    ("<=11", "1.2.3", True),
    ("<=11", "12.2.3", False),
    ("<=11", "11.2.3", True),
    ("<=1.1", "1.2.3", False),
    (">0", "0", False),
    (">0", "1", True),
    (">0", "0.0.1-alpha", False),
    (">0.0", "0.0.1-alpha", False),
    (">0-0", "0.0.1-alpha", False),
    (">0.0-0", "0.0.1-alpha", False),
    (">0", "0.0.0-alpha", False),
    (">0-0", "0.0.0-alpha", False),
    (">0.0.0-0", "0.0.0-alpha", True),
    (">1.2.3-alpha.1", "1.2.3-alpha.2", True),
    (">1.2.3-alpha.1", "1.3.3-alpha.2", True),
    (">11", "11.1.0", False),
    (">11.1", "11.1.0", False),
    (">11.1", "11.1.1", False),
    (">11.1", "11.2.1", True),
    (">=11", "11.1.2", True),
    (">=11.1", "11.1.2", True),
    (">=11.1", "11.0.2", False),
    (">=0", "0.0.1-alpha", False),
    (">=0.0", "0.0.1-alpha", False),
    (">=0-0", "0.0.1-alpha", True),
    (">=0.0-0", "0.0.1-alpha", True),
    (">=0", "0.0.0-alpha", False),
    (">=0-0", "0.0.0-alpha", True),
    (">=0.0.0-0", "0.0.0-alpha", True),
    (">=0.0.0-0", "1.2.3", True),
    (">=0.0.0-0", "3.4.5-beta.1", True),
    ("<0", "0.0.0-alpha", False),
    ("<0-z", "0.0.0-alpha", True),
    (">=0", "0", True),
    ("=0", "1", False),
    ("*", "1", True),
    ("*", "4.5.6", True),
    ("*", "1.2.3-alpha.1", False),
    ("*-0", "1.2.3-alpha.1", True),
    ("2.*", "1", False),
    ("2.*", "3.4.5", False),
    ("2.*", "2.1.1", True),
    ("2.1.*", "2.1.1", True),
    ("2.1.*", "2.2.1", False),
    ("2", "1", False),
    ("2", "3.4.5", False),
    ("2", "2.1.1", True),
    ("2.1", "2.1.1", True),
    ("2.1", "2.2.1", False),
    ("~1.2.3", "1.2.4", True),
    ("~1.2.3", "1.3.4", False),
    ("~1.2", "1.2.4", True),
    ("~1.2", "1.3.4", False),
    ("~1", "1.2.4", True),
    ("~1", "2.3.4", False),
    ("~0.2.3", "0.2.5", True),
    ("~0.2.3", "0.3.5", False),
    ("~1.2.3-beta.2", "1.2.3-beta.4", True),
    ("~1.2.3-beta.2", "1.2.4-beta.2", True),
    ("~1.2.3-beta.2", "1.3.4-beta.2", False),
    ("^1.2.3", "1.8.9", True),
    ("^1.2.3", "2.8.9", False),
    ("^1.2.3", "1.2.1", False),
    ("^1.1.0", "2.1.0", False),
    ("^1.2.0", "2.2.1", False),
    ("^1.2.0", "1.2.1-alpha.1", False),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", True),
    ("^1.2.0-alpha.0", "1.2.1-alpha.0", True),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", False),
    ("^1.2", "1.8.9", True),
    ("^1.2", "2.8.9", False),
    ("^1", "1.8.9", True),
    ("^1", "2.8.9", False),
    ("^0.2.3", "0.2.5", True),
    ("^0.2.3", "0.5.6", False),
    ("^0.2", "0.2.5", True),
    ("^0.2", "0.5.6", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^0.0", "0.0.3", True),
    ("^0.0", "0.1.4", False),
    ("^0.0", "1.0.4", False),
    ("^0", "0.2.3", True),
    ("^0", "1.1.4", False),
    ("^0.2.3-beta.2", "0.2.3-beta.4", True),
    ("^0.2.3-beta.2", "0.2.4-beta.2", True),
    ("^0.2.3-beta.2", "0.3.4-beta.2", False),
    ("^0.2.3-beta.2", "0.2.3-beta.2", True),
    # v3 AND-group prerelease rule (3.4+): one prerelease bound admits prereleases for the group
    (">=1.0.0-0 <2.0.0", "1.5.0-rc.1", True),
    (">=1.0.0-0, <2.0.0", "1.5.0-rc.1", True),
    (">=1.0.0, <2.0.0-0", "1.5.0-rc.1", True),
    (">=1.0.0 <2.0.0", "1.5.0-rc.1", False),
    (">=1.0.0 <2.0.0 || >=3.0.0-0", "1.5.0-rc.1", False),
    (">=1.0.0-0 <2.0.0 || >=3.0.0", "3.1.0-rc.1", False),
    (">=1.0.0-0 <2.0.0 || >=3.0.0-0", "3.1.0-rc.1", True),
    ("^1.0.0-0", "1.9.0-beta", True),
    ("~1.2.0-0", "1.2.9-alpha.3", True),
    # Crossplane idioms (spec §3): dev builds are prereleases; -0 admits them, UXP -up.N too
    (">=v2.0.0-0", "v2.3.0", True),
    (">=v2.0.0-0", "v2.4.0-rc.0.123.gabcdef", True),
    (">=v2.0.0", "v2.4.0-rc.0.123.gabcdef", False),
    (">=v2.0.0", "v0.0.0-1700000000-abc1234", False),
    (">=v1.14.1-0", "v1.14.1-up.1", True),
    (">=v1.14.1", "v1.14.1-up.1", False),
    (">=v0.2.0", "v0.2.0", True),
    (">=v0.2.0", "v0.1.9", False),
    ("v1.2.x", "1.2.7", True),
    ("=> 1.2", "1.3.0", True),
    ("=< 1.2", "1.2.9", True),
    ("=< 1.2", "1.3.0", False),
    ("~> 1.2", "1.2.9", True),
    ("~> 1.2", "1.3.0", False),
    ("X", "9.9.9", True),
    ("1.X", "1.0.1", True),
    ("1.2.3", "1.2.3+build.9", True),
    ("1.2.3+build.1", "1.2.3", True),
    ("01.2.3", "1.2.3", True),
    (">1.2.3", "1.2.4-0", False),
    ("!=1.2.3", "1.2.3-rc.1", False),
    ("!=1.2.3-rc.1", "1.2.3-rc.1", False),
    ("!=1.2.3-rc.1", "1.2.3-rc.2", True),
    ("1 - 2", "2.9.0", True),
    ("1 - 2", "3.0.0", False),
    ("1.2 - 1.4.5", "1.4.5", True),
    ("1.2 - 1.4.5", "1.4.6", False),
    ("1.2 - 1.4.5", "1.1.9", False),
    ("1.0.0 - 2.0.0 || 3.0.0 - 4.0.0", "3.5.0", True),
]


@pytest.mark.parametrize(("constraint", "version", "want"), CHECK)
def test_check_table(constraint: str, version: str, want: bool) -> None:
    assert Constraint.parse(constraint).check(Version.parse(version)) is want


def test_table_is_large_enough() -> None:
    assert len(CHECK) + len(VERSIONS) + len(BAD_VERSIONS) + len(BAD_CONSTRAINTS) >= 150


# (input, (major, minor, patch, prerelease, metadata), String())
VERSIONS = [
    ("1.2.3", (1, 2, 3, "", ""), "1.2.3"),
    ("v1.2.3", (1, 2, 3, "", ""), "1.2.3"),
    ("1.2", (1, 2, 0, "", ""), "1.2.0"),
    ("v1", (1, 0, 0, "", ""), "1.0.0"),
    ("1", (1, 0, 0, "", ""), "1.0.0"),
    ("01.02.03", (1, 2, 3, "", ""), "1.2.3"),  # v3.4 restored coercion of leading zeros
    ("1.0.0-alpha", (1, 0, 0, "alpha", ""), "1.0.0-alpha"),
    ("1.2.3-beta.1+build.345", (1, 2, 3, "beta.1", "build.345"), "1.2.3-beta.1+build.345"),  # MM
    ("1.2.3+build", (1, 2, 3, "", "build"), "1.2.3+build"),
    ("v1.2-rc.1", (1, 2, 0, "rc.1", ""), "1.2.0-rc.1"),
    ("1.2.3-0", (1, 2, 3, "0", ""), "1.2.3-0"),
    ("1.2.3---", (1, 2, 3, "--", ""), "1.2.3---"),
    ("2.3.5-20161202202307-sha.e8fc5e5", (2, 3, 5, "20161202202307-sha.e8fc5e5", ""), None),  # MM
    ("v0.0.0-1700000000-abc1234", (0, 0, 0, "1700000000-abc1234", ""), "0.0.0-1700000000-abc1234"),
    ("18446744073709551615.0.0", (18446744073709551615, 0, 0, "", ""), None),
    ("1.2.3-x.7.z.92", (1, 2, 3, "x.7.z.92", ""), None),
]


@pytest.mark.parametrize(("text", "parts", "string"), VERSIONS)
def test_version_parse(text: str, parts: tuple[int, int, int, str, str], string: str | None) -> None:
    v = Version.parse(text)
    assert (v.major, v.minor, v.patch, v.prerelease, v.metadata) == parts
    assert v.original == text
    if string is not None:
        assert str(v) == string


BAD_VERSIONS = [
    ("", "invalid semantic version"),
    ("V1.2.3", "invalid semantic version"),
    ("1.2.3.4", "invalid semantic version"),  # MM
    ("1.2.beta", "invalid semantic version"),  # MM
    ("1.2.3-", "invalid semantic version"),
    ("1.2.3-a..b", "invalid semantic version"),
    ("1.2.3+", "invalid semantic version"),
    ("1.2.3-beta_1", "invalid semantic version"),
    (" 1.2.3", "invalid semantic version"),
    ("1.2.3\n", "invalid semantic version"),  # Go's $ does not match before a final newline
    ("vv1", "invalid semantic version"),
    ("latest", "invalid semantic version"),
    ("\uff11.2.3", "invalid semantic version"),  # full-width digit one: Go's [0-9] is ASCII
    ("1.2.3-01", "version segment starts with 0"),  # MM
    ("1.2.3-alpha.01", "version segment starts with 0"),
    (
        "18446744073709551616.0.0",
        'error parsing version segment: strconv.ParseUint: parsing "18446744073709551616": value out of range',
    ),
    (
        "1." + "9" * 30,
        f'error parsing version segment: strconv.ParseUint: parsing "{"9" * 30}": value out of range',
    ),
    ("1.2.3-" + "a" * 300, "version string is too long (max 256 bytes)"),
]


@pytest.mark.parametrize(("text", "message"), BAD_VERSIONS)
def test_version_errors(text: str, message: str) -> None:
    with pytest.raises(SemverError) as e:
        Version.parse(text)
    assert e.value.message == message
    assert e.value.hint and "e.g. v1.2.3" in e.value.hint


BAD_CONSTRAINTS = [
    ("foo", 'improper constraint: "foo"'),  # MM
    ("", 'improper constraint: ""'),
    (">= bar", 'improper constraint: ">= bar"'),  # MM
    ("BAR >= 1.2.3", 'improper constraint: "BAR >= 1.2.3"'),  # MM
    ("12.3.4.1234", 'improper constraint: "12.3.4.1234"'),  # MM
    ("12.3.34~ 1.2.3", 'improper constraint: "12.3.34~ 1.2.3"'),  # MM
    (">=1.0.0 ||", 'improper constraint: ""'),
    ("|| 1", 'improper constraint: ""'),
    (">=1.0.0,", 'improper constraint: ">=1.0.0,"'),
    (">=1.0.0,,<2", 'improper constraint: ">=1.0.0,,<2"'),
    ("1.2.3\t\x00", 'improper constraint: "1.2.3\\t\\x00"'),
    ('1.2 "x"', 'improper constraint: "1.2 \\"x\\""'),
    ("1.xx", "constraint parser error"),
    (">=1.2.3-01", "constraint parser error"),
    ("1|2", "constraint parser error"),  # '|' is in Masterminds' segment class
    (">=99999999999999999999", "constraint parser error"),
    ("1 " * 300, "constraint string is too long (max 512 bytes)"),
    (" || ".join(["1"] * 33), "too many constraint groups (max 32)"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONSTRAINTS)
def test_constraint_errors(text: str, message: str) -> None:
    with pytest.raises(SemverError) as e:
        Constraint.parse(text)
    assert e.value.message == message
    assert e.value.hint


@pytest.mark.parametrize(
    ("text", "string"),
    [  # MM TestConstraintString
        ("*", "*"),
        (">=1.2.3", ">=1.2.3"),
        (">= 1.2.3", ">=1.2.3"),
        ("2.x,   >=1.2.3 || >4.5.6, < 5.7", "2.x >=1.2.3 || >4.5.6 <5.7"),
        ("1.2", "1.2"),
        ("1 - 2", ">=1 <=2"),
        ("~> v1.2", "~>v1.2"),
    ],
)
def test_constraint_string(text: str, string: str) -> None:
    c = Constraint.parse(text)
    assert str(c) == string
    assert c.original == text
    Constraint.parse(str(c))


@pytest.mark.parametrize(
    ("text", "ors", "ands"),
    [  # MM TestNewConstraint: number of OR groups and of ANDs in the first group
        (">= 1.1", 1, 1),
        (">40.50.60, < 50.70", 1, 2),
        (">= 1.2.3 < 2.0 || => 3.0 < 4", 2, 2),
        (">= 1.2.3, < 2.0 || => 3.0, < 4", 2, 2),
        ("3 - 4 || => 3.0, < 4", 2, 2),
        ("12.3.34 ~1.2.3", 1, 2),
        ("1.0.0 - 2.0.0, <=2.0.0", 1, 3),
    ],
)
def test_constraint_structure(text: str, ors: int, ands: int) -> None:
    c = Constraint.parse(text)
    assert len(c.groups) == ors
    assert len(c.groups[0]) == ands


ORDERED = [  # semver.org §11 plus Masterminds specifics
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1-0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0-5",
    "2.0.0-18446744073709551616",  # too big for uint64: compared as text, so after numbers
    "2.0.0-a",
    "2.0.0",
]


def test_precedence_order() -> None:
    versions = [Version.parse(s) for s in ORDERED]
    for a, b in itertools.pairwise(versions):
        assert a < b and b > a and a != b and a.compare(b) == -1
    assert sort_versions(reversed(versions)) == versions


def test_build_metadata_is_ignored_for_equality() -> None:
    a, b = Version.parse("1.2.3+a"), Version.parse("v1.2.3+b")
    assert a == b and hash(a) == hash(b) and a.original != b.original


@pytest.mark.parametrize(
    ("tag", "complete"),
    [
        ("v1.0.0", True),
        ("1.0.0", True),
        ("v1.2.3-rc.1+build.2", True),
        ("v1", False),
        ("1.2", False),
        ("v01.2.3", False),
        ("latest", False),
        ("sha256:abc", False),
    ],
)
def test_is_complete_tag(tag: str, complete: bool) -> None:
    assert is_complete_tag(tag) is complete


DIGEST = "sha256:" + "ab" * 32


def test_digest_constraints_compare_as_strings() -> None:
    assert is_digest_constraint(DIGEST)
    assert not is_digest_constraint("sha256:" + "AB" * 32)
    assert not is_digest_constraint("sha512:" + "ab" * 64)
    assert satisfies(DIGEST, DIGEST)
    assert not satisfies(DIGEST, "sha256:" + "cd" * 32)
    assert not satisfies(DIGEST, "v1.0.0")
    assert satisfies(">=v1.0.0", "v1.2.0")
    with pytest.raises(SemverError):
        satisfies("sha256:abc", "v1.0.0")


def test_parse_tags_and_latest() -> None:
    tags = ["latest", "v1", "v1.0.0", "v1.1.0", "v1.1", "v2.0.0-rc.1", "main", "v0.9.0"]
    assert [v.original for v in parse_tags(tags)] == [
        "v0.9.0",
        "v1",
        "v1.0.0",
        "v1.1.0",
        "v1.1",
        "v2.0.0-rc.1",
    ]  # stable for equal versions
    assert [v.original for v in parse_tags(tags, complete_only=True)] == [
        "v0.9.0",
        "v1.0.0",
        "v1.1.0",
        "v2.0.0-rc.1",
    ]
    assert latest_satisfying(">=v1.0.0", tags) == "v1.1.0"
    assert latest_satisfying(">=v1.0.0-0", tags) == "v2.0.0-rc.1"
    assert latest_satisfying(">=v3.0.0", tags) is None


def test_include_prerelease_and_contains() -> None:
    c = Constraint.parse(">=1.1", include_prerelease=True)
    assert c.check("4.1.0-beta")
    assert "4.1.0" in Constraint.parse("^4")
    assert Constraint.parse("^4").filter([Version.parse(s) for s in ("3.9.9", "4.0.0", "5.0.0")]) == [
        Version.parse("4.0.0")
    ]


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert go_quote("é\u00a0\U0001f600") == '"é\\u00a0\U0001f600"'


# ---- properties -------------------------------------------------------------------------------

_num = st.integers(min_value=0, max_value=12)
_ident = st.one_of(
    st.integers(min_value=0, max_value=30).map(str),
    st.text(alphabet="abcxyz-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
_pre = st.lists(_ident, min_size=1, max_size=3).map(".".join)
releases = st.builds(Version, _num, _num, _num)
versions = st.builds(
    Version, _num, _num, _num, st.one_of(st.just(""), _pre), st.one_of(st.just(""), st.just("b.1"))
)
_op = st.sampled_from(["", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^"])


@st.composite
def release_constraints(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        v = draw(releases)
        shape = draw(st.sampled_from([f"{v.major}", f"{v.major}.{v.minor}", str(v), f"{v.major}.x", f"v{v}"]))
        parts.append(draw(_op) + shape)
    return draw(st.sampled_from([", ", " "])).join(parts)


@settings(max_examples=200, deadline=None)
@given(versions, versions, versions)
def test_order_is_total_and_transitive(a: Version, b: Version, c: Version) -> None:
    assert sum([a < b, a == b, a > b]) == 1
    assert a.compare(b) == -b.compare(a)
    if a <= b and b <= c:
        assert a <= c
    if a == b:
        assert hash(a) == hash(b)


@settings(max_examples=200, deadline=None)
@given(versions)
def test_string_round_trip(v: Version) -> None:
    again = Version.parse(str(v))
    assert again == v and str(again) == str(v)
    assert is_complete_tag(str(v)) and is_complete_tag("v" + str(v))
    assert Version.parse("v" + str(v)) == v


@settings(max_examples=200, deadline=None)
@given(releases, releases)
def test_tilde_and_caret_nest(base: Version, v: Version) -> None:
    tilde, caret = Constraint.parse(f"~{base}"), Constraint.parse(f"^{base}")
    if base.major >= 1:  # ~1.2.3 = [1.2.3, 1.3.0) inside ^1.2.3 = [1.2.3, 2.0.0)
        assert not tilde.check(v) or caret.check(v)
    else:  # ^0.y.z is at most as wide as ~0.y.z
        assert not caret.check(v) or tilde.check(v)
    assert tilde.check(base) and caret.check(base)


@settings(max_examples=200, deadline=None)
@given(releases, versions)
def test_plain_comparisons_follow_precedence(bound: Version, v: Version) -> None:
    if v.prerelease:
        return
    assert Constraint.parse(f">={bound}").check(v) is (v >= bound)
    assert Constraint.parse(f">{bound}").check(v) is (v > bound)
    assert Constraint.parse(f"<{bound}").check(v) is (v < bound)
    assert Constraint.parse(f"<={bound}").check(v) is (v <= bound)
    assert Constraint.parse(f"={bound}").check(v) is (v == bound)
    assert Constraint.parse(f"!={bound}").check(v) is (v != bound)


@settings(max_examples=200, deadline=None)
@given(release_constraints(), versions)
def test_prereleases_need_a_prerelease_bound(text: str, v: Version) -> None:
    c = Constraint.parse(text)
    if v.prerelease:
        assert not c.check(v)
    widened = Constraint.parse(text + ", >=0.0.0-0")
    if not v.prerelease:
        assert widened.check(v) is c.check(v)


@settings(max_examples=200, deadline=None)
@given(release_constraints(), release_constraints(), versions)
def test_or_and_and_compose(a: str, b: str, v: Version) -> None:
    ca, cb = Constraint.parse(a), Constraint.parse(b)
    assert Constraint.parse(f"{a} || {b}").check(v) is (ca.check(v) or cb.check(v))
    if not v.prerelease:
        assert Constraint.parse(f"{a}, {b}").check(v) is (ca.check(v) and cb.check(v))
        assert Constraint.parse(f"{a} {b}").check(v) is (ca.check(v) and cb.check(v))


@settings(max_examples=200, deadline=None)
@given(releases, releases, versions)
def test_hyphen_range_is_inclusive_bounds(lo: Version, hi: Version, v: Version) -> None:
    assert Constraint.parse(f"{lo} - {hi}").check(v) is Constraint.parse(f">={lo}, <={hi}").check(v)


# MM TestConstraintsValidate messages, in v3.5's quoted form: (constraint, version, first reason)
REASONS = [
    ("2.x", "1.2.3", '"1.2.3" is less than "2.x"'),
    ("2", "1.2.3", '"1.2.3" is less than "2"'),
    ("= 2.0", "1.2.3", '"1.2.3" is less than "2.0"'),
    ("!=4.1", "4.1.0", '"4.1.0" is equal to "4.1"'),
    ("!=4.x", "4.1.0", '"4.1.0" is equal to "4.x"'),
    ("!=4.2.x", "4.2.3", '"4.2.3" is equal to "4.2.x"'),
    (">1.1", "1.1.0", '"1.1.0" is less than or equal to "1.1"'),
    ("<1.1", "1.1.0", '"1.1.0" is greater than or equal to "1.1"'),
    ("<1.x", "2.1.1", '"2.1.1" is greater than or equal to "1.x"'),
    (">=1.1", "0.0.9", '"0.0.9" is less than "1.1"'),
    ("<=2.x", "3.1.0", '"3.1.0" is greater than "2.x"'),
    ("<=1.1.x", "1.2.500", '"1.2.500" is greater than "1.1.x"'),
    (">1.1, <3", "4.3.2", '"4.3.2" is greater than or equal to "3"'),
    (">=1.1, <2, !=1.2.3", "1.2.3", '"1.2.3" is equal to "1.2.3"'),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", '"3.0.0" is greater than or equal to "2"'),
    ("1.1 - 3", "4.3.2", '"4.3.2" is greater than "3"'),
    ("^1.1", "4.3.2", '"4.3.2" does not have same major version as "1.1"'),
    ("^1.12.7", "1.6.6", '"1.6.6" is less than "1.12.7"'),
    (
        "^0.2",
        "0.3.0",
        '"0.3.0" does not have same minor version as "0.2". '
        "Expected minor versions to match when constraint major version is 0",
    ),
    ("^0.0.3", "0.1.1", '"0.1.1" does not have same minor version as "0.0.3"'),
    (
        "^0.0.3",
        "0.0.4",
        '"0.0.4" does not equal "0.0.3". Expect version and constraint to equal when major and minor versions are 0',
    ),
    ("~1.2.3", "1.3.2", '"1.3.2" does not have same major and minor version as "1.2.3"'),
    ("~1.3", "2.4.5", '"2.4.5" does not have same major version as "1.3"'),
    ("=1.2.3", "1.2.4", '"1.2.4" is not equal to "1.2.3"'),
    (
        "> 1.2.3",
        "1.2.3-beta.1",
        '"1.2.3-beta.1" is a prerelease version and the constraint is only looking for release versions',
    ),
]


@pytest.mark.parametrize(("constraint", "version", "reason"), REASONS)
def test_validate_reasons(constraint: str, version: str, reason: str) -> None:
    c = Constraint.parse(constraint)
    reasons = c.validate(version)
    assert reasons and reasons[0] == reason
    assert not c.check(version)


def test_validate_collects_every_reason_and_passes_clean() -> None:
    c = Constraint.parse("!= 1.2.5, ^2, <= 1.1.x")  # MM
    assert c.validate("1.2.3") == ['"1.2.3" is less than "2"', '"1.2.3" is greater than "1.1.x"']
    assert Constraint.parse(">=1, <2 || >3").validate("1.5.0") == []
    pre = Constraint.parse(">1, <3 || >4").validate("2.0.0-rc.1")
    assert len(pre) == 1 and "prerelease" in pre[0]


@settings(max_examples=200, deadline=None)
@given(release_constraints(), versions)
def test_validate_agrees_with_check(text: str, v: Version) -> None:
    c = Constraint.parse(text)
    assert (c.validate(v) == []) is c.check(v)
