"""Kubernetes' name rules (apimachinery ``validation``), with its messages.

Each check returns the problems found (empty when the value is valid), worded as the API server
words them, so callers can put them behind ``metadata.name: Invalid value: "X": …``.
"""

from __future__ import annotations

import re

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN + r"\Z")
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_RE = re.compile(_QUALIFIED_NAME + r"\Z")
_LABEL_VALUE_RE = re.compile(rf"({_QUALIFIED_NAME})?\Z")


def dns1123_subdomain(value: str) -> list[str]:
    """Problems of ``value`` as a lowercase RFC 1123 subdomain (object names: at most 253 characters)."""
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.match(value):
        problems.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            f"validation is '{_DNS1123_SUBDOMAIN}')"
        )
    return problems


def qualified_name(value: str) -> list[str]:
    """Problems of ``value`` as a qualified name (label and annotation keys, finalizers): ``[prefix/]name``."""
    problems = []
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems.extend(f"prefix part {p}" for p in dns1123_subdomain(prefix))
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_RE.match(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{_QUALIFIED_NAME}')"
        )
    return problems


def label_value(value: str) -> list[str]:
    """Problems of ``value`` as a label value: at most 63 characters of ``[-A-Za-z0-9_.]``, alphanumeric ends."""
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        problems.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
            f"'12345', regex used for validation is '({_QUALIFIED_NAME})?')"
        )
    return problems


__all__ = ["dns1123_subdomain", "label_value", "qualified_name"]
