"""xplane.store: the embedded control-plane state — Kubernetes-shaped objects in one SQLite file.

The curated public API: other packages import from ``xplane.store`` only these names. They load
lazily, so importing ``xplane.store`` costs nothing until a name is used. Contracts:
docs/dev/contracts.md, "xplane.store".
"""

from __future__ import annotations

from xplane._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # the store
    "Store": "store",
    "ObjectList": "store",
    "KindRef": "store",
    "Admission": "rows",
    "state_dir": "db",
    "state_path": "db",
    "SCHEMA_VERSION": "db",
    # kinds
    "Kind": "scheme",
    "PrinterColumn": "scheme",
    "Scheme": "scheme",
    "BUILTIN_KINDS": "scheme",
    "CROSSPLANE_NAMESPACE": "scheme",
    # selectors, watch, events
    "Selector": "selectors",
    "Requirement": "selectors",
    "Change": "watch",
    "EVENT_TYPES": "events",
    "FOREGROUND": "gc",
    # errors
    "StoreError": "errors",
    "NotFoundError": "errors",
    "AlreadyExistsError": "errors",
    "ConflictError": "errors",
    "InvalidError": "errors",
    "BadRequestError": "errors",
    "InvalidSelectorError": "errors",
    "UnknownKindError": "errors",
    "GoneError": "errors",
    "SchemaVersionError": "errors",
    "StoreCorruptError": "errors",
    "StoreMissingError": "errors",
    "StoreBusyError": "errors",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
