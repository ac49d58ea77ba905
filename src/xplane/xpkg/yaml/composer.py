"""libyaml's node tree of one Kubernetes document, read as go-yaml v2 reads it (for the loader).

PyYAML's ``CParser`` composes the tree in C, with its resolver hooks replaced by constant-time ones
(tags are decided by the builder). go-yaml v2, the parser behind ``sigs.k8s.io/yaml``, was ported
from libyaml 0.1; where libyaml 0.2 reads the text differently this module reads it go-yaml's way:

* a plain scalar inside ``[]`` or ``{}`` may end in ``:`` before ``,``, ``[``, ``]``, ``{`` or
  ``}`` (``[a:]`` is the string ``"a:"``): libyaml 0.2 refuses it ("found unexpected ':'"). The
  colon libyaml points at becomes a private-use character absent from the text, the document is
  composed again, and the colon is put back; at most :data:`MAX_FIXES` times per document, so a
  hostile file costs at most that many extra parses;
* an anchor may be defined again (``&x`` twice); an alias refers to the latest definition. PyYAML's
  composer refuses this ("found duplicate anchor"), so such a document is composed from libyaml's
  events in Python, without recursion;
* ``%YAML 1.2`` is accepted by libyaml only: a warning says Crossplane refuses it.

Errors are located in the stream; where libyaml stopped in text that already nests deeper than
:data:`~xplane.xpkg.yaml.depth.MAX_DEPTH`, xplane's depth error is raised instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.composer import ComposerError
from yaml.error import Mark
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.tokens import DirectiveToken, StreamStartToken

from xplane.xpkg.errors import YAMLError
from xplane.xpkg.yaml.depth import check_depth, check_depth_before, decoded, depth_error, may_nest_deeply

__all__ = ["MAX_FIXES", "OTHER", "PLAIN", "Warn", "compose", "empty", "from_pyyaml"]

#: Receives a warning: ``warn(line, column, message)`` (1-based, in the stream).
Warn = Callable[[int, int, str], None]

PLAIN = "!plain"  # tag given by our resolver to untagged plain scalars (the only ones resolved)
OTHER = "!other"  # untagged quoted scalars and the non-specific tag "!" (always strings)
#: Colons read go-yaml's way (``[a:]``) per document, at most.
MAX_FIXES = 16
_FLOW_INDICATORS = (",", "[", "]", "{", "}")
_TOO_MANY_FIXES = (
    f"Crossplane reads a value ending in ':' inside [] or {{}} as text; xplane does so for {MAX_FIXES} "
    "values a document at most: quote the others"
)


class Parser(CParser):
    """libyaml's composer with constant-time resolver hooks (tags are decided by the builder)."""

    def resolve(self, kind: type, value: str | None, implicit: Any) -> str:
        if value is None:  # a mapping or sequence: its tag does not matter
            return OTHER
        return PLAIN if implicit[0] else OTHER

    def descend_resolver(self, parent: Any, index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


def empty(node: Node | None) -> bool:
    """Whether a composed document has no content (upstream skips it)."""
    return node is None or (type(node) is ScalarNode and node.tag is PLAIN and node.value == "")


def compose(data: bytes, file: str | None, line0: int, warn: Warn) -> Node | None:
    """The node tree of the first YAML document in ``data`` (None when it has none).

    Raises :class:`YAMLError` located in the stream (``line0`` is added to lines); warnings (a
    second document after ``...``, ``%YAML 1.2``) go to ``warn``.
    """
    src: bytes | str = data
    deep = may_nest_deeply(data)
    checked: bytes | str | None = None
    placeholder = ""
    fixes = 0
    by_events = False
    while True:
        if deep and src is not checked:
            check_depth(src, file, line0)
            checked = src
        try:
            node = _compose_events(src, line0, warn) if by_events else _compose_c(src, line0, warn)
            break
        except yaml.MarkedYAMLError as e:
            if not by_events and isinstance(e, ComposerError) and _duplicate_anchor(e):
                by_events = True
                continue
            i = _flow_colon(e, src)
            if i is None:
                raise _located(e, src, data, file, line0) from None
            if fixes == MAX_FIXES:
                raise from_pyyaml(e, data, file, line0, hint=_TOO_MANY_FIXES) from None
            text = src if isinstance(src, str) else decoded(src)
            placeholder = placeholder or _unused_char(text)
            src = text[:i] + placeholder + text[i + 1 :]
            fixes += 1
        except yaml.YAMLError as e:
            raise from_pyyaml(e, data, file, line0) from None
    if node is None:
        return None
    if placeholder:
        _put_back(node, placeholder)
    m = node.start_mark
    if m is not None and _has_percent(src, m.index):
        _version_warning(src, line0, warn)
    return node


def _compose_c(src: bytes | str, line0: int, warn: Warn) -> Node | None:
    parser = Parser(src)
    try:
        node = parser.get_node() if parser.check_node() else None
        if node is not None and not empty(node):

            def next_mark() -> Mark | None:
                nxt = parser.get_node() if parser.check_node() else None
                return nxt.start_mark if nxt is not None else None

            _trailing(next_mark, line0, warn)
    finally:
        parser.dispose()
    return node


def _tag(tag: str | None, default: str) -> str:
    return default if tag is None or tag == "!" else tag


def _compose_events(src: bytes | str, line0: int, warn: Warn) -> Node | None:
    """The first document composed from libyaml's events: as the C composer does, except that a
    redefined anchor replaces the earlier one (go-yaml v2) instead of being an error."""
    p = CParser(src)
    try:
        p.get_event()  # stream start
        if p.check_event(StreamEndEvent):
            return None
        p.get_event()  # document start
        anchors: dict[str, Node] = {}
        stack: list[tuple[Node, list[Node]]] = []  # open collections, each with a mapping's pending key
        while True:
            ev = p.get_event()
            start: Any = ev and ev.start_mark  # the stubs mix two Mark classes; these are PyYAML's
            end: Any = ev and ev.end_mark
            node: Node
            if isinstance(ev, AliasEvent):
                found = anchors.get(ev.anchor or "")
                if found is None:
                    raise ComposerError(None, None, "found undefined alias", start)
                node = found
            elif isinstance(ev, ScalarEvent):
                tag = _tag(ev.tag, PLAIN if ev.implicit[0] else OTHER)
                node = ScalarNode(tag, ev.value, start, end, ev.style)
            elif isinstance(ev, (SequenceStartEvent, MappingStartEvent)):
                kind = SequenceNode if isinstance(ev, SequenceStartEvent) else MappingNode
                node = kind(_tag(ev.tag, OTHER), [], start, None, ev.flow_style)
                if ev.anchor is not None:
                    anchors[ev.anchor] = node  # before the children, as go-yaml v2 does
                stack.append((node, []))
                continue
            else:  # the end of a collection
                node = stack.pop()[0]
                node.end_mark = end
            if isinstance(ev, ScalarEvent) and ev.anchor is not None:
                anchors[ev.anchor] = node
            if not stack:
                break
            parent, pending = stack[-1]
            if type(parent) is SequenceNode:
                parent.value.append(node)
            elif pending:
                parent.value.append((pending.pop(), node))
            else:
                pending.append(node)
        p.get_event()  # document end

        def next_mark() -> Mark | None:
            if not p.check_event(DocumentStartEvent):
                return None
            p.get_event()
            nxt: Any = p.peek_event()
            return nxt.start_mark  # type: ignore[no-any-return]

        if not empty(node):
            _trailing(next_mark, line0, warn)
        return node
    finally:
        p.dispose()


def _trailing(next_mark: Callable[[], Mark | None], line0: int, warn: Warn) -> None:
    """Warn about a second document after ``...``: go-yaml decodes only the first one."""
    try:
        m = next_mark()
        if m is None:
            return
        line, col = line0 + m.line + 1, m.column + 1
    except yaml.YAMLError as e:
        err = from_pyyaml(e, b"", None, line0)
        line, col = err.line or line0 + 1, err.column or 1
    warn(line, col, "content after '...' is ignored, as in Crossplane")


def _duplicate_anchor(e: ComposerError) -> bool:
    return (e.context or "").startswith("found duplicate anchor")


def _flow_colon(e: yaml.MarkedYAMLError, src: bytes | str) -> int | None:
    """The offset of the colon in ``[a:]`` where libyaml refused it (go-yaml keeps it in the
    scalar), or None for any other error (``a:?``: go-yaml refuses that too)."""
    m = e.problem_mark
    if e.problem != "found unexpected ':'" or m is None:
        return None
    text = src if isinstance(src, str) else decoded(src)
    i = m.index
    if text[i : i + 1] != ":" or text[i + 1 : i + 2] not in _FLOW_INDICATORS:
        return None
    return i


def _unused_char(text: str) -> str:
    """A private-use character that ``text`` does not hold (libyaml reads it as a plain character)."""
    return next(c for c in map(chr, range(0xE000, 0xF900)) if c not in text)


def _put_back(root: Node, placeholder: str) -> None:
    """Turn the placeholder back into ':' in every scalar (iteratively: the tree may be deep)."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if type(n) is ScalarNode:
            if placeholder in n.value:
                n.value = n.value.replace(placeholder, ":")
        elif type(n) is SequenceNode:
            todo.extend(n.value)
        else:
            for k, v in n.value:
                todo += (k, v)


def _has_percent(src: bytes | str, index: int) -> bool:
    """Whether a '%' comes before character ``index`` (directives precede the content)."""
    if isinstance(src, str):
        return src.find("%", 0, index) >= 0
    return src.find(b"%", 0, 4 * index + 4) >= 0  # at most four bytes a character


def _version_warning(src: bytes | str, line0: int, warn: Warn) -> None:
    """Warn about a ``%YAML`` directive other than 1.1: go-yaml v2 refuses the document."""
    p = CParser(src)
    try:
        while True:
            t = p.get_token()
            if isinstance(t, DirectiveToken):
                if t.name == "YAML" and t.value != (1, 1):
                    m = t.start_mark
                    version = ".".join(map(str, t.value or ()))
                    warn(
                        line0 + m.line + 1,
                        m.column + 1,
                        f"%YAML {version}: Crossplane will refuse this file (its YAML parser reads "
                        "only %YAML 1.1: found incompatible YAML document); remove the directive",
                    )
            elif not isinstance(t, StreamStartToken):
                return
    except yaml.YAMLError:
        return
    finally:
        p.dispose()


def _located(
    e: yaml.MarkedYAMLError, src: bytes | str, data: bytes, file: str | None, line0: int
) -> YAMLError:
    """Our error for libyaml's: xplane's depth error when the text before it nests too deeply."""
    m = e.problem_mark or e.context_mark
    if m is not None:
        check_depth_before(src, m.index, file, line0)
        if "nesting" in f"{e.problem} {e.context}".lower():  # libyaml's own limit, whatever its text
            return depth_error(file, line0 + m.line + 1, m.column + 1)
    return from_pyyaml(e, data, file, line0)


def from_pyyaml(
    e: yaml.YAMLError, data: bytes, file: str | None, line0: int, *, hint: str | None = None
) -> YAMLError:
    """Our error, located in the stream, for a libyaml scanner/parser/composer or reader error."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        msg = "; ".join(p for p in (e.problem, e.context) if p) or "invalid YAML"
        if mark is None:
            return YAMLError(f"invalid YAML: {msg}", file=file, line=line0 + 1, column=1, hint=hint)
        return YAMLError(
            f"invalid YAML: {msg}",
            file=file,
            line=line0 + mark.line + 1,
            column=mark.column + 1,
            hint=hint,
        )
    if isinstance(e, yaml.reader.ReaderError):  # bad encoding: a byte offset, no mark
        pos = min(max(e.position, 0), len(data))
        line = data.count(b"\n", 0, pos)
        col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        return YAMLError(
            f"invalid YAML: {e.reason}",
            file=file,
            line=line0 + line + 1,
            column=col,
            hint="package YAML must be UTF-8 (or UTF-16 with a byte order mark)",
        )
    return YAMLError(f"invalid YAML: {e}", file=file, line=line0 + 1, column=1)
