"""The package object scheme: which apiVersion/kind pairs a Crossplane package may contain.

Crossplane's parser decodes each YAML document first with the *meta scheme*
(``meta.pkg.crossplane.io``) and, if the kind is not registered there, with the *object scheme*
(crossplane-runtime ``pkg/xpkg/scheme.go``). Anything in neither is a hard parse error:
``no kind "ConfigMap" is registered for version "v1" in scheme ...``. The tables below are those
schemes, including what ``metav1.AddToGroupVersion`` registers into every group version (watch
events, option kinds, and the unversioned ``v1`` kinds such as ``Status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from xplane.xpkg.errors import UnknownKindError

META_GROUP = "meta.pkg.crossplane.io"
SCHEME_NAME = "pkg/xpkg/scheme.go"

#: The meta kinds that are packages, per meta version.
META_KINDS: Mapping[str, frozenset[str]] = {
    f"{META_GROUP}/v1": frozenset({"Configuration", "Provider", "Function"}),
    f"{META_GROUP}/v1beta1": frozenset({"Function"}),
    f"{META_GROUP}/v1alpha1": frozenset({"Configuration", "Provider"}),
}

_XP_V1 = ("CompositeResourceDefinition", "Composition", "CompositionRevision")
_XP_V1ALPHA1 = ("ManagedResourceDefinition", "ManagedResourceActivationPolicy", "Usage")
_OPS = ("Operation", "CronOperation", "WatchOperation")
_ADM_V1 = (
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


def _with_lists(kinds: tuple[str, ...]) -> frozenset[str]:
    return frozenset(kinds) | {k + "List" for k in kinds}


#: Kinds registered in every group version of a scheme by ``metav1.AddToGroupVersion``.
_GROUP_VERSION_KINDS = frozenset(
    {
        "WatchEvent",
        "ListOptions",
        "GetOptions",
        "DeleteOptions",
        "CreateOptions",
        "UpdateOptions",
        "PatchOptions",
    }
)
#: Unversioned kinds ``AddToGroupVersion`` registers under plain ``v1``.
_UNVERSIONED_KINDS = frozenset({"Status", "APIVersions", "APIGroupList", "APIGroup", "APIResourceList"})

#: The object kinds a package may carry, per apiVersion (crossplane-runtime BuildObjectScheme).
OBJECT_KINDS: Mapping[str, frozenset[str]] = {
    "apiextensions.crossplane.io/v1": _with_lists(_XP_V1),
    "apiextensions.crossplane.io/v2": _with_lists(("CompositeResourceDefinition",)),
    "apiextensions.crossplane.io/v1alpha1": _with_lists(_XP_V1ALPHA1),
    "ops.crossplane.io/v1alpha1": _with_lists(_OPS),
    "apiextensions.k8s.io/v1": _with_lists(("CustomResourceDefinition",)) | {"ConversionReview"},
    "apiextensions.k8s.io/v1beta1": _with_lists(("CustomResourceDefinition",)) | {"ConversionReview"},
    "admissionregistration.k8s.io/v1": _with_lists(_ADM_V1),
}

Scheme = Literal["meta", "object"]


def is_meta_package(api_version: str, kind: str) -> bool:
    """True when apiVersion/kind is a package meta type (``crossplane.yaml``)."""
    return kind in META_KINDS.get(api_version, frozenset())


def _in_scheme(table: Mapping[str, frozenset[str]], api_version: str, kind: str) -> bool:
    if kind in table.get(api_version, frozenset()):
        return True
    if api_version in table and kind in _GROUP_VERSION_KINDS:
        return True
    return api_version == "v1" and kind in _UNVERSIONED_KINDS


def scheme_of(api_version: str, kind: str) -> Scheme:
    """Which scheme decodes apiVersion/kind: ``"meta"`` first, then ``"object"``.

    Raise :class:`UnknownKindError` with upstream's message when neither knows it.
    """
    if _in_scheme(META_KINDS, api_version, kind):
        return "meta"
    if _in_scheme(OBJECT_KINDS, api_version, kind):
        return "object"
    raise UnknownKindError(
        f"no kind {_q(kind)} is registered for version {_q(api_version)} in scheme {_q(SCHEME_NAME)}",
        hint="a package may only hold its crossplane.yaml meta object plus "
        + ", ".join(sorted({k for ks in OBJECT_KINDS.values() for k in ks if not k.endswith("List")}))
        + "; move other manifests to the examples directory or add them to --ignore",
    )


def classify(doc: Mapping[str, Any]) -> Scheme:
    """:func:`scheme_of` for a decoded document; missing or non-string apiVersion/kind are errors,
    and so is a document that is not a mapping (a list or a scalar has no kind)."""
    if not isinstance(doc, Mapping):
        what = "a list" if isinstance(doc, list) else f"a {type(doc).__name__} scalar"
        raise UnknownKindError(
            f"Object 'Kind' is missing: the document is {what}, not an object",
            hint="every package document is a mapping with apiVersion and kind",
        )
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        raise UnknownKindError(
            "Object 'Kind' is missing", hint="every package document needs apiVersion and kind"
        )
    if not isinstance(api_version, str) or not api_version:
        raise UnknownKindError(
            "Object 'apiVersion' is missing", hint="every package document needs apiVersion and kind"
        )
    return scheme_of(api_version, kind)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
