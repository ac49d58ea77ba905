"""How deep a YAML document may nest: :data:`MAX_DEPTH` levels, past which xplane's own located error
speaks, whichever libyaml PyYAML bundles.

Three places enforce the one limit, all at the first collection deeper than it, in document order:

* the builder counts levels as it builds (a document that composes);
* :func:`check_depth` walks libyaml's events before composing, for a document the cheap
  :func:`may_nest_deeply` cannot bound: PyYAML's composer recurses in C (about 330 bytes of stack
  per level: 8 MB overflows near 25,000 levels, a segfault), and older libyaml (PyYAML <= 6.0.2)
  has no limit of its own;
* :func:`check_depth_before` re-reads the text before a libyaml error: libyaml 0.2.6 (PyYAML
  6.0.3+) refuses 1,000 levels (flow levels plus block indents) with "exceeded maximum nesting
  depth", and its scanner reads up to 1,024 characters ahead of the events on a line, so
  ``[[[[…`` fails before a single event shows its depth. The text before the error nests less
  than 1,000 levels, so libyaml reads it without complaint and the walk finds our level there.

Why 512: far above what Kubernetes objects need (the deepest CRD schemas nest a few dozen levels);
below libyaml 0.2.6's 999 block levels with room to spare, so every document libyaml refuses for
depth is one xplane refuses first with its own words and position; and low enough that the Python
builder (up to four frames a level) fits in a modestly raised recursion limit. Upstream
(encoding/json) stops at 10,000 levels; nothing real lies between.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import yaml
from yaml._yaml import CParser
from yaml.events import CollectionEndEvent, CollectionStartEvent

from xplane.xpkg.errors import YAMLError

__all__ = [
    "DEPTH_HINT",
    "FRAMES_PER_LEVEL",
    "MAX_DEPTH",
    "check_depth",
    "check_depth_before",
    "decoded",
    "depth_error",
    "may_nest_deeply",
    "recursion_room",
]


#: Deepest nesting accepted (see the module notes for why 512).
MAX_DEPTH = 512
#: Python frames the builder uses per level at most (a merge through an alias: build, guard,
#: mapping, merge).
FRAMES_PER_LEVEL = 4
#: Depth the composer is known to survive on any thread with a default-sized stack.
_SAFE_DEPTH = 6000
#: At most this many flow openers ('[' or '{') pass the cheap test ...
_FLOW_BUDGET = 2000
#: ... and every window of this many bytes must hold a newline: lines are then shorter than twice
#: this, and block nesting gains at most two levels per column (``a:\n- b:`` keeps the column).
_LINE_WINDOW = 1024


def may_nest_deeply(data: bytes) -> bool:
    """False when ``data`` provably nests less than ``_SAFE_DEPTH`` deep (each level takes a byte,
    a flow opener, or a column of a line); True when it might (a scan must decide)."""
    n = len(data)
    if n <= _SAFE_DEPTH:
        return False
    find = data.find
    budget = _FLOW_BUDGET
    for opener in (b"[", b"{"):
        i = find(opener)
        while i >= 0:
            budget -= 1
            if budget < 0:
                return True
            i = find(opener, i + 1)
    w = _LINE_WINDOW
    return any(find(b"\n", p, p + w) < 0 for p in range(0, n - w + 1, w))


def depth_error(file: str | None, line: int, column: int) -> YAMLError:
    """xplane's error for a collection nested deeper than :data:`MAX_DEPTH` (1-based position)."""
    return YAMLError(
        f"document is nested too deeply (more than {MAX_DEPTH} levels)",
        file=file,
        line=line,
        column=column,
        hint=DEPTH_HINT,
    )


def decoded(data: bytes) -> str:
    """``data`` as libyaml reads it, so that its marks (character offsets) index the result."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8", "replace").removeprefix("\ufeff")


def _walk(src: bytes | str, file: str | None, line0: int) -> yaml.MarkedYAMLError | None:
    """Raise at the first collection deeper than :data:`MAX_DEPTH`; return the libyaml error that
    ended the walk early (None when the text was read to its end)."""
    parser = CParser(src)
    depth = 0
    try:
        while parser.check_event():
            ev = parser.get_event()
            if isinstance(ev, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    m = ev.start_mark
                    if m is None:
                        raise depth_error(file, line0 + 1, 1)
                    raise depth_error(file, line0 + m.line + 1, m.column + 1)
            elif isinstance(ev, CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as e:
        return e
    except yaml.YAMLError:
        return None
    finally:
        parser.dispose()
    return None


def check_depth(src: bytes | str, file: str | None, line0: int) -> None:
    """Raise :class:`YAMLError` at the first collection nested deeper than :data:`MAX_DEPTH`.

    Walks libyaml's events (no tree is built). A syntax error ends the walk; the text before it
    is walked again (:func:`check_depth_before`), otherwise the call returns and composing stops
    at the same error, no deeper than the walk went.
    """
    e = _walk(src, file, line0)
    mark = e.problem_mark or e.context_mark if e is not None else None
    if mark is not None:
        check_depth_before(src, mark.index, file, line0)


def check_depth_before(src: bytes | str, index: int, file: str | None, line0: int) -> None:
    """Raise :class:`YAMLError` when the text before character ``index`` (where libyaml stopped
    with an error) already nests deeper than :data:`MAX_DEPTH`."""
    if index <= MAX_DEPTH:  # each level takes a character at least
        return
    text = src if isinstance(src, str) else decoded(src)
    _walk(text[:index], file, line0)


class _RecursionRoom:
    """Raises the interpreter's recursion limit while deep documents are built (shared by threads:
    the first raises it, the last one out restores it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0

    @contextmanager
    def __call__(self, frames: int) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = sys.getrecursionlimit()
                sys.setrecursionlimit(self._saved + frames)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    sys.setrecursionlimit(self._saved)


#: ``with recursion_room(frames):`` — room for ``frames`` more Python frames than the limit allowed.
recursion_room = _RecursionRoom()

DEPTH_HINT = "Kubernetes objects nest a few dozen levels; check for runaway brackets or indentation"
