"""Unpacking an image's layers into a content-addressed root filesystem, safely (docs/render.md).

Layers are applied in order as a container runtime does: OCI whiteouts (``.wh.NAME`` removes
``NAME`` from lower layers, ``.wh..wh..opq`` empties a directory of what lower layers put there),
hard links to files already unpacked, symbolic links stored as they are. Layers are untrusted:

- an entry whose name leaves the root (``../x``, or ``/`` after normalisation) is refused;
- parent directories are resolved *inside* the root: a symlink on the way (``lib -> /usr/lib``,
  ``evil -> /etc``) is followed as it would be inside the sandbox, never on the host; files are
  created with ``O_NOFOLLOW`` after the old entry is removed;
- hard-link targets must be inside the root; device nodes and FIFOs are skipped;
- the entries and bytes written are bounded (:class:`RootfsLimits`).

The result lives in ``<cache root>/rootfs/sha256-<config hex>`` (the image config digest names
the uncompressed layers, so the same image pulled through another compression shares it). It is
built in a temporary directory next to it and renamed into place: a killed unpack leaves no torn
rootfs, only a ``.tmp-<pid>-*`` directory that the next unpack removes once its process is gone.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xplane.compose.errors import ComposeError
from xplane.oci import CorruptLayerError, StreamingTar, open_layer

ROOTFS_DIR = "rootfs"
TEMP_PREFIX = ".tmp-"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_MAX_LINK_HOPS = 40
MOUNT_POINTS = ("proc", "dev", "tmp")  # the sandbox mounts its own here, as container runtimes do


@dataclass(frozen=True)
class RootfsLimits:
    """What one unpack may write at most: tar entries and file bytes, over all layers."""

    max_entries: int = 1_000_000
    max_bytes: int = 8 << 30


class RootfsError(ComposeError):
    """A layer could not be unpacked, or was refused as unsafe."""


def rootfs_path(cache_root: Path, config_digest: str) -> Path:
    """Where the rootfs of the image whose config is ``config_digest`` lives (whether or not it is there)."""
    algo, _, hexpart = config_digest.partition(":")
    if not hexpart or not hexpart.isalnum():
        raise RootfsError(f"not a digest: {config_digest!r}")
    return cache_root / ROOTFS_DIR / f"{algo}-{hexpart}"


def ensure_rootfs(
    layers: Sequence[Path],
    dest: Path,
    *,
    label: str,
    limits: RootfsLimits | None = None,
) -> tuple[Path, bool]:
    """Unpack ``layers`` (blob files, bottom first) into ``dest`` unless it exists.

    Returns ``(dest, unpacked)``: ``unpacked`` is False when an earlier unpack is reused.
    ``label`` names the image in errors.
    """
    if dest.is_dir():
        return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=dest.parent))
    try:
        root = tmp / "root"
        root.mkdir()
        budget = _Budget(limits or RootfsLimits(), label)
        for i, layer in enumerate(layers):
            _apply_layer(root, layer, f"{label}: layer {i + 1}", budget)
        for name in MOUNT_POINTS:
            target = root / name
            if target.is_symlink() or not target.is_dir():
                _remove(target)
                target.mkdir()
        os.chmod(root, 0o755)
        try:
            os.rename(root, dest)
        except OSError:
            if not dest.is_dir():  # not another unpack that won the race
                raise
            return dest, False
        return dest, True
    except OSError as e:
        raise RootfsError(f"{label}: cannot unpack into {dest.parent}: {e.strerror or e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_temps(parent: Path) -> None:
    for entry in parent.glob(f"{TEMP_PREFIX}*"):
        pid = entry.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Budget:
    def __init__(self, limits: RootfsLimits, label: str) -> None:
        self.limits = limits
        self.label = label
        self.entries = 0
        self.bytes = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise RootfsError(
                f"{self.label}: more than {self.limits.max_entries} tar entries; refusing a possible tar bomb"
            )

    def add(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise RootfsError(
                f"{self.label}: the layers hold more than {self.limits.max_bytes} bytes; "
                "refusing a possible decompression bomb"
            )


def _clean(name: str, where: str) -> str:
    """The entry's path relative to the root; refuses names that leave it."""
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise RootfsError(f"{where}: entry {name!r} leaves the image's root; refusing the layer")
    norm = posixpath.normpath("/" + name).lstrip("/")
    return "" if norm in (".", "") else norm


def _scoped(root: Path, rel: str, where: str) -> Path:
    """``rel``'s parent directories resolved inside ``root`` (symlinks followed as in a chroot)."""
    current: list[str] = []
    todo = [p for p in rel.split("/")[:-1] if p]
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        if candidate.is_symlink():
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise RootfsError(f"{where}: too many symbolic links under {rel!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            todo = [p for p in target.split("/") if p] + todo
            continue
        current.append(part)
    return root.joinpath(*current, rel.rsplit("/", 1)[-1]) if rel else root


def _remove(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _mkdirs(path: Path, root: Path) -> None:
    """Make ``path``'s missing parents (already resolved inside ``root``) as plain directories."""
    missing = []
    p = path.parent
    while p != root and not p.is_dir():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        if d.is_symlink() or d.exists():
            _remove(d)
        d.mkdir(mode=0o755)


def _apply_layer(root: Path, layer: Path, where: str, budget: _Budget) -> None:
    written: set[str] = set()
    try:
        with open_layer(layer) as raw, StreamingTar.open(fileobj=raw, mode="r|") as tf:
            for member in tf:
                budget.entry()
                _apply_entry(root, tf, member, where, written, budget)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, CorruptLayerError) as e:
        raise RootfsError(f"{where} is not a readable tar: {e}") from e


def _apply_entry(
    root: Path, tf: tarfile.TarFile, m: tarfile.TarInfo, where: str, written: set[str], budget: _Budget
) -> None:
    rel = _clean(m.name, where)
    if not rel:
        return
    base = posixpath.basename(rel)
    parent_rel = posixpath.dirname(rel)
    if base == _OPAQUE:
        target = _scoped(root, (parent_rel + "/x") if parent_rel else "x", where).parent
        if target.is_dir() and not target.is_symlink():
            _prune_except(target, parent_rel, written)
        return
    if base.startswith(_WHITEOUT):
        hidden_name = base[len(_WHITEOUT) :]
        if hidden_name in ("", ".", ".."):
            raise RootfsError(f"{where}: whiteout {m.name!r} names no entry; refusing the layer")
        hidden = posixpath.join(parent_rel, hidden_name)
        if hidden not in written:
            _remove(_scoped(root, hidden, where))
        return
    dest = _scoped(root, rel, where)
    _mkdirs(dest, root)
    written.add(rel)
    if m.isdir():
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            _remove(dest)
        if not dest.is_dir():
            dest.mkdir()
        os.chmod(dest, (m.mode & 0o777) | 0o700)
        return
    if dest.is_symlink() or dest.exists():
        _remove(dest)
    if m.issym():
        os.symlink(m.linkname, dest)
    elif m.islnk():
        target = _scoped(root, _clean(m.linkname, where) or ".", where)
        if not (target.is_file() or target.is_symlink()) or root not in target.parents:
            raise RootfsError(f"{where}: hard link {m.name!r} points at {m.linkname!r}, not an unpacked file")
        os.link(target, dest, follow_symlinks=False)
    elif m.isreg():
        _write_file(tf, m, dest, budget)
    # device nodes and FIFOs are skipped: a sandbox needs none and an unprivileged user cannot make them


def _write_file(tf: tarfile.TarFile, m: tarfile.TarInfo, dest: Path, budget: _Budget) -> None:
    src = tf.extractfile(m)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        if src is not None:
            while chunk := src.read(_CHUNK):
                budget.add(len(chunk))
                out.write(chunk)
        os.fchmod(out.fileno(), (m.mode & 0o777) | 0o400)
    with contextlib.suppress(OSError, OverflowError):
        os.utime(dest, (m.mtime, m.mtime), follow_symlinks=False)


def _prune_except(directory: Path, rel: str, keep: set[str]) -> None:
    """Remove what ``directory`` holds that this layer did not write (an opaque whiteout)."""
    for child in list(directory.iterdir()):
        child_rel = posixpath.join(rel, child.name) if rel else child.name
        if child_rel in keep:
            if child.is_dir() and not child.is_symlink():
                _prune_except(child, child_rel, keep)
            continue
        if any(k.startswith(child_rel + "/") for k in keep) and child.is_dir() and not child.is_symlink():
            _prune_except(child, child_rel, keep)
            continue
        _remove(child)
