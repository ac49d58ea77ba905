"""How deep a YAML document nests, decided before it is composed (a located error past MAX_DEPTH).

libyaml's parser is iterative, but PyYAML's composer recurses in C (about 330 bytes of stack per
level: 8 MB overflows near 25,000 levels, a segfault), and the builder recurses in Python. Before
composing, a cheap test bounds the depth; only a document that fails it is scanned event by event.
"""

from __future__ import annotations

import yaml
from yaml._yaml import CParser
from yaml.events import CollectionEndEvent, CollectionStartEvent

from xplane.xpkg.errors import YAMLError

__all__ = ["DEPTH_HINT", "MAX_DEPTH", "check_depth", "may_nest_deeply"]


#: Deepest nesting accepted (upstream's encoding/json stops at 10,000; real objects nest a few dozen).
MAX_DEPTH = 1000
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


def check_depth(data: bytes, file: str | None, line0: int) -> None:
    """Raise :class:`YAMLError` at the first collection nested deeper than :data:`MAX_DEPTH`.

    Walks libyaml's events (no tree is built). A syntax error ends the scan quietly: composing
    stops at the same event, so the composer never goes deeper than the scan did.
    """
    parser = CParser(data)
    depth = 0
    try:
        while parser.check_event():
            ev = parser.get_event()
            if isinstance(ev, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    m = ev.start_mark
                    raise YAMLError(
                        f"document is nested too deeply (more than {MAX_DEPTH} levels)",
                        file=file,
                        line=line0 + (m.line + 1 if m is not None else 1),
                        column=m.column + 1 if m is not None else 1,
                        hint=DEPTH_HINT,
                    )
            elif isinstance(ev, CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return
    finally:
        parser.dispose()


DEPTH_HINT = "Kubernetes objects nest a few dozen levels; check for runaway brackets or indentation"
