"""Sandboxing for executable functions: bubblewrap when the machine allows it, else none.

``auto`` probes ``bwrap`` once (it needs unprivileged user namespaces) and falls back to no sandbox;
``bwrap`` insists (the function fails to load without it); ``none`` runs the process directly.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from xplane.fn.errors import FunctionLoadError

log = logging.getLogger(__name__)

MODES = ("auto", "bwrap", "none")


def which(name: str) -> str | None:
    """The executable ``name`` on ``PATH``, like :func:`shutil.which` for a bare command name.

    Not ``shutil.which``: importing shutil loads zlib, bz2 and lzma (about 0.5 MiB that an idle
    runner keeps), and the bwrap probe of the default ``sandbox: auto`` would be its only user.
    """
    for directory in os.get_exec_path():
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


@functools.lru_cache(maxsize=1)
def bwrap_available() -> str | None:
    """Path of a working ``bwrap`` (probed once with ``true``), or None with the reason logged."""
    exe = which("bwrap")
    if exe is None:
        log.info("bubblewrap not found on PATH; executable functions run without a sandbox")
        return None
    true = which("true") or "/bin/true"
    try:
        proc = subprocess.run(
            [exe, *base_args(Path("/"), network=False), true],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("bubblewrap probe failed (%s); executable functions run without a sandbox", e)
        return None
    if proc.returncode != 0:
        log.warning(
            "bubblewrap cannot create namespaces here (%s); executable functions run without a sandbox",
            proc.stderr.decode(errors="replace").strip()[:300],
        )
        return None
    return exe


def base_args(workdir: Path, *, network: bool, binds: Sequence[Path] = ()) -> list[str]:
    """bwrap flags: read-only root, private /tmp, /dev and /proc, all namespaces, dies with its parent.

    ``binds`` (and ``workdir``) are bound read-only again on top, so a function living under /tmp
    stays visible behind the private /tmp.
    """
    args = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--ro-bind", "/", "/",
        "--tmpfs", "/tmp",
        "--dev", "/dev",
        "--proc", "/proc",
        "--setenv", "HOME", "/tmp",
    ]  # fmt: skip
    for path in dict.fromkeys([workdir, *binds]):
        if path != Path("/"):
            args += ["--ro-bind", str(path), str(path)]
    args += ["--chdir", str(workdir)]
    if network:
        args.insert(1, "--share-net")
    return args


def interpreter_binds(executable: Path) -> list[Path]:
    """Directories a script's ``#!`` interpreter needs that the private /tmp would hide.

    A script whose interpreter lives under /tmp (e.g. a virtualenv's python in a checkout under
    /tmp) would fail inside the sandbox with "No such file or directory". For an interpreter in a
    ``bin/`` directory the whole environment (``bin/..``: pyvenv.cfg, lib/) is bound read-only.
    """
    try:
        with executable.open("rb") as f:
            first = f.readline(512)
    except OSError:
        return []
    if not first.startswith(b"#!"):
        return []
    parts = first[2:].decode(errors="replace").split()
    if not parts:
        return []
    interp = Path(parts[0])
    if interp.name == "env" and len(parts) > 1:
        found = which(parts[1])
        if found is None:
            return []
        interp = Path(found)
    if interp.parts[:2] != ("/", "tmp"):
        return []
    return [interp.parent.parent if interp.parent.name == "bin" else interp.parent]


def resolve_mode(mode: str | None, *, function: str, path: Path) -> str:
    """The sandbox actually used (``bwrap`` or ``none``) for a requested mode. Raises FunctionLoadError."""
    mode = mode or "auto"
    if mode == "none":
        return "none"
    exe = bwrap_available()
    if exe is not None:
        return "bwrap"
    if mode == "bwrap":
        raise FunctionLoadError(
            "sandbox: bwrap was requested but bubblewrap is missing or cannot create user namespaces",
            path=path,
            field="sandbox",
            hint="install bubblewrap (apt-get install bubblewrap) or set sandbox: auto or none",
        )
    return "none"


def wrap(
    command: Sequence[str], *, mode: str, workdir: Path, network: bool, binds: Sequence[Path] = ()
) -> list[str]:
    """The command line that runs ``command`` under the chosen sandbox."""
    if mode != "bwrap":
        return list(command)
    exe = bwrap_available()
    assert exe is not None  # resolve_mode checked it
    return [exe, *base_args(workdir, network=network, binds=binds), "--", *command]
