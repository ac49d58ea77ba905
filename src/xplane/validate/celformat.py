"""Kubernetes' CEL ``format`` library, and the rewrites that fit it (and list ``indexOf``) on cel-cpp.

``format.dns1123Label()`` … return a Format; ``format.named(name)`` an ``optional`` Format;
``<Format>.validate(s)`` ``optional.none()`` when ``s`` is valid, else ``optional.of([errors])``
(k8s.io/apiserver/pkg/cel/library/format.go; messages from k8s.io/apimachinery's validation).

``cel-expr-python`` cannot return an ``optional`` from a Python function, and its ``strings``
extension already owns ``indexOf``/``lastIndexOf`` (no list overloads can be added). So
:func:`rewrite` adjusts a rule's text outside string literals before it is compiled:
``format.named(x)`` becomes ``format.named(x)[?'format']`` and ``F.validate(s)`` becomes
``F.xpFormatValidate(s)[?'errors']`` (the Python functions return ``{}`` for "none", CEL's
optional index makes the optional), and ``.indexOf(``/``.lastIndexOf(`` call xplane's own
functions, which handle strings exactly as the strings extension does and lists as Kubernetes does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from xplane.validate.formats import check_format

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + "(\\." + _LABEL_FMT + ")*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_VALUE_FMT = "(" + _KEY_FMT + ")?"
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_KEY_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile("^" + fmt + "$")


_LABEL, _SUBDOMAIN, _DNS1035 = _full(_LABEL_FMT), _full(_SUBDOMAIN_FMT), _full(_DNS1035_FMT)
_KEY, _VALUE = _full(_KEY_FMT), _full(_VALUE_FMT)


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError`` text."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, e in enumerate(examples):
        text += (" or " if i else "") + f"'{e}', "
    return text + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_label(s: str) -> list[str]:
    """``IsDNS1123Label``."""
    errs = [_max_len(63)] if len(s) > 63 else []
    if not _LABEL.match(s):
        ok_sub = bool(_SUBDOMAIN.match(s))
        errs.append(
            "must not contain dots" if ok_sub else regex_error(_LABEL_MSG, _LABEL_FMT, "my-name", "123-abc")
        )
    return errs


def dns1123_subdomain(s: str) -> list[str]:
    """``IsDNS1123Subdomain``."""
    errs = [_max_len(253)] if len(s) > 253 else []
    if not _SUBDOMAIN.match(s):
        errs.append(regex_error(_SUBDOMAIN_MSG, _SUBDOMAIN_FMT, "example.com"))
    return errs


def dns1035_label(s: str) -> list[str]:
    """``IsDNS1035Label``."""
    errs = [_max_len(63)] if len(s) > 63 else []
    if not _DNS1035.match(s):
        errs.append(regex_error(_DNS1035_MSG, _DNS1035_FMT, "my-name", "abc-123"))
    return errs


def qualified_name(s: str) -> list[str]:
    """``IsQualifiedName`` (a label key: an optional DNS subdomain prefix and ``/``)."""
    parts = s.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return [
            "a valid label key "
            + regex_error(_KEY_MSG, _KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in dns1123_subdomain(parts[0])]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _KEY.match(name):
        errs.append("name part " + regex_error(_KEY_MSG, _KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value(s: str) -> list[str]:
    """``IsValidLabelValue``."""
    errs = [_max_len(63)] if len(s) > 63 else []
    if not _VALUE.match(s):
        errs.append(regex_error(_VALUE_MSG, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _mask_trailing_dash(s: str) -> str:
    return s[:-2] + "a" if len(s) > 1 and s.endswith("-") else s  # apimachinery's, verbatim


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    return lambda s: check(_mask_trailing_dash(s))


def _uri(s: str) -> list[str]:
    """Go's ``url.ParseRequestURI``: an absolute URI or an absolute path."""
    if not s:
        return ['parse "": empty url']
    try:
        u = urlsplit(s)
    except ValueError:
        return [f'parse "{s}": invalid URI for request']
    if (u.scheme and (u.netloc or u.path.startswith("/") or u.path)) or s.startswith("/"):
        if " " in s or "\n" in s:
            return [f'parse "{s}": invalid character " " in URL']
        return []
    return [f'parse "{s}": invalid URI for request']


def _strfmt(name: str, message: str) -> Callable[[str], list[str]]:
    return lambda s: [] if check_format(name, s) else [message]


FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": dns1123_label,
    "dns1123Subdomain": dns1123_subdomain,
    "dns1035Label": dns1035_label,
    "qualifiedName": qualified_name,
    "dns1123LabelPrefix": _prefix(dns1123_label),
    "dns1123SubdomainPrefix": _prefix(dns1123_subdomain),
    "dns1035LabelPrefix": _prefix(dns1035_label),
    "labelValue": label_value,
    "uri": _uri,
    "uuid": _strfmt("uuid", "does not match the UUID format"),
    "byte": _strfmt("byte", "invalid base64"),
    "date": _strfmt("date", "invalid date"),
    "datetime": _strfmt("date-time", "invalid datetime"),
}


def _format(name: str) -> dict[str, Any]:
    return {"@type": "format", "v": name}


def _named(name: str) -> dict[str, Any]:
    return {"format": _format(name)} if name in FORMATS else {}


def _validate(f: Any, s: str) -> dict[str, Any]:
    if not isinstance(f, dict) or f.get("@type") != "format" or f.get("v") not in FORMATS:
        raise ValueError("no such overload")
    errs = FORMATS[str(f["v"])](s)
    return {"errors": errs} if errs else {}


def _zero(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: _format(name)


# name -> (is_member, parameter kinds, implementation, return kind), as celext.FUNCTIONS
FORMAT_FUNCTIONS: dict[str, list[tuple[bool, str, Callable[..., Any], str]]] = {
    "format.named": [(False, "s", _named, "m")],
    "xpFormatValidate": [(True, "ms", _validate, "m")],
    **{f"format.{n}": [(False, "", _zero(n), "m")] for n in FORMATS},
}

# --- the rewrite ----------------------------------------------------------------------------------
_LITERAL = re.compile(
    r"""[rR]?[bB]?[rR]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
)
_CALL = re.compile(r"\bformat\s*\.\s*named\s*\(|\.\s*(validate|indexOf|lastIndexOf)\s*\(")
_RENAMED = {"indexOf": "xpIndexOf", "lastIndexOf": "xpLastIndexOf"}


def _code_mask(expr: str) -> list[bool]:
    """For every character: True when it is code, False inside a string literal."""
    mask = [True] * len(expr)
    for m in _LITERAL.finditer(expr):
        for i in range(m.start(), m.end()):
            mask[i] = False
    return mask


def _close(expr: str, mask: list[bool], start: int) -> int:
    """The index of the ``)`` closing the ``(`` just before ``start`` (or -1)."""
    depth = 1
    for i in range(start, len(expr)):
        if not mask[i]:
            continue
        if expr[i] in "([{":
            depth += 1
        elif expr[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def rewrite(expr: str) -> str:
    """A rule's text with the ``format`` and list ``indexOf`` calls made compilable (see module)."""
    if not _CALL.search(expr):
        return expr
    mask = _code_mask(expr)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), non-overlapping
    for m in _CALL.finditer(expr):
        if not mask[m.start()]:
            continue
        method = m.group(1)
        if method in _RENAMED:
            edits.append((m.start(), m.end(), f".{_RENAMED[method]}("))
            continue
        end = _close(expr, mask, m.end())
        if end < 0:
            continue  # let the compiler report the syntax error
        if method == "validate":
            edits.append((m.start(), m.end(), ".xpFormatValidate("))
            edits.append((end + 1, end + 1, "[?'errors']"))
        else:
            edits.append((end + 1, end + 1, "[?'format']"))
    out = expr
    for start, stop, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out = out[:start] + text + out[stop:]
    return out
