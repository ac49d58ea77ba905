"""The per-resource algorithm: missing schemas, defaults, unknown fields, CEL, counts, text lines."""

from __future__ import annotations

from typing import Any

from xplane.validate import Resource, SchemaSet, load_extensions, validate_resources


def crd(
    kind: str = "Bucket",
    group: str = "s3.example.org",
    version: str = "v1",
    spec_schema: dict[str, Any] | None = None,
    openapi: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A cluster-scoped CRD of one served version; ``openapi`` replaces its whole schema."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.lower()}s.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": kind.lower() + "s"},
            "scope": "Cluster",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": openapi
                        or {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema
                                or {
                                    "type": "object",
                                    "required": ["forProvider"],
                                    "properties": {
                                        "forProvider": {
                                            "type": "object",
                                            "required": ["region"],
                                            "x-kubernetes-validations": [
                                                {
                                                    "rule": "self.acl != 'public' || self.region == 'eu'",
                                                    "message": "public buckets only in eu",
                                                }
                                            ],
                                            "properties": {
                                                "region": {"type": "string"},
                                                "acl": {"type": "string", "default": "private"},
                                            },
                                        }
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def bucket(name: str, **for_provider: Any) -> dict[str, Any]:
    return {
        "apiVersion": "s3.example.org/v1",
        "kind": "Bucket",
        "metadata": {"name": name},
        "spec": {"forProvider": for_provider},
    }


def run(ext: list[dict[str, Any]], docs: list[dict[str, Any]]) -> tuple[list[str], Any]:
    schemas = load_extensions(ext).schemas
    report = validate_resources(schemas, [Resource(d) for d in docs])
    return report.lines(), report


def test_counts_lines_and_error_texts() -> None:
    lines, report = run(
        [crd()],
        [
            bucket("ok", region="us"),
            bucket("noregion"),
            bucket("public", region="us", acl="public"),
            bucket("extra", region="eu", colour="red"),
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}},
        ],
    )
    gvk = "s3.example.org/v1, Kind=Bucket"
    assert lines == [
        f"[✓] {gvk}, ok validated successfully",
        f"[x] schema validation error {gvk}, noregion : spec.forProvider.region: Required value",
        f'[x] CEL validation error {gvk}, public : spec.forProvider: Invalid value: "object": public buckets only in eu',
        f'[x] schema validation error {gvk}, extra : spec.forProvider.colour: Invalid value: "colour": unknown field: "colour"',
        "[!] could not find CRD/XRD for: /v1, Kind=Secret",
        "Total 5 resources: 1 missing schemas, 1 success cases, 3 failure cases",
    ]
    assert report.to_dict()["summary"] == {"total": 5, "valid": 1, "invalid": 3, "missingSchemas": 1}
    assert report.to_dict()["resources"][3]["errors"][0]["type"] == "unknownField"


def test_defaults_apply_before_cel_and_the_input_is_not_changed() -> None:
    doc = bucket("d", region="us")
    lines, _ = run([crd()], [doc])
    assert lines[0].startswith("[✓]")
    assert "acl" not in doc["spec"]["forProvider"]


def test_last_crd_for_a_gvk_wins_and_errors_are_not_duplicated() -> None:
    loose = crd(spec_schema={"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    lines, _ = run([crd(), loose], [bucket("b")])
    assert lines == [
        "[✓] s3.example.org/v1, Kind=Bucket, b validated successfully",
        "Total 1 resources: 0 missing schemas, 1 success cases, 0 failure cases",
    ]
    lines, _ = run([loose, crd(), crd()], [bucket("b")])
    assert (
        lines.count(
            "[x] schema validation error s3.example.org/v1, Kind=Bucket, b : spec.forProvider.region: Required value"
        )
        == 1
    )


def test_nameless_resources_use_the_composition_resource_name_annotation() -> None:
    doc = bucket("", region="us")
    doc["metadata"] = {"annotations": {"crossplane.io/composition-resource-name": "my-bucket"}}
    lines, _ = run([crd()], [doc])
    assert lines[0] == "[✓] s3.example.org/v1, Kind=Bucket, my-bucket validated successfully"


def test_composition_function_inputs_are_validated_before_the_composition() -> None:
    input_crd = crd("Resources", "pt.fn.crossplane.io", "v1beta1", {"type": "object"})
    input_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["resources"] = {
        "type": "array",
        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
    }
    comp = {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": "c"},
        "spec": {
            "mode": "Pipeline",
            "pipeline": [
                {
                    "step": "pt",
                    "functionRef": {"name": "f"},
                    "input": {
                        "apiVersion": "pt.fn.crossplane.io/v1beta1",
                        "kind": "Resources",
                        "resources": [{"base": {}}],
                    },
                }
            ],
        },
    }
    lines, _report = run([input_crd], [comp])
    assert lines == [
        "[x] schema validation error pt.fn.crossplane.io/v1beta1, Kind=Resources,  : resources[0].name: Required value",
        "[x] schema validation error pt.fn.crossplane.io/v1beta1, Kind=Resources,  : "
        'resources[0].base: Invalid value: "base": unknown field: "base"',
        "[!] could not find CRD/XRD for: apiextensions.crossplane.io/v1, Kind=Composition",
        "Total 2 resources: 1 missing schemas, 0 success cases, 1 failure cases",
    ]


def test_xrd_extensions_validate_xrs_and_claims() -> None:
    xrd = {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": "xdbs.example.org"},
        "spec": {
            "group": "example.org",
            "names": {"kind": "XDB", "plural": "xdbs"},
            "claimNames": {"kind": "DB", "plural": "dbs"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "referenceable": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    schemas = SchemaSet()
    assert schemas.add(xrd)
    report = validate_resources(
        schemas,
        [
            Resource(
                {
                    "apiVersion": "example.org/v1",
                    "kind": "XDB",
                    "metadata": {"name": "x"},
                    "spec": {
                        "size": 1,
                        "compositionRef": {"name": "c"},
                        "compositionUpdatePolicy": "Sometimes",
                    },
                }
            ),
            Resource(
                {
                    "apiVersion": "example.org/v1",
                    "kind": "DB",
                    "metadata": {"name": "c", "namespace": "d"},
                    "spec": {"size": 0, "compositeDeletePolicy": "Foreground"},
                }
            ),
            Resource(
                {"apiVersion": "example.org/v1", "kind": "XDB", "metadata": {"name": "x" * 64}, "spec": {}}
            ),
        ],
    )
    assert report.lines() == [
        '[x] schema validation error example.org/v1, Kind=XDB, x : spec.compositionUpdatePolicy: Unsupported value: "Sometimes": supported values: "Automatic", "Manual"',
        "[x] schema validation error example.org/v1, Kind=DB, c : spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
        f"[x] schema validation error example.org/v1, Kind=XDB, {'x' * 64} : metadata.name: Too long: may not be more than 63 bytes",
        "Total 3 resources: 0 missing schemas, 0 success cases, 3 failure cases",
    ]


def test_a_schema_that_is_not_structural_is_reported() -> None:
    bad = crd(spec_schema={"properties": {"a": {"type": "string"}}})
    lines, _ = run([bad], [bucket("b")])
    assert lines[0].startswith("[x] schema validation error s3.example.org/v1, Kind=Bucket, b : ")
    assert lines[0].endswith(
        ': CustomResourceDefinition.apiextensions.k8s.io "buckets.s3.example.org" is invalid: '
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: "
        "must not be empty for specified object fields"
    )
