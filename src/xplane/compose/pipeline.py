"""Crossplane's function pipeline (functions.md §1.3-§1.4), a library the control plane can reuse.

Desired state is replaced step by step, context threaded, a FATAL result stops the pipeline,
WARNING/NORMAL results and custom conditions are collected, each step runs through the
requirements loop (up to 6 calls), and the smallest non-zero TTL wins. Every step is bounded by
its step timeout (if any) and by what is left of the whole pipeline's timeout.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xplane.compose.errors import ComposeError, PipelineFatalError, q
from xplane.compose.fetch import ResourceFetcher, SchemaFetcher, secret_data
from xplane.compose.runtimes import Runtime
from xplane.compose.values import struct_from, to_plain
from xplane.fn import fnv1  # the protocol's messages: every function of this module uses them

MAX_REQUIREMENTS_ITERATIONS = 5
#: How long past its deadline a runtime's call may run before the pipeline stops waiting for it
#: (runtimes enforce their deadline themselves; this is a safety net).
OVERRUN_GRACE = 2.0
#: A FATAL answer this close to (or past) the step's deadline is the runtime's timeout, not the function's.
DEADLINE_SLACK = 0.002


class StepTimeoutError(ComposeError):
    """A step ran out of time: its own step timeout, or what was left of the pipeline's timeout."""

    def __init__(self, step: str, function: str, after: float, *, whole: bool, detail: str = "") -> None:
        why = ": the render's --timeout ran out" if whole else ""
        super().__init__(
            f"cannot run pipeline step {q(step)}: function {q(function)} timed out after "
            f"{seconds(after)}{why}{f'; {detail}' if detail else ''}",
            hint="raise --timeout"
            if whole
            else "raise --step-timeout, or the Function's render.xplane.io/step-timeout annotation",
        )
        self.step = step
        self.function = function
        self.after = after
        self.whole = whole


def seconds(value: float) -> str:
    """``2s``, ``0.5s``, ``1m30s``: a duration as the flags spell it."""
    if value < 60:
        return f"{value:.3g}s"
    m, s = divmod(round(value), 60)
    return f"{m}m{s}s" if s else f"{m}m"


@dataclass
class StepResult:
    """A non-fatal result of one step, in pipeline order."""

    step: str
    severity: int
    message: str
    reason: str = "ComposeResources"


@dataclass
class PipelineOutput:
    """What a pipeline run leaves behind."""

    desired: fnv1.State
    context: dict[str, Any]
    results: list[StepResult] = field(default_factory=list)
    conditions: list[tuple[str, fnv1.Condition]] = field(default_factory=list)
    ttl: float = 0.0
    requirements: dict[str, fnv1.Requirements] = field(default_factory=dict)
    calls: int = 0
    #: the step whose answer is ``desired`` (the last one run) and the Function it called
    last_step: str = ""
    last_function: str = ""


@dataclass
class Sources:
    """Where requirements and credentials are answered from."""

    extra: ResourceFetcher = field(default_factory=lambda: ResourceFetcher(()))
    required: ResourceFetcher = field(default_factory=lambda: ResourceFetcher(()))
    schemas: SchemaFetcher = field(default_factory=lambda: SchemaFetcher(()))
    secrets: Sequence[Mapping[str, Any]] = ()


def _resources(fetched: Sequence[Mapping[str, Any]] | None) -> fnv1.Resources:
    out = fnv1.Resources()
    for obj in fetched or ():
        out.items.add().resource.update(obj)
    return out


def _selector(raw: Mapping[str, Any]) -> fnv1.ResourceSelector:
    sel = fnv1.ResourceSelector(api_version=str(raw.get("apiVersion", "")), kind=str(raw.get("kind", "")))
    if raw.get("name"):
        sel.match_name = str(raw["name"])
    elif raw.get("matchLabels"):
        sel.match_labels.labels.update({str(k): str(v) for k, v in raw["matchLabels"].items()})
    if raw.get("namespace"):
        sel.namespace = str(raw["namespace"])
    return sel


def _schema(sources: Sources, api_version: str, kind: str) -> fnv1.Schema:
    found = sources.schemas.fetch(api_version, kind)
    out = fnv1.Schema()
    if found is not None:
        out.openapi_v3.update(found)
    return out


def _copy(cls: Any, msg: Any) -> Any:
    out = cls()
    out.CopyFrom(msg)
    return out


_CAPABILITIES = (1, 2, 3, 4, 5)  # every Capability classic render announces


def _request(
    step: Mapping[str, Any],
    observed: fnv1.State,
    desired: fnv1.State,
    context: Any,
    sources: Sources,
) -> fnv1.RunFunctionRequest:
    """The first request of a step: observed, desired, context, input, credentials, bootstrap answers."""
    name = str(step.get("step", ""))
    req = fnv1.RunFunctionRequest()
    # CopyFrom per field: a third faster than the constructor's keyword arguments (which merge)
    req.observed.CopyFrom(observed)
    req.desired.CopyFrom(desired)
    req.context.CopyFrom(context)
    req.meta.capabilities.extend(_CAPABILITIES)
    raw = step.get("input")
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise ComposeError(f"cannot unmarshal input for Composition pipeline step {q(name)}")
        req.input.update(raw)
    for cred in step.get("credentials") or ():
        if cred.get("source") != "Secret" or not cred.get("secretRef"):
            continue
        ref = cred["secretRef"]
        data = secret_data(sources.secrets, str(ref.get("name", "")), str(ref.get("namespace", "")))
        req.credentials[str(cred.get("name", ""))].credential_data.data.update(data)
    boot = step.get("requirements")
    if boot:
        for r in boot.get("requiredResources") or ():
            req.required_resources[str(r.get("requirementName", ""))].CopyFrom(
                _resources(sources.required.fetch(_selector(r)))
            )
        for s in boot.get("requiredSchemas") or ():
            req.required_schemas[str(s.get("requirementName", ""))].CopyFrom(
                _schema(sources, str(s.get("apiVersion", "")), str(s.get("kind", "")))
            )
    return req


def _answered(
    req: fnv1.RunFunctionRequest, rsp: fnv1.RunFunctionResponse, sources: Sources
) -> fnv1.RunFunctionRequest:
    """``req`` (a step's first request, built afresh) with ``rsp``'s context and answers added."""
    for k, sel in rsp.requirements.resources.items():
        req.required_resources[k].CopyFrom(_resources(sources.extra.fetch(sel)))
    for k, sel in rsp.requirements.extra_resources.items():
        req.extra_resources[k].CopyFrom(_resources(sources.extra.fetch(sel)))
    for k, ss in rsp.requirements.schemas.items():
        req.required_schemas[k].CopyFrom(_schema(sources, ss.api_version, ss.kind))
    req.context.CopyFrom(rsp.context)
    return req


@dataclass
class _Budget:
    """One step's time: its deadline, and whether that is the whole pipeline's rather than the step's."""

    started: float
    deadline: float
    whole: bool
    step_timeout: float | None

    @classmethod
    def of(cls, step_timeout: float | None, pipeline_deadline: float) -> _Budget:
        now = time.monotonic()
        if step_timeout is not None and now + step_timeout < pipeline_deadline:
            return cls(now, now + step_timeout, False, step_timeout)
        return cls(now, pipeline_deadline, True, step_timeout)

    def expired(self, step: str, function: str, detail: str = "") -> StepTimeoutError:
        after = time.monotonic() - self.started
        if not self.whole and self.step_timeout is not None:
            after = self.step_timeout
        return StepTimeoutError(step, function, after, whole=self.whole, detail=detail)


async def _call_with_requirements(
    rt: Runtime,
    step: str,
    first: Callable[[], fnv1.RunFunctionRequest],
    sources: Sources,
    budget: _Budget,
    out: PipelineOutput,
) -> fnv1.RunFunctionResponse:
    """The requirements loop (``FetchingFunctionRunner``): call until requirements stop changing.

    Each call gets a request of its own, which the runtime may keep or change (no copy is made):
    ``first()``, then ``first()`` again with the previous response's answers and context.
    """
    previous: fnv1.Requirements | None = None
    deadline = budget.deadline
    req = first()
    for _ in range(MAX_REQUIREMENTS_ITERATIONS + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise budget.expired(step, rt.name)
        try:
            if rt.enforces_deadline:  # an in-process kind answers FATAL at it; gRPC passes it on
                rsp = await rt.run(req, timeout=left)
            else:  # any other runtime: the pipeline stops waiting a little past it
                async with asyncio.timeout(left + OVERRUN_GRACE):
                    rsp = await rt.run(req, timeout=left)
        except TimeoutError:
            raise budget.expired(step, rt.name) from None
        except ComposeError as e:
            if time.monotonic() >= deadline - DEADLINE_SLACK:
                raise budget.expired(step, rt.name, e.message) from None
            raise ComposeError(f"cannot run pipeline step {q(step)}: {e.message}", hint=e.hint) from None
        out.calls += 1
        for r in rsp.results:
            if r.severity == fnv1.SEVERITY_FATAL:
                if time.monotonic() >= deadline - DEADLINE_SLACK:  # the runtime's answer to its deadline
                    raise budget.expired(step, rt.name)
                return rsp
        current = rsp.requirements if rsp.HasField("requirements") else None
        if current == previous:
            return rsp
        previous = _copy(fnv1.Requirements, rsp.requirements)
        req = _answered(first(), rsp, sources)
    raise ComposeError(
        f"cannot run pipeline step {q(step)}: requirements didn't stabilize after the maximum number of "
        f"iterations ({MAX_REQUIREMENTS_ITERATIONS})"
    )


async def run_pipeline(
    steps: Sequence[Mapping[str, Any]],
    runtimes: Mapping[str, Runtime],
    observed: fnv1.State,
    *,
    context: Mapping[str, Any] | None = None,
    sources: Sources | None = None,
    timeout: float = 60.0,
    step_timeout: float | None = None,
    function_timeouts: Mapping[str, float] | None = None,
) -> PipelineOutput:
    """Run ``steps`` (a Composition's ``spec.pipeline``) against ``observed``.

    ``timeout`` (seconds) bounds the whole pipeline; ``step_timeout`` bounds each step (all the
    calls of its requirements loop), ``function_timeouts`` overrides it for the steps calling a
    Function (by name). Starting a runtime (a package function's process) counts against
    ``timeout`` only. Raises :class:`PipelineFatalError` for a FATAL result (later steps do not
    run), :class:`StepTimeoutError` for a step out of time and :class:`ComposeError` for an
    unknown function, a transport failure or unstable requirements.
    """
    sources = sources or Sources()
    per_function = function_timeouts or {}
    deadline = time.monotonic() + timeout
    # every runtime the pipeline uses starts now, together (a package function's sandbox takes a
    # few hundred ms to serve); each step then waits only for its own
    # (a runtime with nothing to start, such as an in-process function, gets no task)
    starting: dict[str, asyncio.Future[None]] = {}
    for step in steps:
        ref = str((step.get("functionRef") or {}).get("name", ""))
        rt = runtimes.get(ref)
        if rt is not None and ref not in starting and type(rt).start is not Runtime.start:
            starting[ref] = asyncio.ensure_future(rt.start(timeout=deadline - time.monotonic()))
    try:
        return await _run_steps(
            steps, runtimes, observed, context, sources, deadline, step_timeout, per_function, starting
        )
    finally:
        for task in starting.values():
            task.cancel()  # a no-op for those done
        # collect every outcome: a start that failed for a step never reached fails quietly
        if starting:
            await asyncio.gather(*starting.values(), return_exceptions=True)


async def _run_steps(
    steps: Sequence[Mapping[str, Any]],
    runtimes: Mapping[str, Runtime],
    observed: fnv1.State,
    context: Mapping[str, Any] | None,
    sources: Sources,
    deadline: float,
    step_timeout: float | None,
    per_function: Mapping[str, float],
    starting: Mapping[str, asyncio.Future[None]],
) -> PipelineOutput:
    desired = fnv1.State()
    ctx = struct_from(context or {})
    out = PipelineOutput(desired=desired, context={})
    for step in steps:
        name = str(step.get("step", ""))
        ref = str((step.get("functionRef") or {}).get("name", ""))
        rt = runtimes.get(ref)
        if rt is None:
            raise ComposeError(f"unknown Function {q(ref)} - does it exist in your Functions file?")
        first = functools.partial(_request, step, observed, desired, ctx, sources)
        try:
            if ref in starting:
                await starting[ref]
        except ComposeError as e:
            raise ComposeError(f"cannot run pipeline step {q(name)}: {e.message}", hint=e.hint) from None
        budget = _Budget.of(per_function.get(ref, step_timeout), deadline)
        rsp = await _call_with_requirements(rt, name, first, sources, budget, out)
        if rsp.HasField("requirements"):
            out.requirements[name] = rsp.requirements
        ttl = rsp.meta.ttl.ToTimedelta().total_seconds() if rsp.meta.HasField("ttl") else 0.0
        if ttl > 0 and (out.ttl == 0 or ttl < out.ttl):
            out.ttl = ttl
        desired = rsp.desired
        ctx = rsp.context
        out.last_step, out.last_function = name, ref
        for c in rsp.conditions:
            out.conditions.append((name, c))
        for r in rsp.results:
            if r.severity == fnv1.SEVERITY_FATAL:
                raise PipelineFatalError(name, r.message)
            out.results.append(StepResult(name, r.severity, r.message, r.reason or "ComposeResources"))
    out.desired = desired
    out.context = to_plain(ctx)
    return out
