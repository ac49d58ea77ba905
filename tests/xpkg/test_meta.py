"""Package meta types: every dependsOn form, precedence, capabilities, decoding errors."""

from __future__ import annotations

from typing import Any

import pytest

from xplane.xpkg.errors import MetaError, UnknownKindError
from xplane.xpkg.meta import (
    ERR_INVALID_DEPENDENCY,
    Configuration,
    Dependency,
    Function,
    PackageMeta,
    Provider,
    ResolvedDependency,
)
from xplane.xpkg.objects import classify, is_meta_package, scheme_of

from .pkgload import FIXTURES, load_package


def _meta(root: str) -> PackageMeta:
    metas = [d for d in load_package(FIXTURES / root) if classify(d.doc) == "meta"]
    assert len(metas) == 1
    return PackageMeta.from_dict(metas[0].doc)


def test_configuration_fixture() -> None:
    m = _meta("configuration")
    assert isinstance(m, Configuration) and m.kind == "Configuration"
    assert m.api_version == "meta.pkg.crossplane.io/v1"
    assert m.name == "platform-ref-network"
    assert m.labels == {"pkg.crossplane.io/team": "platform"}
    assert m.description and m.description.startswith("A network abstraction")
    assert m.crossplane_constraint == ">=v2.0.0-0"
    assert m.dependencies() == [
        ResolvedDependency(
            "xpkg.crossplane.io/crossplane-contrib/provider-nop",
            ">=v0.2.0",
            api_version="pkg.crossplane.io/v1",
            kind="Provider",
        ),
        ResolvedDependency(
            "xpkg.crossplane.io/crossplane-contrib/function-patch-and-transform",
            "sha256:ecc25c121431dfc7058754427f97c034ecde26d4aafa0da16d258090e0443904",
            type="Function",
        ),
        ResolvedDependency("xpkg.crossplane.io/example/platform-ref-base", "~v1.2", type="Configuration"),
    ]
    deps = m.dependencies()
    assert [d.package_kind for d in deps] == ["Provider", "Function", "Configuration"]
    assert {d.package_api_version for d in deps} == {"pkg.crossplane.io/v1"}
    assert [d.is_digest for d in deps] == [False, True, False]
    assert m.effective_capabilities == ()


def test_provider_fixture_v1alpha1_and_removed_fields() -> None:
    m = _meta("provider/package")
    assert isinstance(m, Provider) and m.api_version == "meta.pkg.crossplane.io/v1alpha1"
    assert m.labels["pkg.crossplane.io/provider-family"] == "provider-family-nop"
    assert m.capabilities == ("SafeStart",)
    assert m.has_capability("safe-start") and m.has_capability("SAFE_START") and not m.has_capability("safe")
    assert "controller" not in m.to_dict()["spec"]  # spec.controller.image was removed in v2.0


def test_function_fixture_v1beta1_defaults_to_composition() -> None:
    m = _meta("function/package")
    assert isinstance(m, Function) and m.api_version == "meta.pkg.crossplane.io/v1beta1"
    assert m.capabilities is None
    assert m.effective_capabilities == ("composition",)
    assert m.has_capability("Composition") and not m.has_capability("operation")


@pytest.mark.parametrize("caps", [[], None])
def test_function_without_capabilities_is_composition(caps: list[str] | None) -> None:
    doc = {
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Function",
        "metadata": {"name": "f"},
        "spec": {},
    }
    if caps is not None:
        doc["spec"] = {"capabilities": caps}
    assert PackageMeta.from_dict(doc).effective_capabilities == ("composition",)


def test_function_with_operation_only() -> None:
    doc = {
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Function",
        "metadata": {"name": "f"},
        "spec": {"capabilities": ["operation"]},
    }
    m = PackageMeta.from_dict(doc)
    assert m.has_capability("operation") and not m.has_capability("composition")


# (dependsOn entry, expected resolution or None for the invalid-dependency error)
DEPENDENCIES: list[tuple[dict[str, Any], ResolvedDependency | None]] = [
    (
        {"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "package": "r.io/o/p", "version": "v1"},
        ResolvedDependency("r.io/o/p", "v1", api_version="pkg.crossplane.io/v1", kind="Provider"),
    ),
    ({"provider": "r.io/o/p", "version": ">=v1"}, ResolvedDependency("r.io/o/p", ">=v1", type="Provider")),
    (
        {"configuration": "r.io/o/c", "version": "1"},
        ResolvedDependency("r.io/o/c", "1", type="Configuration"),
    ),
    ({"function": "r.io/o/f", "version": "1"}, ResolvedDependency("r.io/o/f", "1", type="Function")),
    # explicit apiVersion+kind+package beats the deprecated fields
    (
        {
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": "Function",
            "package": "r.io/o/x",
            "provider": "r.io/o/p",
        },
        ResolvedDependency("r.io/o/x", "", api_version="pkg.crossplane.io/v1", kind="Function"),
    ),
    # configuration, then provider, then function
    (
        {"provider": "r.io/o/p", "configuration": "r.io/o/c", "function": "r.io/o/f", "version": "1"},
        ResolvedDependency("r.io/o/c", "1", type="Configuration"),
    ),
    ({"function": "r.io/o/f", "provider": "r.io/o/p"}, ResolvedDependency("r.io/o/p", "", type="Provider")),
    # an incomplete explicit form falls back to a deprecated field ...
    (
        {"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "function": "r.io/o/f", "version": "1"},
        ResolvedDependency("r.io/o/f", "1", type="Function"),
    ),
    # ... or is invalid
    ({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "version": "1"}, None),
    ({"package": "r.io/o/p", "version": "1"}, None),
    ({"version": "1"}, None),
    ({}, None),
    # present-but-empty still selects the form (Go pointers are non-nil)
    ({"provider": "", "version": "1"}, ResolvedDependency("", "1", type="Provider")),
    ({"provider": None, "function": "r.io/o/f"}, ResolvedDependency("r.io/o/f", "", type="Function")),
]


@pytest.mark.parametrize(("entry", "want"), DEPENDENCIES)
def test_dependency_precedence(entry: dict[str, Any], want: ResolvedDependency | None) -> None:
    dep = Dependency.from_dict(entry)
    if want is None:
        with pytest.raises(MetaError) as e:
            dep.resolve()
        assert e.value.message == ERR_INVALID_DEPENDENCY
        assert dep.reference is None
    else:
        assert dep.resolve() == want
        assert dep.reference == want.package


def test_dependency_round_trip() -> None:
    entry = {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Provider",
        "package": "r.io/o/p",
        "version": ">=1",
    }
    assert Dependency.from_dict(entry).to_dict() == entry
    assert Dependency.from_dict({"provider": "r.io/o/p"}).to_dict() == {"provider": "r.io/o/p", "version": ""}


def test_meta_round_trip() -> None:
    m = _meta("configuration")
    assert PackageMeta.from_dict(m.to_dict()) == m


def _doc(spec: Any = None, metadata: Any = None, kind: str = "Configuration") -> dict[str, Any]:
    return {
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": kind,
        "metadata": {"name": "x"} if metadata is None else metadata,
        "spec": {} if spec is None else spec,
    }


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (_doc({"dependsOn": [{"provider": "r.io/o/p", "version": 1.0}]}), "spec.dependsOn[0].version"),
        (
            _doc({"dependsOn": {"provider": "r.io/o/p"}}),
            "spec.dependsOn: cannot unmarshal object into an array",
        ),
        (_doc({"dependsOn": ["r.io/o/p"]}), "spec.dependsOn[0]: cannot unmarshal str into an object"),
        (_doc({"crossplane": {"version": 2}}), "spec.crossplane.version: cannot unmarshal number"),
        (_doc({"crossplane": "v2"}), "spec.crossplane: cannot unmarshal str into an object"),
        (_doc({"capabilities": [True]}), "spec.capabilities[0]: cannot unmarshal bool"),
        (_doc({"capabilities": "composition"}), "spec.capabilities: cannot unmarshal str into an array"),
        (_doc(metadata={"name": 5}), "metadata.name: cannot unmarshal number"),
        (_doc(metadata={"name": "x", "labels": {"a": 1}}), "metadata.labels[a]: cannot unmarshal number"),
        (_doc(metadata="x"), "metadata: cannot unmarshal str into an object"),
        (_doc(kind="ConfigMap"), "is not a package meta type"),
        ({"apiVersion": "meta.pkg.crossplane.io/v1beta1", "kind": "Provider"}, "is not a package meta type"),
    ],
)
def test_decode_errors(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(MetaError) as e:
        PackageMeta.from_dict(doc)
    assert fragment in e.value.message


def test_unquoted_number_hint() -> None:
    with pytest.raises(MetaError) as e:
        PackageMeta.from_dict(_doc({"dependsOn": [{"provider": "r.io/o/p", "version": 1.0}]}))
    assert e.value.hint == 'quote it: version: "1.0"'


def test_unknown_fields_and_nulls_are_ignored() -> None:
    m = PackageMeta.from_dict(_doc({"crossplane": None, "dependsOn": None, "somethingNew": {"a": 1}}))
    assert m.crossplane is None and m.depends_on == () and m.capabilities is None


def test_empty_crossplane_block_has_empty_constraint() -> None:
    assert PackageMeta.from_dict(_doc({"crossplane": {}})).crossplane_constraint == ""


def test_subclass_from_dict_checks_kind() -> None:
    with pytest.raises(MetaError, match="package meta type is not Provider"):
        Provider.from_dict(_doc())
    assert isinstance(Configuration.from_dict(_doc()), Configuration)


@pytest.mark.parametrize(
    ("api_version", "kind", "scheme"),
    [
        ("meta.pkg.crossplane.io/v1", "Configuration", "meta"),
        ("meta.pkg.crossplane.io/v1", "Provider", "meta"),
        ("meta.pkg.crossplane.io/v1", "Function", "meta"),
        ("meta.pkg.crossplane.io/v1beta1", "Function", "meta"),
        ("meta.pkg.crossplane.io/v1alpha1", "Provider", "meta"),
        ("meta.pkg.crossplane.io/v1alpha1", "Configuration", "meta"),
        ("meta.pkg.crossplane.io/v1", "WatchEvent", "meta"),
        ("apiextensions.crossplane.io/v1", "CompositeResourceDefinition", "object"),
        ("apiextensions.crossplane.io/v1", "Composition", "object"),
        ("apiextensions.crossplane.io/v1", "CompositionRevisionList", "object"),
        ("apiextensions.crossplane.io/v2", "CompositeResourceDefinition", "object"),
        ("apiextensions.crossplane.io/v1alpha1", "ManagedResourceDefinition", "object"),
        ("apiextensions.crossplane.io/v1alpha1", "ManagedResourceActivationPolicy", "object"),
        ("apiextensions.crossplane.io/v1alpha1", "Usage", "object"),
        ("ops.crossplane.io/v1alpha1", "Operation", "object"),
        ("ops.crossplane.io/v1alpha1", "WatchOperation", "object"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "object"),
        ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "object"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "object"),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "object"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "object"),
    ],
)
def test_scheme_knows(api_version: str, kind: str, scheme: str) -> None:
    assert scheme_of(api_version, kind) == scheme


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "ConfigMap"),
        ("apiextensions.crossplane.io/v1beta1", "EnvironmentConfig"),
        ("apiextensions.crossplane.io/v2", "Composition"),
        ("meta.pkg.crossplane.io/v1beta1", "Provider"),
        ("meta.pkg.crossplane.io/v1alpha1", "Function"),
        ("pkg.crossplane.io/v1", "Provider"),
        ("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration"),
    ],
)
def test_scheme_rejects(api_version: str, kind: str) -> None:
    with pytest.raises(UnknownKindError) as e:
        scheme_of(api_version, kind)
    assert e.value.message.startswith(
        f'no kind "{kind}" is registered for version "{api_version}" in scheme '
    )
    assert e.value.hint


def test_classify_missing_fields() -> None:
    with pytest.raises(UnknownKindError, match="Object 'Kind' is missing"):
        classify({"apiVersion": "v1"})
    with pytest.raises(UnknownKindError, match="Object 'apiVersion' is missing"):
        classify({"kind": "Provider"})
    assert not is_meta_package("meta.pkg.crossplane.io/v1", "WatchEvent")
