"""A fast writer of block-style YAML for JSON-like trees, as ``xpkg build`` writes ``package.yaml``.

PyYAML's dumper builds a node tree, analyses every scalar in Python and then emits it: about 15 s
for a provider-sized package. This module writes the text directly (one pass, lines joined once):
keys sorted, two-space indentation, block sequences under a key at the key's column and mappings
in sequences as ``- key: ...`` (as yaml.v2 and PyYAML lay them out), ``{}`` and ``[]`` for empty
collections.

Every scalar reads back as the same value with Kubernetes' rules (:mod:`xplane.xpkg.yaml.loader`) and
also with PyYAML's YAML 1.1 resolver, so a string is written plain only when both read the plain
form as that string; otherwise it is quoted: single quotes for printable one-line text, double
quotes with JSON-style escapes for anything else, or a literal block (``|``/``|-``) for multi-line
text whose lines carry no trailing blanks. Lines are never folded.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml.resolver
from yaml.nodes import ScalarNode

from xplane.xpkg.errors import PackageError
from xplane.xpkg.yaml.scalars import HINTS, INT64_MAX, STR, WORDS, json_number, resolve_plain

__all__ = ["EmitError", "dump_documents"]


class EmitError(PackageError):
    """A value Kubernetes' YAML cannot carry unchanged (NaN, infinity, a huge integer, a non-str key).

    ``path`` names where it sits in its document (``spec.versions[0].name``).
    """

    def __init__(self, message: str, *, hint: str | None = None, path: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path

    def at(self, step: str) -> EmitError:
        """The same error one level further out (``step`` is a key or ``[index]``)."""
        sep = "" if not self.path or self.path.startswith("[") else "."
        return EmitError(self.message, hint=self.hint, path=step + sep + self.path)


# Characters YAML readers reject or treat as line breaks (libyaml's reader and emitter tables):
# C0 controls, DEL and C1 controls (NEL included), LS/PS, the BOM, U+FFFE/U+FFFF, surrogates.
_ODD = "\\x7f-\\x9f\\u2028\\u2029\\ufeff\\ufffe\\uffff\\ud800-\\udfff"
_BAD = "\\x00-\\x1f" + _ODD
#: A plain scalar candidate: no indicator or blank first, printable (no tab), no blank or ':' last.
_PLAIN = re.compile(f"[^{_BAD} !\"#%&'*,:>?@\\[\\]`{{|}}-](?:[^{_BAD}]*[^{_BAD} :])?")
#: Printable one-line text (single quotes carry it as is, with ``'`` doubled).
_SINGLE = re.compile(f"[^{_BAD}]*")
#: Text a literal block carries exactly: printable plus tab and line feed, no blank first or last,
#: at most one final line feed (blanks before a line feed are excluded separately).
_LITERAL = re.compile(f"[^ \\t\\n{_BAD}](?:[^\\x00-\\x08\\x0b-\\x1f{_ODD}]*[^ \\t{_BAD}])?\\n?")
#: Characters json.dumps leaves as is that YAML must see escaped.
_JSON_UNSAFE = re.compile("[\\x7f-\\x9f\\u2028\\u2029\\ufeff\\ufffe\\uffff]")

#: First characters of plain scalars that PyYAML or Kubernetes may resolve to a non-string.
_RESOLVED_FIRST = HINTS | frozenset("<=")
_NUMERIC = frozenset("+-.0123456789")
_PYYAML = yaml.resolver.Resolver()
#: libyaml and go-yaml reject implicit keys longer than 1024 characters.
_MAX_SIMPLE_KEY = 1000
_UINT64_MAX = 2**64 - 1


def _escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def double_quoted(s: str) -> str:
    """``s`` as a YAML double-quoted scalar (JSON's escapes, plus those YAML needs)."""
    j = json.dumps(s, ensure_ascii=False)
    return _JSON_UNSAFE.sub(_escape, j) if _JSON_UNSAFE.search(j) else j


def _pyyaml_str(s: str) -> bool:
    """Whether PyYAML's YAML 1.1 resolver reads the plain scalar ``s`` as a string."""
    tag: str = _PYYAML.resolve(ScalarNode, s, (True, False))  # type: ignore[no-untyped-call]
    return tag == STR


def _stays_str(s: str) -> bool:
    """Whether Kubernetes' rules (go-yaml v2) read the plain scalar ``s`` as that string."""
    return resolve_plain(s) is s


def _numeric(s: str) -> bool:
    """Whether ``s`` reads as a number to Python (a superset of YAML 1.2's, e.g. ``1e400``, ``1__0``)."""
    if s[0] not in _NUMERIC:
        return False
    try:
        float(s.replace("_", ""))
    except ValueError:
        return False
    return True


def inline_str(s: str) -> str:
    """``s`` on one line: plain when Kubernetes and PyYAML both read it back as ``s``, else quoted."""
    if _PLAIN.fullmatch(s) and ": " not in s and " #" not in s:
        c = s[0]
        if c not in _RESOLVED_FIRST:
            return s
        if c.isalpha():  # y, n, t, f, o: only whole words (yes, null, ...) resolve, in both rule sets
            if s not in WORDS:
                return s
        elif not s.startswith("...") and _stays_str(s) and _pyyaml_str(s) and not _numeric(s):
            return s
    if _SINGLE.fullmatch(s):
        return "'" + s.replace("'", "''") + "'" if "'" in s else "'" + s + "'"
    return double_quoted(s)


def _literal(s: str, indent: str) -> str | None:
    """``s`` as a literal block whose lines start at ``indent``, or None when that cannot be exact."""
    if not _LITERAL.fullmatch(s) or " \n" in s or "\t\n" in s:
        return None
    head = "|"
    if s[-1] == "\n":
        s = s[:-1]
    else:
        head = "|-"
    return head + "".join(("\n" + indent + line) if line else "\n" for line in s.split("\n"))


def float_text(f: float) -> str:
    """A float as both Kubernetes and PyYAML resolve it (``1e+21`` -> ``1.0e+21``)."""
    if math.isnan(f) or math.isinf(f):
        raise EmitError(
            f"cannot write {f!r}: Kubernetes' YAML-to-JSON decoding rejects NaN and infinities",
            hint="use a string, or a finite number",
        )
    r = repr(f)
    if "e" in r and "." not in r:
        mant, exp = r.split("e")
        r = f"{mant}.0e{exp}"
    return r


def int_text(n: int) -> str:
    """An integer; one Kubernetes would read back as a different number is an error."""
    if -INT64_MAX - 1 <= n <= _UINT64_MAX:
        return str(n)
    try:
        same = json_number(float(n)) == n  # read back as a float64, then printed by encoding/json
    except OverflowError:
        same = False
    if not same:
        raise EmitError(
            f"cannot write integer {n}: Kubernetes reads integers beyond 64 bits as float64, "
            "which would change it",
            hint="quote it as a string",
        )
    return str(n)


class _Writer:
    """Appends lines of one YAML stream to ``out`` (memoising how each one-line string is written)."""

    __slots__ = ("memo", "out")

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.memo: dict[str, str] = {}

    def text(self, s: str) -> str:
        """The one-line form of a string (cached: keys and enum-like values repeat a lot)."""
        r = self.memo.get(s)
        if r is None:
            r = inline_str(s)
            # the fast paths take cached forms as they are: multi-line values may become literal
            # blocks and very long keys need the explicit form, so neither is cached
            if len(r) <= _MAX_SIMPLE_KEY and "\n" not in s:
                self.memo[s] = r
        return r

    def value(self, s: str, indent: str) -> str:
        """A string value (after ``key: `` or ``- ``); multi-line text may become a literal block."""
        if "\n" in s:
            lit = _literal(s, indent)
            if lit is not None:
                return lit
        return self.text(s)

    def document(self, doc: Any) -> None:
        """One document, without its ``---`` separator."""
        doc = _json_like(doc)
        t = type(doc)
        if t is dict and doc:
            self.mapping(doc, "", "")
        elif t is list and doc:
            self.sequence(doc, "", "")
        elif t is str:
            self.out(self.text(doc) + "\n")
        else:
            self.out(self.scalar(doc) + "\n")

    def scalar(self, v: Any) -> str:
        """Anything but a non-empty collection or a string value."""
        if v is None:
            return "null"
        t = type(v)
        if t is bool:
            return "true" if v else "false"
        if t is int:
            return int_text(v)
        if t is float:
            return float_text(v)
        if t is dict or t is list:
            return "{}" if t is dict else "[]"  # only empty ones get here
        return self.other(v)

    def other(self, v: Any) -> str:
        """Subclasses of the JSON types (e.g. an ``IntEnum``) are written as their base value."""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return int_text(int(v))
        if isinstance(v, float):
            return float_text(float(v))
        if isinstance(v, str):
            return self.text(str(v))
        raise EmitError(
            f"cannot write a {type(v).__name__} value: package YAML holds only JSON-like data "
            "(mappings with string keys, lists, strings, numbers, booleans and null)"
        )

    def key(self, k: Any, pre: str, indent: str) -> tuple[str, bool]:
        """``pre`` plus the key and its colon, and whether it is an explicit ``? key`` (a very long key)."""
        if type(k) is not str:
            if not isinstance(k, str):
                raise EmitError(f"cannot write mapping key {k!r}: package YAML keys must be strings")
            k = str(k)
        ks = self.text(k)
        if len(ks) > _MAX_SIMPLE_KEY:
            return f"{pre}? {ks}\n{indent}:", True
        return f"{pre}{ks}:", False

    def mapping(self, d: dict[str, Any], indent: str, pre: str) -> None:
        """A non-empty mapping; its first line starts with ``pre``, the others with ``indent``."""
        out = self.out
        memo = self.memo
        child = indent + "  "
        try:
            keys = sorted(d)
        except TypeError:
            raise EmitError(
                f"cannot write mapping keys {list(d)!r}: package YAML keys must be strings"
            ) from None
        for k in keys:
            v = d[k]
            ks = memo.get(k) if type(k) is str else None
            explicit = False
            if ks is not None:
                head = f"{pre}{ks}:"
            else:
                head, explicit = self.key(k, pre, indent)
            pre = indent
            t = type(v)
            if t is not str and t is not dict and t is not list:
                v = _json_like(v)
                t = type(v)
            try:
                if t is str:
                    r = memo.get(v)
                    out(f"{head} {r if r is not None else self.value(v, child)}\n")
                elif t is dict:
                    if v:
                        out(head + "\n")
                        self.mapping(v, child, child)
                    else:
                        out(head + " {}\n")
                elif t is list:
                    if v:
                        out(head + "\n")
                        # the sequence sits at the key's column, indented under an explicit key
                        seq = child if explicit else indent
                        self.sequence(v, seq, seq)
                    else:
                        out(head + " []\n")
                else:
                    out(f"{head} {self.scalar(v)}\n")
            except EmitError as e:
                raise e.at(str(k)) from None

    def sequence(self, items: list[Any], indent: str, pre: str) -> None:
        """A non-empty sequence; its first item starts with ``pre``, the others with ``indent``."""
        out = self.out
        memo = self.memo
        child = indent + "  "
        for i, v in enumerate(items):
            t = type(v)
            if t is not str and t is not dict and t is not list:
                v = _json_like(v)
                t = type(v)
            try:
                if t is str:
                    r = memo.get(v)
                    out(f"{pre}- {r if r is not None else self.value(v, child)}\n")
                elif t is dict:
                    if v:
                        self.mapping(v, child, pre + "- ")
                    else:
                        out(pre + "- {}\n")
                elif t is list:
                    if v:
                        self.sequence(v, child, pre + "- ")
                    else:
                        out(pre + "- []\n")
                else:
                    out(f"{pre}- {self.scalar(v)}\n")
            except EmitError as e:
                raise e.at(f"[{i}]") from None
            pre = indent


def _json_like(v: Any) -> Any:
    """Other mappings and sequences (an ``OrderedDict``, a tuple) as plain dicts and lists."""
    if isinstance(v, Mapping):
        return dict(v)
    if isinstance(v, (list, tuple)):
        return list(v)
    return v


def dump_documents(docs: Iterable[Any]) -> bytes:
    """A YAML stream of ``docs`` as ``xpkg build`` writes ``package.yaml``: ``---`` before every
    document and at the end, keys sorted; every value reads back identically with Kubernetes'
    rules (:func:`xplane.xpkg.yaml.loader.load_all`) and with PyYAML. Raises :class:`EmitError` for a
    value those rules cannot carry (NaN, infinities, integers beyond 64 bits that a float64 would
    change, non-string keys)."""
    parts: list[str] = []
    writer = _Writer(parts.append)
    chunks = [b"---\n"]
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the walk allocates no cycles: nothing for the collector to find
    try:
        for n, doc in enumerate(docs, 1):
            try:
                writer.document(doc)
            except EmitError as e:
                where = f" at {e.path}" if e.path else ""
                raise EmitError(f"document {n}{where}: {e.message}", hint=e.hint, path=e.path) from None
            except RecursionError:
                raise EmitError(f"document {n} is nested too deeply to write") from None
            parts.append("---\n")
            text = "".join(parts)  # one document at a time: the text stays small and in cache
            parts.clear()
            try:
                chunks.append(text.encode("utf-8"))
            except UnicodeEncodeError as e:
                raise EmitError(
                    f"document {n}: cannot write a string holding the lone surrogate {text[e.start]!r}: "
                    "it is not valid UTF-8",
                    hint="the input text was decoded incorrectly; fix or remove the character",
                ) from None
    finally:
        if gc_was_enabled:
            gc.enable()
    return b"".join(chunks)
