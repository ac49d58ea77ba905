"""A package's YAML as one stream of located documents, read the way Crossplane reads it.

``crossplane xpkg build`` streams the package files one after another, each followed by
``"\\n...\\n"`` and ``"\\n---\\n"`` (crossplane-runtime ``parser/fsreader.go``), and a package image
holds one ``package.yaml``. Either way the stream is cut into documents by Kubernetes' YAML reader,
documents with no content are skipped, and every other document is decoded with Kubernetes' rules
(:mod:`xplane.xpkg.yamlk8s`).

Files are parsed one by one (documents never span files, thanks to the separators), so every
document and every error knows its file, line and column, and :func:`concatenate` rebuilds the
exact upstream stream when the raw bytes are needed (the examples layer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xplane.xpkg.errors import PackageError
from xplane.xpkg.yamlk8s import YAMLWarning, load_chunk, no_gc, split_documents

__all__ = ["FILE_SEPARATOR", "Document", "DocumentStream", "concatenate", "parse_stream", "read_files"]

#: What upstream's filesystem reader writes after every file.
FILE_SEPARATOR = b"\n...\n\n---\n"


@dataclass(frozen=True, slots=True)
class Document:
    """One decoded document and where it came from.

    ``line``/``column`` are 1-based and point at the document's content; ``offset`` is the byte
    offset of the document in its file (upstream's ``position``).
    """

    doc: Any
    file: str | None = None
    line: int | None = None
    column: int | None = None
    offset: int = 0

    @property
    def kind(self) -> str:
        """The document's ``kind`` ('' if missing)."""
        k = self.doc.get("kind") if isinstance(self.doc, Mapping) else None
        return k if isinstance(k, str) else ""

    @property
    def api_version(self) -> str:
        """The document's ``apiVersion`` ('' if missing)."""
        v = self.doc.get("apiVersion") if isinstance(self.doc, Mapping) else None
        return v if isinstance(v, str) else ""

    @property
    def where(self) -> str:
        """``file:line:column`` (or what is known of it)."""
        parts = [str(p) for p in (self.file or "<input>", self.line, self.column) if p is not None]
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class DocumentStream:
    """The documents of a package (in stream order) and the warnings reading them produced."""

    documents: tuple[Document, ...]
    warnings: tuple[YAMLWarning, ...] = ()

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    def kinds(self) -> Counter[str]:
        """How many documents there are of each ``apiVersion/kind``."""
        return Counter(f"{d.api_version}/{d.kind}" if d.api_version else d.kind for d in self.documents)


def _parse(data: bytes, file: str | None, docs: list[Document], warnings: list[YAMLWarning]) -> None:
    for chunk in split_documents(data, file=file):
        r = load_chunk(data[chunk.start : chunk.end], file=file, line0=chunk.line, warnings=warnings)
        if r is not None:
            docs.append(Document(r[0], file, r[1], r[2], chunk.start))


def parse_stream(data: bytes | str, *, file: str | None = None) -> DocumentStream:
    """Decode a YAML stream (e.g. a ``package.yaml``); raise :class:`YAMLError` at the first error."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    docs: list[Document] = []
    warnings: list[YAMLWarning] = []
    with no_gc():
        _parse(raw, file, docs, warnings)
    return DocumentStream(tuple(docs), tuple(warnings))


def _name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def read_files(paths: Iterable[Path], *, root: Path | None = None) -> DocumentStream:
    """Decode several files as one stream, in the order given (names relative to ``root``).

    Raises :class:`PackageError` when a file cannot be read and :class:`YAMLError` (naming the
    file) when one does not parse.
    """
    docs: list[Document] = []
    warnings: list[YAMLWarning] = []
    with no_gc():
        for path in paths:
            name = _name(path, root)
            try:
                data = path.read_bytes()
            except OSError as e:
                raise PackageError(f"cannot read {name}: {e.strerror or e}") from None
            _parse(data, name, docs, warnings)
    return DocumentStream(tuple(docs), tuple(warnings))


def concatenate(contents: Sequence[bytes]) -> bytes:
    """The stream upstream's filesystem reader produces from these file contents."""
    return b"".join(c + FILE_SEPARATOR for c in contents)
