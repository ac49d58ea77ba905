"""Carries a sandboxed function's gRPC connections from a host unix socket into its network namespace.

A package function runs in a ``bwrap --unshare-net`` sandbox: its only network is a loopback of its
own, which the host cannot reach. xplane starts this relay *inside that network namespace* (with
``nsenter --user --net``, so it keeps the host's filesystem) and calls the function at the relay's
unix socket; every accepted connection is carried to ``127.0.0.1:PORT`` in the sandbox, byte for byte.

It is a standalone script (standard library only, run with ``python -I``) so that starting it costs
an interpreter and asyncio, not xplane and gRPC. Once its socket is bound it probes the function's
port every few milliseconds and writes ``ready`` on stdout at the first connection the function
accepts, so that xplane connects once instead of retrying with gRPC's backoff. It exits when its
stdin reaches end of file (xplane closed it, or died), or on SIGTERM.

Usage: ``python -I netrelay.py SOCKET_PATH PORT``
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

CHUNK = 256 * 1024  # one read at a time per direction: the relay's memory is bounded
CONNECT_TIMEOUT_S = 5.0
BACKLOG = 64
PROBE_INTERVAL_S = 0.005


async def _pump(loop: asyncio.AbstractEventLoop, src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until end of file (then half-close ``dst``) or an error."""
    try:
        while data := await loop.sock_recv(src, CHUNK):
            await loop.sock_sendall(dst, data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


async def _carry(loop: asyncio.AbstractEventLoop, client: socket.socket, port: int) -> None:
    """Connect ``client`` to the function; a function not listening yet closes it (the caller retries)."""
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    upstream.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(upstream, ("127.0.0.1", port)), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        client.close()
        upstream.close()
        return
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(_pump(loop, client, upstream), _pump(loop, upstream, client))
    finally:
        client.close()
        upstream.close()


async def _announce_ready(loop: asyncio.AbstractEventLoop, port: int) -> None:
    """Write ``ready`` on stdout when the function first accepts a connection on ``port``."""
    while True:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            await loop.sock_connect(probe, ("127.0.0.1", port))
        except OSError:
            await asyncio.sleep(PROBE_INTERVAL_S)
            continue
        finally:
            probe.close()
        with contextlib.suppress(OSError):  # xplane stopped listening: it will find out by connecting
            os.write(sys.stdout.fileno(), b"ready\n")
        return


async def serve(path: str, port: int) -> None:
    """Accept on the unix socket ``path`` until stdin closes or SIGTERM, carrying each connection."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def done() -> None:
        if not stop.done():
            stop.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, done)
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)

    def on_stdin() -> None:
        with contextlib.suppress(BlockingIOError):
            if not os.read(stdin, 4096):
                loop.remove_reader(stdin)
                done()

    loop.add_reader(stdin, on_stdin)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(BACKLOG)
    listener.setblocking(False)
    tasks: set[asyncio.Task[None]] = set()

    async def accept() -> None:
        while True:
            client, _ = await loop.sock_accept(listener)
            client.setblocking(False)
            task = loop.create_task(_carry(loop, client, port))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    acceptor = loop.create_task(accept())
    announcer = loop.create_task(_announce_ready(loop, port))
    try:
        await stop
    finally:
        acceptor.cancel()
        announcer.cancel()
        for task in list(tasks):
            task.cancel()
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def main(argv: list[str]) -> int:
    """``netrelay.py SOCKET_PATH PORT``."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: netrelay.py SOCKET_PATH PORT", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(argv[0], int(argv[1])))
    except OSError as e:
        print(f"netrelay: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
