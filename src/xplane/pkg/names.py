"""Names, labels and kinds of the package manager's API (spec/packages.md §1.6, §4.1, §4.4, §4.5)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from xplane.errors import XplaneError
from xplane.oci import Reference, friendly_id, package_source, to_dns_label
from xplane.store import Kind, Store

PKG_GROUP = "pkg.crossplane.io"
PKG_API_VERSION = "pkg.crossplane.io/v1"
LABEL_PACKAGE = "pkg.crossplane.io/package"
REVISION_FINALIZER = "revision.pkg.crossplane.io"
LOCK_NAME = "lock"
LOCK_API_VERSION = "pkg.crossplane.io/v1beta1"
PAUSE_ANNOTATION = "crossplane.io/paused"
DIGEST_ANNOTATION = "xplane.io/package-digest"
"""xplane's annotation on every revision: the digest it was made from (``export_cache`` pins to it)."""

PACKAGE_KINDS = ("Configuration", "Provider", "Function")
REVISION_KIND = {k: f"{k}Revision" for k in PACKAGE_KINDS}
PACKAGE_OF_REVISION = {v: k for k, v in REVISION_KIND.items()}
RUNTIME_KINDS = frozenset({"Provider", "Function"})

# The CRD's CEL rule on spec.package (spec/packages.md §4.2).
PACKAGE_RULE = re.compile(r"^[^\.\/]+(\.[^\.\/]+)+(\/[^\/:@]+)+(:[^:@]+(@sha256.+)?|@sha256.+)$")
CEL_MESSAGE = (
    "must be a fully qualified image name, including the registry, repository, and tag or digest. "
    "For example, 'registry.example.com/repo/package:tag' or "
    "'registry.example.com/repo/package[:tag]@sha256:1234567890abcdef1234567890abcdef1234567890abcdef"
    "1234567890abcdef'."
)


def revision_name(package_name: str, digest: str) -> str:
    """A revision's name as Crossplane v2.2-v2.3 names it: ``FriendlyID(package name, digest hex)``."""
    return friendly_id(package_name, digest.partition(":")[2] or digest)


def cache_file_name(source: str, digest: str) -> str:
    """The file Crossplane's package manager reads from its cache: ``FriendlyID(source, digest).gz``.

    ``digest`` keeps its ``sha256:`` prefix, so only 5 hex digits survive (spec/packages.md §5.4).
    """
    return friendly_id(source, digest) + ".gz"


def source_of(ref: str) -> str:
    """``ParsePackageSourceFromReference``: the reference without its identifier, as written."""
    return package_source(Reference.parse(ref))


def source_or_ref(ref: str) -> str:
    """:func:`source_of`, or ``ref`` itself when it does not parse (a key for what is displayed)."""
    try:
        return source_of(ref)
    except XplaneError:
        return ref


def package_name_for(source: str) -> str:
    """Upstream's name for a dependency it installs: ``ToDNSLabel(repository path)``."""
    try:
        return to_dns_label(Reference.parse(source).repository)
    except XplaneError:
        return to_dns_label(source)


def identifier_of(ref: str) -> str:
    """The tag or digest the reference names (``latest`` when it names neither)."""
    r = Reference.parse(ref)
    return r.digest or r.tag or "latest"


def fully_qualified(ref: str) -> bool:
    """Whether upstream's CEL rule on ``spec.package`` accepts ``ref``."""
    return PACKAGE_RULE.match(ref) is not None


def owner_reference(obj: Mapping[str, Any], *, controller: bool) -> dict[str, Any]:
    """An ownerReference to ``obj`` (``blockOwnerDeletion: true``, as ``meta.AsController`` writes)."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def typed_reference(obj: Mapping[str, Any]) -> dict[str, str]:
    """A ``TypedReference`` (``status.objectRefs`` entry)."""
    ref = {
        "apiVersion": str(obj["apiVersion"]),
        "kind": str(obj["kind"]),
        "name": str(obj["metadata"]["name"]),
    }
    uid = obj["metadata"].get("uid")
    if uid:
        ref["uid"] = str(uid)
    return ref


def event_source(kind: str) -> str:
    """Crossplane's event recorder name: ``packages/configuration.pkg.crossplane.io``."""
    return f"packages/{kind.lower()}.{PKG_GROUP}"


def kind_named(store: Store, name: str, group: str = PKG_GROUP) -> Kind:
    """The store's kind ``name`` of ``group``, never resolved by kubectl's rules (a provider's CRD with
    category ``provider`` must not stand for ``Provider``)."""
    k = store.scheme.get(group, name)
    if k is None:
        return store.kind(f"{name}.{group}" if group else name)
    return k


def secret_kind(store: Store) -> Kind:
    """Kubernetes' ``Secret``."""
    return kind_named(store, "Secret", "")


def crd_kind(store: Store) -> Kind:
    """Kubernetes' ``CustomResourceDefinition``."""
    return kind_named(store, "CustomResourceDefinition", "apiextensions.k8s.io")
