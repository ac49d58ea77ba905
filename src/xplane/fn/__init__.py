"""xplane.fn: composition functions — the protocol, four function kinds, the calling client and the runner.

The curated public API: other packages import from ``xplane.fn`` only these names (an
import-linter contract in pyproject.toml checks it). They load lazily, so
importing ``xplane.fn`` does not import grpc until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xplane._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # errors, kinds, loading, calling, the runner
    "FunctionError": "errors",
    "FunctionLoadError": "errors",
    "FunctionCallError": "errors",
    "FunctionNotFoundError": "errors",
    "Function": "base",
    "FunctionSpec": "base",
    "fatal_response": "base",
    "load_function": "loader",
    "load_spec": "loader",
    "discover": "loader",
    "load_named": "loader",
    "FunctionClient": "client",
    "TLSOptions": "client",
    "Settings": "settings",
    "Runner": "runner",
    "serve": "runner",
    "run_request": "runner",
    # used by the CLI: settings parsing, the protocol, routing metadata
    "FUNCTION_METADATA_KEY": "router",
    "FatalResultError": "errors",
    "RunnerConfigError": "settings",
    "fnv1": "proto",
    "parse_duration": "settings",
    "parse_log_level": "settings",
    "parse_size": "settings",
    "configure_logging": "logs",
}

__all__ = [
    "FUNCTION_METADATA_KEY",
    "FatalResultError",
    "Function",
    "FunctionCallError",
    "FunctionClient",
    "FunctionError",
    "FunctionLoadError",
    "FunctionNotFoundError",
    "FunctionSpec",
    "Runner",
    "RunnerConfigError",
    "Settings",
    "TLSOptions",
    "configure_logging",
    "discover",
    "fatal_response",
    "fnv1",
    "load_function",
    "load_named",
    "load_spec",
    "parse_duration",
    "parse_log_level",
    "parse_size",
    "run_request",
    "serve",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers (at run time they load on first use)
    from xplane.fn.base import Function, FunctionSpec, fatal_response
    from xplane.fn.client import FunctionClient, TLSOptions
    from xplane.fn.errors import (
        FatalResultError,
        FunctionCallError,
        FunctionError,
        FunctionLoadError,
        FunctionNotFoundError,
    )
    from xplane.fn.loader import discover, load_function, load_named, load_spec
    from xplane.fn.logs import configure_logging
    from xplane.fn.proto import fnv1
    from xplane.fn.router import FUNCTION_METADATA_KEY
    from xplane.fn.runner import Runner, run_request, serve
    from xplane.fn.settings import RunnerConfigError, Settings, parse_duration, parse_log_level, parse_size
