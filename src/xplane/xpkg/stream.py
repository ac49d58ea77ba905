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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xplane.xpkg.errors import PackageError, YAMLError
from xplane.xpkg.yamlk8s import YAMLWarning, load_chunk, no_gc, split_documents

__all__ = [
    "FILE_SEPARATOR",
    "Document",
    "DocumentStream",
    "Located",
    "concatenate",
    "load_file_documents",
    "parse_stream",
    "read_files",
]

#: What upstream's filesystem reader writes after every file.
FILE_SEPARATOR = b"\n...\n\n---\n"


_PENDING: Any = object()  # a lazy document's value before its first use


def _str_field(doc: Any, key: str) -> str:
    v = doc.get(key) if isinstance(doc, Mapping) else None
    return v if isinstance(v, str) else ""


def _name_of(doc: Any) -> str:
    md = doc.get("metadata") if isinstance(doc, Mapping) else None
    return _str_field(md, "name")


class Document:
    """One decoded document and where it came from (read-only): what the loader yields, lint checks
    and the package reader serves (``Located`` is the same type under lint's name).

    ``line``/``column`` are 1-based and point at the document's content; ``offset`` is the byte
    offset of the document in its file (upstream's ``position``). A document read from the
    parsed-package cache is lazy: its ``apiVersion``, ``kind`` and ``metadata.name`` come from the
    cache entry's index, and ``doc`` decodes the value on first use (and keeps it).
    """

    __slots__ = ("_column", "_doc", "_file", "_line", "_load", "_meta", "_offset")

    def __init__(
        self,
        doc: Any,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        offset: int = 0,
    ) -> None:
        self._doc = doc
        self._load: Callable[[], Any] | None = None
        self._meta: tuple[str, str, str] | None = None
        self._file = file
        self._line = line
        self._column = column
        self._offset = offset

    @classmethod
    def lazy(
        cls,
        load: Callable[[], Any],
        *,
        api_version: str,
        kind: str,
        name: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        offset: int = 0,
    ) -> Document:
        """A document whose value ``load()`` returns when first needed.

        ``api_version``, ``kind`` and ``name`` must be what the value holds (``load`` should
        check); they answer :attr:`kind` and friends without decoding.
        """
        d = cls(_PENDING, file, line, column, offset)
        d._load = load
        d._meta = (api_version, kind, name)
        return d

    @property
    def doc(self) -> Any:
        """The decoded value (decoded now if this document is lazy)."""
        d = self._doc
        if d is _PENDING:
            load = self._load
            if load is None:  # another thread finished decoding in between
                return self._doc
            d = load()
            self._doc = d
            self._load = None
        return d

    @property
    def loaded(self) -> bool:
        """Whether the value is decoded (always true unless the document came from the cache)."""
        return self._doc is not _PENDING

    @property
    def file(self) -> str | None:
        """The file the document came from."""
        return self._file

    @property
    def line(self) -> int | None:
        """1-based line of the document's content."""
        return self._line

    @property
    def column(self) -> int | None:
        """1-based column of the document's content."""
        return self._column

    @property
    def offset(self) -> int:
        """Byte offset of the document in its file."""
        return self._offset

    @property
    def api_version(self) -> str:
        """The document's ``apiVersion`` ('' if missing)."""
        d = self._doc
        if d is _PENDING and self._meta is not None:
            return self._meta[0]
        return _str_field(self.doc, "apiVersion")

    @property
    def kind(self) -> str:
        """The document's ``kind`` ('' if missing)."""
        d = self._doc
        if d is _PENDING and self._meta is not None:
            return self._meta[1]
        return _str_field(self.doc, "kind")

    @property
    def name(self) -> str:
        """The document's ``metadata.name`` ('' if missing)."""
        d = self._doc
        if d is _PENDING and self._meta is not None:
            return self._meta[2]
        return _name_of(self.doc)

    @property
    def ref(self) -> str:
        """``kind/name``, as users name objects."""
        return f"{self.kind or '<no kind>'}/{self.name or '<no name>'}"

    @property
    def where(self) -> str:
        """``file:line:column`` (or what is known of it)."""
        parts = [str(p) for p in (self._file or "<input>", self._line, self._column) if p is not None]
        return ":".join(parts)

    def _key(self) -> tuple[Any, ...]:
        return (self.doc, self._file, self._line, self._column, self._offset)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return self is other or self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # the value is a mutable tree

    def __reduce__(self) -> tuple[Any, ...]:
        return (Document, self._key())

    def __repr__(self) -> str:
        if self._doc is _PENDING:
            gvk = "/".join(p for p in (self.api_version, self.kind) if p)
            return f"Document(<not decoded: {gvk} {self.name!r}>, {self.where!r})"
        return (
            f"Document({self._doc!r}, file={self._file!r}, line={self._line!r}, "
            f"column={self._column!r}, offset={self._offset!r})"
        )


#: The name lint and its callers give a located document.
Located = Document


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
