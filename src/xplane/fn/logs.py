"""Structured logs for the runner: JSON lines by default, a readable console format with ``--debug``.

Log calls attach fields with ``extra={"fields": {...}}``. Request and response summaries (debug only)
carry names, counts and messages but never credential data or connection details: :func:`redact`
removes them structurally before anything is formatted.

Python functions log through these handlers too: records of a function's modules get its name as
the ``function`` field, and once :func:`configure` has run, :func:`route_structlog` sends structlog
(which crossplane-function-sdk-python's ``logging.get_logger()`` returns) to the standard library,
so the SDK's console or JSON lines of its own never reach the runner's output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

REDACTED = "<redacted>"
_SECRET_KEYS = (
    "password",
    "token",
    "secret",
    "credential",
    "connection_details",
    "connectiondetails",
    "private_key",
    "privatekey",
    "authorization",
    "apikey",
    "api_key",
)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "fields"}


#: A loaded Python function's top-level package -> the function's name (see :func:`name_function_package`).
_FUNCTION_PACKAGES: dict[str, str] = {}
#: Whether :func:`configure` set up the runner's logs, so structlog may be routed into them.
_configured = False
#: The processor chain :func:`route_structlog` installs (compared by identity to notice a reconfigure).
_routed_processors: list[Any] | None = None

log = logging.getLogger(__name__)


def name_function_package(package: str, function: str) -> None:
    """Log records of loggers under ``package`` (a loaded Python function's) carry ``function``."""
    _FUNCTION_PACKAGES[package] = function


def forget_function_package(package: str) -> None:
    """Undo :func:`name_function_package` (the function was closed)."""
    _FUNCTION_PACKAGES.pop(package, None)


def _origin(record: logging.LogRecord) -> tuple[str, str | None]:
    """The logger name to show and the function whose module logged, if one did.

    A function's modules live in a package of a unique name (``_xplane_fn_..._3.function.fn``) that
    changes on every reload; its records show the module's path inside the function
    (``function.fn``; the function's name for its top module) and carry ``function``.
    """
    package, _, rest = record.name.partition(".")
    function = _FUNCTION_PACKAGES.get(package)
    if function is None:
        return record.name, None
    return rest or function, function


def _fields(record: logging.LogRecord, function: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if function is not None:
        fields["function"] = function
    extra = getattr(record, "fields", None)
    if isinstance(extra, Mapping):
        fields.update(extra)
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        logger, function = _origin(record)
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": logger,
            "msg": record.getMessage(),
        }
        for key, value in redact(_fields(record, function)).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message key=value ...`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        logger, function = _origin(record)
        parts = [f"{stamp} {record.levelname:<7} {logger}: {record.getMessage()}"]
        for key, value in redact(_fields(record, function)).items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _StderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever ``sys.stderr`` is when a record arrives (click and test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(level: str = "INFO", *, debug: bool = False, stream: IO[str] | None = None) -> None:
    """Route log records to ``stream`` (stderr) as JSON lines, or console text when ``debug``.

    ``debug`` also lowers the level to DEBUG. Called by the CLI, once per process.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(ConsoleFormatter() if debug else JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else getattr(logging, level.upper(), logging.INFO))
    # grpc and asyncio are chatty at DEBUG, and httpx logs every request at INFO (the bundle poll, each
    # call of a remote function, with the URL's query); keep them at WARNING unless asked for explicitly.
    for noisy in ("grpc", "asyncio", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    global _configured
    _configured = True
    route_structlog()


def route_structlog(*, reason: str | None = None) -> None:
    """Send structlog events through the standard library, so :func:`configure`'s handler formats them.

    A no-op until :func:`configure` has run, and while nothing has imported structlog (importing it
    costs ~150 ms; the Python kind calls this after loading each function). The SDK's
    ``logging.configure()`` replaces the processors; a function that calls it is routed back here,
    and the change is logged at DEBUG naming ``reason``.
    """
    global _routed_processors
    structlog = sys.modules.get("structlog")
    if not _configured or structlog is None:
        return
    if _routed_processors is not None and structlog.get_config()["processors"] is _routed_processors:
        return
    if _routed_processors is not None:
        fields = {"by": reason}
        log.debug(
            "structlog was reconfigured; routing it through the runner's logs again", extra={"fields": fields}
        )
    _routed_processors = [
        structlog.stdlib.filter_by_level,
        structlog.contextvars.merge_contextvars,
        _to_stdlib,
    ]
    structlog.configure(
        processors=_routed_processors,
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


_STDLIB_KWARGS = ("exc_info", "stack_info", "stacklevel")


def _to_stdlib(_logger: Any, _method: str, event: Any) -> dict[str, Any]:
    """The last structlog processor: the event's text as ``msg``, its other keys as ``fields``.

    Fields travel in ``extra={"fields": ...}``, never as record attributes, so keys such as ``name``
    or ``msg`` cannot clash with the ``LogRecord``'s own.
    """
    kwargs = {key: event.pop(key) for key in _STDLIB_KWARGS if key in event}
    event.pop("level", None)  # the record's own level says it
    text = str(event.pop("event", ""))
    args = event.pop("positional_args", ())
    if args:  # log.info("%s buckets", 3)
        with contextlib.suppress(TypeError, ValueError):
            text = text % args
    return {"msg": text, "extra": {"fields": event}, **kwargs}


def redact(value: Any) -> Any:
    """Return ``value`` with every secret-looking key's value replaced by ``<redacted>``."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower().replace("-", "_")
            out[key] = REDACTED if any(s in lowered for s in _SECRET_KEYS) else redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return value


def _struct_get(struct: Any, *path: str) -> Any:
    cur = struct
    for key in path:
        try:
            if key not in cur:
                return None
            cur = cur[key]
        except (TypeError, ValueError, KeyError):
            return None
    return cur


def request_summary(req: Any) -> dict[str, Any]:
    """Names and counts from a ``RunFunctionRequest``; credential names only, never their data."""
    xr = req.observed.composite.resource
    summary: dict[str, Any] = {
        "tag": req.meta.tag,
        "xr": {
            "apiVersion": _struct_get(xr, "apiVersion"),
            "kind": _struct_get(xr, "kind"),
            "name": _struct_get(xr, "metadata", "name"),
        },
        "observed": sorted(req.observed.resources.keys()),
        "desired": sorted(req.desired.resources.keys()),
        "hasInput": req.HasField("input"),
        "context": sorted(req.context.keys()) if req.HasField("context") else [],
        "requiredResources": sorted(req.required_resources.keys()),
        "credentials": {name: REDACTED for name in sorted(req.credentials.keys())},
    }
    return summary


def response_summary(rsp: Any) -> dict[str, Any]:
    """Names, results and requirements of a ``RunFunctionResponse`` (no resource bodies)."""
    return {
        "tag": rsp.meta.tag,
        "desired": sorted(rsp.desired.resources.keys()),
        "results": [{"severity": _enum_name(r, "severity"), "message": r.message[:200]} for r in rsp.results],
        "conditions": [c.type for c in rsp.conditions],
        "requirements": sorted(rsp.requirements.resources.keys()) + sorted(rsp.requirements.schemas.keys()),
    }


def _enum_name(message: Any, field: str) -> str:
    number = getattr(message, field)
    try:
        value = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(number)
    except (AttributeError, KeyError):
        value = None
    return str(value.name) if value is not None else str(number)
