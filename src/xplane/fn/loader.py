"""Load functions from files: one function per directory (or single file) in a functions directory.

A directory's ``function.yaml`` says what it holds; without one the files decide (see :mod:`xplane.fn.spec`).
A top-level ``<name>.yaml`` describes a function without a directory (e.g. ``kind: remote``), which
also suits Kubernetes Secret volumes, where every key is a flat file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from xplane.fn.base import Function, FunctionSpec
from xplane.fn.errors import FunctionLoadError, FunctionNotFoundError
from xplane.fn.spec import SPEC_FILE, WASM_SUFFIXES, load_spec_file, spec_from_convention

__all__ = [
    "FunctionLoadError",
    "create_function",
    "discover",
    "discover_specs",
    "load_function",
    "load_named",
]

log = logging.getLogger(__name__)

_IGNORED_FILES = {"README", "README.md", "LICENSE", "requirements.txt", "pyproject.toml"}


def _factory(kind: str, isolation: str | None = None) -> Callable[[FunctionSpec], Function]:
    # Imported lazily: a runner serving only Python functions never loads wasmtime.
    if kind == "python" and isolation == "process":
        from xplane.fn.kinds.pyprocess import PythonProcessFunction

        return PythonProcessFunction
    if kind == "python":
        from xplane.fn.kinds.python import PythonFunction

        return PythonFunction
    if kind == "exec":
        from xplane.fn.kinds.exec import ExecFunction

        return ExecFunction
    if kind == "wasm":
        from xplane.fn.kinds.wasm import WasmFunction

        return WasmFunction
    if kind == "remote":
        from xplane.fn.kinds.remote import RemoteFunction

        return RemoteFunction
    raise FunctionLoadError(f"unknown kind {kind!r}")


def create_function(spec: FunctionSpec) -> Function:
    """Instantiate the kind a spec names. Raises FunctionLoadError."""
    try:
        return _factory(spec.kind, spec.options.get("isolation"))(spec)
    except FunctionLoadError:
        raise
    except Exception as e:  # e.g. an OSError reading files
        raise FunctionLoadError(
            f"loading {spec.kind} function {spec.name!r} failed: {e}", path=spec.path
        ) from e


def load_spec(path: Path, *, name: str | None = None) -> FunctionSpec:
    """The spec of the function at ``path``: a directory, a single file, or a top-level ``*.yaml``."""
    if not path.exists():
        raise FunctionLoadError("does not exist", path=path)
    if path.is_dir():
        spec_file = path / SPEC_FILE
        if spec_file.is_file():
            return load_spec_file(spec_file, base=path, name=name)
        return spec_from_convention(path, name=name)
    if path.suffix in (".yaml", ".yml"):
        spec = load_spec_file(path, base=path, name=name or path.stem)  # entrypoints: next to it
        if spec.kind != "remote" and spec.entrypoint is None:
            raise FunctionLoadError(
                f"a {spec.kind} function described by a top-level YAML file needs an entrypoint",
                path=path,
                field="entrypoint",
            )
        return spec
    return spec_from_convention(path, name=name)


def load_function(path: Path, *, name: str | None = None) -> Function:
    """Load the function at ``path`` (directory, file or ``*.yaml``). Raises FunctionLoadError."""
    return create_function(load_spec(Path(path), name=name))


def _candidates(functions_dir: Path) -> list[Path]:
    out = []
    for p in sorted(functions_dir.iterdir()):
        if p.name.startswith((".", "_")) or p.name in _IGNORED_FILES or p.name == SPEC_FILE:
            continue  # hidden, Secret volume internals (..data), __pycache__
        if (
            p.is_dir()
            or p.suffix in (".py", ".yaml", ".yml", *WASM_SUFFIXES)
            or (p.is_file() and _executable(p))
        ):
            out.append(p)
        else:
            log.debug("ignoring %s: not a function", p)
    return out


def _executable(p: Path) -> bool:
    return os.access(p, os.X_OK)


def discover_specs(functions_dir: Path) -> dict[str, FunctionSpec | FunctionLoadError]:
    """The spec of every function under ``functions_dir``, without loading any; errors included.

    Cheap: it reads ``function.yaml`` files and lists directories, and imports or runs nothing.
    An entry whose spec cannot be read is keyed by its file or directory name.
    """
    root = Path(functions_dir)
    if not root.is_dir():
        raise FunctionLoadError("functions directory does not exist or is not a directory", path=root)
    entries = [root] if (root / SPEC_FILE).is_file() else _candidates(root)
    found: dict[str, FunctionSpec | FunctionLoadError] = {}
    where: dict[str, Path] = {}
    for entry in entries:
        fallback = entry.stem if entry.is_file() else entry.name
        try:
            spec = load_spec(entry)
        except FunctionLoadError as e:
            found.setdefault(fallback, e)
            continue
        if spec.name in where:
            found[f"{fallback}@{entry.name}"] = FunctionLoadError(
                f"function name {spec.name!r} is already used by {where[spec.name]}", path=entry, field="name"
            )
            continue
        where[spec.name] = entry
        found[spec.name] = spec
    return found


def discover(functions_dir: Path) -> dict[str, Function | FunctionLoadError]:
    """Load every function under ``functions_dir``; one entry per function, errors included.

    A ``function.yaml`` directly in ``functions_dir`` makes the directory itself one function.
    One function's failure (bad YAML, import error, ...) never stops the others loading.
    """
    found: dict[str, Function | FunctionLoadError] = {}
    for name, item in discover_specs(functions_dir).items():
        if isinstance(item, FunctionLoadError):
            found[name] = item
            continue
        try:
            found[name] = create_function(item)
        except FunctionLoadError as e:
            found[name] = e
    return found


def load_named(functions_dir: Path, name: str) -> Function:
    """Load only the function called ``name`` under ``functions_dir`` (what ``xfn run`` serves).

    The other entries are only read for their names, and what is wrong with them is logged at
    DEBUG. Raises :class:`FunctionLoadError` naming the function and why it did not load, or
    :class:`FunctionNotFoundError` listing the functions there are.
    """
    specs = discover_specs(functions_dir)
    skipped = [
        other for other, item in specs.items() if other != name and isinstance(item, FunctionLoadError)
    ]
    for other in skipped:
        log.debug("skipped: not a function", extra={"fields": {"entry": other, "error": str(specs[other])}})
    item = specs.get(name)
    if item is None:
        found = sorted(n for n, i in specs.items() if isinstance(i, FunctionSpec))
        hint = (
            "a function's name is name: in its function.yaml, else its directory's name, else its file's "
            "name without the extension; see docs/functions.md"
        )
        if skipped:
            shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
            hint += f"; not functions (--debug says why): {shown}"
        raise FunctionNotFoundError(
            f"no function named {name!r} in {functions_dir}; functions there: {', '.join(found) or 'none'}",
            requested=name,
            loaded=found,
            hint=hint,
        )
    if isinstance(item, FunctionLoadError):
        cause = item
    else:
        try:
            return create_function(item)
        except FunctionLoadError as e:
            cause = e
    error = FunctionLoadError(f"function {name!r} failed to load: {cause.message}", hint=cause.hint)
    error.path, error.field = cause.path, cause.field
    raise error from cause
