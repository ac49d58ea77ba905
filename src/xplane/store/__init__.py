"""xplane.store: the embedded control-plane state — Kubernetes-shaped objects in one SQLite file.

The curated public API: other packages import from ``xplane.store`` only these names (an
import-linter contract checks it). They load lazily, so importing ``xplane.store`` costs nothing until a name is used. Contracts:
docs/dev/contracts.md, "xplane.store".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

__all__ = [
    "BUILTIN_KINDS",
    "CROSSPLANE_NAMESPACE",
    "EVENT_TYPES",
    "FOREGROUND",
    "SCHEMA_VERSION",
    "Admission",
    "AlreadyExistsError",
    "BadRequestError",
    "Change",
    "ConflictError",
    "GoneError",
    "InvalidError",
    "InvalidSelectorError",
    "Kind",
    "KindRef",
    "NotFoundError",
    "ObjectList",
    "PrinterColumn",
    "Requirement",
    "SchemaVersionError",
    "Scheme",
    "Selector",
    "Store",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreMissingError",
    "UnknownKindError",
    "state_dir",
    "state_path",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers (at run time they load on first use)
    from xplane.store.db import SCHEMA_VERSION, state_dir, state_path
    from xplane.store.errors import (
        AlreadyExistsError,
        BadRequestError,
        ConflictError,
        GoneError,
        InvalidError,
        InvalidSelectorError,
        NotFoundError,
        SchemaVersionError,
        StoreBusyError,
        StoreCorruptError,
        StoreError,
        StoreMissingError,
        UnknownKindError,
    )
    from xplane.store.events import EVENT_TYPES
    from xplane.store.gc import FOREGROUND
    from xplane.store.rows import Admission
    from xplane.store.scheme import BUILTIN_KINDS, CROSSPLANE_NAMESPACE, Kind, PrinterColumn, Scheme
    from xplane.store.selectors import Requirement, Selector
    from xplane.store.store import KindRef, ObjectList, Store
    from xplane.store.watch import Change
