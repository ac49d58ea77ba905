"""Object builders shaped like the package manager's (spec/packages.md §4)."""

from __future__ import annotations

from typing import Any

PKG = "pkg.crossplane.io/v1"


def configuration(
    name: str, package: str = "registry.example.com/acme/platform:v1.0.0", **meta: Any
) -> dict[str, Any]:
    """A Configuration as a user applies it."""
    return {
        "apiVersion": PKG,
        "kind": "Configuration",
        "metadata": {"name": name, **meta},
        "spec": {"package": package},
    }


def owner_ref(
    owner: dict[str, Any], *, controller: bool = False, block: bool | None = None
) -> dict[str, Any]:
    """An ownerReference naming ``owner`` (a stored object)."""
    ref: dict[str, Any] = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if controller:
        ref["controller"] = True
    if block is not None:
        ref["blockOwnerDeletion"] = block
    return ref


def revision(
    name: str, *owners: dict[str, Any], finalizers: tuple[str, ...] = (), **spec: Any
) -> dict[str, Any]:
    """A ConfigurationRevision owned by ``owners`` (the first one as controller)."""
    refs = [owner_ref(o, controller=i == 0, block=True if i == 0 else None) for i, o in enumerate(owners)]
    meta: dict[str, Any] = {"name": name, "ownerReferences": refs}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if owners:
        meta["labels"] = {"pkg.crossplane.io/package": owners[0]["metadata"]["name"]}
    return {
        "apiVersion": PKG,
        "kind": "ConfigurationRevision",
        "metadata": meta,
        "spec": {
            "desiredState": "Active",
            "image": "registry.example.com/acme/platform:v1.0.0",
            "revision": 1,
            **spec,
        },
    }


def xrd(name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    """A CompositeResourceDefinition installed by revisions (controller: the first owner)."""
    refs = [owner_ref(o, controller=i == 0, block=True if i == 0 else None) for i, o in enumerate(owners)]
    return {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": name, "ownerReferences": refs},
        "spec": {"group": "example.org", "names": {"kind": "XThing", "plural": "xthings"}},
    }
