"""Carries a sandboxed function's gRPC connections from a host unix socket into its network namespace.

A package function runs in a ``bwrap --unshare-net`` sandbox: its only network is a loopback of its
own, which the host cannot reach. xplane starts this relay with ``--pid`` (the sandbox's first
process); before anything else it joins that process's network namespace, and the user namespace
that owns it first (``setns``; the user owns both, so no privilege is needed), keeping the host's
filesystem. xplane then calls the function at the relay's unix socket; every accepted connection
is carried to ``127.0.0.1:PORT`` in the sandbox, byte for byte.

The owning user namespace is asked of the network namespace itself (``NS_GET_USERNS``), not taken
from the process: an unprivileged bwrap moves its sandbox into a second, nested user namespace,
from which the network namespace cannot be entered.

It is a standalone script (standard library only, run with ``python -I -S``) so that starting it
costs an interpreter and a few modules (about 20 ms), not xplane, gRPC or even asyncio: a thread
per direction of each connection, blocking, with one chunk in flight. Once its socket is bound it
probes the function's port every few milliseconds and writes ``ready`` on stdout at the first
connection the function accepts, so that xplane connects once instead of retrying with gRPC's
backoff. It exits when its stdin reaches end of file (xplane closed it, or died), or on SIGTERM.

Usage: ``python -I -S netrelay.py [--pid PID] SOCKET_PATH PORT``
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time

CHUNK = 256 * 1024  # one read at a time per direction: the relay's memory is bounded
CONNECT_TIMEOUT_S = 5.0
BACKLOG = 64
MAX_CONNECTIONS = 64  # gRPC uses one or two; more are refused (closed at once)
PROBE_INTERVAL_S = 0.005
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace that owns a namespace


def join_network_of(pid: int) -> None:
    """Enter ``pid``'s network namespace, after the user namespace that owns it (while single-threaded)."""
    import ctypes
    import fcntl

    libc = ctypes.CDLL(None, use_errno=True)

    def setns(fd: int, kind: int, what: str) -> None:
        if libc.setns(fd, kind) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot enter the sandbox's {what} namespace: {os.strerror(err)}")

    net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        owner = fcntl.ioctl(net, NS_GET_USERNS)
        try:
            if os.fstat(owner).st_ino != os.stat("/proc/self/ns/user").st_ino:
                setns(owner, CLONE_NEWUSER, "user")
        finally:
            os.close(owner)
        setns(net, CLONE_NEWNET, "network")
    finally:
        os.close(net)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until end of file (then half-close ``dst``) or an error."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)
    return sock


def _carry(client: socket.socket, port: int, slots: threading.BoundedSemaphore) -> None:
    """Connect ``client`` to the function; a function not listening yet closes it (the caller retries)."""
    try:
        try:
            upstream = _connect(port)
        except OSError:
            return
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        upstream.close()
    finally:
        client.close()
        slots.release()


def _accept(listener: socket.socket, port: int) -> None:
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        if not slots.acquire(blocking=False):
            client.close()
            continue
        threading.Thread(target=_carry, args=(client, port, slots), daemon=True).start()


def _announce_ready(port: int) -> None:
    """Write ``ready`` on stdout when the function first accepts a connection on ``port``."""
    while True:
        try:
            _connect(port).close()
        except OSError:
            time.sleep(PROBE_INTERVAL_S)
            continue
        with contextlib.suppress(OSError):  # xplane stopped listening: it will find out by connecting
            os.write(sys.stdout.fileno(), b"ready\n")
        return


def _terminate(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def serve(path: str, port: int) -> None:
    """Accept on the unix socket ``path`` until stdin closes or SIGTERM, carrying each connection."""
    signal.signal(signal.SIGTERM, _terminate)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    try:
        listener.listen(BACKLOG)
        threading.Thread(target=_accept, args=(listener, port), daemon=True).start()
        threading.Thread(target=_announce_ready, args=(port,), daemon=True).start()
        while os.read(sys.stdin.fileno(), 4096):  # until xplane closes it, or dies
            pass
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def main(argv: list[str]) -> int:
    """``netrelay.py [--pid PID] SOCKET_PATH PORT``."""
    pid = None
    if len(argv) == 4 and argv[0] == "--pid" and argv[1].isdigit():
        pid, argv = int(argv[1]), argv[2:]
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: netrelay.py [--pid PID] SOCKET_PATH PORT", file=sys.stderr)
        return 2
    try:
        if pid is not None:
            join_network_of(pid)
        serve(argv[0], int(argv[1]))
    except OSError as e:
        print(f"netrelay: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
