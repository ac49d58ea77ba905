"""The function runner's settings: flags with environment overrides (the environment beats a flag).

| flag | env | default |
|---|---|---|
| ``--log-level`` | ``LOG_LEVEL`` | ``info`` |
| ``--listen-addr`` | ``LISTEN_ADDR`` | ``0.0.0.0:8080`` (HTTP) |
| ``--functions-dir`` | ``FUNCTIONS_DIR`` | ``/functions`` |
| ``--debug`` | ``DEBUG_MODE`` | ``false`` |
| | ``FUNCTION_LOAD_MODE`` | ``local`` (or ``http``, ``secret``) |
| | ``FUNCTION_HTTP_URL`` | unset |
| | ``CROSSPLANE_TIMEOUT`` | ``30`` seconds |
| | ``CROSSPLANE_API_URL`` | unset |
| ``--grpc-addr`` | | ``0.0.0.0:9443`` |
| ``--tls-certs-dir`` | ``TLS_SERVER_CERTS_DIR`` | unset |
| ``--insecure`` | | ``false`` (wins over TLS settings) |
| ``--max-message-size`` | | ``64MiB`` |
| ``--reload-interval`` | | ``2`` seconds (``0`` turns reloading off) |
| ``--function-ports`` | ``FUNCTION_PORTS`` | unset: ``name=port,...``, a gRPC port pinned to each function |
| ``--event-loop`` | ``EVENT_LOOP`` | ``auto``: uvloop when installed, else asyncio's own (or ``uvloop``, ``asyncio``) |
| ``--http-run`` | ``HTTP_RUN`` | ``loopback``: who may ``POST /functions/{name}:run`` (or ``any``, ``off``) |
| ``--http-max-body`` | ``HTTP_MAX_BODY`` | ``8MiB``: the largest ``:run`` body |
| ``--http-max-json-values`` | ``HTTP_MAX_JSON_VALUES`` | ``1000000``: the most JSON values in a ``:run`` body |
| ``--http-max-concurrent-runs`` | ``HTTP_MAX_CONCURRENT_RUNS`` | ``2``: ``:run`` calls served at once |

This module is pure: it parses values and never touches the network or the file system.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xplane.errors import XplaneError
from xplane.fn.urls import redact_url

DEFAULT_LISTEN_ADDR = "0.0.0.0:8080"
DEFAULT_GRPC_ADDR = "0.0.0.0:9443"
DEFAULT_FUNCTIONS_DIR = "/functions"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
DEFAULT_RELOAD_INTERVAL = 2.0
LOAD_MODES = ("local", "http", "secret")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
#: Who may call ``POST /functions/{name}:run``: connections made to a loopback address, anyone, no one.
HTTP_RUN_MODES = ("loopback", "any", "off")
#: 8 MiB of JSON is about 500k values of Kubernetes JSON: twice the 4 MiB upstream gRPC servers accept.
DEFAULT_HTTP_MAX_BODY = 8 * 1024 * 1024
#: Twice the values in 8 MiB of Kubernetes JSON; parsed, a value costs 60-320 bytes (see xplane.fn.httpjson).
DEFAULT_HTTP_MAX_JSON_VALUES = 1_000_000
DEFAULT_HTTP_MAX_CONCURRENT_RUNS = 2
_FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$")
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "warning": "WARNING", "error": "ERROR"}

#: (setting, flag, env var) — the one table the CLI, the docs and the deployment tests read.
FLAG_ENV: tuple[tuple[str, str | None, str | None], ...] = (
    ("log_level", "--log-level", "LOG_LEVEL"),
    ("listen_addr", "--listen-addr", "LISTEN_ADDR"),
    ("functions_dir", "--functions-dir", "FUNCTIONS_DIR"),
    ("debug", "--debug", "DEBUG_MODE"),
    ("load_mode", None, "FUNCTION_LOAD_MODE"),
    ("http_url", None, "FUNCTION_HTTP_URL"),
    ("timeout", None, "CROSSPLANE_TIMEOUT"),
    ("crossplane_api_url", None, "CROSSPLANE_API_URL"),
    ("grpc_addr", "--grpc-addr", None),
    ("tls_certs_dir", "--tls-certs-dir", "TLS_SERVER_CERTS_DIR"),
    ("insecure", "--insecure", None),
    ("max_message_size", "--max-message-size", None),
    ("reload_interval", "--reload-interval", None),
    ("function_ports", "--function-ports", "FUNCTION_PORTS"),
    ("event_loop", "--event-loop", "EVENT_LOOP"),
    ("http_run", "--http-run", "HTTP_RUN"),
    ("http_max_body", "--http-max-body", "HTTP_MAX_BODY"),
    ("http_max_json_values", "--http-max-json-values", "HTTP_MAX_JSON_VALUES"),
    ("http_max_concurrent_runs", "--http-max-concurrent-runs", "HTTP_MAX_CONCURRENT_RUNS"),
)


class RunnerConfigError(XplaneError):
    """A runner setting (flag or environment variable) is invalid or incomplete."""

    exit_code = 2


@dataclass(frozen=True)
class Address:
    """A ``host:port`` to listen on; port 0 asks the kernel for a free port."""

    host: str
    port: int

    @classmethod
    def parse(cls, value: str, *, what: str) -> Address:
        """Parse ``host:port``, ``:port`` or ``[v6]:port``."""
        text = value.strip()
        m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]*):(\d+)", text)
        if not m:
            raise RunnerConfigError(
                f"{what}: {value!r} is not a host:port address", hint="for example 0.0.0.0:8080 or :8080"
            )
        host = m.group(1) if m.group(1) is not None else (m.group(3) or "0.0.0.0")
        port = int(m.group(2) or m.group(4))
        if port > 65535:
            raise RunnerConfigError(f"{what}: port {port} in {value!r} is out of range (0-65535)")
        return cls(host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Everything the runner needs to start, after flags and environment have been merged."""

    log_level: str = "INFO"
    listen_addr: Address = Address("0.0.0.0", 8080)
    functions_dir: Path = Path(DEFAULT_FUNCTIONS_DIR)
    debug: bool = False
    load_mode: str = "local"
    http_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    crossplane_api_url: str | None = None
    grpc_addr: Address = Address("0.0.0.0", 9443)
    tls_certs_dir: Path | None = None
    insecure: bool = False
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    reload_interval: float = DEFAULT_RELOAD_INTERVAL
    #: ``(function name, gRPC port)`` pairs: each port serves only that function (port routing).
    function_ports: tuple[tuple[str, int], ...] = ()
    #: ``auto`` (uvloop when installed), ``uvloop`` (required) or ``asyncio``.
    event_loop: str = "auto"
    #: Who may call ``POST /functions/{name}:run``: ``loopback``, ``any`` or ``off``.
    http_run: str = "loopback"
    #: The largest ``:run`` body in bytes (the decoded request must also fit ``max_message_size``).
    http_max_body: int = DEFAULT_HTTP_MAX_BODY
    #: The most JSON values a ``:run`` body may hold (commas, ``{`` and ``[`` outside strings, plus one).
    http_max_json_values: int = DEFAULT_HTTP_MAX_JSON_VALUES
    #: ``:run`` calls served at once; more wait for a free slot (see ``xplane.fn.http``).
    http_max_concurrent_runs: int = DEFAULT_HTTP_MAX_CONCURRENT_RUNS

    @classmethod
    def load(cls, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Merge ``flags`` (setting name -> value, ``None`` = not given) with ``env``; env wins.

        Raises :class:`RunnerConfigError` naming the flag or variable whose value is wrong.
        """
        flags = dict(flags or {})
        env = dict(env or {})
        raw: dict[str, tuple[Any, str]] = {}
        for setting, flag, var in FLAG_ENV:
            if var and env.get(var, "").strip() != "":
                raw[setting] = (env[var], var)
            elif flag and flags.get(setting) is not None:
                raw[setting] = (flags[setting], flag)
        unknown = set(flags) - {s for s, _, _ in FLAG_ENV}
        if unknown:
            raise RunnerConfigError(f"unknown runner settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for setting, (value, origin) in raw.items():
            values[setting] = _PARSERS[setting](value, origin)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check settings that depend on each other."""
        if self.load_mode == "http" and not self.http_url:
            raise RunnerConfigError(
                "FUNCTION_LOAD_MODE=http needs FUNCTION_HTTP_URL",
                hint="set FUNCTION_HTTP_URL to the URL of a .tar.gz bundle of function directories",
            )
        check_function_ports(
            self.function_ports, self.reserved_ports(), origin="FUNCTION_PORTS / --function-ports"
        )

    def reserved_ports(self) -> dict[int, str]:
        """Ports no function may take: the main gRPC and the HTTP port (when not 0), with their flags."""
        reserved: dict[int, str] = {}
        if self.listen_addr.port:
            reserved[self.listen_addr.port] = "the HTTP port (--listen-addr)"
        if self.grpc_addr.port:
            reserved[self.grpc_addr.port] = "the main gRPC port (--grpc-addr)"
        return reserved

    @property
    def tls_enabled(self) -> bool:
        """Whether gRPC serves mTLS (``--insecure`` wins over ``TLS_SERVER_CERTS_DIR``)."""
        return not self.insecure and self.tls_certs_dir is not None


def check_function_ports(
    pairs: tuple[tuple[str, int], ...], reserved: Mapping[int, str], *, origin: str
) -> None:
    """Refuse a function named twice, a port used twice, or a port that is in ``reserved``."""
    names: dict[str, int] = {}
    ports: dict[int, str] = {}
    for name, port in pairs:
        if name in names:
            raise RunnerConfigError(f"{origin}: function {name!r} is given two ports ({names[name]}, {port})")
        if port in ports:
            raise RunnerConfigError(
                f"{origin}: port {port} is given to two functions ({ports[port]!r}, {name!r})",
                hint="each function needs a port of its own",
            )
        if port in reserved:
            raise RunnerConfigError(
                f"{origin}: port {port} of function {name!r} is {reserved[port]}",
                hint="pick another port; the main gRPC port keeps routing by metadata or host",
            )
        names[name] = port
        ports[port] = name


def parse_function_ports(value: Any, origin: str) -> tuple[tuple[str, int], ...]:
    """Parse ``name=port,name=port`` (a mapping works too) into sorted ``(name, port)`` pairs."""
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = []
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, port = part.partition("=")
            if not sep:
                raise RunnerConfigError(
                    f"{origin}: {part!r} is not name=port", hint="for example function-a=9501,function-b=9502"
                )
            items.append((name.strip(), port.strip()))
    out: list[tuple[str, int]] = []
    for name, raw in items:
        if not _FUNCTION_NAME_RE.match(name):
            raise RunnerConfigError(f"{origin}: {name!r} is not a function name")
        text = str(raw)
        if isinstance(raw, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
            raise RunnerConfigError(f"{origin}: port {raw!r} of function {name!r} is not a port (1-65535)")
        out.append((name, int(text)))
    check_function_ports(tuple(out), {}, origin=origin)
    return tuple(sorted(out))


def parse_bool(value: Any, origin: str) -> bool:
    """Parse a boolean flag or variable (true/false, 1/0, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "t", "y"):
        return True
    if text in ("0", "false", "no", "off", "f", "n", ""):
        return False
    raise RunnerConfigError(f"{origin}: {value!r} is not a boolean", hint="use true or false")


def parse_duration(value: Any, origin: str) -> float:
    """Parse seconds: ``30``, ``2.5``, or a Go-style duration such as ``30s``, ``1m30s``, ``500ms``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise RunnerConfigError(
                    f"{origin}: {value!r} is not a duration", hint="use seconds (30) or a duration (30s, 1m)"
                ) from None
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
            seconds = sum(float(n) * scale[u] for n, u in parts)
    if seconds < 0:
        raise RunnerConfigError(f"{origin}: {value!r} must not be negative")
    return seconds


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
}


def parse_size(value: Any, origin: str) -> int:
    """Parse a byte size: ``4194304``, ``16MiB``, ``16Mi``, ``20MB``."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = m.group(2).lower() if m else ""
        if not m or unit not in _SIZE_UNITS:
            raise RunnerConfigError(f"{origin}: {value!r} is not a size", hint="use bytes or e.g. 16MiB")
        size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if size < 1024:
        raise RunnerConfigError(f"{origin}: {value!r} is too small (at least 1024 bytes)")
    if size > 2**31 - 1:
        raise RunnerConfigError(f"{origin}: {value!r} is too large (gRPC allows at most 2 GiB - 1)")
    return size


def parse_log_level(value: Any, origin: str) -> str:
    """The ``logging`` level name for ``debug``, ``info``, ``warn`` or ``error`` (any case)."""
    level = LOG_LEVELS.get(str(value).strip().lower())
    if level is None:
        raise RunnerConfigError(
            f"{origin}: {value!r} is not a log level", hint="use DEBUG, INFO, WARN or ERROR"
        )
    return level


def _load_mode(value: Any, origin: str) -> str:
    mode = str(value).strip().lower()
    if mode not in LOAD_MODES:
        raise RunnerConfigError(f"{origin}: {value!r} is not a load mode", hint="use local, http or secret")
    return mode


def _event_loop(value: Any, origin: str) -> str:
    loop = str(value).strip().lower()
    if loop not in EVENT_LOOPS:
        raise RunnerConfigError(
            f"{origin}: {value!r} is not an event loop", hint="use auto, uvloop or asyncio"
        )
    return loop


def _http_run(value: Any, origin: str) -> str:
    mode = str(value).strip().lower()
    if mode not in HTTP_RUN_MODES:
        raise RunnerConfigError(
            f"{origin}: {value!r} is not a choice for HTTP runs", hint="use loopback, any or off"
        )
    return mode


def _count(low: int, high: int) -> Any:
    def parse(value: Any, origin: str) -> int:
        text = str(value).strip().replace("_", "")
        if isinstance(value, bool) or not text.isdigit() or not low <= int(text) <= high:
            raise RunnerConfigError(f"{origin}: {value!r} is not a whole number from {low} to {high}")
        return int(text)

    return parse


def _url(value: Any, origin: str) -> str:
    text = str(value).strip()
    if not re.match(r"^https?://[^/\s]+", text):
        raise RunnerConfigError(f"{origin}: {redact_url(text)!r} is not an http(s) URL")
    return text


def _positive(parse: Any) -> Any:
    def check(value: Any, origin: str) -> float:
        seconds = float(parse(value, origin))
        if seconds <= 0:
            raise RunnerConfigError(f"{origin}: {value!r} must be greater than zero")
        return seconds

    return check


_PARSERS: dict[str, Any] = {
    "log_level": parse_log_level,
    "listen_addr": lambda v, o: Address.parse(str(v), what=o),
    "functions_dir": lambda v, o: Path(str(v)),
    "debug": parse_bool,
    "load_mode": _load_mode,
    "http_url": _url,
    "timeout": _positive(parse_duration),
    "crossplane_api_url": _url,
    "grpc_addr": lambda v, o: Address.parse(str(v), what=o),
    "tls_certs_dir": lambda v, o: Path(str(v)),
    "insecure": parse_bool,
    "max_message_size": parse_size,
    "reload_interval": parse_duration,
    "function_ports": parse_function_ports,
    "event_loop": _event_loop,
    "http_run": _http_run,
    "http_max_body": parse_size,
    "http_max_json_values": _count(1, 2**31 - 1),
    "http_max_concurrent_runs": _count(1, 1024),
}
