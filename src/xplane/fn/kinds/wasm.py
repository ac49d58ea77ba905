"""WebAssembly (WASI) functions with wasmtime: request JSON on stdin, response JSON on stdout.

Each call gets a fresh Store with an epoch deadline (the call's timeout), optional fuel, a memory
limit, no filesystem except declared ``preopen`` directories, and no network (WASI preview 1 has none).
Compiled modules are cached on disk, keyed by the module's sha256 and wasmtime's version. Calls run in
worker threads so the event loop stays free. stdout and stderr are captured in memory (stdout up to
``outputBytes``, beyond which writes fail and the call is FATAL; the head of stderr), stdin is a
per-thread scratch file rewritten by each call.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import importlib.metadata
import logging
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import wasmtime
from google.protobuf import json_format

from xplane.fn.base import Function, FunctionSpec, ensure_tag, fatal_response, trim
from xplane.fn.errors import FunctionLoadError
from xplane.fn.proto import fnv1, request_to_json, response_from_json

log = logging.getLogger(__name__)

DEFAULT_MEMORY = 256 * 1024 * 1024
DEFAULT_OUTPUT_BYTES = 64 * 1024 * 1024
#: Fuel when none is declared: effectively unlimited; the epoch deadline bounds the time instead.
UNLIMITED_FUEL = 2**62
EPOCH_TICK = 0.01
#: Bytes of a module's stderr kept for FATAL messages (the rest is dropped).
_STDERR_KEPT = 64 * 1024
WASMTIME_VERSION = importlib.metadata.version("wasmtime")


def cache_dir() -> Path:
    """Where compiled modules go: ``$XPLANE_CACHE_DIR/wasm`` or ``$XDG_CACHE_HOME/xplane/wasm``."""
    root = os.environ.get("XPLANE_CACHE_DIR")
    if root:
        return Path(root) / "wasm"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "xplane" / "wasm"


class _EpochTicker:
    """Advances an engine's epoch every EPOCH_TICK seconds while calls run (and briefly after)."""

    #: Seconds the thread keeps ticking without calls before it stops (saves a thread start per call).
    LINGER = 2.0

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._active = 0
        self._idle_since = 0.0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> None:
        with self._lock:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="wasm-epoch")
                self._thread.start()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self._idle_since = time.monotonic()

    def _loop(self) -> None:
        while True:
            time.sleep(EPOCH_TICK)
            self._engine.increment_epoch()
            with self._lock:
                if self._active == 0 and time.monotonic() - self._idle_since > self.LINGER:
                    self._thread = None
                    return


_engine_lock = threading.Lock()
_engine: tuple[wasmtime.Engine, _EpochTicker] | None = None


def shared_engine() -> tuple[wasmtime.Engine, _EpochTicker]:
    """One engine (fuel + epoch interruption) and its ticker for the whole process."""
    global _engine
    with _engine_lock:
        if _engine is None:
            cfg = wasmtime.Config()
            cfg.consume_fuel = True
            cfg.epoch_interruption = True
            engine = wasmtime.Engine(cfg)
            _engine = (engine, _EpochTicker(engine))
        return _engine


def compile_module(engine: wasmtime.Engine, source: Path, cache: Path | None = None) -> wasmtime.Module:
    """Compile ``source`` (.wasm or .wat), reusing a serialized module from the cache when present.

    Deserializing is only safe for artifacts wasmtime wrote itself, so each entry carries the sha256
    of its bytes; an entry that does not match (truncated, corrupted, tampered) is compiled again.
    """
    data = source.read_bytes()
    key = hashlib.sha256(data + f"|wasmtime {WASMTIME_VERSION}|fuel|epoch".encode()).hexdigest()
    cache = cache or cache_dir()
    cached, checksum = cache / f"{key}.cwasm", cache / f"{key}.sha256"
    with contextlib.suppress(OSError):
        blob = cached.read_bytes()
        if hashlib.sha256(blob).hexdigest() == checksum.read_text().strip():
            try:
                return wasmtime.Module.deserialize(engine, blob)
            except Exception as e:
                log.warning("ignoring unusable wasm cache entry %s: %s", cached, e)
        else:
            log.warning("wasm cache entry %s does not match its checksum; compiling again", cached)
    module = wasmtime.Module(engine, data.decode() if source.suffix == ".wat" else data)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        blob = module.serialize()
        _atomic_write(checksum, hashlib.sha256(blob).hexdigest().encode())
        _atomic_write(cached, blob)
    except OSError as e:
        log.warning("cannot cache compiled wasm module in %s: %s", cache, e)
    return module


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Capture:
    """A WASI stdout/stderr sink in memory, keeping at most ``limit`` bytes.

    Over the limit, a refusing sink fails the guest's write (``EFBIG``) and marks itself ``over``;
    a non-refusing one (stderr) keeps the head and drops the rest. It never raises: wasmtime's callback
    wrapper would print the exception.
    """

    __slots__ = ("buf", "limit", "over", "refuse")

    def __init__(self, limit: int, *, refuse: bool) -> None:
        self.buf = bytearray()
        self.limit = limit
        self.refuse = refuse
        self.over = False

    def __call__(self, data: bytes) -> int:
        room = self.limit - len(self.buf)
        if len(data) > room:
            self.over = True
            if self.refuse:
                return -errno.EFBIG
            self.buf += data[: max(room, 0)]
            return len(data)  # a short count would make the guest retry the rest forever
        self.buf += data
        return len(data)


class WasmFunction(Function):
    """A WASI command module (``_start``) reading the request on stdin."""

    def __init__(self, spec: FunctionSpec) -> None:
        super().__init__(spec)
        source = spec.entrypoint_path()
        if not source.is_file():
            raise FunctionLoadError(f"module {source} does not exist", path=spec.path, field="entrypoint")
        self.engine, self._ticker = shared_engine()
        cache = spec.options.get("cache_dir")
        try:
            self.module = compile_module(self.engine, source, Path(cache) if cache else None)
        except Exception as e:
            raise FunctionLoadError(
                f"not a valid WebAssembly module: {trim(str(e), 800)}", path=source
            ) from e
        exports = {e.name for e in self.module.exports}
        if "_start" not in exports:
            raise FunctionLoadError(
                "module exports no _start: build a WASI command (e.g. clang --target=wasm32-wasi)",
                path=source,
            )
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self.memory: int = spec.limits.get("memory") or DEFAULT_MEMORY
        self.fuel: int | None = spec.limits.get("fuel")
        self.output_bytes: int = spec.limits.get("output_bytes") or DEFAULT_OUTPUT_BYTES
        self.preopen: list[tuple[str, str, bool]] = []
        for item in spec.options.get("preopen") or []:
            host = (spec.directory / item["path"]).resolve()
            if not host.is_dir():
                raise FunctionLoadError(
                    f"preopen directory {host} does not exist", path=spec.path, field="preopen"
                )
            self.preopen.append((str(host), item["guest"], not item["read_only"]))
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tmp_lock = threading.Lock()

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Run the module in a worker thread; traps, exits != 0, timeouts and garbage become FATAL."""
        return await asyncio.to_thread(self._run_sync, req, timeout)

    def _run_sync(self, req: fnv1.RunFunctionRequest, timeout: float) -> fnv1.RunFunctionResponse:
        stdin = self._stdin_file()
        with open(stdin, "wb") as fh:
            fh.write(request_to_json(req))
        stdout, stderr = _Capture(self.output_bytes, refuse=True), _Capture(_STDERR_KEPT, refuse=False)
        failure = self._execute(stdin, stdout, stderr, timeout)
        if stdout.over:
            return fatal_response(
                req, f"function {self.name!r} wrote more than {self.output_bytes} bytes to stdout"
            )
        if failure is not None:
            tail = trim(stderr.buf.decode("utf-8", errors="replace"), 2000)
            return fatal_response(req, f"function {self.name!r} {failure}" + (f": {tail}" if tail else ""))
        out = bytes(stdout.buf)
        try:
            if not out.strip():
                raise ValueError("empty output")
            rsp = response_from_json(out)
        except (ValueError, json_format.ParseError) as e:
            excerpt = trim(out.decode("utf-8", errors="replace")[:300], 300)
            return fatal_response(
                req, f"function {self.name!r} wrote invalid JSON output: {e}; output began: {excerpt!r}"
            )
        return ensure_tag(req, rsp)

    def _stdin_file(self) -> str:
        # One stdin file per worker thread, rewritten by each call: no create and unlink per call.
        with self._tmp_lock:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix=f"xplane-wasm-{self.name}-")
            return os.path.join(self._tmp.name, f"stdin-{threading.get_ident()}")

    async def close(self) -> None:
        """Remove the per-function scratch directory."""
        with self._tmp_lock:
            tmp, self._tmp = self._tmp, None
        if tmp is not None:
            tmp.cleanup()

    def _execute(self, stdin: str, stdout: _Capture, stderr: _Capture, timeout: float) -> str | None:
        """Run ``_start``; None on success, else what went wrong."""
        wasi = wasmtime.WasiConfig()
        wasi.argv = [self.name]
        wasi.env = [[k, v] for k, v in self.spec.env.items()]
        wasi.stdin_file = stdin
        wasi.stdout_custom = stdout
        wasi.stderr_custom = stderr
        for host, guest, mutable in self.preopen:
            wasi.preopen_dir(host, guest, mutable)
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasi)
        store.set_limits(memory_size=self.memory)
        store.set_fuel(self.fuel if self.fuel is not None else UNLIMITED_FUEL)
        store.set_epoch_deadline(max(1, math.ceil(timeout / EPOCH_TICK)) + 1)
        instance: Any = None
        try:
            with self._ticker:
                try:
                    instance = self.linker.instantiate(store, self.module)
                    instance.exports(store)["_start"](store)
                except wasmtime.ExitTrap as e:
                    if e.code != 0:
                        return f"exited with code {e.code}"
                except wasmtime.Trap as e:
                    return _describe_trap(e, timeout, self.fuel)
                except wasmtime.WasmtimeError as e:
                    return f"failed: {trim(str(e), 500)}"
            return None
        finally:
            del instance, store  # drop the Store promptly (see spec: panic at interpreter exit otherwise)


def _describe_trap(e: wasmtime.Trap, timeout: float, fuel: int | None) -> str:
    code = e.trap_code
    if code == wasmtime.TrapCode.INTERRUPT:
        return f"timed out after {timeout:g}s"
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return f"ran out of fuel ({fuel} units)"
    first = str(e).strip().splitlines()[0] if str(e).strip() else "trap"
    return f"trapped: {trim(first, 300)}"
