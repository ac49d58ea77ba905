"""Versions and constraints with the semantics of Masterminds/semver v3.5 (what Crossplane uses).

Crossplane checks ``spec.crossplane.version`` and ``dependsOn[].version`` with
``github.com/Masterminds/semver/v3``; this module reproduces its v3.5 behaviour, including the odd
corners, so a package that installs on a cluster resolves the same way here:

* :meth:`Version.parse` is ``NewVersion`` with coercion on: an optional ``v``, missing minor/patch
  default to 0, leading zeros in major/minor/patch are accepted, numeric prerelease identifiers
  must not have them, numbers are unsigned 64-bit.
* :meth:`Constraint.parse` is ``NewConstraint``: hyphen ranges (``1 - 2``), ``||``, AND by comma
  or white space, the operators ``= != > < >= => <= =< ~ ~> ^``, bare versions (bare partials act
  like ``~``), wildcards ``x X *``. The patterns are Masterminds' own, including their quirks (a
  segment may contain ``|``); Go's ``\\s`` is ASCII-only, so it is spelled out.
* A prerelease version satisfies an AND group only when some constraint of that group carries a
  prerelease (the reason for the ``>=v2.0.0-0`` idiom).

Error messages are v3.5's, e.g. ``improper constraint: "foo"``. Masterminds v1.5 (Crossplane up to
v2.2) differed: AND only by comma, ``^0.x`` pinned the major only, the prerelease rule applied per
constraint, partial versions read otherwise and errors were unquoted; :func:`v15_difference` says
how it would read a given constraint differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import total_ordering

from xplane.xpkg.errors import SemverError

MAX_VERSION_LEN = 256
MAX_CONSTRAINT_LEN = 512
MAX_CONSTRAINT_GROUPS = 32
_MAX_UINT64 = (1 << 64) - 1

_SP = r"[\t\n\f\r ]"  # Go's \s
_LOOSE_VERSION = re.compile(
    r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
_CV = (
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
# The alternation order is Masterminds' and matters: the first operator that lets the rest match wins.
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
_CONSTRAINT = re.compile(rf"{_SP}*({_OPS}){_SP}*({_CV}){_SP}*")
_RANGE = re.compile(rf"{_SP}*({_CV}){_SP}+-{_SP}+({_CV}){_SP}*")
_FIND = re.compile(rf"({_OPS}){_SP}*({_CV})")
_VALID = re.compile(rf"({_SP}*({_OPS}){_SP}*({_CV}){_SP}*)((?:{_SP}+|,{_SP}*)({_OPS}){_SP}*({_CV}){_SP}*)*")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_NUM = frozenset("0123456789")
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789")


def go_quote(s: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``), as Masterminds uses it in error messages."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ch == " " or (o >= 0x20 and ch.isprintable()):
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _segment(text: str | None) -> int:
    digits = (text or "").removeprefix(".")
    if not digits:
        return 0
    value = int(digits)
    if value > _MAX_UINT64:
        raise SemverError(
            f'error parsing version segment: strconv.ParseUint: parsing "{digits}": value out of range'
        )
    return value


def _validate_prerelease(pre: str) -> None:
    for part in pre.split("."):
        if not part:
            raise SemverError("invalid prerelease string")
        if set(part) <= _NUM:
            if len(part) > 1 and part[0] == "0":
                raise SemverError("version segment starts with 0")
        elif not set(part) <= _ALLOWED:
            raise SemverError("invalid prerelease string")


def _as_uint(s: str) -> int | None:
    if not s or not set(s) <= _NUM:
        return None
    value = int(s)
    return value if value <= _MAX_UINT64 else None


def _compare_pre_part(s: str, o: str) -> int:
    if s == o:
        return 0
    if s == "":
        return -1
    if o == "":
        return 1
    si, oi = _as_uint(s), _as_uint(o)
    if si is None and oi is None:
        return 1 if s > o else -1
    if oi is None:  # s is a number, o is not: numbers sort first
        return -1
    if si is None:
        return 1
    return 1 if si > oi else -1


def compare_prerelease(a: str, b: str) -> int:
    """Masterminds' ``comparePrerelease``: -1, 0 or 1 (numeric identifiers sort before alphanumeric)."""
    sa, sb = a.split("."), b.split(".")
    for i in range(max(len(sa), len(sb))):
        d = _compare_pre_part(sa[i] if i < len(sa) else "", sb[i] if i < len(sb) else "")
        if d:
            return d
    return 0


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A parsed version. Equality and order follow semver precedence: build metadata is ignored."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    metadata: str = ""
    original: str = field(default="", compare=False)

    @classmethod
    def parse(cls, value: str) -> Version:
        """Masterminds ``NewVersion`` (coercing). Raise :class:`SemverError` with its message."""
        hint = f"version {go_quote(value)}: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. v1.2.3"
        if len(value.encode("utf-8", "surrogateescape")) > MAX_VERSION_LEN:
            raise SemverError(f"version string is too long (max {MAX_VERSION_LEN} bytes)", hint=hint)
        m = _LOOSE_VERSION.fullmatch(value)
        if m is None:
            raise SemverError("invalid semantic version", hint=hint)
        try:
            major, minor, patch = _segment(m.group(1)), _segment(m.group(2)), _segment(m.group(3))
            pre, meta = m.group(5) or "", m.group(8) or ""
            if pre:
                _validate_prerelease(pre)
            if meta and any(not p or not set(p) <= _ALLOWED for p in meta.split(".")):
                raise SemverError("invalid metadata string")
        except SemverError as e:
            raise SemverError(e.message, hint=hint) from None
        return cls(major, minor, patch, pre, meta, value)

    @classmethod
    def try_parse(cls, value: str) -> Version | None:
        """:meth:`parse`, or ``None`` when ``value`` is not a version."""
        try:
            return cls.parse(value)
        except SemverError:
            return None

    def __post_init__(self) -> None:
        if not self.original:
            object.__setattr__(self, "original", str(self))

    def __str__(self) -> str:
        """Masterminds ``String()``: ``M.m.p[-pre][+meta]`` without a ``v``."""
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            s += f"-{self.prerelease}"
        if self.metadata:
            s += f"+{self.metadata}"
        return s

    def compare(self, other: Version) -> int:
        """-1, 0 or 1 by semver precedence (always including prereleases)."""
        for a, b in ((self.major, other.major), (self.minor, other.minor), (self.patch, other.patch)):
            if a != b:
                return -1 if a < b else 1
        if self.prerelease == other.prerelease:
            return 0
        if not self.prerelease:
            return 1
        if not other.prerelease:
            return -1
        return compare_prerelease(self.prerelease, other.prerelease)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.prerelease))

    @property
    def is_prerelease(self) -> bool:
        """True when the version has a prerelease part."""
        return bool(self.prerelease)


def is_complete_tag(tag: str) -> bool:
    """Crossplane's rule for tags that may satisfy a dependency when installing it.

    A tag is complete when it parses and writes back unchanged (ignoring a leading ``v``): ``v1`` and
    ``1.2`` are incomplete (a floating ``v1`` tag must not satisfy ``v1.0.0``), as is ``v01.2.3``.
    """
    v = Version.try_parse(tag)
    return v is not None and str(v) == tag.removeprefix("v")


def is_digest_constraint(value: str) -> bool:
    """True when a dependency ``version`` is an OCI digest (``sha256:<64 hex>``), compared as a string."""
    return _DIGEST.fullmatch(value) is not None


@dataclass(frozen=True)
class _Atom:
    op: str
    orig: str
    con: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    def __str__(self) -> str:
        return self.op + self.orig

    def check(self, v: Version, include_pre: bool) -> bool:
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
        return self._caret(v)

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

    def _caret(self, v: Version) -> str | None:
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


def _is_x(s: str) -> bool:
    return s in ("x", "X", "*")


def _parse_atom(text: str) -> _Atom:
    m = _CONSTRAINT.fullmatch(text)
    if m is None:
        raise SemverError(f"improper constraint: {go_quote(text)}")
    op, orig = m.group(1), m.group(2)
    major, minor, patch, pre = m.group(3), m.group(4) or "", m.group(5) or "", m.group(6) or ""
    ver, dirty, minor_dirty, patch_dirty = orig, False, False, False
    if _is_x(major):
        ver, dirty = f"0.0.0{pre}", True
    elif _is_x(minor.removeprefix(".")) or not minor:
        ver, dirty, minor_dirty = f"{major}.0.0{pre}", True, True
    elif _is_x(patch.removeprefix(".")) or not patch:
        ver, dirty, patch_dirty = f"{major}{minor}.0{pre}", True, True
    try:
        con = Version.parse(ver)
    except SemverError:
        raise SemverError("constraint parser error") from None
    return _Atom(op, orig, con, dirty, minor_dirty, patch_dirty)


def _rewrite_range(s: str, tail: str = " ") -> str:
    out = s
    for m in _RANGE.finditer(s):
        out = out.replace(m.group(0), f">= {m.group(1)}, <= {m.group(11)}{tail}", 1)
    return out


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: OR groups of AND-ed comparisons. ``original`` is the string as written."""

    original: str
    groups: tuple[tuple[_Atom, ...], ...] = field(repr=False, compare=False)
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
    def _groups(value: str) -> tuple[tuple[_Atom, ...], ...]:
        if len(value.encode("utf-8", "surrogateescape")) > MAX_CONSTRAINT_LEN:
            raise SemverError(f"constraint string is too long (max {MAX_CONSTRAINT_LEN} bytes)")
        ors = _rewrite_range(value).split("||")
        if len(ors) > MAX_CONSTRAINT_GROUPS:
            raise SemverError(f"too many constraint groups (max {MAX_CONSTRAINT_GROUPS})")
        groups = []
        for seg in ors:
            if _VALID.fullmatch(seg) is None:
                raise SemverError(f"improper constraint: {go_quote(seg)}")
            atoms = [m.group(0) for m in _FIND.finditer(seg)] or [seg]
            groups.append(tuple(_parse_atom(a) for a in atoms))
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
