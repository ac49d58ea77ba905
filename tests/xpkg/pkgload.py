"""Load a fixture package directory into located documents (a stand-in for the xpkg YAML reader).

Files are walked in lexical order like ``crossplane xpkg build`` does, ``examples/`` is skipped, and
each document records the 1-based line of its first non-blank, non-comment line.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from xplane.xpkg.yaml import Located

FIXTURES = Path(__file__).parent / "fixtures"
_SEP = re.compile(r"^---\s*(#.*)?$")


def split_documents(text: str, file: str) -> list[Located]:
    """Split a YAML stream at ``---`` lines; skip empty and comment-only documents."""
    out: list[Located] = []
    chunk: list[str] = []
    start = 1

    def flush() -> None:
        body = "\n".join(chunk)
        first = next(
            (i for i, ln in enumerate(chunk) if ln.strip() and not ln.lstrip().startswith("#")), None
        )
        if first is not None:
            doc = yaml.safe_load(body)
            if isinstance(doc, dict):
                out.append(Located(doc, file, start + first))

    for n, line in enumerate(text.splitlines(), 1):
        if _SEP.match(line):
            flush()
            chunk, start = [], n + 1
        else:
            chunk.append(line)
    flush()
    return out


def load_package(root: Path) -> list[Located]:
    """Every document of every ``.yaml``/``.yml`` file under ``root`` (relative names), examples excluded."""
    docs: list[Located] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")):
        rel = path.relative_to(root)
        if rel.parts[0] == "examples":
            continue
        docs.extend(split_documents(path.read_text(), rel.as_posix()))
    return docs
