"""xplane.validate: check resources against CRD and XRD schemas, as ``crossplane beta validate`` does.

The curated public API: other packages import from ``xplane.validate`` only these names (an
import-linter contract checks it). They load lazily, so importing ``xplane.validate`` costs nothing
until a name is used. Contracts: docs/dev/contracts.md, "xplane.validate"; behaviour: docs/validate.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xplane._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # schemas and the algorithm
    "SchemaSet": "validator",
    "Resource": "validator",
    "Result": "validator",
    "Report": "validator",
    "validate_resource": "validator",
    "validate_resources": "validator",
    "gvk_string": "validator",
    # sources and packages
    "Loaded": "extensions",
    "Extensions": "extensions",
    "read_sources": "extensions",
    "split_sources": "extensions",
    "load_extensions": "extensions",
    "fetch_with_cache": "extensions",
    # Crossplane's own CRDs, shipped
    "add_crossplane_schemas": "corecrds",
    "crossplane_crds": "corecrds",
    "resolve_crossplane_version": "corecrds",
    "shipped_versions": "corecrds",
    # XRD -> CRD
    "crds_for_xrd": "xrd",
    "for_composite_resource": "xrd",
    "for_composite_resource_claim": "xrd",
    # structural schemas and CEL
    "validate_schema": "schema",
    "prune_paths": "schema",
    "apply_defaults": "schema",
    "CelValidator": "cel",
    # errors
    "FieldError": "errors",
    "ValidateError": "errors",
}

__all__ = [
    "CelValidator",
    "Extensions",
    "FieldError",
    "Loaded",
    "Report",
    "Resource",
    "Result",
    "SchemaSet",
    "ValidateError",
    "add_crossplane_schemas",
    "apply_defaults",
    "crds_for_xrd",
    "crossplane_crds",
    "fetch_with_cache",
    "for_composite_resource",
    "for_composite_resource_claim",
    "gvk_string",
    "load_extensions",
    "prune_paths",
    "read_sources",
    "resolve_crossplane_version",
    "shipped_versions",
    "split_sources",
    "validate_resource",
    "validate_resources",
    "validate_schema",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers (at run time they load on first use)
    from xplane.validate.cel import CelValidator
    from xplane.validate.corecrds import (
        add_crossplane_schemas,
        crossplane_crds,
        resolve_crossplane_version,
        shipped_versions,
    )
    from xplane.validate.errors import FieldError, ValidateError
    from xplane.validate.extensions import (
        Extensions,
        Loaded,
        fetch_with_cache,
        load_extensions,
        read_sources,
        split_sources,
    )
    from xplane.validate.schema import apply_defaults, prune_paths, validate_schema
    from xplane.validate.validator import (
        Report,
        Resource,
        Result,
        SchemaSet,
        gvk_string,
        validate_resource,
        validate_resources,
    )
    from xplane.validate.xrd import crds_for_xrd, for_composite_resource, for_composite_resource_claim
