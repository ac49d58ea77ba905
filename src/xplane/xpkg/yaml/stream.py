"""A package's YAML as one stream of located documents, read the way Crossplane reads it.

``crossplane xpkg build`` streams the package files one after another, each followed by
``"\\n...\\n"`` and ``"\\n---\\n"`` (crossplane-runtime ``parser/fsreader.go``), and a package image
holds one ``package.yaml``. Either way the stream is cut into documents by Kubernetes' YAML reader,
documents with no content are skipped, and every other document is decoded with Kubernetes' rules
(:mod:`xplane.xpkg.yaml.loader`).

Files are parsed one by one (documents never span files, thanks to the separators), so every
document and every error knows its file, line and column, and :func:`concatenate` rebuilds the
exact upstream stream when the raw bytes are needed (the examples layer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xplane.xpkg.errors import PackageError, YAMLError
from xplane.xpkg.yaml.document import Document
from xplane.xpkg.yaml.loader import YAMLWarning, load_chunk, no_gc, split_documents

__all__ = [
    "FILE_SEPARATOR",
    "DocumentStream",
    "concatenate",
    "load_file_documents",
    "parse_stream",
    "read_files",
]

#: What upstream's filesystem reader writes after every file.
FILE_SEPARATOR = b"\n...\n\n---\n"


@dataclass(frozen=True, slots=True)
class DocumentStream:
    """The documents of a package (in stream order) and the warnings reading them produced.

    Counting kinds and looking documents up by kind or name never decodes a lazy document.
    """

    documents: tuple[Document, ...]
    warnings: tuple[YAMLWarning, ...] = ()
    _index: dict[tuple[str, str], tuple[Document, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _names: dict[tuple[str, str, str], Document] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    def kinds(self) -> Counter[str]:
        """How many documents there are of each ``apiVersion/kind``."""
        return Counter(f"{d.api_version}/{d.kind}" if d.api_version else d.kind for d in self.documents)

    def decode_all(self) -> None:
        """Decode every lazy document now, with the cyclic GC paused for the whole pass.

        Touching each ``doc`` in turn gives the same values, but lets the collector rescan the
        growing tree between documents: on a large provider that takes about twice as long.
        Raises :class:`PackageError` for a damaged cache entry.
        """
        with no_gc():
            for d in self.documents:
                _ = d.doc

    def _build_index(self) -> dict[tuple[str, str], tuple[Document, ...]]:
        groups: dict[tuple[str, str], list[Document]] = {}
        names: dict[tuple[str, str, str], Document] = {}
        for d in self.documents:
            av, k = d.api_version, d.kind
            groups.setdefault((av, k), []).append(d)
            names.setdefault((av, k, d.name), d)
        index = {gvk: tuple(ds) for gvk, ds in groups.items()}
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_index", index)
        return index

    def by_kind(self, api_version: str, kind: str) -> tuple[Document, ...]:
        """The documents of one ``apiVersion`` and ``kind``, in stream order."""
        index = self._index if self._index is not None else self._build_index()
        return index.get((api_version, kind), ())

    def find(self, api_version: str, kind: str, name: str) -> Document | None:
        """The first document of this ``apiVersion``, ``kind`` and ``metadata.name``, or None."""
        if self._index is None:
            self._build_index()
        assert self._names is not None
        return self._names.get((api_version, kind, name))


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


def load_file_documents(path: Path, *, name: str | None = None) -> tuple[list[Document], list[YAMLWarning]]:
    """The documents of one file, located (``name`` defaults to the path), and their warnings.

    Raises :class:`YAMLError` naming the file when it cannot be read or does not parse.
    """
    label = name if name is not None else str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise YAMLError(f"cannot read file: {e.strerror or e}", file=label) from None
    docs: list[Document] = []
    warnings: list[YAMLWarning] = []
    with no_gc():
        _parse(data, label, docs, warnings)
    return docs, warnings


def concatenate(contents: Sequence[bytes]) -> bytes:
    """The stream upstream's filesystem reader produces from these file contents."""
    return b"".join(c + FILE_SEPARATOR for c in contents)
