"""xplane.fn: composition functions — the protocol, four function kinds, the calling client and the runner.

The curated public API: other packages import from ``xplane.fn`` only these names. They load
lazily, so importing ``xplane.fn`` does not import grpc until a name is used.
"""

from __future__ import annotations

from xplane._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
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
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
