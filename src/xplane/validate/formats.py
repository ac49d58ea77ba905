"""The string formats Kubernetes' OpenAPI validation knows (``strfmt``'s default registry).

Unknown formats are accepted, as the API server does.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from datetime import date, datetime

_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_UUIDV = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-([345])[0-9a-fA-F]{3}-[89ab][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$", re.I
)
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_DURATION = re.compile(r"^\s*(-?\d+(\.\d+)?\s*(ns|us|µs|ms|s|m|h|d|w)\s*)+$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def _hostname(s: str) -> bool:
    if not s or len(s) > 255:
        return False
    return all(_LABEL.match(p) for p in s.rstrip(".").split("."))


def _ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


def _ipv6(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return "/" in s


def _date(s: str) -> bool:
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return len(s) == 10


def _datetime(s: str) -> bool:
    if not _RFC3339.match(s):
        return False
    try:
        datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


def _byte(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _uri(s: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", s))


def _uuid_version(v: str) -> Callable[[str], bool]:
    def check(s: str) -> bool:
        m = _UUIDV.match(s)
        return bool(m and m.group(1) == v)

    return check


FORMATS: dict[str, Callable[[str], bool]] = {
    "hostname": _hostname,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "cidr": _cidr,
    "mac": lambda s: bool(_MAC.match(s)),
    "uuid": lambda s: bool(_UUID.match(s)),
    "uuid3": _uuid_version("3"),
    "uuid4": _uuid_version("4"),
    "uuid5": _uuid_version("5"),
    "email": lambda s: bool(_EMAIL.match(s)),
    "uri": _uri,
    "date": _date,
    "date-time": _datetime,
    "datetime": _datetime,
    "duration": lambda s: bool(_DURATION.match(s)),
    "byte": _byte,
    "hexcolor": lambda s: bool(_HEXCOLOR.match(s)),
}


def check_format(fmt: str, value: str) -> bool:
    """Whether ``value`` is valid for ``fmt`` (True for formats Kubernetes does not check)."""
    fn = FORMATS.get(fmt)
    return fn(value) if fn is not None else True
