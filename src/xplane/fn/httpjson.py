"""JSON bodies of ``POST /functions/{name}:run``: bounded before parsing, parsed off the event loop.

Why: ``json_format`` turns JSON into Python objects and then into protobuf, in pure Python, about
3 us and 60-320 bytes per JSON value. 20 MB of ``[{},{},...]`` (6.7M values) held the event loop for
21 s and took 1 GB; 60 MB took 4.9 GB. So a body is bounded twice before it is parsed: by its size
(``--http-max-body``, checked against ``Content-Length`` before it is read) and by the number of
values it holds (``--http-max-json-values``, counted by :func:`within_values` in C-speed passes,
without parsing). Parsed, the request must also fit ``--max-message-size`` as protobuf, and nest no
deeper than protobuf lets gRPC callers nest it (100 message levels: about 32 levels of JSON objects
inside a resource), since the runner receives it as protobuf (:func:`decode_request`).

Measured per JSON value, parsed and converted (peak RSS growth of one process, 1M values of each
shape): empty objects 70 B, numbers 77 B, strings 62 B, object members with their keys 318 B,
Kubernetes objects 197 B; time 2-5 us. One million values therefore stay under ~350 MB and ~5 s.

Large bodies are parsed in worker processes (``python -m xplane.fn.httpjson``, driven by
:mod:`xplane.fn.jsonworkers`), so neither the parse nor the garbage collector's passes over the
Python objects it makes run on the runner's event loop. The worker sends back the request as
protobuf, which the runner decodes in C (about 5 ms per MB) as it would a gRPC request.

Worker protocol, on its stdin and stdout: a job is ``>BQ`` (operation, payload length) and the
payload; the answer is ``>HBQ`` (HTTP status, retire flag, payload length) and the payload: the
result when the status is 200, else a UTF-8 message. Operations: :data:`DECODE` (JSON in, serialized
``RunFunctionRequest`` out) and :data:`ENCODE` (serialized ``RunFunctionResponse`` in, JSON out).
The worker exits when its stdin closes, or after an answer with the retire flag set (it grew by more
than :data:`RETIRE_GROWTH`, or ran out of memory under its ``RLIMIT_AS``).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import struct
import sys
from dataclasses import dataclass
from typing import BinaryIO

from crossplane.function.proto.v1 import run_function_pb2 as fnv1  # not xplane.fn.proto: no grpc here
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from xplane.fn.protojson import message_to_json

JOB = struct.Struct(">BQ")
ANSWER = struct.Struct(">HBQ")
DECODE, ENCODE = 1, 2
#: A worker whose resident memory grew by more than this since its start exits after its answer.
RETIRE_GROWTH = 64 * 1024 * 1024
#: Bytes of memory a worker may use per allowed JSON value, and per byte of the largest body.
MEMORY_PER_VALUE = 512
MEMORY_PER_BODY_BYTE = 8

_FLATTEN = bytes.maketrans(b"{[", b",,")
# A JSON string; one that runs to the end of the body matches too, so the search never backtracks.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)


@dataclass(frozen=True)
class BodyLimits:
    """What a ``:run`` body may hold: bytes, JSON values, and protobuf bytes once decoded."""

    max_body: int
    max_values: int
    max_message_size: int

    def worker_memory(self) -> int:
        """The address space a worker may add to its own at start (``RLIMIT_AS``)."""
        return MEMORY_PER_VALUE * self.max_values + MEMORY_PER_BODY_BYTE * self.max_body


class BodyRefused(Exception):
    """A body the runner will not take: ``status`` is 400 (malformed) or 413 (over a limit)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def within_values(body: bytes | bytearray, limit: int) -> bool:
    """Whether ``body`` holds at most ``limit`` JSON values, without parsing it.

    Values are counted as the commas, ``{`` and ``[`` outside strings, plus one: each value once,
    an empty object or array twice. Three ``bytes.count`` passes settle most bodies; only a body
    whose brackets and commas exceed ``limit`` is walked string by string, stopping as soon as the
    answer is certain. The walk tokenizes strings as a JSON parser does (UTF-8 bytes never contain
    ``"`` or ``\\`` inside a multi-byte character), so a parser that fails stops where the count
    stopped agreeing with it.
    """
    upper = body.count(b",") + body.count(b"{") + body.count(b"[") + 1
    if upper <= limit:
        return True
    flat = body.translate(_FLATTEN)
    count = flat.count
    inside = 0  # structural characters inside strings: never values
    outside = 1  # values seen so far, before ``pos``
    pos = 0
    for m in _STRING.finditer(flat):
        start, end = m.span()
        outside += count(b",", pos, start)
        if outside > limit:
            return False
        inside += count(b",", start, end)
        if upper - inside <= limit:
            return True
        pos = end
    return outside + count(b",", pos) <= limit


def decode_request(body: bytes | bytearray, limits: BodyLimits) -> bytes:
    """Protobuf JSON to a serialized ``RunFunctionRequest``; raises :class:`BodyRefused`."""
    if not within_values(body, limits.max_values):
        raise BodyRefused(
            413, f"the body holds more than {limits.max_values} JSON values (--http-max-json-values)"
        )
    try:
        msg = json_format.Parse(body or b"{}", fnv1.RunFunctionRequest())
    except (json_format.ParseError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BodyRefused(400, str(e)) from None
    data: bytes = msg.SerializeToString()
    if len(data) > limits.max_message_size:
        raise BodyRefused(
            413,
            f"the request is {len(data)} bytes as protobuf, over the runner's message size limit of "
            f"{limits.max_message_size} bytes (--max-message-size)",
        )
    return data


def parse_request(data: bytes | bytearray) -> fnv1.RunFunctionRequest:
    """A serialized request from :func:`decode_request` as a message, or 400 if protobuf refuses it."""
    try:
        req: fnv1.RunFunctionRequest = fnv1.RunFunctionRequest.FromString(data)
    except DecodeError:
        raise BodyRefused(
            400,
            "it nests deeper than protobuf allows (100 message levels, about 32 levels of JSON objects "
            "inside a resource; gRPC callers have the same limit)",
        ) from None
    return req


def encode_response(data: bytes) -> bytes:
    """A serialized ``RunFunctionResponse`` as compact protobuf JSON."""
    return message_to_json(fnv1.RunFunctionResponse.FromString(data))


# -- the worker process ---------------------------------------------------------------------------
def _resident() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _limit_memory(extra: int) -> None:
    """Cap the address space at what it is now plus ``extra`` bytes."""
    with open("/proc/self/statm", "rb") as f:
        size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, size + extra))


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    if len(data) != n:
        return None
    return data


def _answer(op: int, payload: bytes, limits: BodyLimits) -> tuple[int, bytes, bool]:
    """``(status, payload, out of memory)`` for one job."""
    try:
        if op == DECODE:
            return 200, decode_request(payload, limits), False
        if op == ENCODE:
            return 200, encode_response(payload), False
        return 500, f"unknown operation {op}".encode(), False
    except BodyRefused as e:
        return e.status, str(e).encode(), False
    except MemoryError:
        return 413, b"decoding it needs more memory than the runner allows (--http-max-json-values)", True
    except Exception as e:  # a bug here must not look like a client's fault, nor kill the worker
        return 500, f"{type(e).__name__}: {e}".encode(), False


def serve(stdin: BinaryIO, stdout: BinaryIO, limits: BodyLimits) -> None:
    """Answer jobs until ``stdin`` ends or a job leaves the worker too large to keep."""
    start = _resident()
    while (head := _read_exactly(stdin, JOB.size)) is not None:
        op, size = JOB.unpack(head)
        if size > max(limits.max_body, limits.max_message_size):
            return  # not a job the runner sends: stop rather than guess where the next one starts
        payload = _read_exactly(stdin, size)
        if payload is None:
            return
        status, out, out_of_memory = _answer(op, payload, limits)
        del payload
        retire = out_of_memory or _resident() - start > RETIRE_GROWTH
        stdout.write(ANSWER.pack(status, retire, len(out)))
        stdout.write(out)
        stdout.flush()
        if retire:
            return


def _yield_to_the_runner() -> None:
    """When CPUs are short, the runner's event loop (gRPC, /health) goes before this worker's parse.

    The worker runs in a session of its own (so a signal to the runner's group does not reach it),
    and where the kernel groups tasks by session (``sched_autogroup``, on by default), ``nice``
    only ranks tasks inside one group: the group itself must be niced too (``/proc/self/autogroup``),
    or each worker would get as much CPU as the whole runner.
    """
    os.nice(10)
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("10")
    except OSError:  # no autogroups (a container, another kernel): plain nice is all there is
        pass


def main(argv: list[str] | None = None) -> int:
    """``python -m xplane.fn.httpjson --max-body N --max-values N --max-message-size N``."""
    parser = argparse.ArgumentParser(prog="xplane.fn.httpjson")
    for flag in ("--max-body", "--max-values", "--max-message-size"):
        parser.add_argument(flag, type=int, required=True)
    args = parser.parse_args(argv)
    limits = BodyLimits(args.max_body, args.max_values, args.max_message_size)
    gc.disable()  # parsed JSON holds no cycles; collections would only rescan millions of objects
    _yield_to_the_runner()
    _limit_memory(limits.worker_memory())
    serve(sys.stdin.buffer, sys.stdout.buffer, limits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
