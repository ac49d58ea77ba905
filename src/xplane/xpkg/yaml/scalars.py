"""Kubernetes' YAML scalar rules, shared by the loader and the emitter (which build on this module).

The rules are go-yaml v2's ``resolve.go`` followed by what ``sigs.k8s.io/yaml`` and
``encoding/json`` do to the result (``shared/spec/yaml.md``): which plain scalars are booleans,
integers, floats or null, how integral floats print, and how non-string mapping keys are
stringified. The loader (:mod:`xplane.xpkg.yaml.loader`) reads with them; the emitter
(:mod:`xplane.xpkg.yaml.emitter`) quotes every string they would read as something else.
"""

from __future__ import annotations

import math
import re
import struct
from decimal import Decimal
from typing import Any

# --- scalar rules (go-yaml v2 resolve.go, then sigs.k8s.io/yaml and encoding/json) -----------------

STR = "tag:yaml.org,2002:str"
BINARY = "tag:yaml.org,2002:binary"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
TIMESTAMP = "tag:yaml.org,2002:timestamp"
NULL = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
RESOLVABLE = frozenset({STR, BOOL, INT, FLOAT, TIMESTAMP, NULL})

#: First characters that may start something other than a string (go-yaml's resolveTable).
HINTS = frozenset("+-0123456789yYnNtTfFoO~.")


class Special:
    """A float go-yaml produces but JSON cannot carry (``.inf``, ``.nan``)."""

    def __init__(self, key: str, value: float) -> None:
        self.key = key  # how sigs.k8s.io/yaml stringifies it as a mapping key
        self.value = value


_INF = Special(".inf", math.inf)
_NEG_INF = Special("-.inf", -math.inf)
_NAN = Special(".nan", math.nan)
MISS = object()

WORDS: dict[str, Any] = {}
for _words, _val in (
    ("y Y yes Yes YES true True TRUE on On ON", True),
    ("n N no No NO false False FALSE off Off OFF", False),
    (".nan .NaN .NAN", _NAN),
    (".inf .Inf .INF +.inf +.Inf +.INF", _INF),
    ("-.inf -.Inf -.INF", _NEG_INF),
):
    for _w in _words.split():
        WORDS[_w] = _val
for _w in ("", "~", "null", "Null", "NULL"):
    WORDS[_w] = None
#: YAML 1.1 booleans that surprise people used to YAML 1.2 (warned about; ``true``/``false`` are not).
SURPRISING_BOOLS = frozenset(
    k for k, v in WORDS.items() if type(v) is bool and k.lower() not in ("true", "false")
)

#: First characters of plain scalars that may be numbers (the rest of HINTS only match WORDS words).
NUMERIC = frozenset("+-0123456789.")
#: Plain words whose value needs no further work (no warning, JSON-ready).
FINAL: dict[str, Any] = {w: v for w, v in WORDS.items() if v is None or w.lower() in ("true", "false")}

_GO_INT = re.compile(r"([-+]?)(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
#: ``strconv.ParseFloat`` of a scalar starting with '.': go-yaml passes it on with its underscores,
#: which Go accepts between digits (``.5_0``, ``.1_2e3``), not after the dot or the ``e``.
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+(?:_[0-9]+)*)?\Z")
TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:([Tt ])([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?(Z|[-+]([0-9]{2}):([0-9]{2}))?)?\Z"
)
TAG_NAMES: dict[type, str] = {bool: "!!bool", int: "!!int", type(None): "!!null"}
_INT64_MIN, INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class GoFloat(float):
    """A float go-yaml resolved; kept apart from ints only while a mapping key is stringified."""


TAG_NAMES[GoFloat] = TAG_NAMES[Special] = "!!float"


def _go_int(s: str) -> int | None:
    """``strconv.ParseInt(s, 0, 64)``, then ``ParseUint(s, 0, 64)``; None when both fail."""
    m = _GO_INT.match(s)
    if m is None:
        return None
    sign, body = m.groups()
    if len(body) > 1 and body[0] == "0":
        p = body[1]
        n = (
            int(body[2:], {"b": 2, "B": 2, "o": 8, "O": 8, "x": 16, "X": 16}[p])
            if p in "bBoOxX"
            else int(body, 8)
        )
    else:
        n = int(body)
    if sign == "-":
        n = -n
    if _INT64_MIN <= n <= INT64_MAX or (not sign and n <= _UINT64_MAX):
        return n
    return None


def resolve_plain(v: str) -> Any:
    """The go-yaml v2 value of an untagged plain scalar (floats as :class:`GoFloat`)."""
    r = WORDS.get(v, MISS)
    if r is not MISS:
        return r
    c = v[0]
    if c == ".":
        if _DOT_FLOAT.match(v):
            f = float(v.replace("_", ""))
            if not math.isinf(f):
                return GoFloat(f)
        return v
    if c not in "+-0123456789":
        return v
    plain = v.replace("_", "") if "_" in v else v
    n = _go_int(plain)
    if n is not None:
        return n
    if _YAML_FLOAT.match(plain):
        f = float(plain)
        if not math.isinf(f):  # out of range: ParseFloat fails and the scalar stays a string
            return GoFloat(f)
    return v


def timestamp_problem(v: str) -> str | None:
    """Why Go's ``time.Parse`` refuses a ``TIMESTAMP_RE`` match under ``!!timestamp`` (None: it doesn't).

    go-yaml v2 tries four layouts: a ``T``/``t`` time needs a zone (``Z`` or ``±hh:mm``), a
    space-separated one must have none, and every field is range-checked.
    """
    m = TIMESTAMP_RE.match(v)
    assert m is not None
    year, month, day, sep, hour, minute, second, zone, zh, zm = m.groups()
    mo, d = int(month), int(day)
    if not 1 <= mo <= 12:
        return "month out of range"
    y = int(year)
    days = 30 if mo in (4, 6, 9, 11) else 31
    if mo == 2:
        days = 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    if not 1 <= d <= days:
        return "day out of range"
    if sep is None:
        return None
    if sep == " " and zone is not None:
        return "extra text after the seconds (a space-separated time takes no zone)"
    if sep != " " and zone is None:
        return "no time zone (a 'T' time needs 'Z' or ±hh:mm)"
    for field, text, top in (("hour", hour, 23), ("minute", minute, 59), ("second", second, 59)):
        if int(text) > top:
            return f"{field} out of range"
    if zh is not None and (int(zh) > 24 or int(zm) > 60):
        return "time zone offset out of range"
    return None


def json_number(f: float) -> Any:
    """What ``encoding/json`` prints for a float64, as a Python value: integral floats -> int."""
    if f.is_integer() and -1e21 < f < 1e21:
        if -(2**53) <= f <= 2**53:
            return int(f)
        return int(Decimal(repr(f)))  # Go prints the shortest digits padded with zeros
    return float(f)


def _float32(f: float) -> float | None:
    """``float32(f)`` (round to nearest), or None where Go's conversion gives an infinity."""
    try:
        return struct.unpack("<f", struct.pack("<f", f))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return None


def go_float32_key(f: float) -> str:
    """``strconv.FormatFloat(f, 'g', -1, 32)`` as sigs.k8s.io/yaml uses it for float mapping keys."""
    f32 = _float32(f)
    if f32 is None:
        return ".inf" if f > 0 else "-.inf"
    if f32 == 0:
        return "-0" if math.copysign(1.0, f32) < 0 else "0"
    for prec in range(1, 10):
        s = f"{f32:.{prec - 1}e}"
        if _float32(float(s)) == f32:  # near the largest float32, short digits may round past it
            break
    mant, exp_s = s.split("e")
    neg = mant.startswith("-")
    digits = mant.lstrip("-").replace(".", "").rstrip("0") or "0"
    exp = int(exp_s)
    if exp < -4 or exp >= 6:
        out = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        out += f"e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif exp < 0:
        out = "0." + "0" * (-exp - 1) + digits
    elif len(digits) > exp + 1:
        out = digits[: exp + 1] + "." + digits[exp + 1 :]
    else:
        out = digits + "0" * (exp + 1 - len(digits))
    return ("-" if neg else "") + out
