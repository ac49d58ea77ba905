"""Structured logs for the runner: JSON lines by default, a readable console format with ``--debug``.

Log calls attach fields with ``extra={"fields": {...}}``. Request and response summaries (debug only)
carry names, counts and messages but never credential data or connection details: :func:`redact`
removes them structurally before anything is formatted.
"""

from __future__ import annotations

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


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
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
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in redact(_fields(record)).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message key=value ...`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"]
        for key, value in redact(_fields(record)).items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", *, debug: bool = False, stream: IO[str] | None = None) -> None:
    """Route log records to ``stream`` (stderr) as JSON lines, or console text when ``debug``.

    ``debug`` also lowers the level to DEBUG. Called by the CLI, once per process.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(ConsoleFormatter() if debug else JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else getattr(logging, level.upper(), logging.INFO))
    # grpc and asyncio are chatty at DEBUG; keep them at WARNING unless asked for explicitly.
    for noisy in ("grpc", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
