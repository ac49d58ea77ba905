"""Reading untrusted archives and OCI layout directories safely, member by member.

:class:`SafeTar` checks every member of a tarball before anything is read: absolute names, ``..``,
links that leave the archive, device files, oversized members and tar bombs are refused with
:class:`ArchiveError`. :class:`DirSource` gives an OCI layout directory the same interface, refusing
files (and symlinks) that resolve outside it. :mod:`xplane.oci.archive` imports images through
the :class:`Source` interface both share.

Whatever goes wrong while reading (a corrupt or truncated tar, gzip, xz or bzip2 stream, an I/O
error) is raised as :class:`ArchiveError` naming the archive and the member, from every method.
"""

from __future__ import annotations

import lzma
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from xplane.oci.cache import MAX_JSON_BLOB_BYTES
from xplane.oci.errors import ArchiveError

GiB = 1 << 30
_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    ValueError,  # malformed numbers in tar headers the tarfile module does not wrap
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds applied while reading an untrusted archive (docs/cache.md, "Loading files")."""

    max_member_bytes: int = 8 * GiB  # one file in the archive, and one layer once inflated
    max_total_bytes: int = 32 * GiB  # all files together, and all layers together once inflated
    max_members: int = 20_000
    max_json_bytes: int = MAX_JSON_BLOB_BYTES  # manifest.json, index.json, manifests and configs


def read_failed(label: str, name: str | None, e: BaseException) -> ArchiveError:
    """The :class:`ArchiveError` for a read that failed (corrupt or truncated data, I/O error)."""
    where = f"{label}: {name!r}" if name else label
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
    return ArchiveError(
        f"{where}: cannot read it ({reason})",
        hint="the file is damaged, truncated or not an image archive; create it again",
    )


class _Guarded:
    """A member stream whose read errors become :class:`ArchiveError` naming the member."""

    def __init__(self, f: IO[bytes], label: str, name: str) -> None:
        self._f = f
        self._label = label
        self._name = name

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except _READ_ERRORS as e:
            raise read_failed(self._label, self._name, e) from e

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _Guarded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._f, attr)


def _normalise(name: str, archive: str) -> str:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path; refusing the archive")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{archive}: member {name!r} contains '..'; refusing the archive")
    return "/".join(parts)


class SafeTar:
    """A validated view of a tarball: regular files by normalised name, links resolved."""

    def __init__(self, path: Path, limits: ArchiveLimits | None = None) -> None:
        self.path = path
        self.limits = limits or ArchiveLimits()
        self.label = str(path)
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
        except _READ_ERRORS as e:
            raise ArchiveError(
                f"{path}: not a readable tar archive ({e})",
                hint="load a docker/podman save tarball, an .xpkg, an OCI archive or an OCI layout directory",
            ) from e
        try:
            self._files = self._scan()
        except BaseException:
            self._tar.close()
            raise

    def _scan(self) -> dict[str, tarfile.TarInfo]:
        lim = self.limits
        files: dict[str, tarfile.TarInfo] = {}
        links: dict[str, tuple[str, bool]] = {}
        seen: set[str] = set()
        total = count = 0
        try:
            for m in self._tar:
                count += 1
                if count > lim.max_members:
                    raise ArchiveError(
                        f"{self.label}: more than {lim.max_members} members; refusing a possible tar bomb",
                        hint="raise the limit (ArchiveLimits.max_members) if the archive is trusted",
                    )
                name = _normalise(m.name, self.label)
                if m.isdir():
                    continue
                if not name:
                    raise ArchiveError(f"{self.label}: member {m.name!r} has an empty name")
                if name in seen:
                    raise ArchiveError(
                        f"{self.label}: member {name!r} appears twice; refusing an ambiguous archive"
                    )
                seen.add(name)
                if m.isreg():
                    if m.size > lim.max_member_bytes:
                        raise ArchiveError(
                            f"{self.label}: member {name!r} is {m.size} bytes, over the limit of "
                            f"{lim.max_member_bytes}",
                            hint="raise ArchiveLimits.max_member_bytes if the archive is trusted",
                        )
                    total += m.size
                    if total > lim.max_total_bytes:
                        raise ArchiveError(
                            f"{self.label}: members add up to more than {lim.max_total_bytes} bytes; "
                            "refusing a possible tar bomb",
                            hint="raise ArchiveLimits.max_total_bytes if the archive is trusted",
                        )
                    files[name] = m
                elif m.issym() or m.islnk():
                    links[name] = (m.linkname, m.issym())
                elif m.ischr() or m.isblk() or m.isfifo():
                    raise ArchiveError(
                        f"{self.label}: member {name!r} is a device file or FIFO; refusing the archive"
                    )
                else:
                    raise ArchiveError(f"{self.label}: member {name!r} has an unsupported type {m.type!r}")
        except EOFError as e:
            raise ArchiveError(f"{self.label}: the archive is truncated", hint="create it again") from e
        except _READ_ERRORS as e:
            raise ArchiveError(f"{self.label}: corrupt tar archive ({e})", hint="create it again") from e
        for name, (target, symbolic) in links.items():
            resolved = self._resolve(name, target, symbolic, links)
            if resolved in files:
                files[name] = files[resolved]
        return files

    def _resolve(self, name: str, target: str, symbolic: bool, links: dict[str, tuple[str, bool]]) -> str:
        current, tgt, sym = name, target, symbolic
        for _ in range(16):
            if tgt.startswith("/"):
                raise ArchiveError(f"{self.label}: link {name!r} points outside the archive ({target!r})")
            joined = posixpath.join(posixpath.dirname(current), tgt) if sym else tgt
            norm = posixpath.normpath(joined)
            if norm.startswith("../") or norm == ".." or norm.startswith("/"):
                raise ArchiveError(f"{self.label}: link {name!r} points outside the archive ({target!r})")
            if norm not in links:
                return norm
            current, (tgt, sym) = norm, links[norm]
        raise ArchiveError(f"{self.label}: link {name!r} is part of a loop")

    def __enter__(self) -> SafeTar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying file."""
        self._tar.close()

    def names(self) -> list[str]:
        """The normalised names of every regular file (and link to one)."""
        return sorted(self._files)

    def has(self, name: str) -> bool:
        """True when ``name`` is a regular file (or a link to one) in the archive."""
        return _normalise(name, self.label) in self._files

    def size(self, name: str) -> int:
        """The size of member ``name``."""
        return self._member(name).size

    def _member(self, name: str) -> tarfile.TarInfo:
        try:
            return self._files[_normalise(name, self.label)]
        except KeyError:
            raise ArchiveError(f"{self.label}: the archive has no file {name!r}") from None

    def open(self, name: str) -> IO[bytes]:
        """A stream of member ``name``'s content (read errors raise :class:`ArchiveError`)."""
        try:
            f = self._tar.extractfile(self._member(name))
        except _READ_ERRORS as e:
            raise read_failed(self.label, name, e) from e
        if f is None:  # pragma: no cover - only regular files are kept
            raise ArchiveError(f"{self.label}: {name!r} is not a regular file")
        return _Guarded(f, self.label, name)  # type: ignore[return-value]

    def read_json_bytes(self, name: str) -> bytes:
        """Read a small member whole, refusing it when it is over ``max_json_bytes``."""
        m = self._member(name)
        if m.size > self.limits.max_json_bytes:
            raise ArchiveError(
                f"{self.label}: {name!r} is {m.size} bytes, too large for a manifest or config "
                f"(limit {self.limits.max_json_bytes})"
            )
        with self.open(name) as f:
            return f.read()


class Source(Protocol):
    """Files of an archive or layout directory, by relative name."""

    label: str
    limits: ArchiveLimits

    def has(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> IO[bytes]: ...
    def read_json_bytes(self, name: str) -> bytes: ...
    def close(self) -> None: ...


class DirSource:
    """An OCI layout directory; files (and symlinks) must stay inside it."""

    def __init__(self, root: Path, limits: ArchiveLimits) -> None:
        self.root = root.resolve()
        self.limits = limits
        self.label = str(root)

    def _path(self, name: str) -> Path:
        rel = _normalise(name, self.label)
        try:
            path = (self.root / rel).resolve()
        except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, a name the OS refuses
            raise read_failed(self.label, name, e) from e
        if not path.is_relative_to(self.root):
            raise ArchiveError(f"{self.label}: {name!r} resolves outside the layout directory; refusing it")
        return path

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        path = self._path(name)
        if not path.is_file():
            raise ArchiveError(f"{self.label}: the layout has no file {name!r}")
        try:
            size = path.stat().st_size
        except OSError as e:
            raise read_failed(self.label, name, e) from e
        if size > self.limits.max_member_bytes:
            raise ArchiveError(
                f"{self.label}: {name!r} is {size} bytes, over the limit of {self.limits.max_member_bytes}"
            )
        return size

    def open(self, name: str) -> IO[bytes]:
        self.size(name)
        try:
            f = self._path(name).open("rb")
        except OSError as e:
            raise read_failed(self.label, name, e) from e
        return _Guarded(f, self.label, name)  # type: ignore[return-value]

    def read_json_bytes(self, name: str) -> bytes:
        if self.size(name) > self.limits.max_json_bytes:
            raise ArchiveError(f"{self.label}: {name!r} is too large for a manifest or config")
        with self.open(name) as f:
            return f.read(self.limits.max_json_bytes + 1)

    def close(self) -> None:
        pass


__all__ = ["ArchiveLimits", "DirSource", "SafeTar", "Source", "read_failed"]
