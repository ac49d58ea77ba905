"""One decoded YAML document and where it came from: the located document every part of xpkg shares.

The loader's readers (:mod:`xplane.xpkg.yaml.stream`) make them, lint checks them, build writes
them out and the package reader serves them, lazily when they come from the parsed-package cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Document", "Located"]

_PENDING: Any = object()  # a lazy document's value before its first use


def _str_field(doc: Any, key: str) -> str:
    v = doc.get(key) if isinstance(doc, Mapping) else None
    return v if isinstance(v, str) else ""


def _name_of(doc: Any) -> str:
    md = doc.get("metadata") if isinstance(doc, Mapping) else None
    return _str_field(md, "name")


class Document:
    """One decoded document and where it came from (read-only): what the readers yield, lint checks
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
