"""How xplane starts the processes it talks to over pipes, and how it names the way they ended.

Shared by the kinds that run processes (``exec``, python with ``isolation: process``) and by the
runner's JSON workers (:mod:`xplane.fn.jsonworkers`), so that every child is started the one way
that is safe in a process serving gRPC (see :func:`spawn_piped`). Standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_PATH", "base_environment", "signal_name", "spawn_piped"]

#: ``PATH`` of a function process when the runner's own environment has none.
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def signal_name(code: int) -> str:
    """``SIGSEGV`` for 11; ``signal 99`` for a number with no name."""
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def base_environment(*, home: str | None = None) -> dict[str, str]:
    """PATH, HOME and LANG from the runner's environment (with defaults): all a function process inherits."""
    return {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "HOME": home or os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }


def spawn_piped(
    command: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a child: three pipes, a session (and process group) of its own, no stray fds.

    ``env`` and ``cwd`` default to the runner's own. No ``preexec_fn``, ever: without one CPython
    uses vfork, which is cheaper from a large process and, above all, runs no ``pthread_atfork``
    handlers. grpcio's (1.81 and later) restart its poller in a forked child, and ``close_fds``
    then makes that child abort before it can exec (grpc/grpc#43055), in any process that serves
    gRPC, as the runner does.
    """
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
    )
