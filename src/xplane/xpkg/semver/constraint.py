"""Constraints with the semantics of Masterminds/semver v3.5 (what Crossplane uses).

Crossplane checks ``spec.crossplane.version`` and ``dependsOn[].version`` with
``github.com/Masterminds/semver/v3``; this module reproduces its v3.5 behaviour, including the odd
corners, so a package that installs on a cluster resolves the same way here:

* :meth:`Constraint.parse` is ``NewConstraint``: hyphen ranges (``1 - 2``), ``||``, AND by comma
  or white space, the operators ``= != > < >= => <= =< ~ ~> ^``, bare versions (bare partials act
  like ``~``), wildcards ``x X *``. The patterns are Masterminds' own, including their quirks (a
  segment may contain ``|``); Go's ``\\s`` is ASCII-only, so it is spelled out.
* A prerelease version satisfies an AND group only when some constraint of that group carries a
  prerelease (the reason for the ``>=v2.0.0-0`` idiom).

Error messages are v3.5's, e.g. ``improper constraint: "foo"``. Masterminds v1.5 (Crossplane up to
v2.2) differed: AND only by comma, ``^0.x`` pinned the major only, the prerelease rule applied per
constraint, partial versions read otherwise and errors were unquoted;
:func:`xplane.xpkg.semver.v15_difference` says how it would read a given constraint differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from xplane.xpkg.errors import SemverError
from xplane.xpkg.semver.version import (
    Version,
    compare_prerelease,
    go_quote,
    is_complete_tag,
    is_digest_constraint,
)

__all__ = [
    "COMPARISON",
    "MAX_CONSTRAINT_GROUPS",
    "MAX_CONSTRAINT_LEN",
    "Comparison",
    "Constraint",
    "is_wildcard",
    "latest_satisfying",
    "parse_comparison",
    "parse_tags",
    "rewrite_hyphen_ranges",
    "satisfies",
    "sort_versions",
]

MAX_CONSTRAINT_LEN = 512
MAX_CONSTRAINT_GROUPS = 32

_SP = r"[\t\n\f\r ]"  # Go's \s
_CV = (
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
# The alternation order is Masterminds' and matters: the first operator that lets the rest match wins.
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
#: One comparison, operator then version (Masterminds' ``constraintRegex``); the v1.5 reader uses it too.
COMPARISON = re.compile(rf"{_SP}*({_OPS}){_SP}*({_CV}){_SP}*")
_RANGE = re.compile(rf"{_SP}*({_CV}){_SP}+-{_SP}+({_CV}){_SP}*")
_FIND = re.compile(rf"({_OPS}){_SP}*({_CV})")
_VALID = re.compile(rf"({_SP}*({_OPS}){_SP}*({_CV}){_SP}*)((?:{_SP}+|,{_SP}*)({_OPS}){_SP}*({_CV}){_SP}*)*")


@dataclass(frozen=True)
class Comparison:
    """One comparison of a constraint (``>=1.2``): operator, version as written, and its parsed bound.

    ``dirty`` marks a partial or wildcard version; ``minor_dirty``/``patch_dirty`` say which part is
    missing.
    """

    op: str
    orig: str
    con: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    def __str__(self) -> str:
        return self.op + self.orig

    def check(self, v: Version, include_pre: bool) -> bool:
        """Whether ``v`` passes (a prerelease ``v`` only with ``include_pre``)."""
        return self.why_not(v, include_pre) is None

    def why_not(self, v: Version, include_pre: bool) -> str | None:
        """``None`` when ``v`` passes, else the v3.5 reason template (``{v}``/``{c}`` placeholders)."""
        if v.prerelease and not include_pre:
            return _ERR_PRE
        op, c = self.op, self.con
        if op in ("", "="):
            if self.dirty:
                return self._tilde(v)
            return None if v.compare(c) == 0 else _ERR_NOT_EQUAL
        if op == "!=":
            return self._not_equal(v)
        if op == ">":
            return None if self._greater(v) else _ERR_LTE
        if op == "<":
            return None if v.compare(c) < 0 else _ERR_GTE
        if op in (">=", "=>"):
            return None if v.compare(c) >= 0 else _ERR_LT
        if op in ("<=", "=<"):
            if not self.dirty:
                return None if v.compare(c) <= 0 else _ERR_GT
            if v.major > c.major or (v.major == c.major and v.minor > c.minor and not self.minor_dirty):
                return _ERR_GT
            return None
        if op in ("~", "~>"):
            return self._tilde(v)
        return self.why_not_caret(v)

    def _greater(self, v: Version) -> bool:
        c = self.con
        if not self.dirty:
            return v.compare(c) > 0
        if v.major != c.major:
            return v.major > c.major
        if self.minor_dirty:
            return False  # >11 wants 12 or higher
        return v.minor > c.minor if self.patch_dirty else v.compare(c) > 0

    def _tilde(self, v: Version) -> str | None:
        c = self.con
        if v.compare(c) < 0:
            return _ERR_LT
        if (c.major, c.minor, c.patch) == (0, 0, 0) and not self.minor_dirty and not self.patch_dirty:
            return None  # ~0.0.0 and * accept everything
        if v.major != c.major:
            return _ERR_SAME_MAJOR
        if v.minor != c.minor and not self.minor_dirty:
            return _ERR_SAME_MAJOR_MINOR
        return None

    def why_not_caret(self, v: Version) -> str | None:
        """v3.5's caret rule alone (prereleases aside): ``None`` when ``v`` passes, else the reason."""
        c = self.con
        if v.compare(c) < 0:
            return _ERR_LT
        if c.major > 0 or self.minor_dirty:
            return None if v.major == c.major else _ERR_SAME_MAJOR
        if v.major > 0:
            return _ERR_SAME_MAJOR
        if c.minor > 0 or self.patch_dirty:
            return None if v.minor == c.minor else _ERR_MINOR_MATCH
        if v.minor > 0:
            return _ERR_MINOR
        return None if v.patch == c.patch else _ERR_ZERO_ZERO

    def _not_equal(self, v: Version) -> str | None:
        c = self.con
        if self.dirty:
            if c.major != v.major:
                return None
            if c.minor != v.minor and not self.minor_dirty:
                return None
            if self.minor_dirty:
                return _ERR_EQUAL
            if c.patch != v.patch and not self.patch_dirty:
                return None
            if self.patch_dirty:
                if (v.prerelease or c.prerelease) and compare_prerelease(v.prerelease, c.prerelease) != 0:
                    return None
                return _ERR_EQUAL
        return _ERR_EQUAL if v.compare(c) == 0 else None


_ERR_PRE = "{v} is a prerelease version and the constraint is only looking for release versions"
_ERR_EQUAL = "{v} is equal to {c}"
_ERR_LTE = "{v} is less than or equal to {c}"
_ERR_GTE = "{v} is greater than or equal to {c}"
_ERR_LT = "{v} is less than {c}"
_ERR_GT = "{v} is greater than {c}"
_ERR_SAME_MAJOR = "{v} does not have same major version as {c}"
_ERR_SAME_MAJOR_MINOR = "{v} does not have same major and minor version as {c}"
_ERR_NOT_EQUAL = "{v} is not equal to {c}"
_ERR_MINOR_MATCH = "{v} does not have same minor version as {c}. Expected minor versions to match when constraint major version is 0"
_ERR_MINOR = "{v} does not have same minor version as {c}"
_ERR_ZERO_ZERO = (
    "{v} does not equal {c}. Expect version and constraint to equal when major and minor versions are 0"
)


def is_wildcard(s: str) -> bool:
    """Whether a version segment is a wildcard (``x``, ``X`` or ``*``)."""
    return s in ("x", "X", "*")


def parse_comparison(text: str) -> Comparison:
    """One comparison as v3.5 parses it; raise :class:`SemverError` with its message."""
    m = COMPARISON.fullmatch(text)
    if m is None:
        raise SemverError(f"improper constraint: {go_quote(text)}")
    op, orig = m.group(1), m.group(2)
    major, minor, patch, pre = m.group(3), m.group(4) or "", m.group(5) or "", m.group(6) or ""
    ver, dirty, minor_dirty, patch_dirty = orig, False, False, False
    if is_wildcard(major):
        ver, dirty = f"0.0.0{pre}", True
    elif is_wildcard(minor.removeprefix(".")) or not minor:
        ver, dirty, minor_dirty = f"{major}.0.0{pre}", True, True
    elif is_wildcard(patch.removeprefix(".")) or not patch:
        ver, dirty, patch_dirty = f"{major}{minor}.0{pre}", True, True
    try:
        con = Version.parse(ver)
    except SemverError:
        raise SemverError("constraint parser error") from None
    return Comparison(op, orig, con, dirty, minor_dirty, patch_dirty)


def rewrite_hyphen_ranges(s: str, tail: str = " ") -> str:
    """``s`` with each hyphen range ``a - b`` written ``>= a, <= b`` followed by ``tail``."""
    out = s
    for m in _RANGE.finditer(s):
        out = out.replace(m.group(0), f">= {m.group(1)}, <= {m.group(11)}{tail}", 1)
    return out


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: OR groups of AND-ed comparisons. ``original`` is the string as written."""

    original: str
    groups: tuple[tuple[Comparison, ...], ...] = field(repr=False, compare=False)
    include_prerelease: bool = field(default=False, compare=False)

    @classmethod
    def parse(cls, value: str, *, include_prerelease: bool = False) -> Constraint:
        """Masterminds ``NewConstraint``. Raise :class:`SemverError` with its message."""
        try:
            return cls(value, cls._groups(value), include_prerelease)
        except SemverError as e:
            raise SemverError(
                e.message,
                hint=f"constraint {go_quote(value)}: use e.g. '>=v1.2.0', '~1.2', '^1', '1.2.x', "
                "'>=1.0.0, <2.0.0' or '>=1.0.0 <2.0.0 || >=3.0.0'; add -0 (>=v2.0.0-0) to admit prereleases",
            ) from None

    @staticmethod
    def _groups(value: str) -> tuple[tuple[Comparison, ...], ...]:
        if len(value.encode("utf-8", "surrogateescape")) > MAX_CONSTRAINT_LEN:
            raise SemverError(f"constraint string is too long (max {MAX_CONSTRAINT_LEN} bytes)")
        ors = rewrite_hyphen_ranges(value).split("||")
        if len(ors) > MAX_CONSTRAINT_GROUPS:
            raise SemverError(f"too many constraint groups (max {MAX_CONSTRAINT_GROUPS})")
        groups = []
        for seg in ors:
            if _VALID.fullmatch(seg) is None:
                raise SemverError(f"improper constraint: {go_quote(seg)}")
            atoms = [m.group(0) for m in _FIND.finditer(seg)] or [seg]
            groups.append(tuple(parse_comparison(a) for a in atoms))
        return tuple(groups)

    @classmethod
    def try_parse(cls, value: str) -> Constraint | None:
        """:meth:`parse`, or ``None`` when ``value`` is not a constraint."""
        try:
            return cls.parse(value)
        except SemverError:
            return None

    def check(self, version: Version | str) -> bool:
        """Masterminds ``Check``: does ``version`` satisfy any OR group entirely?

        A prerelease version passes a group only if some constraint in it carries a prerelease
        (or ``include_prerelease`` is set).
        """
        v = version if isinstance(version, Version) else Version.parse(version)
        for group in self.groups:
            include = self.include_prerelease or any(a.con.prerelease for a in group)
            if all(a.check(v, include) for a in group):
                return True
        return False

    __contains__ = check

    def validate(self, version: Version | str) -> list[str]:
        """Masterminds ``Validate``: ``[]`` when satisfied, else every reason (v3.5 wording, quoted).

        The prerelease reason is reported once, as upstream does.
        """
        v = version if isinstance(version, Version) else Version.parse(version)
        reasons: list[str] = []
        pre_reported = False
        for group in self.groups:
            include = self.include_prerelease or any(a.con.prerelease for a in group)
            joy = True
            for a in group:
                why = a.why_not(v, include)
                if why is None:
                    continue
                joy = False
                if why is _ERR_PRE:
                    if pre_reported:
                        continue
                    pre_reported = True
                reasons.append(why.format(v=go_quote(str(v)), c=go_quote(a.orig)))
            if joy:
                return []
        return reasons

    def __str__(self) -> str:
        """Masterminds ``String()``: each comparison as written, AND by space, OR by `` || ``."""
        return " || ".join(" ".join(str(a) for a in g) for g in self.groups)

    def filter(self, versions: Iterable[Version]) -> list[Version]:
        """The versions that satisfy this constraint, in the order given."""
        return [v for v in versions if self.check(v)]


def satisfies(constraint: str, version: str) -> bool:
    """Crossplane's dependency check: a digest constraint must equal ``version``; else semver.

    Raise :class:`SemverError` when the constraint or the version does not parse.
    """
    if is_digest_constraint(constraint):
        return constraint == version
    return Constraint.parse(constraint).check(Version.parse(version))


def sort_versions(versions: Iterable[Version], *, reverse: bool = False) -> list[Version]:
    """Sort by semver precedence (``semver.Collection``); stable for equal versions."""
    return sorted(versions, reverse=reverse)


def parse_tags(tags: Iterable[str], *, complete_only: bool = False) -> list[Version]:
    """Tags that parse as versions, sorted ascending; others (``latest``, ``main``) are skipped.

    ``complete_only`` also skips incomplete tags (:func:`is_complete_tag`), as Crossplane does when it
    picks a version of a missing dependency to install.
    """
    out = []
    for t in tags:
        v = Version.try_parse(t)
        if v is not None and (not complete_only or is_complete_tag(t)):
            out.append(v)
    return sort_versions(out)


def latest_satisfying(constraint: str, tags: Iterable[str], *, complete_only: bool = True) -> str | None:
    """The highest tag satisfying ``constraint`` (its original spelling), or ``None``."""
    c = Constraint.parse(constraint)
    matching = [v for v in parse_tags(tags, complete_only=complete_only) if c.check(v)]
    return matching[-1].original if matching else None
