"""Child processes for test servers that never outlive the test run.

Every process started here is killed (SIGKILL to its process group) by :func:`kill`, by an
``atexit`` hook, and, when started from the main thread, by the kernel if the Python process dies
(``PR_SET_PDEATHSIG``, set through ``setpriv``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from xplane.errors import XplaneError

_live: dict[int, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


class TestServerError(XplaneError):
    """A test server could not be started (the message carries the tail of its log)."""

    __test__ = False  # not a pytest test class


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on ``host`` that nothing else in this run will be given.

    Ports come from *below* the kernel's ephemeral range, so a listener bound to port 0 or an
    outgoing connection can never take a port between the moment it is handed out here and the
    moment a server binds it; and no port is handed out twice in one process. The start is
    randomised per process, so parallel test runs rarely probe the same ports.
    """
    low_eph, _ = _ephemeral_range()
    low, high = 10000, max(10001, low_eph - 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with _port_lock:
        start = random.randrange(low, high)
        for offset in range(high - low):
            port = low + (start - low + offset) % (high - low)
            if port in _handed_out:
                continue
            with socket.socket(family) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise TestServerError(f"no free port on {host} in {low}-{high}")


def _pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL --``: the child dies with this process, set without a ``preexec_fn``.

    A ``preexec_fn`` makes CPython fork instead of vfork, which runs grpcio's fork handlers in the
    child; with ``close_fds`` those abort it before exec (grpc/grpc#43055) once the test process has
    used gRPC. ``setpriv`` sets the signal and then execs the command in the same process.
    """
    if threading.current_thread() is not threading.main_thread():
        # PDEATHSIG fires when the *thread* that forked exits; only safe from the main thread.
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def clean_env(extra: Mapping[str, str] | None = None, *, drop_prefixes: Sequence[str] = ()) -> dict[str, str]:
    """A copy of ``os.environ`` without variables starting with ``drop_prefixes``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not any(k.startswith(p) for p in drop_prefixes)}
    env.update(extra or {})
    return env


def fresh_user_env(root: Path, config: Path) -> dict[str, str]:
    """A user with nothing of their own under ``root`` (home, control-plane state, image cache) and
    ``config`` as xplane's config file; of this environment only PATH, locale, PYTHONPATH and TMPDIR."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "TMPDIR")}
    return {
        **keep,
        "HOME": str(root / "home"),
        "XPLANE_HOME": str(root / "state"),
        "XPLANE_CACHE_DIR": str(root / "cache"),
        "XPLANE_CONFIG": str(config),
        "XDG_CONFIG_HOME": str(root / "home" / ".config"),
    }


def spawn(
    argv: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout+stderr going to ``log_path``; track it."""
    log = log_path.open("ab")
    try:
        proc = subprocess.Popen(
            [*_pdeathsig_prefix(), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    finally:
        log.close()
    with _lock:
        _live[proc.pid] = proc
    return proc


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc``'s process group (it is a session leader) and reap it. Idempotent."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    with _lock:
        _live.pop(proc.pid, None)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty string if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@atexit.register
def _kill_all() -> None:
    with _lock:
        procs = list(_live.values())
    for p in procs:
        kill(p)


def serve_http(
    handler: type[BaseHTTPRequestHandler], name: str
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A threaded HTTP server for ``handler`` on a free 127.0.0.1 port, serving in a daemon thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return httpd, thread


def stop_http(
    httpd: ThreadingHTTPServer,
    thread: threading.Thread | None,
    *,
    before_join: Callable[[], None] | None = None,
) -> None:
    """Stop a server from :func:`serve_http`: no new connections, socket closed, thread joined."""
    httpd.shutdown()
    httpd.server_close()
    if before_join is not None:
        before_join()
    if thread is not None:
        thread.join(timeout=5)
