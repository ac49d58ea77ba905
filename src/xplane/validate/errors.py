"""Field errors printed as Kubernetes' ``field.Error`` prints them, and the package's exceptions."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from xplane.errors import XplaneError

REQUIRED = "Required value"
INVALID = "Invalid value"
UNSUPPORTED = "Unsupported value"
DUPLICATE = "Duplicate value"
FORBIDDEN = "Forbidden"
TOO_LONG = "Too long"
TOO_MANY = "Too many"
INTERNAL = "Internal error"

_NO_VALUE = {REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL}
_OMIT = object()


class ValidateError(XplaneError):
    """A schema that cannot be used, or an extension source that cannot be read."""


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: ``kind`` ("schema", "cel", "unknownField", "defaulting") is ours."""

    field: str
    type: str
    value: Any = _OMIT
    detail: str = ""
    kind: str = "schema"
    text: str = ""  # the whole message, for errors that are not about one field (a CRD's schema)

    def body(self) -> str:
        """``field.Error.ErrorBody()``: the type, the value (unless omitted) and the detail."""
        if self.type in _NO_VALUE or self.value is _OMIT:
            s = self.type
        else:
            s = f"{self.type}: {go_value(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return self.text or f"{self.field}: {self.body()}"

    @property
    def has_value(self) -> bool:
        """Whether the error carries a bad value."""
        return self.value is not _OMIT

    def to_dict(self) -> dict[str, Any]:
        """The v2.3 JSON shape of one error."""
        out: dict[str, Any] = {"type": self.kind, "field": self.field, "message": str(self)}
        if self.has_value and self.type not in _NO_VALUE:
            out["value"] = self.value
        return out


def go_float(f: float) -> str:
    """Go's ``%v`` of a float64 (shortest digits, exponent below 1e-4 or from 1e21)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    d = Decimal(repr(f))
    sign, digits_t, exp = d.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    exp += len("".join(map(str, digits_t))) - len(digits)
    x = len(digits) + exp - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 21:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if exp >= 0:
        return neg + digits + "0" * exp
    point = len(digits) + exp
    if point > 0:
        return f"{neg}{digits[:point]}.{digits[point:]}"
    return f"{neg}0.{'0' * -point}{digits}"


def go_quote(s: str) -> str:
    """Go's ``%q`` / ``strconv.Quote`` (JSON escaping is the same for the common cases)."""
    return json.dumps(s, ensure_ascii=False)


def go_sharp(v: Any) -> str:
    """Go's ``%#v`` of an unstructured value (maps and slices of ``interface{}``)."""
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(go_sharp(x) for x in v) + "}"
    if isinstance(v, dict):
        items = ", ".join(f"{go_quote(str(k))}:{go_sharp(v[k])}" for k in sorted(v))
        return "map[string]interface {}{" + items + "}"
    return repr(v)


def go_value(v: Any) -> str:
    """How ``field.Error`` prints a bad value: simple types with ``%v``, strings ``%q``, else ``%#v``."""
    return "null" if v is None else go_sharp(v)  # the rest prints as %#v does


def required(path: str) -> FieldError:
    """``field.Required(path, "")``."""
    return FieldError(path, REQUIRED)


def invalid(path: str, value: Any, detail: str, kind: str = "schema") -> FieldError:
    """``field.Invalid(path, value, detail)``."""
    return FieldError(path, INVALID, value, detail, kind)


def not_supported(path: str, value: Any, allowed: list[Any]) -> FieldError:
    """``field.NotSupported``: the allowed values quoted (non-strings as their JSON)."""
    vals = [a if isinstance(a, str) else json.dumps(a, separators=(",", ":")) for a in allowed]
    return FieldError(path, UNSUPPORTED, value, "supported values: " + ", ".join(go_quote(v) for v in vals))
