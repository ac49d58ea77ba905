"""YAML exactly as Crossplane reads it: Kubernetes' YAML 1.1 rules, fast (libyaml).

Crossplane decodes package YAML with ``sigs.k8s.io/yaml`` (go-yaml v2 -> JSON -> ``encoding/json``).
This module reproduces its results (``shared/spec/yaml.md``): ``y``/``on``/``yes`` are booleans,
``012`` is 10, ``0o12``/``0x1F``/``0b101``/``1_000``/``+12`` are integers, integral floats become
integers, ``1e400`` and timestamps and ``1:20`` stay strings, ``.inf``/``.nan`` are errors, big
integers are exact, and mapping keys are resolved and then stringified like sigs.k8s.io/yaml does
(``y: 1`` -> ``{"true": 1}``). Aliases and merge keys follow go-yaml v2 (each alias is a copy; a
merge applies in place, so later keys win). Duplicate keys keep the last value, as upstream does,
and produce a :class:`YAMLWarning`.

Documents are split the way Kubernetes' ``YAMLReader`` does (``---`` at the start of a line; only
spaces or a comment may follow it), and only the first YAML document of each piece is decoded.

Speed: libyaml composes the node tree in C through PyYAML's ``CParser`` (:mod:`xplane.xpkg.yaml.composer`,
which also reads the few constructs libyaml 0.2 and go-yaml v2 disagree on go-yaml's way); one lean
recursive pass builds dicts/lists directly and runs the numeric rules (:mod:`xplane.xpkg.yaml.scalars`)
only on plain scalars whose first character can start a non-string. Nesting deeper than
:data:`xplane.xpkg.yaml.depth.MAX_DEPTH` is xplane's located error, whichever libyaml is installed.

What Crossplane refuses but libyaml reads (``%YAML 1.2``, a ``?`` inside a plain scalar in ``[]`` or
``{}``, an impossible date under ``!!timestamp``) is read and produces a :class:`YAMLWarning`
saying Crossplane will refuse the file.
"""

from __future__ import annotations

import base64
import binascii
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from xplane.xpkg.errors import YAMLError
from xplane.xpkg.yaml.composer import OTHER as _OTHER
from xplane.xpkg.yaml.composer import PLAIN as _PLAIN
from xplane.xpkg.yaml.composer import compose, empty
from xplane.xpkg.yaml.depth import FRAMES_PER_LEVEL, MAX_DEPTH, depth_error, recursion_room
from xplane.xpkg.yaml.scalars import (
    BINARY,
    BOOL,
    FINAL,
    FLOAT,
    HINTS,
    INT,
    INT64_MAX,
    MERGE_TAG,
    MISS,
    NULL,
    NUMERIC,
    RESOLVABLE,
    STR,
    SURPRISING_BOOLS,
    TAG_NAMES,
    TIMESTAMP,
    TIMESTAMP_RE,
    WORDS,
    GoFloat,
    Special,
    go_float32_key,
    json_number,
    resolve_plain,
    timestamp_problem,
)

__all__ = [
    "Chunk",
    "YAMLWarning",
    "load_all",
    "load_chunk",
    "loads",
    "no_gc",
    "split_documents",
]

# --- warnings and positions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class YAMLWarning:
    """Something upstream accepts silently but a user probably did not mean (1-based positions)."""

    file: str | None
    line: int
    column: int
    message: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.file or '<input>'}:{self.line}:{self.column}: warning: {self.message}"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One document's bytes as Kubernetes' YAMLReader cuts them from a stream."""

    start: int  # byte offset in the stream
    end: int
    line: int  # 0-based line of ``start`` in the stream


def _next_separator(data: bytes, frm: int) -> int:
    """Offset of the next line at or after ``frm`` that starts with ``---``, or -1."""
    if frm == 0 and data.startswith(b"---"):
        return 0
    i = data.find(b"\n---", max(frm - 1, 0))
    return -1 if i < 0 else i + 1


def split_documents(data: bytes, *, file: str | None = None) -> Iterator[Chunk]:
    """Cut ``data`` at lines starting with ``---`` (k8s ``YAMLReader``); raise on ``--- {inline}``.

    As upstream, a separator line is dropped when a document precedes it and kept (as the first
    line of the next piece) when none does.
    """
    start = line = pos = 0  # ``line`` is the line number of byte ``pos``
    sep = _next_separator(data, 0)
    while sep >= 0:
        eol = data.find(b"\n", sep)
        eol = len(data) if eol < 0 else eol + 1
        rest = data[sep + 3 : eol].strip()
        if rest and not rest.startswith(b"#"):
            raise YAMLError(
                f"invalid Yaml document separator: {rest.decode('utf-8', 'replace')}",
                file=file,
                line=line + data.count(b"\n", pos, sep) + 1,
                column=1,
                hint="put the document on the line after '---' (only a comment may follow it)",
            )
        if sep > start:
            yield Chunk(start, sep, line + data.count(b"\n", pos, start))
            line += data.count(b"\n", pos, sep)
            pos, start = sep, eol
        sep = _next_separator(data, eol)
    if start < len(data):
        yield Chunk(start, len(data), line + data.count(b"\n", pos, start))


# --- the loader -------------------------------------------------------------------------------------


class _Builder:
    """Turns one composed document into JSON-like values with Kubernetes' rules."""

    __slots__ = (
        "_text",
        "aliases",
        "bang",
        "budget",
        "data",
        "file",
        "flowq",
        "line0",
        "path",
        "warnings",
    )

    def __init__(
        self, file: str | None, line0: int, warnings: list[YAMLWarning], aliases: bool, data: bytes
    ) -> None:
        self.data = data
        self._text: str | None = None  # ``data`` decoded, for libyaml's character marks
        self.bang = b"!" in data  # a tag may be present: only then can a plain scalar carry ``!``
        self.file = file
        self.line0 = line0
        self.warnings = warnings
        self.aliases = aliases  # the text holds '*': nodes may repeat, so guard against cycles and bombs
        self.budget = 4 * len(data) + 100_000
        self.path: set[int] = set()
        # '?' inside a plain scalar in [] or {} ends it for go-yaml: look only if the text allows it
        self.flowq = b"?" in data and (b"[" in data or b"{" in data)

    # positions
    def _pos(self, node: Node) -> tuple[int, int]:
        m = node.start_mark
        return (self.line0 + m.line + 1, m.column + 1) if m is not None else (self.line0 + 1, 1)

    def error(self, node: Node, message: str, hint: str | None = None) -> YAMLError:
        line, col = self._pos(node)
        return YAMLError(message, file=self.file, line=line, column=col, hint=hint)

    def warn(self, node: Node, message: str, key: str | None = None) -> None:
        line, col = self._pos(node)
        self.warnings.append(YAMLWarning(self.file, line, col, message, key))

    # values
    def build(self, node: Node, depth: int = 0) -> Any:
        """The JSON-like value of ``node``, found inside ``depth`` collections."""
        if self.aliases:
            return self._guarded(node, depth)
        t = type(node)
        if t is ScalarNode:
            if node.tag is _PLAIN:
                v = node.value
                if v and v[0] not in HINTS:
                    return v
            return self.scalar(node)
        depth += 1
        if depth > MAX_DEPTH:
            raise self.too_deep(node)
        # a sequence or mapping here (not isinstance-narrowed: this runs for every collection)
        if self.flowq and node.flow_style:  # type: ignore[attr-defined]
            self._flow_plain(node)
        if t is MappingNode:
            return self.mapping(node, depth)
        build = self.build
        out = []
        for n in node.value:
            if type(n) is ScalarNode and n.tag is _PLAIN:
                v = n.value
                if v and v[0] not in HINTS:
                    out.append(v)
                    continue
            out.append(build(n, depth))
        return out

    def too_deep(self, node: Node) -> YAMLError:
        """xplane's depth error at ``node``."""
        return depth_error(self.file, *self._pos(node))

    def _flow_plain(self, node: Node) -> None:
        """Warn about plain scalars in a flow collection holding '?': go-yaml v2 ends them there and
        then finds no ',' (libyaml 0.2 keeps the '?', as YAML 1.2 says)."""
        items = node.value if type(node) is SequenceNode else [n for pair in node.value for n in pair]
        for n in items:
            if type(n) is ScalarNode and n.style == "" and "?" in n.value:
                self.warn(
                    n,
                    f"plain value {n.value!r} in [] or {{}} holds '?': Crossplane will refuse this file "
                    "(its YAML parser ends the value at '?'); quote the value",
                )

    def _guarded(self, node: Node, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.error(node, "document contains excessive aliasing", "expand the aliases by hand")
        if type(node) is ScalarNode:
            return self.scalar(node)
        key = id(node)
        if key in self.path:
            raise self.error(node, "an alias refers to a node that contains it (a recursive anchor)")
        self.path.add(key)
        try:
            depth += 1
            if depth > MAX_DEPTH:
                raise self.too_deep(node)
            if self.flowq and node.flow_style:  # type: ignore[attr-defined]  # a collection here
                self._flow_plain(node)
            if type(node) is MappingNode:
                return self.mapping(node, depth)
            return [self._guarded(n, depth) for n in node.value]
        finally:
            self.path.discard(key)

    def scalar(self, node: Node) -> Any:
        """A scalar value; raises for values JSON cannot carry."""
        v = self.raw_scalar(node)
        if type(v) is GoFloat:
            return json_number(v)
        if type(v) is Special:
            raise self.error(
                node,
                f"json: unsupported value: {node.value} (YAML resolves it to {v.value}, which JSON cannot hold)",
                hint="quote the value if a string was meant",
            )
        return v

    def raw_scalar(self, node: Node) -> Any:
        """go-yaml's value: str, int, :class:`GoFloat`, bool, None or a :class:`Special`."""
        tag, v = node.tag, node.value
        if tag is _PLAIN:
            if v and v[0] not in HINTS:
                return v
            r = resolve_plain(v)
            if self.bang and type(r) is not str and self._non_specific(node):
                return v  # `! 12`: the non-specific tag keeps the text, as in go-yaml
            if type(r) is bool and v in SURPRISING_BOOLS:
                self.warn(
                    node, f"plain {v!r} is read as boolean {str(r).lower()} (YAML 1.1); quote it for a string"
                )
            return r
        if tag is _OTHER or tag not in RESOLVABLE:
            if tag == BINARY:
                return self._binary(node)
            return v  # quoted, '!' or an unknown tag: go-yaml keeps the text
        return self._tagged(node, tag, v)

    def _non_specific(self, node: Node) -> bool:
        """Whether a plain scalar carries the non-specific tag ``!`` (libyaml resolves it as untagged).

        Only called for scalars that resolve to something other than a string: the node's start
        mark is at its value unless properties (an anchor, a tag) come first.
        """
        m = node.start_mark
        if m is None:
            return False
        text = self._text
        if text is None:  # libyaml's marks count characters, so index the decoded text
            text = self._text = self.data.decode("utf-8", "replace").lstrip("\ufeff")
        i = m.index
        if text[i : i + 1] not in ("!", "&"):  # no properties: a plain scalar never starts so
            return False
        properties = text[i : i + 2 * 1024]
        for word in properties.split():
            if word in ("!", "!<!>"):  # the verbatim form names the same non-specific tag
                return True
            if word[:1] not in ("!", "&"):
                return False
        return False

    def _binary(self, node: Node) -> str:
        try:
            data = base64.b64decode(re.sub(r"[\r\n]", "", node.value), validate=True)
        except (binascii.Error, ValueError):
            raise self.error(node, "!!binary value contains invalid base64 data") from None
        return data.decode("utf-8", "replace")

    def _tagged(self, node: Node, tag: str, v: str) -> Any:
        if tag == STR:
            return v
        if tag == TIMESTAMP and TIMESTAMP_RE.match(v):
            why = timestamp_problem(v)
            if why is not None:
                self.warn(
                    node,
                    f"cannot decode !!str `{v}` as a !!timestamp ({why}): Crossplane will refuse this "
                    "file; fix the date or drop the tag",
                )
            return v
        r = resolve_plain(v) if v == "" or v[0] in HINTS else v
        if tag == NULL and r is None:
            return None
        if tag == BOOL and type(r) is bool:
            return r
        if tag == INT and type(r) is int:
            return r
        if tag == FLOAT and type(r) in (GoFloat, int, Special):
            return GoFloat(r) if type(r) is int else r
        got = TAG_NAMES.get(type(r), "!!str")
        raise self.error(node, f"cannot decode {got} `{v}` as a !!{tag.rsplit(':', 1)[-1]}")

    def key(self, node: Node) -> str:
        """A mapping key, resolved then stringified like sigs.k8s.io/yaml."""
        if type(node) is not ScalarNode:
            raise self.error(
                node,
                f"a {'mapping' if type(node) is MappingNode else 'sequence'} cannot be a mapping key",
                hint="JSON object keys are strings; use a scalar key",
            )
        r = self.raw_scalar(node)
        t = type(r)
        if t is str:
            return r  # type: ignore[no-any-return]
        if t is bool:
            return "true" if r else "false"
        if t is int:
            if r > INT64_MAX:
                raise self.error(node, f"Unsupported map key of type: uint64, key: {node.value}")
            return str(r)
        if t is GoFloat:
            return go_float32_key(r)
        if t is Special:
            return r.key  # type: ignore[no-any-return]
        raise self.error(
            node, "Unsupported map key of type: <nil>", hint="quote the key if a string was meant"
        )

    def mapping(self, node: Node, depth: int) -> dict[str, Any]:
        """A mapping at level ``depth``: go-yaml v2 order (merges apply in place), duplicates warned,
        last one wins."""
        d: dict[str, Any] = {}
        pairs = node.value
        build = self.build
        merged = False
        for kn, vn in pairs:
            if kn.tag is _PLAIN:
                k = kn.value
                if k == "<<":
                    self.merge(d, vn, depth)
                    merged = True
                    continue
                if not k or (k[0] in HINTS and (k[0] in NUMERIC or k in WORDS)):
                    k = self.key(kn)
            elif kn.tag == MERGE_TAG and kn.value == "<<":  # go-yaml: `!!merge foo` is a key
                self.merge(d, vn, depth)
                merged = True
                continue
            else:
                k = self.key(kn)
            if type(vn) is ScalarNode and vn.tag is _PLAIN:
                v = vn.value
                if v and (v[0] not in HINTS or (v[0] not in NUMERIC and v not in WORDS)):
                    d[k] = v
                else:
                    r = FINAL.get(v, MISS)
                    if r is MISS or (self.bang and self._non_specific(vn)):
                        r = self.scalar(vn)
                    d[k] = r
            else:
                d[k] = build(vn, depth)
        if merged:
            self._duplicates([p for p in pairs if not self._is_merge(p[0])])
        elif len(d) != len(pairs):
            self._duplicates(pairs)
        return d

    @staticmethod
    def _is_merge(kn: Node) -> bool:
        return type(kn) is ScalarNode and kn.value == "<<" and (kn.tag is _PLAIN or kn.tag == MERGE_TAG)

    def _duplicates(self, pairs: list[tuple[Node, Node]]) -> None:
        seen: dict[str, Node] = {}
        sink: list[YAMLWarning] = []
        saved, self.warnings = self.warnings, sink  # keys were warned about already
        try:
            keys = [(self.key(kn), kn) for kn, _ in pairs]
        finally:
            self.warnings = saved
        for k, kn in keys:
            first = seen.get(k)
            if first is not None:
                fl, fc = self._pos(first)
                self.warn(
                    kn,
                    f"duplicate key {k!r} (first at line {fl}, column {fc}); the last value wins, as in Crossplane",
                    key=k,
                )
            seen[k] = kn

    def merge(self, d: dict[str, Any], vn: Node, depth: int) -> None:
        """Apply a ``<<`` merge to a mapping at level ``depth`` (go-yaml v2: in place; in a list the
        earlier mappings win)."""
        if type(vn) is MappingNode:
            d.update(self.build(vn, depth))
        elif type(vn) is SequenceNode:
            for item in reversed(vn.value):
                if type(item) is not MappingNode:
                    raise self.error(item, "map merge requires map or sequence of maps as the value")
                d.update(self.build(item, depth + 1))
        else:
            raise self.error(vn, "map merge requires map or sequence of maps as the value")


#: A line that is not blank, a comment, ``---`` or ``...`` (optionally followed by a comment).
_CONTENT_LINE = re.compile(rb"^(?![ \t\r]*(?:(?:---|\.\.\.)[ \t\r]*)?(?:#.*)?$)", re.MULTILINE)


def load_chunk(
    data: bytes,
    *,
    file: str | None = None,
    line0: int = 0,
    warnings: list[YAMLWarning] | None = None,
) -> tuple[Any, int, int] | None:
    """Decode the first YAML document of ``data`` (one k8s document) with Kubernetes' rules.

    Returns ``(value, line, column)`` (1-based, where the content starts; ``line0`` is added to
    lines) or None for a document with no content (whitespace, comments, ``---``, ``...``).
    Raises :class:`YAMLError` with file, line and column.
    """
    if _CONTENT_LINE.search(data) is None:  # upstream skips these pieces before decoding them
        return None
    sink = warnings if warnings is not None else []

    def warn(line: int, column: int, message: str) -> None:
        sink.append(YAMLWarning(file, line, column, message))

    node = compose(data, file, line0, warn)
    if node is None or empty(node):
        return None
    start = len(sink)
    builder = _Builder(file, line0, sink, b"*" in data, data)
    try:
        value = builder.build(node)
    except RecursionError:  # within MAX_DEPTH levels, but the caller's stack left too little room
        del sink[start:]
        with recursion_room(FRAMES_PER_LEVEL * MAX_DEPTH + 100):
            value = _Builder(file, line0, sink, b"*" in data, data).build(node)
    m = node.start_mark
    return value, line0 + m.line + 1, m.column + 1


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large tree is built (it holds no cycles).

    Building millions of containers otherwise triggers collections that rescan the growing tree;
    pausing them makes a large parse about 1.6x faster. The previous state is restored.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_all(
    data: bytes | str, *, file: str | None = None, warnings: list[YAMLWarning] | None = None
) -> list[Any]:
    """Every non-empty document of a stream, as Crossplane splits and decodes it."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    out = []
    with no_gc():
        for c in split_documents(raw, file=file):
            r = load_chunk(raw[c.start : c.end], file=file, line0=c.line, warnings=warnings)
            if r is not None:
                out.append(r[0])
    return out


def loads(data: bytes | str, *, file: str | None = None, warnings: list[YAMLWarning] | None = None) -> Any:
    """The first non-empty document of ``data`` (None when there is none)."""
    docs = load_all(data, file=file, warnings=warnings)
    return docs[0] if docs else None
