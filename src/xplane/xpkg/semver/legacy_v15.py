"""How Masterminds/semver v1.5.0 (Crossplane ≤ v2.2) reads a constraint differently from v3.

Crossplane up to v2.2 used Masterminds/semver v1.5.0; v2.3+ uses v3 (:mod:`xplane.xpkg.semver.constraint`).
:func:`v15_difference` tells, in one sentence, where a constraint means something else on the
older line (a parse error, a different caret range, prerelease admission, partial versions), so
lint can warn package authors who support both. The v1.5 rules are implemented only as far as that
decision needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cmp_to_key
from itertools import product

from xplane.xpkg.errors import SemverError
from xplane.xpkg.semver.constraint import (
    COMPARISON,
    Comparison,
    Constraint,
    is_wildcard,
    parse_comparison,
    rewrite_hyphen_ranges,
)
from xplane.xpkg.semver.version import LOOSE_VERSION, Version, compare_prerelease, is_digest_constraint

__all__ = ["V15Comparison", "check_v15", "parse_v15", "v15_difference"]

_MAX_INT64 = (1 << 63) - 1
_GRID_LIMIT = 50_000
_OLD = "on Crossplane ≤ v2.2"


@dataclass(frozen=True)
class V15Comparison:
    """One v1.5 comparison (its constraints.go), with v3's reading of the same text."""

    text: str
    op: str
    con: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool
    v3: Comparison | None

    def check(self, v: Version, include: bool | None = None, v3_caret: bool = False) -> bool:
        """v1.5's check; ``include`` swaps in v3's per-group prerelease rule, ``v3_caret`` v3's caret."""
        c, op = self.con, self.op
        if include is None:  # v1.5: per comparison, and a plain != never rejects a prerelease
            if v.prerelease and not c.prerelease and (op != "!=" or self.dirty):
                return False
        elif v.prerelease and not include:
            return False
        if op in ("", "="):
            return self._tilde(v) if self.dirty else v.compare(c) == 0
        if op == "!=":
            if self.dirty:
                return c.major != v.major or (c.minor != v.minor and not self.minor_dirty)
            return v.compare(c) != 0
        if op == ">":
            return v.compare(c) > 0
        if op in (">=", "=>"):
            return v.compare(c) >= 0
        if op in ("<", "<=", "=<"):
            if not self.dirty:
                return v.compare(c) < 0 if op == "<" else v.compare(c) <= 0
            return v.major <= c.major and (v.minor <= c.minor or self.minor_dirty)  # v1.5 ignores major==
        if op in ("~", "~>"):
            return self._tilde(v)
        if v3_caret and self.v3 is not None:
            return self.v3.why_not_caret(v) is None
        return v.compare(c) >= 0 and v.major == c.major  # v1.5's caret pins the major only

    def _tilde(self, v: Version) -> bool:
        c = self.con
        if v.compare(c) < 0:
            return False
        if (c.major, c.minor, c.patch) == (0, 0, 0) and not self.minor_dirty and not self.patch_dirty:
            return True
        return v.major == c.major and (v.minor == c.minor or self.minor_dirty)


def _parse_v15_comparison(text: str) -> V15Comparison:
    m = COMPARISON.fullmatch(text)
    if m is None:
        raise SemverError(f"improper constraint: {text}")
    op, orig = m.group(1), m.group(2)
    major, minor, patch, pre = m.group(3), m.group(4) or "", m.group(5) or "", m.group(6) or ""
    ver, dirty, minor_dirty, patch_dirty = orig, False, False, False
    if is_wildcard(major):
        ver, dirty = "0.0.0", True  # v1.5 drops a prerelease here
    elif is_wildcard(minor.removeprefix(".")) or not minor:
        ver, dirty, minor_dirty = f"{major}.0.0{pre}", True, True
    elif is_wildcard(patch.removeprefix(".")):  # a missing patch is not a wildcard in v1.5
        ver, dirty, patch_dirty = f"{major}{minor}.0{pre}", True, True
    vm = LOOSE_VERSION.fullmatch(ver)
    nums = [int(g.removeprefix(".")) if g else 0 for g in vm.group(1, 2, 3)] if vm else []
    if vm is None or max(nums) > _MAX_INT64:  # v1.5 parses segments as int64, prereleases unchecked
        raise SemverError("constraint Parser Error")
    try:
        v3: Comparison | None = parse_comparison(text)
    except SemverError:
        v3 = None
    con = Version(nums[0], nums[1], nums[2], vm.group(5) or "", vm.group(8) or "", ver)
    return V15Comparison(op + orig, op, con, dirty, minor_dirty, patch_dirty, v3)


def parse_v15(value: str) -> list[list[V15Comparison]]:
    """Masterminds v1.5 ``NewConstraint``: OR on ``||``, AND on commas only; errors are unquoted."""
    ors = rewrite_hyphen_ranges(value, "").split("||")
    return [[_parse_v15_comparison(p) for p in seg.split(",")] for seg in ors]


def check_v15(
    groups: list[list[V15Comparison]], v: Version, *, v3_pre: bool = False, v3_caret: bool = False
) -> bool:
    """Masterminds v1.5 ``Check`` of ``v`` against :func:`parse_v15`'s groups.

    ``v3_pre`` swaps in v3's per-group prerelease rule and ``v3_caret`` v3's caret, so a caller can
    tell which rule makes a difference.
    """
    for g in groups:
        include = any((a.v3 or a).con.prerelease for a in g) if v3_pre else None
        if all(a.check(v, include, v3_caret) for a in g):
            return True
    return False


def _witnesses(cons: list[Version]) -> Iterable[Version] | None:
    """Ascending versions, one in every region the constants cut (so equal here means equal anywhere)."""

    def around(values: Iterable[int]) -> list[int]:
        out = {0}
        for k in values:
            out |= {k - 1, k, k + 1}
        return sorted(x for x in out if 0 <= x <= _MAX_INT64)

    majors, minors, patches = (around(getattr(c, f) for c in cons) for f in ("major", "minor", "patch"))
    pres = {"0"} | {p for c in cons if c.prerelease for p in (c.prerelease, c.prerelease + ".0")}
    ordered = [*sorted(pres, key=cmp_to_key(compare_prerelease)), ""]
    if len(majors) * len(minors) * len(patches) * len(ordered) > _GRID_LIMIT:
        return None
    return (Version(a, b, c, p) for a, b, c, p in product(majors, minors, patches, ordered))


def v15_difference(constraint: str) -> str | None:
    """How Crossplane ≤ v2.2 (Masterminds/semver v1.5.0) reads ``constraint`` differently, in one sentence.

    ``None`` when v1.5 and v3 read it alike (both reject it, or both admit exactly the same versions;
    digests are never semver). Otherwise the sentence starts with the quoted constraint: a parse
    error (v1.5 splits AND groups on commas only), a wider caret (v1.5's ``^0.2.3`` is ``<1.0.0``),
    other prerelease admission (v1.5 wants a prerelease on every comparison, but none on ``!=``), or a
    partial version read otherwise (v1.5's ``<v3`` admits ``3.1.0``, its ``1.2`` is ``=1.2.0``).
    Admission is compared exactly, on one version from every region the constraint's numbers cut;
    past 50,000 such versions only parsing is compared.
    """
    if is_digest_constraint(constraint):
        return None
    q = f"'{constraint}'"
    try:
        v3 = Constraint.parse(constraint)
    except SemverError as e3:
        try:
            parse_v15(constraint)
        except SemverError:
            return None
        return f"{q} parses {_OLD} (Masterminds/semver v1.5) but not on v2.3+: {e3.message}"
    try:
        groups = parse_v15(constraint)
    except SemverError as e:
        fixed = " || ".join(", ".join(str(a) for a in g) for g in v3.groups)
        try:
            parse_v15(fixed)
        except SemverError:
            return f"{q} is a parse error {_OLD} (Masterminds/semver v1.5: {e.message})"
        msg = f"{q} is a parse error {_OLD} (Masterminds/semver v1.5 splits AND groups on commas only); write '{fixed}'"
        then = v15_difference(fixed)
        return msg if then is None else f"{msg}, though {then}"
    grid = _witnesses([a.con for g in groups for a in g] + [a.con for g in v3.groups for a in g])
    for w in grid or ():
        r3 = v3.check(w)
        if check_v15(groups, w) != r3:
            return _explain(q, groups, w, r3)
    return None


def _explain(q: str, groups: list[list[V15Comparison]], w: Version, r3: bool) -> str:
    head = f"{q} {'rejects' if r3 else 'admits'} {w} {_OLD}, which v2.3+ {'admits' if r3 else 'rejects'}"
    atoms = [a for g in groups for a in g]
    why = "Masterminds/semver v1.5"
    if w.prerelease and check_v15(groups, w, v3_pre=True) == r3:
        if not r3:  # only a group of plain != comparisons admits a prerelease there
            ne = next((a.text for a in atoms if a.op == "!=" and not a.dirty), "!=")
            return f"{head} ({why} does not apply the prerelease rule to '{ne}')"
        bare = next(a for a in atoms if not a.con.prerelease)
        c, v = bare.con, "v" if bare.text.removeprefix(bare.op).startswith("v") else ""
        eg = f"{bare.op}{v}{c.major}.{c.minor}.{c.patch}-0"
        return f"{head} ({why} admits a prerelease only if every comparison carries one, e.g. '{eg}')"
    caret = check_v15(groups, w, v3_caret=True) == r3
    for a in atoms if caret else ():
        if a.op == "^" and a.v3 is not None and a.check(w) != a.check(w, v3_caret=True):
            c3, orig = a.v3.con, a.v3.orig
            v = "v" if orig.startswith("v") else ""
            up = f"{v}0.{c3.minor + 1}.0" if c3.minor > 0 or a.v3.patch_dirty else f"{v}0.0.{c3.patch + 1}"
            fix = f">={orig}, <{up}"
            tail = f"; write '{fix}'" if v15_difference(fix) is None else ""
            return (
                f"{head} ({why}'s caret pins only the major: '{a.text}' is '>={orig} <{v}{a.con.major + 1}.0.0'"
                f" there, '>={orig} <{up}' on v2.3+){tail}"
            )
    for g in groups:
        include = any((a.v3 or a).con.prerelease for a in g)
        for a in g:
            if a.v3 is not None and a.check(w, include) != a.v3.check(w, include):
                return f"{head} ({why} reads '{a.text}' differently; spell out MAJOR.MINOR.PATCH)"
    return head
