"""Kubernetes' CEL extension libraries that ``cel-expr-python`` does not ship.

``cel-expr-python`` brings CEL's standard library, the ``strings`` extension (``lowerAscii``,
``split``, ``format``, ...) and ``optional``. Kubernetes adds lists, sets, regex, URLs, IPs and
CIDRs, quantities, semantic versions and formats (k8s.io/apiserver/pkg/cel/library; formats in
:mod:`.celformat`) and cel-go's list extension (``slice``, ``flatten``); they are here, as
functions over plain values. The library's typed values (a quantity, an IP, ...) are maps tagged
with ``@type`` (the runtime has no opaque Python objects); one member function per name dispatches
on the tag.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable
from fractions import Fraction
from functools import cmp_to_key, lru_cache
from typing import Any
from urllib.parse import urlsplit

from xplane.validate.celformat import FORMAT_FUNCTIONS

_TAG = "@type"
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DEC = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QTY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-.]+))?$"
)


class CelExtError(Exception):
    """An extension function's error (becomes the rule's evaluation error)."""


def _tagged(kind: str, value: str) -> dict[str, Any]:
    return {_TAG: kind, "v": value}


def _kind(v: Any) -> str:
    return str(v.get(_TAG, "")) if isinstance(v, dict) else ""


# --- quantity -------------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def parse_quantity(s: str) -> Fraction:
    """A Kubernetes quantity's exact value; raises :class:`CelExtError` if it does not parse."""
    m = _QTY.match(s.strip()) if s else None
    if not m:
        raise CelExtError(f"quantities must match the regular expression '{_QTY.pattern}'")
    num, suffix = Fraction(m.group(1)), m.group(2) or ""
    if suffix in _BIN:
        return num * _BIN[suffix]
    if suffix and suffix[0] in "eE":
        return num * Fraction(10) ** int(suffix[1:])
    return num * _DEC[suffix]


def _qty(value: Fraction) -> dict[str, Any]:
    """A quantity value: tagged with its exact value, so ``==`` compares amounts (``1Gi == 1024Mi``),
    as Kubernetes' ``Quantity.Equal`` (``Cmp == 0``) does."""
    return _tagged("quantity", str(value))


def _q(v: Any) -> Fraction:
    if _kind(v) != "quantity":
        raise CelExtError("no such overload")
    return Fraction(v["v"])


def _quantity(s: str) -> dict[str, Any]:
    return _qty(parse_quantity(s))


def _is_quantity(s: str) -> bool:
    try:
        parse_quantity(s)
    except CelExtError:
        return False
    return True


# --- semver ---------------------------------------------------------------------------------------
def _semver_parts(s: str) -> tuple[int, int, int, str]:
    m = _SEMVER.match(s)
    if not m:
        raise CelExtError(f"invalid semver: {s}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or ""


def _pre_cmp(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a or not b:
        return 1 if not a else -1
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(a.split(".")) > len(b.split("."))) - (len(a.split(".")) < len(b.split(".")))


def _semver(s: str) -> dict[str, Any]:
    _semver_parts(s)
    return _tagged("semver", s.split("+", 1)[0])  # build metadata does not count (Version.EQ)


def _is_semver(s: str) -> bool:
    return bool(_SEMVER.match(s))


# --- url, ip, cidr --------------------------------------------------------------------------------
def _url(s: str) -> dict[str, Any]:
    if not _is_url(s):
        raise CelExtError(f"URL parse error during conversion from string: {s}")
    return _tagged("url", s)


def _is_url(s: str) -> bool:
    try:
        u = urlsplit(s)
    except ValueError:
        return False
    return bool(u.scheme or s.startswith("/"))


def _ip(s: str) -> dict[str, Any]:
    if not _is_ip(s):
        raise CelExtError(f"IP Address {s!r} parse error during conversion from string")
    return _tagged("ip", str(ipaddress.ip_address(s)))  # canonical: ip('::1') == ip('0::1')


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return "%" not in s


def _cidr(s: str) -> dict[str, Any]:
    if not _is_cidr(s):
        raise CelExtError(f"network address parse error during conversion from string: {s}")
    return _tagged("cidr", s)


def _is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_interface(s)
    except ValueError:
        return False
    return "/" in s


def _addr(v: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if _kind(v) == "ip":
        return ipaddress.ip_address(v["v"])
    if isinstance(v, str):
        return ipaddress.ip_address(v)
    raise CelExtError("no such overload")


def _net(v: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_interface(v["v"] if isinstance(v, dict) else v).network


# --- member functions dispatched on the tag --------------------------------------------------------
def _compare(a: Any, b: Any) -> int:
    ka = _kind(a)
    if ka != _kind(b):
        raise CelExtError("no such overload")
    if ka == "quantity":
        x, y = _q(a), _q(b)
        return (x > y) - (x < y)
    if ka == "semver":
        pa, pb = _semver_parts(a["v"]), _semver_parts(b["v"])
        if pa[:3] != pb[:3]:
            return -1 if pa[:3] < pb[:3] else 1
        return _pre_cmp(pa[3], pb[3])
    raise CelExtError("no such overload")


def _sign(v: Any) -> int:
    q = _q(v)
    return (q > 0) - (q < 0)


def _as_integer(v: Any) -> int:
    q = _q(v)
    if q.denominator != 1 or not -(2**63) <= q < 2**63:
        raise CelExtError("cannot convert value to integer")
    return int(q)


def _arith(sign: int) -> Callable[[Any, Any], dict[str, Any]]:
    def op(a: Any, b: Any) -> dict[str, Any]:
        y = _q(b) if isinstance(b, dict) else Fraction(b)
        return _qty(_q(a) + sign * y)

    return op


def _url_part(part: str) -> Callable[[Any], str]:
    def get(v: Any) -> str:
        u = urlsplit(str(v["v"]))
        if part == "scheme":
            return u.scheme
        if part == "host":
            return u.netloc.rsplit("@", 1)[-1]
        if part == "hostname":
            return (u.hostname or "").strip("[]")
        if part == "port":
            return str(u.port) if u.port else ""
        if part == "path":
            return u.path
        return u.query

    return get


def _family(v: Any) -> int:
    if _kind(v) == "cidr":
        return _net(v).version
    return _addr(v).version


def _contains_ip(net: Any, ip: Any) -> bool:
    return _addr(_ip(ip) if isinstance(ip, str) else ip) in _net(net)


def _contains_cidr(net: Any, other: Any) -> bool:
    inner = _net(other)
    outer = _net(net)
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _regex_find(s: str, pattern: str) -> str:
    m = re.search(pattern, s)
    return m.group(0) if m else ""


def _regex_find_all(s: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, s)]
    return found if limit < 0 else found[:limit]


def _is_sorted(xs: list[Any]) -> bool:
    return all(not (b < a) for a, b in itertools.pairwise(xs))


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def _sorted_key(xs: list[Any]) -> list[Any]:
    return sorted(xs, key=cmp_to_key(_cmp))


def _min(xs: list[Any]) -> Any:
    if not xs:
        raise CelExtError("min called on empty list")
    return _sorted_key(xs)[0]


def _max(xs: list[Any]) -> Any:
    if not xs:
        raise CelExtError("max called on empty list")
    return _sorted_key(xs)[-1]


def same(a: Any, b: Any) -> bool:
    """CEL's equality on plain values (``true != 1``; ``1 == 1.0``; lists and maps by content)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def _index_of(xs: Any, x: Any, offset: int | None = None) -> int:
    if isinstance(xs, list):  # Kubernetes' lists library
        return next((i for i, y in enumerate(xs) if same(x, y)), -1)
    if not isinstance(xs, str) or not isinstance(x, str):
        raise CelExtError("no such overload")
    if offset is None:
        return xs.find(x)
    if x == "":
        return offset
    if offset < 0 or offset >= len(xs):
        raise CelExtError(f"index out of range: {offset}")
    return xs.find(x, offset)


def _last_index_of(xs: Any, x: Any, offset: int | None = None) -> int:
    if isinstance(xs, list):
        return next((i for i in range(len(xs) - 1, -1, -1) if same(x, xs[i])), -1)
    if not isinstance(xs, str) or not isinstance(x, str):
        raise CelExtError("no such overload")
    if offset is None:
        return len(xs) if x == "" else xs.rfind(x)
    if x == "":
        return offset
    if offset < 0 or offset >= len(xs):
        raise CelExtError(f"index out of range: {offset}")
    return xs.rfind(x, 0, offset + len(x))


def _slice(xs: list[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end < 0:
        raise CelExtError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise CelExtError(
            f"cannot slice({start}, {end}), start index must be less than or equal to end index"
        )
    if len(xs) < end:
        raise CelExtError(f"cannot slice({start}, {end}), list is length {len(xs)}")
    return xs[start:end]


def _flatten(xs: list[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise CelExtError("level must be non-negative")
    out: list[Any] = []
    for x in xs:
        out.extend(_flatten(x, depth - 1) if isinstance(x, list) and depth > 0 else [x])
    return out


_ELEMENT_KINDS = "isfblm"

# name -> (is_member, parameter kinds, implementation, return kind); kinds: s=string, i=int, l=list,
# m=map, d=dyn (results only), b=bool, f=double
FUNCTIONS: dict[str, list[tuple[bool, str, Callable[..., Any], str]]] = {
    "isSorted": [(True, "l", _is_sorted, "b")],
    # indexOf/lastIndexOf: called through celformat.rewrite (the strings extension owns the names)
    # (cel-cpp dispatches no dyn parameter: one list overload per element kind)
    "xpIndexOf": [
        *((True, f"l{k}", _index_of, "i") for k in _ELEMENT_KINDS),
        (True, "ss", _index_of, "i"),
        (True, "ssi", _index_of, "i"),
    ],
    "xpLastIndexOf": [
        *((True, f"l{k}", _last_index_of, "i") for k in _ELEMENT_KINDS),
        (True, "ss", _last_index_of, "i"),
        (True, "ssi", _last_index_of, "i"),
    ],
    "slice": [(True, "lii", _slice, "l")],
    "flatten": [(True, "l", _flatten, "l"), (True, "li", _flatten, "l")],
    "sum": [(True, "l", lambda xs: sum(xs), "d")],
    "min": [(True, "l", _min, "d")],
    "max": [(True, "l", _max, "d")],
    "sets.contains": [(False, "ll", lambda a, b: all(x in a for x in b), "b")],
    "sets.equivalent": [(False, "ll", lambda a, b: all(x in a for x in b) and all(x in b for x in a), "b")],
    "sets.intersects": [(False, "ll", lambda a, b: any(x in a for x in b), "b")],
    "find": [(True, "ss", _regex_find, "s")],
    "findAll": [(True, "ss", _regex_find_all, "l"), (True, "ssi", _regex_find_all, "l")],
    "quantity": [(False, "s", _quantity, "m")],
    "isQuantity": [(False, "s", _is_quantity, "b")],
    "sign": [(True, "m", _sign, "i")],
    "isInteger": [(True, "m", lambda v: _q(v).denominator == 1, "b")],
    "asInteger": [(True, "m", _as_integer, "i")],
    "asApproximateFloat": [(True, "m", lambda v: float(_q(v)), "f")],
    "add": [(True, "mm", _arith(1), "m"), (True, "mi", _arith(1), "m")],
    "sub": [(True, "mm", _arith(-1), "m"), (True, "mi", _arith(-1), "m")],
    "compareTo": [(True, "mm", _compare, "i")],
    "isGreaterThan": [(True, "mm", lambda a, b: _compare(a, b) > 0, "b")],
    "isLessThan": [(True, "mm", lambda a, b: _compare(a, b) < 0, "b")],
    "semver": [(False, "s", _semver, "m")],
    "isSemver": [(False, "s", _is_semver, "b")],
    "major": [(True, "m", lambda v: _semver_parts(v["v"])[0], "i")],
    "minor": [(True, "m", lambda v: _semver_parts(v["v"])[1], "i")],
    "patch": [(True, "m", lambda v: _semver_parts(v["v"])[2], "i")],
    "url": [(False, "s", _url, "m")],
    "isURL": [(False, "s", _is_url, "b")],
    "getScheme": [(True, "m", _url_part("scheme"), "s")],
    "getHost": [(True, "m", _url_part("host"), "s")],
    "getHostname": [(True, "m", _url_part("hostname"), "s")],
    "getPort": [(True, "m", _url_part("port"), "s")],
    "getEscapedPath": [(True, "m", _url_part("path"), "s")],
    "getQuery": [
        (
            True,
            "m",
            lambda v: {
                k: [x] for k, _, x in (p.partition("=") for p in urlsplit(v["v"]).query.split("&") if p)
            },
            "d",
        )
    ],
    "ip": [
        (False, "s", _ip, "m"),
        (True, "m", lambda v: _tagged("ip", str(ipaddress.ip_interface(v["v"]).ip)), "m"),
    ],
    "isIP": [(False, "s", _is_ip, "b")],
    "cidr": [(False, "s", _cidr, "m")],
    "isCIDR": [(False, "s", _is_cidr, "b")],
    "family": [(True, "m", _family, "i")],
    "isUnspecified": [(True, "m", lambda v: _addr(v).is_unspecified, "b")],
    "isLoopback": [(True, "m", lambda v: _addr(v).is_loopback, "b")],
    "isLinkLocalMulticast": [(True, "m", lambda v: _addr(v).is_multicast and _addr(v).is_link_local, "b")],
    "isLinkLocalUnicast": [(True, "m", lambda v: _addr(v).is_link_local and not _addr(v).is_multicast, "b")],
    "isGlobalUnicast": [(True, "m", lambda v: _addr(v).is_global and not _addr(v).is_multicast, "b")],
    "containsIP": [(True, "ms", _contains_ip, "b"), (True, "mm", _contains_ip, "b")],
    "containsCIDR": [(True, "ms", _contains_cidr, "b"), (True, "mm", _contains_cidr, "b")],
    "prefixLength": [(True, "m", lambda v: _net(v).prefixlen, "i")],
    "masked": [(True, "m", lambda v: _tagged("cidr", str(_net(v))), "m")],
    **FORMAT_FUNCTIONS,
}


def to_plain(v: Any) -> Any:
    """A tagged extension value as Kubernetes would print it (its string), other values as they are."""
    if isinstance(v, dict) and _TAG in v:
        return v["v"]
    return v
