"""xplane.compose: Crossplane's composition function pipeline and classic ``crossplane render``.

The curated public API: other packages import from ``xplane.compose`` only these names (an
import-linter contract checks it). They load lazily. Contracts: docs/dev/contracts.md, "xplane.compose".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xplane._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # the engine
    "run_pipeline": "pipeline",
    "PipelineOutput": "pipeline",
    "Sources": "pipeline",
    "StepResult": "pipeline",
    "MAX_REQUIREMENTS_ITERATIONS": "pipeline",
    "StepTimeoutError": "pipeline",
    "ResourceFetcher": "fetch",
    "SchemaFetcher": "fetch",
    # runtimes
    "Runtime": "runtimes",
    "InProcess": "runtimes",
    "Development": "runtimes",
    "open_runtimes": "runtimes",
    "function_timeouts": "runtimes",
    "STEP_TIMEOUT_ANNOTATION": "runtimes",
    "Package": "runtimes",
    "PackageRunner": "packagerun",
    "PackageSpec": "packagerun",
    "RootfsLimits": "rootfs",
    # classic render
    "RenderInputs": "classic",
    "RenderOutput": "classic",
    "render": "classic",
    "render_async": "classic",
    "precheck": "classic",
    "dump_render": "yamlout",
    "load_xr": "loading",
    "load_composition": "loading",
    "load_functions": "loading",
    "load_stream": "loading",
    "load_schemas": "loading",
    "parse_pairs": "loading",
    "build_context": "loading",
    "apply_xrd_defaults": "loading",
    # errors
    "ComposeError": "errors",
    "PipelineFatalError": "errors",
    "EXIT_FATAL": "errors",
}

__all__ = [
    "EXIT_FATAL",
    "MAX_REQUIREMENTS_ITERATIONS",
    "STEP_TIMEOUT_ANNOTATION",
    "ComposeError",
    "Development",
    "InProcess",
    "Package",
    "PackageRunner",
    "PackageSpec",
    "PipelineFatalError",
    "PipelineOutput",
    "RenderInputs",
    "RenderOutput",
    "ResourceFetcher",
    "RootfsLimits",
    "Runtime",
    "SchemaFetcher",
    "Sources",
    "StepResult",
    "StepTimeoutError",
    "apply_xrd_defaults",
    "build_context",
    "dump_render",
    "function_timeouts",
    "load_composition",
    "load_functions",
    "load_schemas",
    "load_stream",
    "load_xr",
    "open_runtimes",
    "parse_pairs",
    "precheck",
    "render",
    "render_async",
    "run_pipeline",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers (at run time they load on first use)
    from xplane.compose.classic import RenderInputs, RenderOutput, precheck, render, render_async
    from xplane.compose.errors import EXIT_FATAL, ComposeError, PipelineFatalError
    from xplane.compose.fetch import ResourceFetcher, SchemaFetcher
    from xplane.compose.loading import (
        apply_xrd_defaults,
        build_context,
        load_composition,
        load_functions,
        load_schemas,
        load_stream,
        load_xr,
        parse_pairs,
    )
    from xplane.compose.packagerun import PackageRunner, PackageSpec
    from xplane.compose.pipeline import (
        MAX_REQUIREMENTS_ITERATIONS,
        PipelineOutput,
        Sources,
        StepResult,
        StepTimeoutError,
        run_pipeline,
    )
    from xplane.compose.rootfs import RootfsLimits
    from xplane.compose.runtimes import (
        STEP_TIMEOUT_ANNOTATION,
        Development,
        InProcess,
        Package,
        Runtime,
        function_timeouts,
        open_runtimes,
    )
    from xplane.compose.yamlout import dump_render
