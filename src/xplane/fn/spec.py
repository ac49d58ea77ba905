"""``function.yaml``: parse and validate it, or infer a :class:`FunctionSpec` from a directory's files.

Conventions without a ``function.yaml`` (see docs/functions.md):
``__init__.py`` or ``fn.py`` or ``function/fn.py`` -> python; one ``*.wasm``/``*.wat`` -> wasm;
one executable file -> exec. A single file in the functions directory works the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xplane.fn.base import KINDS, FunctionSpec
from xplane.fn.errors import FunctionLoadError

SPEC_FILE = "function.yaml"
#: The field that gives a function a gRPC port of its own (port routing, see docs/runner.md).
GRPC_PORT_FIELD = "grpcPort"
_TOP_FIELDS = {
    "apiVersion", "name", "kind", "entrypoint", "protocol", "timeout", "limits", "env", "sandbox", "args",
    "network", "preopen", "remote", "object", "version", "description", GRPC_PORT_FIELD, "isolation",
}  # fmt: skip
_LIMIT_FIELDS = {
    "memory": "memory",
    "fuel": "fuel",
    "outputBytes": "output_bytes",
    "output_bytes": "output_bytes",
}
_PROTOCOLS = {"exec": ("json", "functionio"), "wasm": ("json",), "python": (), "remote": ("grpc", "http")}
_SANDBOXES = ("auto", "bwrap", "none")
#: ``isolation`` of python functions: in the runner's process (default) or in a worker process of their own.
ISOLATIONS = ("inprocess", "process")
_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$")
_QUANTITY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?|[kmgt]|[KMGT]B|B)?\s*$")
_UNITS = {
    None: 1, "B": 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "m": 1000**2, "g": 1000**3, "t": 1000**4,
}  # fmt: skip
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
WASM_SUFFIXES = (".wasm", ".wat")


def parse_quantity(value: Any, *, path: Path, field: str) -> int:
    """Bytes from ``134217728``, ``"128Mi"``, ``"1G"``, ``"64MB"``. Raises FunctionLoadError."""
    if isinstance(value, bool):
        raise FunctionLoadError(f"expected a size like 128Mi, got {value!r}", path=path, field=field)
    if isinstance(value, int | float):
        n = int(value)
    else:
        m = _QUANTITY_RE.match(str(value))
        if not m:
            raise FunctionLoadError(
                f"expected a size like 134217728, 128Mi or 1G, got {value!r}", path=path, field=field
            )
        n = int(float(m.group(1)) * _UNITS[m.group(2)])
    if n <= 0:
        raise FunctionLoadError(f"must be positive, got {value!r}", path=path, field=field)
    return n


def parse_duration(value: Any, *, path: Path, field: str) -> float:
    """Seconds from ``10``, ``2.5``, ``"500ms"``, ``"30s"``, ``"2m"``. Raises FunctionLoadError."""
    if isinstance(value, bool):
        raise FunctionLoadError(f"expected a duration like 30s, got {value!r}", path=path, field=field)
    if isinstance(value, int | float):
        secs = float(value)
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise FunctionLoadError(
                f"expected a duration like 30s, 500ms or 2m, got {value!r}", path=path, field=field
            )
        secs = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if secs <= 0:
        raise FunctionLoadError(f"must be positive, got {value!r}", path=path, field=field)
    return secs


def parse_port(value: Any, *, path: Path, field: str) -> int:
    """A TCP port (1-65535) from ``9501`` or ``"9501"``. Raises FunctionLoadError."""
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, int | str) or not text.isdigit():
        raise FunctionLoadError(f"expected a port number like 9501, got {value!r}", path=path, field=field)
    port = int(text)
    if not 1 <= port <= 65535:
        raise FunctionLoadError(f"port {port} is out of range (1-65535)", path=path, field=field)
    return port


def _is_executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def infer_kind(path: Path) -> tuple[str, str | None]:
    """The kind and entrypoint (relative to the directory) a file or directory suggests by convention.

    Raises FunctionLoadError when nothing matches or the choice is ambiguous.
    """
    if path.is_file():
        if path.suffix == ".py":
            return "python", None
        if path.suffix in WASM_SUFFIXES:
            return "wasm", None
        if _is_executable(path):
            return "exec", None
        raise FunctionLoadError(
            "not a function: expected a .py file, a .wasm/.wat module or an executable", path=path
        )
    for candidate in ("__init__.py", "fn.py", "function/fn.py", "main.py"):
        if (path / candidate).is_file():
            return "python", candidate
    files = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    wasm = [p for p in files if p.suffix in WASM_SUFFIXES and p.is_file()]
    if len(wasm) == 1:
        return "wasm", wasm[0].name
    execs = [p for p in files if _is_executable(p)]
    for preferred in ("function", "main", "fn"):
        if any(p.name == preferred for p in execs):
            return "exec", preferred
    if len(execs) == 1 and not wasm:
        return "exec", execs[0].name
    found = ", ".join(p.name for p in (wasm or execs)) or "nothing usable"
    raise FunctionLoadError(
        f"cannot tell which function this directory holds (found {found})",
        path=path,
        hint=f"add a {SPEC_FILE} with kind and entrypoint (see docs/functions.md)",
    )


def spec_from_convention(path: Path, *, name: str | None = None) -> FunctionSpec:
    """A spec for a file or directory without ``function.yaml``."""
    kind, entrypoint = infer_kind(path)
    default_name = path.stem if path.is_file() else path.name
    fn_name = name or default_name
    _check_name(fn_name, path=path)
    protocol = "json" if kind in ("exec", "wasm") else None
    return FunctionSpec(name=fn_name, kind=kind, path=path, entrypoint=entrypoint, protocol=protocol)


def load_spec_file(spec_file: Path, *, base: Path, name: str | None = None) -> FunctionSpec:
    """Read and validate a ``function.yaml`` (or a top-level ``<name>.yaml``); ``base`` is the function path."""
    import yaml  # here: a runner whose functions have no function.yaml never loads PyYAML (~0.9 MiB)

    try:
        doc = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    except OSError as e:
        raise FunctionLoadError(f"cannot read: {e.strerror or e}", path=spec_file) from e
    except yaml.YAMLError as e:
        raise FunctionLoadError(f"invalid YAML: {e}", path=spec_file) from e
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise FunctionLoadError(f"expected a mapping, got {type(doc).__name__}", path=spec_file)
    return spec_from_mapping(doc, spec_file=spec_file, base=base, name=name)


def _str_field(doc: Mapping[str, Any], key: str, spec_file: Path) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise FunctionLoadError(f"expected a non-empty string, got {value!r}", path=spec_file, field=key)
    return value.strip()


def _check_name(name: str, *, path: Path, field: str | None = None) -> None:
    if not _NAME_RE.match(name):
        raise FunctionLoadError(
            f"invalid function name {name!r}: use letters, digits, '-', '_' or '.'", path=path, field=field
        )


def spec_from_mapping(
    doc: Mapping[str, Any], *, spec_file: Path, base: Path, name: str | None = None
) -> FunctionSpec:
    """Validate a ``function.yaml`` document. Unknown fields are errors (they are usually typos)."""
    unknown = sorted(set(doc) - _TOP_FIELDS)
    if unknown:
        raise FunctionLoadError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_TOP_FIELDS))}",
            path=spec_file,
            field=unknown[0],
        )
    fn_name = name or _str_field(doc, "name", spec_file) or (base.stem if base.is_file() else base.name)
    _check_name(fn_name, path=spec_file, field="name")
    kind = _str_field(doc, "kind", spec_file)
    entrypoint = _str_field(doc, "entrypoint", spec_file)
    if kind is None:
        if "remote" in doc:
            kind = "remote"
        else:
            directory = base if base.is_dir() else base.parent
            probe = directory / entrypoint if entrypoint else base
            if probe == spec_file or not probe.exists():
                raise FunctionLoadError(
                    f"missing kind (one of {', '.join(KINDS)})", path=spec_file, field="kind"
                )
            kind, inferred = infer_kind(probe)
            entrypoint = entrypoint or inferred
    if kind not in KINDS:
        raise FunctionLoadError(
            f"unknown kind {kind!r}; use one of {', '.join(KINDS)}", path=spec_file, field="kind"
        )
    if entrypoint is not None:
        if Path(entrypoint).is_absolute() or ".." in Path(entrypoint.split(":")[0]).parts:
            raise FunctionLoadError(
                f"entrypoint {entrypoint!r} must be a path inside the function directory",
                path=spec_file,
                field="entrypoint",
            )
    elif kind != "remote" and base.is_dir():
        _kind_found, entrypoint = _entrypoint_for(kind, base, spec_file)
    protocol = _str_field(doc, "protocol", spec_file)
    allowed = _PROTOCOLS[kind]
    if protocol is not None and protocol not in allowed:
        choices = ", ".join(allowed) or "none (remove the field)"
        raise FunctionLoadError(
            f"protocol {protocol!r} is not valid for kind {kind}; valid: {choices}",
            path=spec_file,
            field="protocol",
        )
    if protocol is None and kind in ("exec", "wasm"):
        protocol = "json"
    timeout = parse_duration(doc["timeout"], path=spec_file, field="timeout") if "timeout" in doc else None
    options: dict[str, Any] = {}
    for key in ("sandbox", "args", "network", "preopen", "remote", "object", "version", "isolation"):
        if key in doc:
            options[key] = doc[key]
    _validate_options(kind, options, spec_file)
    if GRPC_PORT_FIELD in doc:
        options["grpc_port"] = parse_port(doc[GRPC_PORT_FIELD], path=spec_file, field=GRPC_PORT_FIELD)
    if options.get("version") is not None:
        options["version"] = str(options["version"])
    return FunctionSpec(
        name=fn_name,
        kind=kind,
        path=base,
        entrypoint=entrypoint,
        protocol=protocol,
        timeout=timeout,
        limits=_limits(doc.get("limits"), spec_file),
        env=_env(doc.get("env"), spec_file),
        options=options,
    )


def _entrypoint_for(kind: str, base: Path, spec_file: Path) -> tuple[str, str | None]:
    try:
        found, entrypoint = infer_kind(base)
    except FunctionLoadError:
        found, entrypoint = "", None
    if found != kind or entrypoint is None:
        raise FunctionLoadError(
            f"missing entrypoint: no {kind} entrypoint found by convention in {base}",
            path=spec_file,
            field="entrypoint",
        )
    return found, entrypoint


def _limits(raw: Any, spec_file: Path) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FunctionLoadError("expected a mapping", path=spec_file, field="limits")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        norm = _LIMIT_FIELDS.get(key)
        field = f"limits.{key}"
        if norm is None:
            raise FunctionLoadError(
                f"unknown limit {key!r}; known: memory, fuel, outputBytes", path=spec_file, field=field
            )
        if norm == "fuel":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise FunctionLoadError(
                    f"expected a positive integer, got {value!r}", path=spec_file, field=field
                )
            out[norm] = value
        else:
            out[norm] = parse_quantity(value, path=spec_file, field=field)
    return out


def _env(raw: Any, spec_file: Path) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):  # [{name: K, value: V}] as in a Kubernetes container
        pairs: dict[str, Any] = {}
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping) or "name" not in item:
                raise FunctionLoadError("expected {name, value} items", path=spec_file, field=f"env[{i}]")
            pairs[str(item["name"])] = item.get("value", "")
        raw = pairs
    if not isinstance(raw, Mapping):
        raise FunctionLoadError("expected a mapping of names to strings", path=spec_file, field="env")
    out: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
            raise FunctionLoadError(f"invalid variable name {k!r}", path=spec_file, field="env")
        if isinstance(v, Mapping | list) or v is None:
            raise FunctionLoadError(f"value of {k} must be a string", path=spec_file, field=f"env.{k}")
        out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _validate_options(kind: str, options: dict[str, Any], spec_file: Path) -> None:
    sandbox = options.get("sandbox")
    if sandbox is not None and sandbox not in _SANDBOXES:
        raise FunctionLoadError(
            f"sandbox must be one of {', '.join(_SANDBOXES)}, got {sandbox!r}",
            path=spec_file,
            field="sandbox",
        )
    args = options.get("args")
    if args is not None and (
        not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args)
    ):
        raise FunctionLoadError("expected a list of strings", path=spec_file, field="args")
    if args is not None:
        options["args"] = [str(a) for a in args]
    if "network" in options and not isinstance(options["network"], bool):
        raise FunctionLoadError("expected true or false", path=spec_file, field="network")
    preopen = options.get("preopen")
    if preopen is not None:
        options["preopen"] = _preopen(preopen, spec_file)
    isolation = options.get("isolation")
    if isolation is not None:
        if kind != "python":
            raise FunctionLoadError(
                f"only valid with kind python (kind is {kind})", path=spec_file, field="isolation"
            )
        if isolation not in ISOLATIONS:
            raise FunctionLoadError(
                f"isolation must be one of {', '.join(ISOLATIONS)}, got {isolation!r}",
                path=spec_file,
                field="isolation",
            )
    if kind == "python" and options.get("isolation", "inprocess") != "process":
        for key in ("sandbox", "network"):
            if key in options:
                raise FunctionLoadError(
                    f"{key} has no effect on a python function in the runner's process",
                    path=spec_file,
                    field=key,
                    hint="add isolation: process to run it in a worker of its own, which can be sandboxed",
                )
    obj = options.get("object")
    if obj is not None and (not isinstance(obj, str) or not obj.isidentifier()):
        raise FunctionLoadError(f"expected a Python identifier, got {obj!r}", path=spec_file, field="object")
    remote = options.get("remote")
    if kind == "remote":
        options["remote"] = _remote(remote, spec_file)
    elif remote is not None:
        raise FunctionLoadError(
            f"only valid with kind remote (kind is {kind})", path=spec_file, field="remote"
        )


def _preopen(raw: Any, spec_file: Path) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise FunctionLoadError("expected a list of {path, guest, readOnly}", path=spec_file, field="preopen")
    out = []
    for i, item in enumerate(raw):
        field = f"preopen[{i}]"
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            raise FunctionLoadError("expected {path, guest, readOnly}", path=spec_file, field=field)
        guest = item.get("guest", item["path"] if item["path"].startswith("/") else "/" + item["path"])
        out.append({"path": item["path"], "guest": str(guest), "read_only": bool(item.get("readOnly", True))})
    return out


def _remote(raw: Any, spec_file: Path) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise FunctionLoadError(
            "kind remote needs remote: {address: host:port or http(s)://...}", path=spec_file, field="remote"
        )
    unknown = sorted(set(raw) - {"address", "tls", "maxMessageSize", "headers"})
    if unknown:
        raise FunctionLoadError(
            f"unknown field(s) {', '.join(unknown)}", path=spec_file, field=f"remote.{unknown[0]}"
        )
    address = raw.get("address")
    if not isinstance(address, str) or not address.strip():
        raise FunctionLoadError("missing address", path=spec_file, field="remote.address")
    tls = raw.get("tls") or {}
    if not isinstance(tls, Mapping):
        raise FunctionLoadError("expected a mapping", path=spec_file, field="remote.tls")
    tls_keys = {"insecure", "caFile", "certFile", "keyFile", "serverName", "insecureSkipVerify"}
    bad = sorted(set(tls) - tls_keys)
    if bad:
        raise FunctionLoadError(
            f"unknown field(s) {', '.join(bad)}; known: {', '.join(sorted(tls_keys))}",
            path=spec_file,
            field=f"remote.tls.{bad[0]}",
        )
    base = spec_file.parent
    files: dict[str, Path | None] = {}
    for key in ("caFile", "certFile", "keyFile"):
        value = tls.get(key)
        files[key] = None if value is None else (base / str(value))
    if (files["certFile"] is None) != (files["keyFile"] is None):
        raise FunctionLoadError("certFile and keyFile go together (mTLS)", path=spec_file, field="remote.tls")
    max_size = raw.get("maxMessageSize")
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise FunctionLoadError("expected a mapping", path=spec_file, field="remote.headers")
    return {
        "address": address.strip(),
        "insecure": bool(tls.get("insecure", False)),
        "insecure_skip_verify": bool(tls.get("insecureSkipVerify", False)),
        "ca_file": files["caFile"],
        "cert_file": files["certFile"],
        "key_file": files["keyFile"],
        "server_name": tls.get("serverName"),
        "max_message_size": None
        if max_size is None
        else parse_quantity(max_size, path=spec_file, field="remote.maxMessageSize"),
        "headers": {str(k): str(v) for k, v in headers.items()},
    }
