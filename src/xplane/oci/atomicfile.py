"""The one safe way xplane creates a temp file and replaces a file atomically.

Every temp file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under a name with 64 random
bits, in the directory of the file it becomes. ``O_EXCL`` makes the open fail, instead of
following a symlink or reusing a file, when the name exists; the random part makes the name
impossible to plant in advance. (``xp xpkg extract`` used to open ``.NAME.tmp-PID`` with
``open("wb")``: a symlink planted under that name overwrote the file it pointed at.)

The content is fsynced before the rename, so a crash leaves the old file or the new one, never a
mix; :func:`atomic_write` also fsyncs the directory so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 64


def open_temp(directory: Path, prefix: str, suffix: str = "") -> tuple[IO[bytes], Path]:
    """A new, empty file ``directory/<prefix><16 random hex><suffix>``, open for writing.

    Never an existing file or a symlink (see the module notes). The mode is ``0666`` less the
    umask, as ``open(path, "wb")`` gives. The caller closes the file and renames or removes it.
    """
    for _ in range(_ATTEMPTS):
        path = Path(directory) / f"{prefix}{os.urandom(8).hex()}{suffix}"
        try:
            fd = os.open(path, _FLAGS, 0o666)
        except FileExistsError:
            continue  # someone holds this name (or planted it): draw another
        return os.fdopen(fd, "wb"), path
    raise FileExistsError(errno.EEXIST, f"no free temp file name in {directory} after {_ATTEMPTS} tries")


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A file whose content becomes ``path`` when the block exits cleanly, never a partial file.

    Missing parent directories are created first, as ``crossplane xpkg build -o dist/x.xpkg``
    creates ``dist``. The content goes to a temp file next to ``path`` (:func:`open_temp`), is
    fsynced and renamed into place; on an exception the temp file is removed. A symlink at
    ``path`` itself is replaced, not followed. An unwritable path raises :class:`OSError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a directory should be: say that, not "File exists"
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent)) from None
    f, tmp = open_temp(path.parent, f".{path.name}.tmp-{os.getpid()}-")
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    """fsync directory ``path`` (renames into it survive a crash); nothing if it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (:func:`atomic_output`, then a directory fsync)."""
    with atomic_output(path) as f:
        f.write(data)
    fsync_dir(path.parent)


__all__ = ["atomic_output", "atomic_write", "fsync_dir", "open_temp"]
