"""The function seam: :class:`FunctionSpec`, the :class:`Function` every kind implements, FATAL helpers.

A kind turns every failure of the function itself (raise, crash, non-zero exit, garbage output,
timeout, memory) into a response carrying one FATAL result; only bugs in xplane raise.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xplane.fn.proto import fnv1

#: Kinds a function can be.
KINDS = ("python", "exec", "wasm", "remote")

#: Longest message a FATAL result carries (stderr, exception text) before it is trimmed.
MAX_MESSAGE_CHARS = 4096
#: Extra time a function gets over its deadline before the runner answers FATAL on its behalf.
DEADLINE_GRACE = 1.0


@dataclass(frozen=True)
class FunctionSpec:
    """A parsed ``function.yaml``, or what the loader inferred from the files by convention.

    ``limits`` uses normalised keys: ``memory`` (bytes), ``fuel`` (wasm instructions),
    ``output_bytes`` (cap on stdout and on stderr). ``options`` holds kind-specific settings
    (``sandbox``, ``args``, ``network``, ``preopen``, ``remote``, ``object``, ``version``).
    """

    name: str
    kind: str
    path: Path
    entrypoint: str | None = None
    protocol: str | None = None
    timeout: float | None = None
    limits: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        """The directory relative entrypoints resolve against."""
        return self.path if self.path.is_dir() else self.path.parent

    def entrypoint_path(self) -> Path:
        """The entrypoint file (``path`` itself when the function is a single file)."""
        if self.entrypoint is None:
            return self.path
        return self.directory / self.entrypoint


class Function(abc.ABC):
    """A loaded function of one kind. Safe to call concurrently; ``close`` releases its resources."""

    spec: FunctionSpec

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        # Hashed at load time: the version of the code that was loaded, even if files change later.
        self._version: str | None = spec.options.get("version") or content_hash(spec.path)

    @property
    def name(self) -> str:
        """The function's name (routing key)."""
        return self.spec.name

    @property
    def version(self) -> str | None:
        """The declared ``version`` from function.yaml, else a short hash of the function's files."""
        return self._version

    @abc.abstractmethod
    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        """Run one request within ``timeout`` seconds; function failures come back as FATAL results."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the function holds (processes, channels, threads). Idempotent."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.name!r} kind={self.spec.kind} path={self.spec.path}>"


def trim(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Strip ``text`` and keep at most ``limit`` characters (the tail, where errors usually are)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3) :]


def fatal_response(req: fnv1.RunFunctionRequest, message: str) -> fnv1.RunFunctionResponse:
    """A response with the request's tag and one FATAL result; desired and context pass through."""
    rsp = fnv1.RunFunctionResponse()
    rsp.meta.tag = req.meta.tag
    rsp.desired.CopyFrom(req.desired)
    if req.HasField("context"):
        rsp.context.CopyFrom(req.context)
    rsp.results.add(severity=fnv1.SEVERITY_FATAL, message=trim(message))
    return rsp


def ensure_tag(req: fnv1.RunFunctionRequest, rsp: fnv1.RunFunctionResponse) -> fnv1.RunFunctionResponse:
    """Fill ``meta.tag`` from the request when a function left it empty."""
    if not rsp.meta.tag:
        rsp.meta.tag = req.meta.tag
    return rsp


#: Directories that are caches or tooling, never part of a function (not hashed, not watched).
SKIP_DIRS = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache"})


def content_hash(path: Path) -> str:
    """A short sha256 over a file, or over a directory's file names and contents (sorted)."""
    h = hashlib.sha256()
    try:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                for f in sorted(files):
                    p = Path(root) / f
                    h.update(str(p.relative_to(path)).encode() + b"\0")
                    with p.open("rb") as fh:
                        while chunk := fh.read(1 << 16):
                            h.update(chunk)
        else:
            h.update(path.read_bytes())
    except OSError:
        return "unknown"
    return h.hexdigest()[:12]
