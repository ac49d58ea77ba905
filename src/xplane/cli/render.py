"""``xp render XR COMPOSITION FUNCTIONS``: run a Composition's function pipeline locally, as classic
``crossplane render`` (v1.17-v2.2) does, with no Docker (docs/render.md).

Exit codes: 0 rendered; 1 an error (bad input, a function that could not be loaded or called, the
timeout); 6 a pipeline step returned a FATAL result (docs/cli.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from xplane.cli.options import cache_option, registry_options

if TYPE_CHECKING:
    from xplane.compose import PackageRunner
    from xplane.oci import RegistryClient

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_ANY = click.Path(exists=True, path_type=Path)


@click.command("render")
@click.argument("composite_resource", type=_FILE)
@click.argument("composition", type=_FILE)
@click.argument("functions", type=_ANY)
@click.option("--context-files", multiple=True, metavar="KEY=FILE", help="Context key from a YAML/JSON file.")
@click.option("--context-values", multiple=True, metavar="KEY=VALUE", help="Context key from YAML/JSON text.")
@click.option(
    "-r", "--include-function-results", is_flag=True, help="Print non-fatal results as Result documents."
)
@click.option(
    "-x", "--include-full-xr", is_flag=True, help="Copy the input XR's spec and metadata into the output."
)
@click.option(
    "-o", "--observed-resources", type=_ANY, help="Observed composed resources (file or directory)."
)
@click.option("--extra-resources", type=_ANY, help="Extra resources functions may require (deprecated).")
@click.option(
    "-e", "--required-resources", type=_ANY, help="Resources functions may require (file or directory)."
)
@click.option(
    "-s",
    "--required-schemas",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of OpenAPI v3 JSON documents answering schema requirements.",
)
@click.option("-c", "--include-context", is_flag=True, help="Print the final context as a Context document.")
@click.option("--function-credentials", type=_ANY, help="Secrets the steps' credentials name.")
@click.option(
    "-a",
    "--function-annotations",
    multiple=True,
    metavar="KEY=VALUE",
    help="Annotation applied to every Function (repeat the flag).",
)
@click.option(
    "--timeout", default="1m", show_default=True, help="Bound on the whole render (loading and calls)."
)
@click.option(
    "--step-timeout",
    metavar="DURATION",
    help="Bound on each pipeline step (all its calls); a Function's render.xplane.io/step-timeout "
    "annotation overrides it. Default: only --timeout.",
)
@click.option("--xrd", type=_FILE, help="XRD whose schema defaults are applied to the XR first.")
@click.option(
    "--functions-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Functions served in process by xplane.fn, matched to Functions by name.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Render again whenever an input or function file changes; print a diff of the output.",
)
@cache_option
@registry_options
def render(
    composite_resource: Path,
    composition: Path,
    functions: Path,
    context_files: tuple[str, ...],
    context_values: tuple[str, ...],
    include_function_results: bool,
    include_full_xr: bool,
    observed_resources: Path | None,
    extra_resources: Path | None,
    required_resources: Path | None,
    required_schemas: Path | None,
    include_context: bool,
    function_credentials: Path | None,
    function_annotations: tuple[str, ...],
    timeout: str,
    step_timeout: str | None,
    xrd: Path | None,
    functions_dir: Path | None,
    watch: bool,
    cache_dir: Path | None,
    **registry: Any,
) -> int:
    """Render COMPOSITE_RESOURCE with COMPOSITION's pipeline, calling the FUNCTIONS it names.

    Functions run in process from --functions-dir (python, exec, Wasm, remote); a Function with no
    function of its name there runs from its package, pulled through the cache (every registry
    login, per-registry TLS) and started in a bubblewrap sandbox; annotated
    render.crossplane.io/runtime: Development, on an already-running server.
    """
    import sys

    from xplane.errors import XplaneError
    from xplane.fn import parse_duration

    try:
        seconds = parse_duration(timeout, "--timeout")
    except XplaneError as e:
        raise click.BadParameter(str(e), param_hint="--timeout") from None
    step_seconds: float | None = None
    if step_timeout is not None:
        try:
            step_seconds = parse_duration(step_timeout, "--step-timeout")
        except XplaneError as e:
            raise click.BadParameter(str(e), param_hint="--step-timeout") from None
        if step_seconds <= 0:
            raise click.BadParameter(f"{step_timeout!r} must be positive", param_hint="--step-timeout")
    args = _Args(
        composite_resource=composite_resource,
        composition=composition,
        functions=functions,
        context_files=context_files,
        context_values=context_values,
        observed_resources=observed_resources,
        extra_resources=extra_resources,
        required_resources=required_resources,
        required_schemas=required_schemas,
        function_credentials=function_credentials,
        function_annotations=function_annotations,
        xrd=xrd,
        functions_dir=functions_dir,
        timeout=seconds,
        timeout_text=timeout,
        step_timeout=step_seconds,
        include_full_xr=include_full_xr,
        include_results=include_function_results,
        include_context=include_context,
        cache_dir=cache_dir,
        registry=tuple(registry.items()),
    )
    with package_runner(args, keep_warm=watch) as runner:
        if watch:
            return watch_loop(args, runner)
        sys.stdout.write(render_text(args, runner))
        sys.stdout.flush()
    return 0


def package_runner(a: _Args, *, keep_warm: bool) -> PackageRunner:
    """The runner of package functions: the cache and a registry client with every credential source.

    The client is made only when a pull must contact a registry; a pull is bounded by --timeout.
    ``keep_warm`` (--watch) keeps the function processes running between renders.
    """
    from xplane.compose import PackageRunner

    access: list[Any] = []

    def client() -> RegistryClient:
        from xplane.cli.options import build_registry_access
        from xplane.oci import RegistryClient

        if not access:  # once: --password-stdin reads stdin a single time
            access.extend(build_registry_access(**dict(a.registry), pull_timeout=a.timeout))
        keychain, config = access
        return RegistryClient(keychain=keychain, config=config)

    return PackageRunner(cache_root=a.cache_dir, client_factory=client, keep_warm=keep_warm)


@dataclass(frozen=True)
class _Args:
    """The command's inputs, for one render (or each render of --watch)."""

    composite_resource: Path
    composition: Path
    functions: Path
    context_files: tuple[str, ...]
    context_values: tuple[str, ...]
    observed_resources: Path | None
    extra_resources: Path | None
    required_resources: Path | None
    required_schemas: Path | None
    function_credentials: Path | None
    function_annotations: tuple[str, ...]
    xrd: Path | None
    functions_dir: Path | None
    timeout: float
    timeout_text: str
    step_timeout: float | None
    include_full_xr: bool
    include_results: bool
    include_context: bool
    cache_dir: Path | None = None
    registry: tuple[tuple[str, Any], ...] = ()

    def watched(self) -> list[Path]:
        """Every file or directory whose change makes --watch render again."""
        paths = [self.composite_resource, self.composition, self.functions]
        paths += [
            p
            for p in (
                self.observed_resources,
                self.extra_resources,
                self.required_resources,
                self.required_schemas,
                self.function_credentials,
                self.xrd,
                self.functions_dir,
            )
            if p is not None
        ]
        paths += [Path(v.partition("=")[2]) for v in self.context_files]
        return paths


def _stream(path: Path | None, what: str) -> list[dict[str, Any]]:
    from xplane.compose import ComposeError, load_stream

    if path is None:
        return []
    try:
        return load_stream(path)
    except ComposeError as e:
        raise ComposeError(f'cannot load {what} from "{path}": {e.message}', hint=e.hint) from None


def render_text(a: _Args, runner: PackageRunner | None = None) -> str:
    """Load the inputs, check them in upstream's order, render, and return the YAML stream.

    ``runner`` runs the Functions that are found neither in --functions-dir nor on a server.
    Whatever in-process functions print meanwhile (the Python SDK logs to stdout; ``print``) goes
    to stderr: stdout carries the documents alone, so ``xp render ... | xp validate ... -`` works.

    Raises ComposeError (exit 1) or PipelineFatalError (exit 6) with upstream's wording.
    """
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        return _render_text(a, runner)


def _render_text(a: _Args, runner: PackageRunner | None) -> str:
    import asyncio
    import time

    from xplane.compose import (
        ComposeError,
        PipelineFatalError,
        RenderInputs,
        apply_xrd_defaults,
        build_context,
        dump_render,
        load_composition,
        load_functions,
        load_schemas,
        load_xr,
        parse_pairs,
        precheck,
        render_async,
    )

    start = time.monotonic()
    xr = load_xr(a.composite_resource)
    comp = load_composition(a.composition)
    precheck(xr, comp)
    fns = load_functions(a.functions)
    overrides = parse_pairs(a.function_annotations, "function annotation")
    for f in fns:
        meta = f["metadata"] = f.get("metadata") or {}  # load_functions checked: an object or null
        meta["annotations"] = {**(meta.get("annotations") or {}), **overrides}
    if a.xrd is not None:
        docs = _stream(a.xrd, "XRD")
        apply_xrd_defaults(xr, docs[0] if docs else {})
    inputs = RenderInputs(
        xr=xr,
        composition=comp,
        functions=fns,
        observed=_stream(a.observed_resources, "observed resources"),
        extra_resources=_stream(a.extra_resources, "extra resources"),
        required_resources=_stream(a.required_resources, "required resources"),
        required_schemas=load_schemas(a.required_schemas) if a.required_schemas else (),
        credentials=_stream(a.function_credentials, "function credentials"),
        context=build_context(
            parse_pairs(a.context_files, "context file"), parse_pairs(a.context_values, "context value")
        ),
    )
    left = max(0.001, a.timeout - (time.monotonic() - start))
    render = render_async(
        inputs,
        functions_dir=a.functions_dir,
        packages=runner,
        timeout=left,
        include_full_xr=a.include_full_xr,
        step_timeout=a.step_timeout,
    )
    try:
        out = asyncio.run(asyncio.wait_for(render, timeout=left + 2.0))
    except TimeoutError:
        raise ComposeError(
            f"cannot render composite resource: the render did not finish within {a.timeout_text}",
            hint="raise --timeout",
        ) from None
    except PipelineFatalError as e:
        e.message = f"cannot render composite resource: {e.message}"
        raise
    except ComposeError as e:
        raise ComposeError(f"cannot render composite resource: {e.message}", hint=e.hint) from None
    return dump_render(out.documents(include_results=a.include_results, include_context=a.include_context))


WATCH_POLL_S = 0.25  # how often --watch looks at the files (stat only)


def _snapshot(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every file under ``paths`` (directories walked; caches skipped)."""
    seen = []
    for p in paths:
        files = [p] if not p.is_dir() else [f for f in p.rglob("*") if "__pycache__" not in f.parts]
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            seen.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(sorted(seen))


def _diff(old: str, new: str, colour: bool) -> str:
    import difflib

    lines = list(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "previous", "current"))
    if not lines:
        return "(no change)\n"
    if not colour:
        return "".join(lines)
    tint = {"+": "\x1b[32m", "-": "\x1b[31m", "@": "\x1b[36m"}
    return "".join(f"{tint[ln[0]]}{ln.rstrip(chr(10))}\x1b[0m\n" if ln[:1] in tint else ln for ln in lines)


def watch_loop(a: _Args, runner: PackageRunner | None = None) -> int:
    """Render, then render again on every change of a watched file, printing a diff; Ctrl-C ends it."""
    import sys
    import time

    from xplane.errors import XplaneError

    colour = sys.stdout.isatty()
    previous: str | None = None
    while True:
        state = _snapshot(a.watched())
        try:
            text = render_text(a, runner)
        except XplaneError as e:
            click.echo(f"xp: error: {e}", err=True)
        else:
            sys.stdout.write(text if previous is None else _diff(previous, text, colour))
            sys.stdout.flush()
            previous = text
        click.echo("-- watching for changes (Ctrl-C to stop)", err=True)
        while _snapshot(a.watched()) == state:
            time.sleep(WATCH_POLL_S)
