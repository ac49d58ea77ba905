"""Installing a revision's objects into the store and handing control between revisions (spec §4.10 steps 10-12).

Upstream's ``APIEstablisher``: every object is checked first (nothing is written when one cannot
be controlled), then created or updated. New objects are owned by [revision (controller),
package]; an existing one moves its controller reference to the revision that now controls it,
and an object another package's revision controls is a conflict (crossplane-runtime's
``AddControllerReference`` message). A revision that does not control only adds its owner
reference and never creates. ``release`` turns a revision's controller references into plain ones.

xplane adds two things (docs/packages.md): the controlling revision deletes what its package
installed earlier but no revision controls any more (except CRDs and MRDs, which keep user data,
as upstream keeps them through the package's owner reference); and an Active MRD gets its CRD, as
Crossplane's MRD controller creates it, so instances of the kind can be stored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xplane.pkg.errors import EstablishError
from xplane.pkg.names import LABEL_PACKAGE, PKG_GROUP, crd_kind, kind_named, owner_reference, typed_reference
from xplane.store import NotFoundError, Store

_APIX = "apiextensions.crossplane.io"
_OPS = "ops.crossplane.io"
_CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
_MRD = (_APIX, "ManagedResourceDefinition")
MRD_API_VERSION = f"{_APIX}/v1alpha1"

INSTALLABLE: dict[str, frozenset[tuple[str, str]]] = {
    "Configuration": frozenset(
        {
            (_APIX, "CompositeResourceDefinition"),
            (_APIX, "Composition"),
            (_APIX, "ManagedResourceActivationPolicy"),
            (_OPS, "Operation"),
            (_OPS, "CronOperation"),
            (_OPS, "WatchOperation"),
        }
    ),
    "Provider": frozenset(
        {
            _MRD,
            _CRD,
            ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
            ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        }
    ),
    "Function": frozenset(),  # a Function's CRDs are input schemas only (since v2.2)
}
KEEP_WHEN_DROPPED = frozenset({_CRD, _MRD})


def group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(group, kind)`` of an object dict."""
    return str(obj.get("apiVersion", "")).rpartition("/")[0], str(obj.get("kind", ""))


def installable(package_kind: str, docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The objects a revision of ``package_kind`` installs (other kinds are silently dropped), cleaned."""
    allowed = INSTALLABLE[package_kind]
    out = []
    for doc in docs:
        if group_kind(doc) not in allowed:
            continue
        obj = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("status", "metadata")}
        meta = doc.get("metadata") or {}
        obj["metadata"] = {
            k: copy.deepcopy(meta[k]) for k in ("name", "labels", "annotations") if meta.get(k)
        }
        out.append(obj)
    return out


def is_managed_crd(obj: Mapping[str, Any]) -> bool:
    """A managed-resource CRD (category ``managed``); ProviderConfig-type CRDs are not."""
    names = ((obj.get("spec") or {}).get("names") or {}).get("categories") or ()
    return group_kind(obj) == _CRD and "managed" in names


def crds_to_mrds(objects: Sequence[dict[str, Any]], *, safe_start: bool) -> list[dict[str, Any]]:
    """Managed-resource CRDs become MRDs (``Active`` unless the provider has ``safe-start``)."""
    out = []
    for obj in objects:
        if not is_managed_crd(obj):
            out.append(obj)
            continue
        spec = dict(obj.get("spec") or {})
        spec["state"] = "Inactive" if safe_start else "Active"
        out.append(
            {
                "apiVersion": MRD_API_VERSION,
                "kind": "ManagedResourceDefinition",
                "metadata": dict(obj["metadata"]),
                "spec": spec,
            }
        )
    return out


def _package_owner(rev: Mapping[str, Any]) -> dict[str, Any] | None:
    name = (rev["metadata"].get("labels") or {}).get(LABEL_PACKAGE)
    for ref in rev["metadata"].get("ownerReferences") or ():
        if ref.get("name") == name:
            return dict(ref, controller=False)
    return None


def _controller(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def _add_owner(refs: list[dict[str, Any]], ref: Mapping[str, Any]) -> list[dict[str, Any]]:
    """crossplane-runtime's ``AddOwnerReference``: replace the one with the same uid, else append."""
    out = [dict(r) for r in refs]
    for i, r in enumerate(out):
        if r.get("uid") == ref.get("uid"):
            out[i] = dict(ref)
            return out
    return [*out, dict(ref)]


def _merge(desired: dict[str, Any], field: str, extra: Mapping[str, str] | None) -> None:
    if extra:
        desired["metadata"][field] = {**(desired["metadata"].get(field) or {}), **extra}


def establish(
    store: Store,
    rev: Mapping[str, Any],
    objects: Sequence[Mapping[str, Any]],
    *,
    control: bool,
    common_labels: Mapping[str, str] | None = None,
    common_annotations: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """Install ``objects`` for ``rev``; returns ``status.objectRefs`` (sorted as upstream: descending).

    Raises :class:`EstablishError` (before writing anything) when an object is controlled by a
    revision of another package; a store ``ConflictError``/``AlreadyExistsError`` when another
    process wrote first (reconcile again).
    """
    rev_uid = rev["metadata"]["uid"]
    pkg_ref = _package_owner(rev)
    rev_owner = owner_reference(rev, controller=True)
    plan: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for obj in objects:
        desired = copy.deepcopy(dict(obj))
        desired.setdefault("metadata", {})
        _merge(desired, "labels", common_labels)
        _merge(desired, "annotations", common_annotations)
        current = store.try_get(store.kind_of(desired), desired["metadata"]["name"])
        if current is not None and control:
            c = _controller(current)
            if c is not None and c.get("uid") != rev_uid and not _same_package(store, c, rev):
                raise EstablishError(
                    f"{desired['metadata']['name']} is already controlled by {c.get('kind')} "
                    f"{c.get('name')} (uid {c.get('uid')})",
                    hint="two packages ship this object; uninstall one of them",
                )
        plan.append((desired, current))

    refs = []
    for desired, current in plan:
        if current is None:
            if not control:  # an inactive revision never races the active one to create
                refs.append(typed_reference(desired))
                continue
            desired["metadata"]["ownerReferences"] = [rev_owner, *([pkg_ref] if pkg_ref else [])]
            written = store.create(desired)
        else:
            written = _update(store, current, desired, rev_owner, pkg_ref, control)
        refs.append(typed_reference(written))
        if control and group_kind(written) == _MRD and (written.get("spec") or {}).get("state") == "Active":
            _ensure_crd_for(store, written)
    refs.sort(key=lambda r: f"{r['apiVersion']}, Kind={r['kind']}/{r['name']}", reverse=True)
    return refs


def _same_package(store: Store, controller: Mapping[str, Any], rev: Mapping[str, Any]) -> bool:
    """Whether the object's controller is another revision of ``rev``'s package (control moves)."""
    if str(controller.get("apiVersion", "")).rpartition("/")[0] != PKG_GROUP:
        return False
    other = store.try_get(kind_named(store, str(controller.get("kind"))), str(controller.get("name")))
    if other is None:
        return True  # a deleted revision controls nothing
    mine = (rev["metadata"].get("labels") or {}).get(LABEL_PACKAGE)
    return bool((other["metadata"].get("labels") or {}).get(LABEL_PACKAGE) == mine and mine)


def _update(
    store: Store,
    current: dict[str, Any],
    desired: dict[str, Any],
    rev_owner: Mapping[str, Any],
    pkg_ref: Mapping[str, Any] | None,
    control: bool,
) -> dict[str, Any]:
    refs = list(current["metadata"].get("ownerReferences") or [])
    if pkg_ref is not None:
        refs = _add_owner(refs, pkg_ref)
    if not control:
        refs = _add_owner(refs, dict(rev_owner, controller=False))
        if refs == current["metadata"].get("ownerReferences"):
            return current
        new = copy.deepcopy(current)
        new["metadata"]["ownerReferences"] = refs
        return store.update(new)
    refs = [dict(r, controller=False) if r.get("controller") else r for r in refs]  # control moves here
    refs = _add_owner(refs, rev_owner)
    if group_kind(current) == _MRD and (current.get("spec") or {}).get("state") == "Active":
        desired.setdefault("spec", {})["state"] = "Active"  # never downgraded
    new = copy.deepcopy(current)
    for k, v in desired.items():
        if k not in ("metadata", "status"):
            new[k] = v
    for k in [k for k in new if k not in desired and k not in ("metadata", "status", "apiVersion", "kind")]:
        del new[k]
    new["metadata"]["labels"] = desired["metadata"].get("labels") or {}
    new["metadata"]["annotations"] = desired["metadata"].get("annotations") or {}
    new["metadata"]["ownerReferences"] = refs
    new["apiVersion"] = desired["apiVersion"]
    if new == current:
        return current
    return store.update(new)


def _ensure_crd_for(store: Store, mrd: Mapping[str, Any]) -> None:
    """Do what Crossplane's MRD controller does for an Active MRD: create its CRD, owned by the MRD."""
    name = mrd["metadata"]["name"]
    if store.try_get(crd_kind(store), name) is not None:
        return
    spec = {k: v for k, v in (mrd.get("spec") or {}).items() if k not in ("state", "connectionDetails")}
    store.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "ownerReferences": [owner_reference(mrd, controller=True)]},
            "spec": spec,
        }
    )


def release(store: Store, rev: Mapping[str, Any]) -> bool:
    """Upstream's ``ReleaseObjects``: the revision's controller references become plain ones."""
    uid = rev["metadata"]["uid"]
    changed = False
    for ref in (rev.get("status") or {}).get("objectRefs") or ():
        try:
            kind = store.kind_of(ref)
        except Exception:  # a kind no longer known: nothing of it is stored
            continue
        obj = store.try_get(kind, str(ref.get("name")))
        if obj is None:
            continue
        refs = list(obj["metadata"].get("ownerReferences") or [])
        mine = [r for r in refs if r.get("uid") == uid]
        if mine and not mine[0].get("controller"):
            continue
        new = copy.deepcopy(obj)
        new["metadata"]["ownerReferences"] = _add_owner(refs, owner_reference(rev, controller=False))
        store.update(new)
        changed = True
    return changed


def drop_unshipped(
    store: Store, package: Mapping[str, Any], shipped: Iterable[Mapping[str, str]]
) -> list[str]:
    """Delete what ``package`` installed that no revision controls and the active one does not ship.

    CRDs and MRDs stay (owned by the package, as upstream keeps them). Returns what was deleted.
    """
    keep = {(r["apiVersion"].rpartition("/")[0], r["kind"], r["name"]) for r in shipped}
    gone = []
    for obj in store.dependents(package):
        gk = group_kind(obj)
        if gk[0] == PKG_GROUP or gk in KEEP_WHEN_DROPPED or _controller(obj) is not None:
            continue
        if (gk[0], gk[1], obj["metadata"]["name"]) in keep:
            continue
        try:
            store.delete(store.kind_of(obj), obj["metadata"]["name"], uid=obj["metadata"]["uid"])
        except NotFoundError:
            continue
        gone.append(f"{gk[1]}/{obj['metadata']['name']}")
    return gone
