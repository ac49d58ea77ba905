"""The legacy ``FunctionIO`` YAML of the old xfn (Crossplane v1.11-v1.13), to and from the current protocol.

Request -> FunctionIO: ``config`` = input; ``observed``/``desired`` composite and resources (maps become
lists of ``{name, resource, connectionDetails: [{name, value}]}``). The desired composite starts as the
observed XR when a step gets none (old functions expect to edit it); if a function leaves it unchanged
the response carries the request's desired composite as it was.

FunctionIO -> response: desired state (``ready: true`` or a ``readinessChecks`` entry of type ``None``
marks a resource ready), ``results`` (``Fatal``/``Warning``/``Normal``), the request's context passed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xplane.fn.proto import dict_to_struct, fnv1, struct_to_dict

# PyYAML is imported by the calls that need it, not with this module (which the exec kind imports):
# a runner with no functionio function and no function.yaml never loads it (about 0.9 MiB resident).

API_VERSION = "apiextensions.crossplane.io/v1alpha1"
KIND = "FunctionIO"
_SEVERITIES = {
    "fatal": fnv1.SEVERITY_FATAL,
    "warning": fnv1.SEVERITY_WARNING,
    "normal": fnv1.SEVERITY_NORMAL,
}


class FunctionIOError(ValueError):
    """The function's output is not a usable FunctionIO document."""


def _details_out(details: Mapping[str, bytes]) -> list[dict[str, str]]:
    return [{"name": k, "value": v.decode("utf-8", errors="replace")} for k, v in sorted(details.items())]


def _resource_out(r: fnv1.Resource) -> dict[str, Any]:
    out: dict[str, Any] = {"resource": struct_to_dict(r.resource)}
    if r.connection_details:
        out["connectionDetails"] = _details_out(r.connection_details)
    return out


def _state_out(state: fnv1.State) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if state.HasField("composite"):
        out["composite"] = _resource_out(state.composite)
    if state.resources:
        out["resources"] = [{"name": n, **_resource_out(r)} for n, r in state.resources.items()]
    return out


def request_to_functionio(req: fnv1.RunFunctionRequest) -> dict[str, Any]:
    """A FunctionIO document (as a dict) for a request."""
    doc: dict[str, Any] = {}
    if req.HasField("input"):
        doc["config"] = struct_to_dict(req.input)
    doc["observed"] = _state_out(req.observed)
    desired = _state_out(req.desired)
    seed = "composite" not in desired or not desired["composite"].get("resource")
    if seed and req.observed.HasField("composite"):
        desired["composite"] = _resource_out(req.observed.composite)
    doc["desired"] = desired
    doc["results"] = []
    return doc


def dump_request(req: fnv1.RunFunctionRequest) -> bytes:
    """The request as FunctionIO YAML (no apiVersion/kind, as Crossplane wrote it)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(request_to_functionio(req), Dumper=dumper, sort_keys=False).encode()


def _details_in(raw: Any, where: str) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise FunctionIOError(f"{where}.connectionDetails must be a list")
    out: dict[str, bytes] = {}
    for item in raw:
        if not isinstance(item, Mapping) or "name" not in item:
            raise FunctionIOError(f"{where}.connectionDetails items need a name")
        value = item.get("value")
        if value is None:
            continue  # a derived detail (fromConnectionSecretKey, ...): nothing to publish here
        out[str(item["name"])] = str(value).encode()
    return out


def _fill_resource(dst: fnv1.Resource, raw: Any, where: str) -> None:
    if not isinstance(raw, Mapping):
        raise FunctionIOError(f"{where} must be a mapping")
    res = raw.get("resource") or {}
    if not isinstance(res, Mapping):
        raise FunctionIOError(f"{where}.resource must be a mapping")
    dst.resource.CopyFrom(dict_to_struct(dict(res)))
    for k, v in _details_in(raw.get("connectionDetails"), where).items():
        dst.connection_details[k] = v
    checks = raw.get("readinessChecks") or []
    ready = raw.get("ready")
    if ready is True or any(isinstance(c, Mapping) and c.get("type") == "None" for c in checks):
        dst.ready = fnv1.READY_TRUE
    elif ready is False:
        dst.ready = fnv1.READY_FALSE


def parse_response(data: bytes, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
    """Turn the function's FunctionIO YAML into a response. Raises FunctionIOError."""
    import yaml

    try:
        doc = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # safe, C when available
    except yaml.YAMLError as e:
        raise FunctionIOError(f"output is not YAML: {e}") from e
    if not isinstance(doc, Mapping):
        raise FunctionIOError(f"output is not a FunctionIO mapping (got {type(doc).__name__})")
    kind = doc.get("kind")
    if kind is not None and kind != KIND:
        raise FunctionIOError(f"output kind is {kind!r}, expected {KIND}")
    rsp = fnv1.RunFunctionResponse()
    rsp.meta.tag = req.meta.tag
    if req.HasField("context"):
        rsp.context.CopyFrom(req.context)
    desired = doc.get("desired") or {}
    if not isinstance(desired, Mapping):
        raise FunctionIOError("desired must be a mapping")
    seeded = request_to_functionio(req)["desired"].get("composite")
    composite = desired.get("composite")
    if composite is not None:
        if composite == seeded and not (req.desired.HasField("composite") and req.desired.composite.resource):
            rsp.desired.composite.CopyFrom(req.desired.composite)  # untouched: keep what came in
        else:
            _fill_resource(rsp.desired.composite, composite, "desired.composite")
    resources = desired.get("resources") or []
    if not isinstance(resources, list):
        raise FunctionIOError("desired.resources must be a list")
    for i, item in enumerate(resources):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise FunctionIOError(f"desired.resources[{i}] needs a name")
        _fill_resource(rsp.desired.resources[item["name"]], item, f"desired.resources[{i}]")
    results = doc.get("results") or []
    if not isinstance(results, list):
        raise FunctionIOError("results must be a list")
    for i, r in enumerate(results):
        if not isinstance(r, Mapping):
            raise FunctionIOError(f"results[{i}] must be a mapping")
        sev = _SEVERITIES.get(str(r.get("severity", "")).lower())
        if sev is None:
            raise FunctionIOError(
                f"results[{i}].severity must be Fatal, Warning or Normal, got {r.get('severity')!r}"
            )
        rsp.results.add(severity=sev, message=str(r.get("message", "")))
    return rsp
