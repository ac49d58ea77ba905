"""Classic ``crossplane render`` (v1.17-v2.2) on top of the pipeline: pre-checks, observed state,
composed-resource metadata, XR conditions and the output documents (functions.md §3, §6)."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.compose.errors import ComposeError, q
from xplane.compose.fetch import ResourceFetcher, SchemaFetcher
from xplane.compose.pipeline import PipelineOutput, Sources, run_pipeline
from xplane.compose.runtimes import Runtime, declared_timeouts, function_timeouts, open_runtimes
from xplane.compose.shapes import ShapeError, check_inputs, mapping, object_list, string_map_to_change
from xplane.compose.values import to_plain
from xplane.fieldtypes import string
from xplane.fn import fnv1  # the protocol's messages: every function of this module uses them

if TYPE_CHECKING:
    from xplane.compose.packagerun import PackageRunner

FIXED_TIME = "2024-01-01T00:00:00Z"
COMPOSITE_LABEL = "crossplane.io/composite"
RESOURCE_NAME_ANNOTATION = "crossplane.io/composition-resource-name"
SYSTEM_CONDITIONS = frozenset({"Ready", "Synced", "Healthy", "UpToDate", "Responsive"})
SEVERITY_NAMES = {0: "SEVERITY_UNSPECIFIED", 1: "SEVERITY_FATAL", 2: "SEVERITY_WARNING", 3: "SEVERITY_NORMAL"}
STATUS_NAMES = {2: "True", 3: "False"}


@dataclass
class RenderInputs:
    """Everything one render reads (already loaded from files)."""

    xr: dict[str, Any]
    composition: Mapping[str, Any]
    functions: Sequence[Mapping[str, Any]]
    observed: Sequence[Mapping[str, Any]] = ()
    extra_resources: Sequence[Mapping[str, Any]] = ()
    required_resources: Sequence[Mapping[str, Any]] = ()
    required_schemas: Sequence[Mapping[str, Any]] = ()
    credentials: Sequence[Mapping[str, Any]] = ()
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RenderOutput:
    """The rendered XR, composed resources, non-fatal results and final context."""

    xr: dict[str, Any]
    composed: list[dict[str, Any]]
    results: list[dict[str, Any]]
    context: dict[str, Any]
    pipeline: PipelineOutput

    def documents(self, *, include_results: bool = False, include_context: bool = False) -> list[Any]:
        """The documents classic render prints, in its order."""
        docs: list[Any] = [self.xr, *self.composed]
        if include_results:
            docs.extend(self.results)
        if include_context:
            docs.append(
                {"apiVersion": "render.crossplane.io/v1beta1", "kind": "Context", "fields": self.context}
            )
        return docs


def precheck(xr: Mapping[str, Any], comp: Mapping[str, Any]) -> None:
    """Render's checks of the XR against the Composition, in upstream's order (§3.3 1-4)."""
    spec = comp.get("spec") or {}
    ref = spec.get("compositeTypeRef") or {}
    if ref.get("kind") != xr.get("kind"):
        raise ComposeError(
            f"composition's compositeTypeRef.kind ({ref.get('kind', '')}) does not match "
            f"XR's kind ({xr.get('kind', '')})"
        )
    if ref.get("apiVersion") != xr.get("apiVersion"):
        raise ComposeError(
            f"composition's compositeTypeRef.apiVersion ({ref.get('apiVersion', '')}) does not "
            f"match XR's apiVersion ({xr.get('apiVersion', '')})"
        )
    cname = str((comp.get("metadata") or {}).get("name", ""))
    labels = (comp.get("metadata") or {}).get("labels") or {}
    xspec = xr.get("spec") or {}
    selector = (
        (xspec.get("crossplane") or {}).get("compositionSelector") or xspec.get("compositionSelector") or {}
    )
    for k, want in (selector.get("matchLabels") or {}).items():
        if k not in labels:
            raise ComposeError(f"composition {q(cname)} is missing required label {q(k)}")
        if labels[k] != want:
            raise ComposeError(
                f"composition {q(cname)} has incorrect value for label {q(k)}: "
                f"want {q(str(want))}, got {q(str(labels[k]))}"
            )
    if spec.get("mode") != "Pipeline":
        raise ComposeError(
            f"render only supports Composition Function pipelines: Composition {q(cname)} "
            "must use spec.mode: Pipeline"
        )


def observed_state(xr: Mapping[str, Any], observed: Sequence[Mapping[str, Any]]) -> fnv1.State:
    """The observed State: the XR and composed resources keyed by their resource-name annotation."""
    st = fnv1.State()
    st.composite.resource.update(xr)
    for obj in observed:
        st.resources[resource_name(obj)].resource.update(obj)
    return st


def stable_n_and_some_more(n: int, names: Sequence[str]) -> str:
    """Crossplane's ``StableNAndSomeMore``: sorted, ``a, b, and c`` / ``a, b, c, and N more``."""
    s = sorted(names)
    if len(s) <= n - 1:
        return ", ".join(s)
    if len(s) == n:
        return ", ".join(s[:-1]) + ", and " + s[-1]
    return ", ".join(s[:n]) + f", and {len(s) - n} more"


#: the metadata fields render keeps or sets, with their paths for errors (built once)
_NAME_FIELDS = tuple((f, f"metadata.{f}") for f in ("name", "generateName", "namespace"))


def resource_name(obj: Mapping[str, Any]) -> str:
    """A composed resource's ``crossplane.io/composition-resource-name`` annotation (its key), or ``""``."""
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(RESOURCE_NAME_ANNOTATION, ""))


class ComposedMetadata:
    """Render's metadata for composed resources (§3.6 item 2), from one XR and its observed resources.

    What comes from the XR (the name prefix, the controller reference, claim labels) is worked out
    once per render; :meth:`apply` then sets it on each composed resource.
    """

    def __init__(self, xr: Mapping[str, Any], observed: Mapping[str, Mapping[str, Any]]) -> None:
        xmeta = xr.get("metadata") or {}
        xlabels = xmeta.get("labels") or {}
        self.observed = observed
        self.prefix = str(xlabels.get(COMPOSITE_LABEL) or xmeta.get("name", ""))
        self.namespace = xmeta.get("namespace")
        self.claim: dict[str, Any] = {}
        if "crossplane.io/claim-name" in xlabels and "crossplane.io/claim-namespace" in xlabels:
            self.claim = {
                k: xlabels[k] for k in ("crossplane.io/claim-name", "crossplane.io/claim-namespace")
            }
        self.owner = {
            "apiVersion": xr.get("apiVersion", ""),
            "kind": xr.get("kind", ""),
            "name": xmeta.get("name") or "",
            "uid": xmeta.get("uid") or "",
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def apply(self, obj: dict[str, Any], key: str) -> dict[str, Any]:
        """``obj`` with names kept, generateName, the composite label, the annotation and the owner.

        A metadata field of the wrong type (labels that are a list, ...) raises :class:`ShapeError`.
        """
        meta = mapping(obj, "metadata", "metadata")
        for f, path in _NAME_FIELDS:
            string(meta, f, path)
        seen = self.observed.get(key)
        if seen is not None:
            smeta = seen.get("metadata") or {}
            for f in ("namespace", "name", "generateName"):
                if smeta.get(f):
                    meta[f] = smeta[f]
        if not meta.get("name") and not meta.get("generateName"):
            meta["generateName"] = self.prefix + "-"
        if self.namespace:
            meta["namespace"] = self.namespace
        string_map_to_change(meta, "annotations", "metadata.annotations")[RESOURCE_NAME_ANNOTATION] = key
        labels = string_map_to_change(meta, "labels", "metadata.labels")
        labels[COMPOSITE_LABEL] = self.prefix
        if self.claim:
            labels.update(self.claim)
        owners = object_list(meta, "ownerReferences", "metadata.ownerReferences")
        uid, controlled = self.owner["uid"], False
        for o in owners:
            if o.get("controller"):
                if o.get("uid") != uid:
                    raise ComposeError(
                        f"cannot render composed resource {q(key)}: it is already controlled by "
                        f"{o.get('kind', '')} {q(str(o.get('name', '')))}"
                    )
                controlled = True
        if not controlled:
            owners.append(dict(self.owner))
        return obj


def xr_conditions(out: PipelineOutput) -> list[dict[str, Any]]:
    """Ready (upstream's reasons/messages) then the functions' custom conditions, fixed timestamps."""
    desired = out.desired
    ready: dict[str, Any] = {
        "lastTransitionTime": FIXED_TIME,
        "reason": "Available",
        "status": "True",
        "type": "Ready",
    }
    if desired.composite.ready == fnv1.READY_FALSE:
        ready.update(reason="Creating", status="False")
    elif desired.composite.ready != fnv1.READY_TRUE:
        unready = [k for k, r in desired.resources.items() if r.ready != fnv1.READY_TRUE]
        if unready:
            ready.update(
                reason="Creating",
                status="False",
                message=f"Unready resources: {stable_n_and_some_more(3, unready)}",
            )
    conds = [ready]
    for _step, c in out.conditions:
        if c.type in SYSTEM_CONDITIONS:
            continue
        d: dict[str, Any] = {
            "lastTransitionTime": FIXED_TIME,
            "reason": c.reason,
            "status": STATUS_NAMES.get(c.status, "Unknown"),
            "type": c.type,
        }
        if c.HasField("message"):
            d["message"] = c.message
        for i, old in enumerate(conds):
            if old["type"] == d["type"]:
                conds[i] = d
                break
        else:
            conds.append(d)
    return conds


def _returned_by(out: PipelineOutput) -> str:
    """`` (from pipeline step "s", Function "f")``: the step whose answer is the desired state."""
    if not out.last_step:
        return ""
    return f" (from pipeline step {q(out.last_step)}, Function {q(out.last_function)})"


def assemble(inputs: RenderInputs, out: PipelineOutput, *, include_full_xr: bool = False) -> RenderOutput:
    """The render documents from a finished pipeline."""
    xr = inputs.xr
    dxr: dict[str, Any] = to_plain(out.desired.composite.resource)
    xmeta = xr.get("metadata") or {}
    dxr["apiVersion"] = xr.get("apiVersion")
    dxr["kind"] = xr.get("kind")
    try:
        meta = mapping(dxr, "metadata", "metadata")
        status = mapping(dxr, "status", "status")
    except ShapeError as e:
        raise ComposeError(f"the desired composite resource{_returned_by(out)}: {e.message}") from None
    meta["name"] = xmeta.get("name", "")
    if xmeta.get("namespace"):
        meta["namespace"] = xmeta["namespace"]
    if include_full_xr:
        if "spec" not in xr:
            raise ComposeError("cannot render composite resource: the input XR has no spec to include (-x)")
        dxr["spec"] = copy.deepcopy(xr["spec"])
        dxr["metadata"] = copy.deepcopy(xmeta)
    status["conditions"] = xr_conditions(out)
    observed = {resource_name(o): o for o in inputs.observed}
    # upstream's order: by composition-resource-name, which is the key (set as that annotation)
    resources = out.desired.resources
    composed = []
    metadata = ComposedMetadata(xr, observed)
    for k in sorted(resources):
        try:
            composed.append(metadata.apply(to_plain(resources[k].resource), k))
        except ShapeError as e:
            raise ComposeError(
                f"cannot render composed resource {q(k)}{_returned_by(out)}: {e.message}"
            ) from None
    results = [
        {
            "apiVersion": "render.crossplane.io/v1beta1",
            "kind": "Result",
            "step": r.step,
            "severity": SEVERITY_NAMES.get(r.severity, "SEVERITY_UNSPECIFIED"),
            "message": r.message,
        }
        for r in out.results
    ]
    return RenderOutput(dxr, composed, results, out.context, out)


async def render_async(
    inputs: RenderInputs,
    *,
    functions_dir: Path | None = None,
    timeout: float = 60.0,
    runtimes: Mapping[str, Runtime] | None = None,
    include_full_xr: bool = False,
    step_timeout: float | None = None,
    packages: PackageRunner | None = None,
) -> RenderOutput:
    """Pre-check, open the runtimes, run the pipeline and assemble the output.

    ``timeout`` bounds opening the runtimes (when they are not given) and the pipeline,
    ``step_timeout`` each step; an in-process function's ``function.yaml`` ``timeout``, and over it
    a Function's ``render.xplane.io/step-timeout`` annotation, override ``step_timeout`` for its
    steps. ``packages`` runs the Functions found neither in ``functions_dir`` nor on a server from
    their packages (:func:`open_runtimes`).
    """
    deadline = time.monotonic() + timeout
    check_inputs(
        inputs.xr,
        inputs.composition,
        inputs.functions,
        {
            "observed resource": inputs.observed,
            "extra resource": inputs.extra_resources,
            "required resource": inputs.required_resources,
        },
        inputs.credentials,
        inputs.required_schemas,
    )
    precheck(inputs.xr, inputs.composition)
    per_function = function_timeouts(inputs.functions)
    owned = runtimes is None
    if runtimes is None:
        # loading may block (imports, compiles, pulls): a worker thread, as xfn's loader does
        rts: Mapping[str, Runtime] = await asyncio.to_thread(
            open_runtimes, list(inputs.functions), functions_dir=functions_dir, packages=packages
        )
    else:
        rts = runtimes
    # a Function's annotation wins over its function.yaml, which wins over step_timeout
    per_function = {**declared_timeouts(rts), **per_function}
    sources = Sources(
        extra=ResourceFetcher([*inputs.extra_resources, *inputs.required_resources]),
        required=ResourceFetcher(inputs.required_resources),
        schemas=SchemaFetcher(inputs.required_schemas),
        secrets=inputs.credentials,
    )
    try:
        steps = (inputs.composition.get("spec") or {}).get("pipeline") or []
        out = await run_pipeline(
            steps,
            rts,
            observed_state(inputs.xr, inputs.observed),
            context=inputs.context,
            sources=sources,
            timeout=max(0.001, deadline - time.monotonic()),
            step_timeout=step_timeout,
            function_timeouts=per_function,
        )
    finally:
        if owned:
            await asyncio.gather(*(rt.close() for rt in rts.values()), return_exceptions=True)
    return assemble(inputs, out, include_full_xr=include_full_xr)


def render(inputs: RenderInputs, **kw: Any) -> RenderOutput:
    """:func:`render_async` on a fresh event loop."""
    return asyncio.run(render_async(inputs, **kw))
