"""Which files ``xpkg build`` reads, in which order, as ``crossplane xpkg build`` walks them.

Each root is walked recursively in lexical order (files and directories interleaved, as Go's
``filepath.Walk`` does); directories are not followed through symlinks; only files ending exactly
in ``.yaml`` or ``.yml`` that are not empty are kept; ``--ignore`` globs are matched like Go's
``filepath.Match`` against ``join(root, glob)`` (``*`` does not cross ``/``). The package walk
also skips every path that *contains* the absolute examples root (so ``examples-old/`` next to
``examples/`` is skipped too, as upstream does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml")
FILE_SEPARATOR = b"\n...\n\n---\n"
"""What upstream's reader emits after each file of a stream (so documents never run together)."""


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Go ``filepath.Match`` semantics: ``*`` and ``?`` stay within one path element."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]  # Go negates with '^', as Python's re does
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, path: str) -> bool:
    """True when ``path`` matches ``pattern`` with Go's ``filepath.Match`` rules."""
    return _glob_regex(pattern).match(path) is not None


def _walk(root: str) -> Iterator[str]:
    try:
        names = sorted(os.listdir(root))
    except NotADirectoryError:
        yield root
        return
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            yield from _walk(path)
        else:
            yield path


def find_yaml_files(
    root: Path, *, ignore: Sequence[str] = (), exclude_containing: Path | None = None
) -> list[Path]:
    """The YAML files under ``root`` that upstream's build would read, in its order."""
    root_abs = os.path.abspath(root)
    patterns = [os.path.normpath(os.path.join(root_abs, g)) for g in ignore if g]  # Go's Join cleans
    exclude = os.path.abspath(exclude_containing) if exclude_containing is not None else None
    out: list[Path] = []
    for path in _walk(root_abs):
        if not path.endswith(YAML_SUFFIXES):
            continue
        if exclude is not None and exclude in path:
            continue
        try:
            if os.path.getsize(path) == 0 or not os.path.isfile(path):
                continue
        except OSError:
            continue
        if any(glob_match(p, path) for p in patterns):
            continue
        out.append(Path(path))
    return out
