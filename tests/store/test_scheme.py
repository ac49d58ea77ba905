"""The kind table: kubectl's name resolution, upstream's names, CRD-defined kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xplane.store import BUILTIN_KINDS, BadRequestError, InvalidError, Kind, Scheme, Store, UnknownKindError
from xplane.store.scheme import version_priority

# name as typed -> resource it resolves to (kubectl: case-insensitive kind, plural, singular, short,
# name.group, name.version.group)
RESOLVE = [
    ("configurations", "configurations.pkg.crossplane.io"),
    ("configuration", "configurations.pkg.crossplane.io"),
    ("Configuration", "configurations.pkg.crossplane.io"),
    ("configurations.pkg.crossplane.io", "configurations.pkg.crossplane.io"),
    ("Configuration.pkg.crossplane.io", "configurations.pkg.crossplane.io"),
    ("configurations.v1.pkg.crossplane.io", "configurations.pkg.crossplane.io"),
    ("functions.v1beta1.pkg.crossplane.io", "functions.pkg.crossplane.io"),
    ("providerrevision", "providerrevisions.pkg.crossplane.io"),
    ("FunctionRevisions", "functionrevisions.pkg.crossplane.io"),
    ("lock", "locks.pkg.crossplane.io"),
    ("imageconfigs", "imageconfigs.pkg.crossplane.io"),
    ("deploymentruntimeconfig", "deploymentruntimeconfigs.pkg.crossplane.io"),
    ("xrd", "compositeresourcedefinitions.apiextensions.crossplane.io"),
    ("xrds", "compositeresourcedefinitions.apiextensions.crossplane.io"),
    ("comp", "compositions.apiextensions.crossplane.io"),
    ("mrd", "managedresourcedefinitions.apiextensions.crossplane.io"),
    ("mrap", "managedresourceactivationpolicies.apiextensions.crossplane.io"),
    ("ops", "operations.ops.crossplane.io"),
    ("crd", "customresourcedefinitions.apiextensions.k8s.io"),
    ("crds", "customresourcedefinitions.apiextensions.k8s.io"),
    ("secret", "secrets"),
    ("ev", "events"),
]


@pytest.mark.parametrize(("name", "resource"), RESOLVE)
def test_names_resolve_like_kubectl(name: str, resource: str) -> None:
    assert Scheme().lookup(name).resource == resource


@pytest.mark.parametrize(
    ("category", "kinds"),
    [
        ("pkg", ["Configuration", "Provider", "Function"]),
        ("pkgrev", ["ConfigurationRevision", "ProviderRevision", "FunctionRevision"]),
    ],
)
def test_categories_resolve_to_several_kinds(category: str, kinds: list[str]) -> None:
    assert [k.kind for k in Scheme().resolve(category)] == kinds
    with pytest.raises(BadRequestError, match="is a category of several kinds"):
        Scheme().lookup(category)


def test_crossplane_category_holds_crossplanes_kinds() -> None:
    kinds = {k.kind for k in Scheme().resolve("crossplane")}
    assert {"Configuration", "ProviderRevision", "ImageConfig", "CompositeResourceDefinition"} <= kinds
    assert "Lock" not in kinds and "Secret" not in kinds


def test_unknown_names_fail_like_kubectl() -> None:
    with pytest.raises(UnknownKindError) as e:
        Scheme().resolve("foo")
    assert e.value.message == 'the server doesn\'t have a resource type "foo"'
    assert e.value.exit_code == 2
    with pytest.raises(UnknownKindError) as typo:
        Scheme().resolve("configuratoins")
    assert typo.value.hint == 'did you mean "configurations"?'
    with pytest.raises(UnknownKindError):
        Scheme().resolve("configurations.example.org")


# Checked against crossplane/crossplane cluster/crds (names, categories, scope, status subresource)
UPSTREAM = {
    "Configuration": (("crossplane", "pkg"), (), True),
    "ConfigurationRevision": (("crossplane", "pkgrev"), (), True),
    "ImageConfig": (("crossplane",), (), False),
    "Lock": ((), (), True),
    "CompositeResourceDefinition": (("crossplane",), ("xrd", "xrds"), True),
    "Composition": (("crossplane",), ("comp",), False),
    "ManagedResourceDefinition": (("crossplane",), ("mrd", "mrds"), True),
}


@pytest.mark.parametrize(("kind", "expected"), UPSTREAM.items())
def test_builtin_kinds_carry_upstreams_names(kind: str, expected: tuple[Any, ...]) -> None:
    (k,) = [b for b in BUILTIN_KINDS if b.kind == kind]
    assert (k.categories, k.short_names, k.status_subresource) == expected
    assert not k.namespaced


def test_builtin_scopes_and_preferred_versions() -> None:
    s = Scheme()
    assert s.lookup("secrets").namespaced and s.lookup("events").namespaced
    assert s.lookup("xrd").versions == ("v2", "v1")
    assert s.lookup("functions").api_version == "pkg.crossplane.io/v1"
    assert [c.name for c in s.lookup("configurations").columns] == ["INSTALLED", "HEALTHY", "PACKAGE", "AGE"]
    wide = [c.name for c in s.lookup("providerrevisions").columns if c.priority]
    assert wide == ["REVISION", "DEP-FOUND", "DEP-INSTALLED"]


def test_for_object_needs_a_served_version() -> None:
    s = Scheme()
    assert s.for_object("pkg.crossplane.io/v1beta1", "Function").kind == "Function"
    assert s.for_object("v1", "Secret").resource == "secrets"
    with pytest.raises(
        UnknownKindError, match='no matches for kind "Provider" in version "pkg.crossplane.io/v1alpha1"'
    ):
        s.for_object("pkg.crossplane.io/v1alpha1", "Provider")


@pytest.mark.parametrize(
    ("versions", "ordered"),
    [
        (["v1", "v2"], ["v2", "v1"]),
        (["v1beta1", "v1", "v1alpha1"], ["v1", "v1beta1", "v1alpha1"]),
        (["v1beta2", "v1beta1", "v2alpha1"], ["v1beta2", "v1beta1", "v2alpha1"]),
        (["foo", "v1", "bar"], ["v1", "bar", "foo"]),
    ],
)
def test_version_priority(versions: list[str], ordered: list[str]) -> None:
    assert sorted(versions, key=version_priority) == ordered


def crd(group: str = "aws.example.org", kind: str = "Bucket", scope: str = "Namespaced") -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "shortNames": ["bkt"], "categories": ["managed"]},
            "versions": [
                {"name": "v1beta1", "served": True, "storage": True, "subresources": {"status": {}}},
                {
                    "name": "v1",
                    "served": True,
                    "storage": False,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "READY", "jsonPath": ".status.ready", "type": "string"}
                    ],
                },
                {"name": "v2", "served": False, "storage": False},
            ],
        },
    }


def test_kind_from_a_crd() -> None:
    k = Kind.from_crd(crd())
    assert (k.group, k.kind, k.plural, k.singular, k.version) == (
        "aws.example.org",
        "Bucket",
        "buckets",
        "bucket",
        "v1",
    )
    assert k.versions == ("v1", "v1beta1") and k.namespaced and k.status_subresource
    assert k.short_names == ("bkt",) and k.categories == ("managed",)
    assert [c.name for c in k.columns] == ["READY"]


def test_a_crd_without_names_is_invalid() -> None:
    bad = crd()
    del bad["spec"]["names"]["plural"]
    with pytest.raises(Exception, match=r"spec.names.plural: Required value"):
        Kind.from_crd(bad)


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        (lambda c: c.update(spec=[1]), 'spec: Invalid value: "array": must be an object'),
        (
            lambda c: c["spec"]["names"].update(shortNames=True),
            'spec.names.shortNames: Invalid value: "boolean": must be an array of strings',
        ),
        (
            lambda c: c["spec"]["names"].update(categories=["a", 1]),
            'spec.names.categories[1]: Invalid value: "integer": must be a string',
        ),
        (
            lambda c: c["spec"].update(versions={"v1": {}}),
            'spec.versions: Invalid value: "object": must be an array',
        ),
        (lambda c: c["spec"]["versions"][0].pop("name"), "spec.versions[0].name: Required value"),
        (
            lambda c: c["spec"]["versions"][1].update(served="yes"),
            'spec.versions[1].served: Invalid value: "string": must be a boolean',
        ),
        (
            lambda c: c["spec"]["versions"][1]["additionalPrinterColumns"][0].update(priority="high"),
            'spec.versions[1].additionalPrinterColumns[0].priority: Invalid value: "string": must be an integer',
        ),
        (
            lambda c: c["spec"]["versions"][0].update(subresources=["status"]),
            'spec.versions[0].subresources: Invalid value: "array": must be an object',
        ),
    ],
)
def test_a_crd_with_fields_of_the_wrong_type_is_invalid(store: Store, change: Any, cause: str) -> None:
    """What Kubernetes refuses to decode defines no kind, with the field named (it was a TypeError or
    KeyError out of every later command); the store keeps the object, as for a CRD without names."""
    bad = crd()
    change(bad)
    with pytest.raises(InvalidError) as e:
        Kind.from_crd(bad)
    assert cause in e.value.causes
    if isinstance(bad.get("spec"), dict):
        store.create(bad)
        with pytest.raises(UnknownKindError):
            store.resolve("bkt")


def test_kinds_of_stored_crds_work_here_and_in_every_other_opening(store: Store, db_path: Path) -> None:
    with pytest.raises(UnknownKindError):
        store.resolve("bkt")
    store.create(crd())
    bucket = {
        "apiVersion": "aws.example.org/v1beta1",
        "kind": "Bucket",
        "metadata": {"name": "b"},
        "spec": {},
    }
    assert store.create(bucket)["metadata"]["namespace"] == "crossplane-system"
    with Store.open(db_path) as other:  # a fresh scheme: finds the kind in the stored CRDs
        assert [o["metadata"]["name"] for o in other.list("bkt")] == ["b"]
        assert [k.kind for k in other.resolve("managed")] == ["Bucket"]


def test_register_adds_a_kind_to_one_store(store: Store) -> None:
    store.register(Kind("example.org", "v1", "Widget", "widgets", short_names=("wd",)))
    store.create({"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert store.get("wd", "w")["kind"] == "Widget"
    assert Scheme().get("example.org", "Widget") is None  # the default table is untouched


def test_a_kinds_exact_name_wins_over_a_category_of_the_same_word() -> None:
    # upjet ProviderConfig CRDs carry the category "provider": kubectl expands the lower-case word
    # to them, but code asking for the kind "Provider" means pkg.crossplane.io's Provider
    scheme = Scheme()
    config = crd("aws.example.org", "ProviderConfig", "Cluster")
    config["spec"]["names"]["categories"] = ["crossplane", "provider", "aws"]
    scheme.register(Kind.from_crd(config))
    (exact,) = scheme.resolve("Provider")
    assert (exact.group, exact.kind) == ("pkg.crossplane.io", "Provider")
    assert [k.kind for k in scheme.resolve("provider")] == ["ProviderConfig"]
    assert scheme.lookup("providers.pkg.crossplane.io").kind == "Provider"
