"""Crossplane's function pipeline (functions.md §1.3-§1.4), a library the control plane can reuse.

Desired state is replaced step by step, context threaded, a FATAL result stops the pipeline,
WARNING/NORMAL results and custom conditions are collected, each step runs through the
requirements loop (up to 6 calls), and the smallest non-zero TTL wins.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xplane.compose.errors import ComposeError, PipelineFatalError, q
from xplane.compose.fetch import ResourceFetcher, SchemaFetcher, secret_data
from xplane.compose.values import struct_from, to_plain
from xplane.fn import fnv1  # the protocol's messages: every function of this module uses them

if TYPE_CHECKING:
    from xplane.compose.runtimes import Runtime

MAX_REQUIREMENTS_ITERATIONS = 5


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


def _request(
    step: Mapping[str, Any],
    observed: fnv1.State,
    desired: fnv1.State,
    context: fnv1.RunFunctionRequest | Any,
    sources: Sources,
) -> fnv1.RunFunctionRequest:
    name = str(step.get("step", ""))
    req = fnv1.RunFunctionRequest()
    req.meta.capabilities.extend([1, 2, 3, 4, 5])
    req.observed.CopyFrom(observed)
    req.desired.CopyFrom(desired)
    req.context.CopyFrom(context)
    if step.get("input") is not None:
        if not isinstance(step["input"], Mapping):
            raise ComposeError(f"cannot unmarshal input for Composition pipeline step {q(name)}")
        req.input.update(step["input"])
    for cred in step.get("credentials") or ():
        if cred.get("source") != "Secret" or not cred.get("secretRef"):
            continue
        ref = cred["secretRef"]
        data = secret_data(sources.secrets, str(ref.get("name", "")), str(ref.get("namespace", "")))
        req.credentials[str(cred.get("name", ""))].credential_data.data.update(data)
    boot = step.get("requirements") or {}
    for r in boot.get("requiredResources") or ():
        req.required_resources[str(r.get("requirementName", ""))].CopyFrom(
            _resources(sources.required.fetch(_selector(r)))
        )
    for s in boot.get("requiredSchemas") or ():
        req.required_schemas[str(s.get("requirementName", ""))].CopyFrom(
            _schema(sources, str(s.get("apiVersion", "")), str(s.get("kind", "")))
        )
    return req


def _copy(cls: Any, msg: Any) -> Any:
    out = cls()
    out.CopyFrom(msg)
    return out


async def _call_with_requirements(
    rt: Runtime,
    step: str,
    req: fnv1.RunFunctionRequest,
    boot: Mapping[str, Any],
    sources: Sources,
    deadline: float,
    out: PipelineOutput,
) -> fnv1.RunFunctionResponse:
    """The requirements loop (``FetchingFunctionRunner``): call until requirements stop changing."""
    previous: fnv1.Requirements | None = None
    # the bootstrap answers, copied: clearing the request's maps below must not touch them
    base_resources = {k: _copy(fnv1.Resources, v) for k, v in req.required_resources.items()}
    base_schemas = {k: _copy(fnv1.Schema, v) for k, v in req.required_schemas.items()}
    for _ in range(MAX_REQUIREMENTS_ITERATIONS + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ComposeError(f"cannot run pipeline step {q(step)}: the render timed out")
        try:
            # Function.call enforces its own deadline (kinds answer FATAL past it); Development's
            # client passes it to gRPC as the call's deadline.
            rsp = await rt.run(req, timeout=left)
        except ComposeError as e:
            raise ComposeError(f"cannot run pipeline step {q(step)}: {e.message}", hint=e.hint) from None
        out.calls += 1
        if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
            return rsp
        current = rsp.requirements if rsp.HasField("requirements") else None
        if current == previous:
            return rsp
        previous = fnv1.Requirements()
        previous.CopyFrom(rsp.requirements)
        req.ClearField("required_resources")
        req.ClearField("extra_resources")
        req.ClearField("required_schemas")
        for k, v in base_resources.items():
            req.required_resources[k].CopyFrom(v)
        for k, v in base_schemas.items():
            req.required_schemas[k].CopyFrom(v)
        for k, sel in rsp.requirements.resources.items():
            req.required_resources[k].CopyFrom(_resources(sources.extra.fetch(sel)))
        for k, sel in rsp.requirements.extra_resources.items():
            req.extra_resources[k].CopyFrom(_resources(sources.extra.fetch(sel)))
        for k, ss in rsp.requirements.schemas.items():
            req.required_schemas[k].CopyFrom(_schema(sources, ss.api_version, ss.kind))
        req.context.CopyFrom(rsp.context)
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
) -> PipelineOutput:
    """Run ``steps`` (a Composition's ``spec.pipeline``) against ``observed``.

    Raises :class:`PipelineFatalError` for a FATAL result (later steps do not run) and
    :class:`ComposeError` for an unknown function, a transport failure, unstable requirements or
    the ``timeout`` (seconds, the whole pipeline) running out.
    """
    sources = sources or Sources()
    deadline = time.monotonic() + timeout
    desired = fnv1.State()
    ctx = struct_from(context or {})
    out = PipelineOutput(desired=desired, context={})
    for step in steps:
        name = str(step.get("step", ""))
        ref = str((step.get("functionRef") or {}).get("name", ""))
        rt = runtimes.get(ref)
        if rt is None:
            raise ComposeError(f"unknown Function {q(ref)} - does it exist in your Functions file?")
        req = _request(step, observed, desired, ctx, sources)
        rsp = await _call_with_requirements(
            rt, name, req, step.get("requirements") or {}, sources, deadline, out
        )
        if rsp.HasField("requirements"):
            out.requirements[name] = rsp.requirements
        ttl = rsp.meta.ttl.ToTimedelta().total_seconds() if rsp.meta.HasField("ttl") else 0.0
        if ttl > 0 and (out.ttl == 0 or ttl < out.ttl):
            out.ttl = ttl
        desired = rsp.desired
        ctx = rsp.context
        for c in rsp.conditions:
            out.conditions.append((name, c))
        for r in rsp.results:
            if r.severity == fnv1.SEVERITY_FATAL:
                raise PipelineFatalError(name, r.message)
            out.results.append(StepResult(name, r.severity, r.message, r.reason or "ComposeResources"))
    out.desired = desired
    out.context = to_plain(ctx)
    return out
