"""Crossplane's own CRDs shipped with xplane (``--crossplane-version``)."""

from __future__ import annotations

import io
import tarfile
from importlib import resources
from typing import Any

import pytest

from xplane.validate import (
    Resource,
    SchemaSet,
    ValidateError,
    add_crossplane_schemas,
    crossplane_crds,
    resolve_crossplane_version,
    shipped_versions,
    validate_resources,
)

SHIPPED = ("v1.20.11", "v2.2.4", "v2.3.4")


def composition(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": {"apiVersion": "example.org/v1alpha1", "kind": "XNetwork"},
            "mode": "Pipeline",
            **spec,
        },
    }


GOOD = composition("good", pipeline=[{"step": "a", "functionRef": {"name": "function-a"}}])
BAD = composition("bad", pipeline=[{"step": "a", "functionRef": {"name": "function-a"}, "colour": "red"}])
GVK = "apiextensions.crossplane.io/v1, Kind=Composition"


def test_the_shipped_versions_and_the_default() -> None:
    assert shipped_versions() == SHIPPED
    assert resolve_crossplane_version(None) == "v2.3.4"
    assert resolve_crossplane_version("2.2.4") == "v2.2.4"
    assert resolve_crossplane_version("v1.20") == "v1.20.11"
    assert resolve_crossplane_version("stable") == "v2.3.4"


def test_an_unknown_version_lists_the_shipped_ones() -> None:
    with pytest.raises(
        ValidateError, match=r"Crossplane v1\.9\.0: .*shipped: v1\.20\.11, v2\.2\.4, v2\.3\.4"
    ):
        resolve_crossplane_version("v1.9.0")


@pytest.mark.parametrize("version", SHIPPED)
def test_a_composition_against_the_shipped_crds(version: str) -> None:
    schemas = SchemaSet()
    docs = [Resource(GOOD), Resource(BAD)]
    added = add_crossplane_schemas(schemas, docs, version)
    assert "compositions.apiextensions.crossplane.io" in added
    assert not any(n.startswith("providers.") for n in added)  # only the groups resources need
    lines = validate_resources(schemas, docs).lines(skip_success=False)
    assert lines == [
        f"[✓] {GVK}, good validated successfully",
        f'[x] schema validation error {GVK}, bad : spec.pipeline[0].colour: Invalid value: "colour": '
        'unknown field: "colour"',
        "Total 2 resources: 0 missing schemas, 1 success cases, 1 failure cases",
    ]


@pytest.mark.parametrize("version", SHIPPED)
def test_pkg_kinds_are_shipped(version: str) -> None:
    kinds = {c["spec"]["names"]["kind"] for c in crossplane_crds(version, ["pkg.crossplane.io"])}
    assert kinds >= {
        "Configuration",
        "ConfigurationRevision",
        "Provider",
        "ProviderRevision",
        "Function",
        "FunctionRevision",
        "DeploymentRuntimeConfig",
        "ImageConfig",
        "Lock",
    }


def test_an_extension_keeps_its_own_schema_for_a_crossplane_kind() -> None:
    mine = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "compositions.apiextensions.crossplane.io"},
        "spec": {
            "group": "apiextensions.crossplane.io",
            "names": {"kind": "Composition", "plural": "compositions"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    }
    schemas = SchemaSet()
    schemas.add(mine)
    assert add_crossplane_schemas(schemas, [Resource(BAD)], "v2.3.4") == []


def test_the_shipped_files_are_upstream_crds_with_attribution() -> None:
    root = resources.files("xplane.validate").joinpath("crds")
    notice = root.joinpath("README.md").read_text()
    assert "github.com/crossplane/crossplane" in notice and "Apache License" in notice
    assert "Apache License" in root.joinpath("LICENSE").read_text()
    total = 0
    for version in SHIPPED:
        raw = root.joinpath(f"{version}.tar.xz").read_bytes()
        total += len(raw)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:xz") as tar:
            names = tar.getnames()
            assert "apiextensions.crossplane.io_compositions.yaml" in names
            for m in tar:
                data = tar.extractfile(m)
                assert data is not None
                text = data.read().removeprefix(b"---\n")
                assert text.startswith(
                    b"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                )
    assert total < 200_000  # about 55 kB a release
