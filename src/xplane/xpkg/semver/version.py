"""Versions with the semantics of Masterminds/semver v3.5 (what Crossplane uses).

:meth:`Version.parse` is ``NewVersion`` with coercion on: an optional ``v``, missing minor/patch
default to 0, leading zeros in major/minor/patch are accepted, numeric prerelease identifiers must
not have them, numbers are unsigned 64-bit. Order is semver precedence; build metadata is ignored.
Error messages are v3.5's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import total_ordering

from xplane.xpkg.errors import SemverError

__all__ = [
    "LOOSE_VERSION",
    "MAX_VERSION_LEN",
    "Version",
    "compare_prerelease",
    "go_quote",
    "is_complete_tag",
    "is_digest_constraint",
]

MAX_VERSION_LEN = 256
_MAX_UINT64 = (1 << 64) - 1

#: Masterminds' coercing version pattern (``NewVersion``); the v1.5 reader uses it too.
LOOSE_VERSION = re.compile(
    r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
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
        m = LOOSE_VERSION.fullmatch(value)
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
