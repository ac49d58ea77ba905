"""Inputs and function answers of the wrong shape: a clear error naming the field (and the step that
answered), never a traceback; null fields read as absent, as Kubernetes reads them."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from xplane.compose import (
    ComposeError,
    InProcess,
    RenderInputs,
    apply_xrd_defaults,
    dump_render,
    load_composition,
    load_functions,
    load_schemas,
    load_xr,
    render,
)
from xplane.fn import load_function

XR = {"apiVersion": "example.org/v1", "kind": "XApp", "metadata": {"name": "app"}, "spec": {"region": "eu"}}
FUNCTION = {
    "apiVersion": "pkg.crossplane.io/v1",
    "kind": "Function",
    "metadata": {"name": "function-script"},
    "spec": {"package": "xpkg.example.org/function-script:v1"},
}


def _composition(*inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": "c"},
        "spec": {
            "compositeTypeRef": {"apiVersion": "example.org/v1", "kind": "XApp"},
            "mode": "Pipeline",
            "pipeline": [
                {
                    "step": f"step-{i}",
                    "functionRef": {"name": "function-script"},
                    "input": {"apiVersion": "t/v1", "kind": "I", **inp},
                }
                for i, inp in enumerate(inputs)
            ],
        },
    }


@pytest.fixture
def script(functions_dir: Path) -> dict[str, InProcess]:
    return {"function-script": InProcess("function-script", load_function(functions_dir / "function-script"))}


def _render(script: dict[str, InProcess], *inputs: dict[str, Any], **kw: Any) -> str:
    out = render(
        RenderInputs(xr=copy.deepcopy(XR), composition=_composition(*inputs), functions=[FUNCTION], **kw),
        runtimes=script,
    )
    return dump_render(out.documents())


def _thing(metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "example.org/v1", "kind": "Thing", "metadata": metadata}


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ("oops", "metadata is a string; want an object"),
        ({"labels": ["a"]}, "metadata.labels is an array; want an object"),
        ({"labels": {"tier": 3}}, "metadata.labels.tier is an integer; want a string"),
        ({"annotations": "x"}, "metadata.annotations is a string; want an object"),
        ({"ownerReferences": "x"}, "metadata.ownerReferences is a string; want an array"),
        (
            {"ownerReferences": [{"kind": "A"}, 7]},
            "metadata.ownerReferences[1] is an integer; want an object",
        ),
        ({"name": 5}, "metadata.name is an integer; want a string"),
        ({"generateName": ["x"]}, "metadata.generateName is an array; want a string"),
    ],
)
def test_a_composed_resource_of_the_wrong_shape_names_the_field_and_the_step(
    script: dict[str, InProcess], metadata: Any, problem: str
) -> None:
    with pytest.raises(ComposeError) as e:
        # the second step passes the first's answer on: the desired state is the last step's answer
        _render(script, {"resources": {"bad": _thing(metadata)}}, {"ttl": 1})
    assert e.value.message == (
        f'cannot render composed resource "bad" (from pipeline step "step-1", Function "function-script"): {problem}'
    )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"status": "ready"}, "status is a string; want an object"),
        ({"metadata": [1]}, "metadata is an array; want an object"),
    ],
)
def test_a_desired_xr_of_the_wrong_shape_names_the_field_and_the_step(
    script: dict[str, InProcess], fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ComposeError) as e:
        _render(script, {"composite": fields})
    assert e.value.message == (
        f'the desired composite resource (from pipeline step "step-0", Function "function-script"): {problem}'
    )


def test_null_metadata_fields_read_as_absent(script: dict[str, InProcess]) -> None:
    plain = _render(script, {"resources": {"r": _thing({"name": "n"})}})
    nulls = _render(
        script,
        {
            "resources": {
                "r": _thing({"name": "n", "labels": None, "annotations": None, "ownerReferences": None})
            }
        },
    )
    assert nulls == plain
    assert _render(
        script, {"resources": {"r": {"apiVersion": "v1", "kind": "Thing", "metadata": None}}}
    ) == _render(script, {"resources": {"r": {"apiVersion": "v1", "kind": "Thing"}}})


def _step(**fields: Any) -> dict[str, Any]:
    return {"step": "s", "functionRef": {"name": "function-script"}, **fields}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda i: i.xr.update(metadata=[1]),
            "invalid composite resource: metadata is an array; want an object",
        ),
        (lambda i: i.xr.update(spec="x"), "invalid composite resource: spec is a string; want an object"),
        (
            lambda i: i.xr["metadata"].update(labels={"a": True}),
            "invalid composite resource: metadata.labels.a is a boolean; want a string",
        ),
        (
            lambda i: i.xr["spec"].update(compositionSelector={"matchLabels": ["x"]}),
            "invalid composite resource: spec.compositionSelector.matchLabels is an array; want an object",
        ),
        (
            lambda i: i.composition["spec"].update(pipeline={"s": 1}),
            "invalid Composition: spec.pipeline is an object; want an array",
        ),
        (
            lambda i: i.composition["spec"].update(pipeline=["s"]),
            "invalid Composition: spec.pipeline[0] is a string; want an object",
        ),
        (
            lambda i: i.composition["spec"].update(pipeline=[_step(functionRef="function-script")]),
            "invalid Composition: spec.pipeline[0].functionRef is a string; want an object",
        ),
        (
            lambda i: i.composition["spec"].update(pipeline=[_step(input=[1])]),
            "invalid Composition: spec.pipeline[0].input is an array; want an object",
        ),
        (
            lambda i: i.composition["spec"].update(pipeline=[_step(credentials=[{"secretRef": "x"}])]),
            "invalid Composition: spec.pipeline[0].credentials[0].secretRef is a string; want an object",
        ),
        (
            lambda i: i.composition["spec"].update(pipeline=[_step(requirements={"requiredResources": [3]})]),
            "invalid Composition: spec.pipeline[0].requirements.requiredResources[0] is an integer; want an object",
        ),
        (
            lambda i: i.functions[0]["metadata"].update(annotations=["x"]),
            'invalid Function "function-script": metadata.annotations is an array; want an object',
        ),
        (
            lambda i: i.observed.append({"metadata": {"annotations": "x"}}),
            "invalid observed resource 1: metadata.annotations is a string; want an object",
        ),
        (
            lambda i: i.required_resources.append([1]),
            "invalid required resource 1: the document is an array; want an object",
        ),
        (
            lambda i: i.credentials.append({"metadata": {"name": "s"}, "data": {"k": 1}}),
            "invalid Secret 1 of the function credentials: data.k is an integer; want a string",
        ),
    ],
)
def test_inputs_of_the_wrong_shape_are_refused_before_anything_runs(
    script: dict[str, InProcess], change: Any, message: str
) -> None:
    inputs = RenderInputs(
        xr=copy.deepcopy(XR),
        composition=_composition({}),
        functions=[copy.deepcopy(FUNCTION)],
        observed=[],
        required_resources=[],
        credentials=[],
    )
    change(inputs)
    calls = []

    class Recording(InProcess):
        async def run(self, req: Any, *, timeout: float) -> Any:
            calls.append(req)
            return await super().run(req, timeout=timeout)

    rts = {k: Recording(k, v.function) for k, v in script.items()}
    with pytest.raises(ComposeError) as e:
        render(inputs, runtimes=rts)
    assert e.value.message == message
    assert calls == []


def test_loaders_name_the_file_and_the_field(tmp_path: Path) -> None:
    xr = tmp_path / "xr.yaml"
    xr.write_text(yaml.safe_dump({**XR, "metadata": {"name": "a", "labels": ["x"]}}))
    with pytest.raises(ComposeError) as e:
        load_xr(xr)
    assert (
        e.value.message
        == f'cannot load composite resource from "{xr}": metadata.labels is an array; want an object'
    )
    comp = tmp_path / "composition.yaml"
    bad = _composition({})
    bad["spec"]["pipeline"][0]["step"] = ["x"]
    comp.write_text(yaml.safe_dump(bad))
    with pytest.raises(ComposeError) as e:
        load_composition(comp)
    assert (
        e.value.message
        == f'cannot load Composition from "{comp}": spec.pipeline[0].step is an array; want a string'
    )
    fns = tmp_path / "functions.yaml"
    fns.write_text(yaml.safe_dump({**FUNCTION, "metadata": {"name": "f", "annotations": {"a": 1}}}))
    with pytest.raises(ComposeError) as e:
        load_functions(fns)
    assert e.value.message == (
        f'cannot load functions from "{fns}": Function "f": metadata.annotations.a is an integer; want a string'
    )
    fns.write_text("- 1\n")  # a document that is not an object
    with pytest.raises(ComposeError) as e:
        load_functions(fns)
    assert e.value.message == f'cannot load functions from "{fns}": not a function: /'
    comp.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": ["x"]}))
    with pytest.raises(ComposeError) as e:
        load_composition(comp)
    assert e.value.message == f'cannot load Composition from "{comp}": not a composition: ConfigMap/'


def test_the_cli_reports_a_bad_xr_without_a_traceback(tmp_path: Path, render_cli: Any) -> None:
    (tmp_path / "xr.yaml").write_text(yaml.safe_dump({**XR, "spec": ["x"]}))
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(_composition({})))
    (tmp_path / "functions.yaml").write_text(
        yaml.safe_dump({**FUNCTION, "metadata": {"name": "f", "annotations": None}})
    )
    got = render_cli(["xr.yaml", "composition.yaml", "functions.yaml"], cwd=tmp_path)
    assert got.code == 1
    assert 'cannot load composite resource from "xr.yaml": spec is an array; want an object' in got.err
    assert "Traceback" not in got.err


def test_an_xrd_of_the_wrong_shape_is_refused_and_a_bad_sub_schema_defaults_nothing() -> None:
    with pytest.raises(ComposeError) as e:
        apply_xrd_defaults(copy.deepcopy(XR), [1])  # type: ignore[arg-type]
    assert e.value.message == "invalid XRD: the document is an array; want an object"
    xrd: dict[str, Any] = {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "spec": {"group": "example.org", "versions": [{"name": "v1", "schema": {"openAPIV3Schema": [1]}}]},
    }
    with pytest.raises(ComposeError) as e:
        apply_xrd_defaults(copy.deepcopy(XR), xrd)
    assert (
        e.value.message == "invalid XRD: spec.versions[0].schema.openAPIV3Schema is an array; want an object"
    )
    props = {"spec": {"properties": {"region": "not a schema", "size": {"default": 3}}}}
    xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {"properties": props}
    assert apply_xrd_defaults(copy.deepcopy(XR), xrd)["spec"] == {"region": "eu", "size": 3}


def test_openapi_documents_of_the_wrong_shape_are_refused(
    tmp_path: Path, script: dict[str, InProcess]
) -> None:
    doc = tmp_path / "a.json"
    for text, problem in [
        ("[1]", "the document is an array; want an object"),
        ('{"components": {"schemas": []}}', "components.schemas is an array; want an object"),
        (
            '{"components": {"schemas": {"A": {"x-kubernetes-group-version-kind": {}}}}}',
            "components.schemas.A.x-kubernetes-group-version-kind is an object; want an array",
        ),
    ]:
        doc.write_text(text)
        with pytest.raises(ComposeError) as e:
            load_schemas(tmp_path)
        assert e.value.message == f'cannot parse OpenAPI JSON from "{doc}": {problem}'
    with pytest.raises(ComposeError) as e:  # given to the library directly
        _render(script, {}, required_schemas=[{"components": "x"}])
    assert (
        e.value.message
        == "invalid OpenAPI document 1 of the required schemas: components is a string; want an object"
    )


@pytest.mark.parametrize("case", ["multistep", "requirements", "credentials", "conditions"])
def test_random_wrong_types_anywhere_in_the_inputs_end_in_a_render_or_a_compose_error(
    case: str, functions_dir: Path
) -> None:
    """Any field of any input replaced by a value of another type (or removed): never a traceback."""
    import random

    from tests.compose.conftest import CASES
    from tests.support.mutate import mutate
    from xplane.compose import load_stream

    d = CASES / case
    args = (d / "args").read_text().split()
    extra = {flag: d / arg for flag, arg in itertools.pairwise(args) if (d / arg).is_file()}
    base = RenderInputs(
        xr=load_xr(d / "xr.yaml"),
        composition=load_composition(d / "composition.yaml"),
        functions=load_functions(d / "functions.yaml"),
        required_resources=load_stream(extra["-e"]) if "-e" in extra else [],
        credentials=load_stream(extra["--function-credentials"]) if "--function-credentials" in extra else [],
    )
    rng = random.Random(case)
    outcomes = {"rendered": 0, "refused": 0}
    for _ in range(60):
        inputs = copy.deepcopy(base)
        docs = [
            inputs.xr,
            inputs.composition,
            *inputs.functions,
            *inputs.required_resources,
            *inputs.credentials,
        ]
        mutate(rng, docs)
        try:
            dump_render(
                render(inputs, functions_dir=functions_dir, timeout=20).documents(include_results=True)
            )
            outcomes["rendered"] += 1
        except ComposeError as e:  # what every failure must be: a message, no traceback
            assert e.message
            outcomes["refused"] += 1
    assert outcomes["rendered"] and outcomes["refused"], outcomes  # both kinds of outcome were exercised
