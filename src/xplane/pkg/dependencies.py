"""The dependency seam: what a revision reconcile asks about its ``dependsOn`` (spec §6.1-§6.2).

The revision reconciler calls a :class:`DependencyResolver` unless ``skipDependencyResolution``.
:class:`LockDependencies` is upstream's revision side (``PackageDependencyManager.Resolve``) over
what is installed: it keeps the revision's entry in the Lock (``pkg.crossplane.io/v1beta1``
``Lock`` named ``lock``), counts found/installed/invalid dependencies and fails with upstream's
``missing dependencies: …`` / ``incompatible dependencies: …``. Installing what is missing is the
Lock side (issue 11): a :class:`LockReconciler` given to the control plane runs once per pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from xplane.oci import InvalidReferenceError, Reference, package_source
from xplane.pkg.names import LOCK_API_VERSION, LOCK_NAME, PKG_API_VERSION, kind_named
from xplane.store import AlreadyExistsError, NotFoundError, Store
from xplane.xpkg import Constraint, MetaError, PackageMeta, SemverError, Version, is_digest_constraint

LOCK_FINALIZER = "lock.pkg.crossplane.io"


@dataclass(frozen=True)
class DependencyStatus:
    """What ``status.foundDependencies``/``installedDependencies``/``invalidDependencies`` show;
    ``error`` (upstream's text) makes the revision unhealthy."""

    found: int = 0
    installed: int = 0
    invalid: int = 0
    error: str | None = None


class DependencyResolver(Protocol):
    """Decides whether a revision's dependencies are satisfied. Called once per revision reconcile
    (store reads and one or two Lock writes; no registry calls in the default one)."""

    def resolve(self, revision: Mapping[str, Any], package_kind: str, meta: PackageMeta) -> DependencyStatus:
        """Record the revision in the Lock and check its dependencies against what is installed."""
        ...

    def remove(self, revision: Mapping[str, Any]) -> None:
        """Take the revision out of the Lock (deactivated or deleted)."""
        ...


class LockReconciler(Protocol):
    """The Lock side (issue 11): installs missing dependencies. Returns whether it changed anything."""

    def reconcile(self, store: Store) -> bool:
        """One pass over the Lock."""
        ...


def format_list(items: Iterable[str]) -> str:
    """Upstream's list: sorted, ``a``, ``a and b``, ``a, b, and c``, ``a, b, c, and N more``."""
    s = sorted(items)
    if len(s) <= 1:
        return "".join(s)
    if len(s) == 2:
        return f"{s[0]} and {s[1]}"
    if len(s) == 3:
        return f"{s[0]}, {s[1]}, and {s[2]}"
    return f"{s[0]}, {s[1]}, {s[2]}, and {len(s) - 3} more"


def _entry(package: str, constraints: str) -> str:
    return f'"{package}" ({constraints})' if constraints else f'"{package}"'


class LockDependencies:
    """The default :class:`DependencyResolver`: upstream's revision side over the store's Lock."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock_kind = kind_named(store, "Lock")

    def _modify(self, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        try:
            return self._store.modify(self._lock_kind, LOCK_NAME, fn)
        except NotFoundError:
            lock: dict[str, Any] = {
                "apiVersion": LOCK_API_VERSION,
                "kind": "Lock",
                "metadata": {"name": LOCK_NAME, "finalizers": [LOCK_FINALIZER]},
                "packages": [],
            }
            fn(lock)
            try:
                return self._store.create(lock)
            except AlreadyExistsError:  # another reconciler made it first
                return self._store.modify(self._lock_kind, LOCK_NAME, fn)

    def remove(self, revision: Mapping[str, Any]) -> None:
        """Upstream's ``RemoveSelf``."""
        name = revision["metadata"]["name"]
        lock = self._store.try_get(self._lock_kind, LOCK_NAME)
        if lock is None or not any(p.get("name") == name for p in lock.get("packages") or ()):
            return

        def drop(obj: dict[str, Any]) -> None:
            obj["packages"] = [p for p in obj.get("packages") or () if p.get("name") != name]

        self._modify(drop)

    def resolve(self, revision: Mapping[str, Any], package_kind: str, meta: PackageMeta) -> DependencyStatus:
        """Upstream's ``PackageDependencyManager.Resolve`` (§6.2)."""
        if (revision.get("spec") or {}).get("desiredState") == "Inactive":
            return DependencyStatus()
        try:
            deps = meta.dependencies()
        except MetaError as e:
            return DependencyStatus(error=e.message)
        found = len(deps)
        image = str(revision["spec"]["image"])
        try:
            ref = Reference.parse(image, strict=True)
        except InvalidReferenceError as e:
            return DependencyStatus(found=found, error=e.message)
        name = revision["metadata"]["name"]
        me = {
            "name": name,
            "apiVersion": PKG_API_VERSION,
            "kind": package_kind,
            "type": None,
            "source": package_source(ref),
            "version": ref.digest or ref.tag or "latest",
            "dependencies": [
                {
                    "package": d.package,
                    "apiVersion": d.api_version,
                    "kind": d.kind,
                    "type": d.type,
                    "constraints": d.constraints,
                }
                for d in deps
            ],
        }
        lock = self._store.try_get(self._lock_kind, LOCK_NAME)
        existing = [p for p in (lock or {}).get("packages") or () if p.get("name") == name]
        if not existing or existing[0] != me:
            newly = not existing

            def put(obj: dict[str, Any]) -> None:
                pkgs = [
                    p
                    for p in obj.get("packages") or ()
                    if p.get("name") != name  # also drops an entry with our name and another source
                ]
                obj["packages"] = [*pkgs, me]

            lock = self._modify(put)
            if newly:
                sources = {p.get("source") for p in lock.get("packages") or ()}
                missing = [_entry(d.package, d.constraints) for d in deps if d.package not in sources]
                installed = found - len(missing)
                if missing:
                    return DependencyStatus(
                        found, installed, 0, f"missing dependencies: {format_list(missing)}"
                    )
        packages = {str(p.get("source")): p for p in (lock or {}).get("packages") or ()}
        tree, implied = _trace(packages, me["source"], deps)
        found = len(tree)
        installed = found - len(implied)
        if implied:
            return DependencyStatus(
                found, installed, 0, f"missing dependencies: {format_list(_entry(*i) for i in implied)}"
            )
        bad: list[str] = []
        for d in deps:
            node = packages[d.package]
            version = str(node.get("version", ""))
            if is_digest_constraint(d.constraints):
                if version != d.constraints:
                    msg = f"existing package {d.package}@{version} is incompatible with constraint {d.constraints}"
                    return DependencyStatus(found, installed, 1, msg)
                continue
            try:
                ok = Constraint.parse(d.constraints).check(Version.parse(version))
            except SemverError as e:
                return DependencyStatus(found, installed, 0, e.message)
            if not ok:
                bad.append(
                    f"existing package {d.package}@{version} is incompatible with constraint {d.constraints}"
                )
        if bad:
            return DependencyStatus(
                found, installed, len(bad), f"incompatible dependencies: {'; '.join(bad)}"
            )
        return DependencyStatus(found, installed, 0)


def _trace(
    packages: Mapping[str, Mapping[str, Any]], source: str, direct: Iterable[Any]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Every transitive dependency of ``source`` (DFS) and those not in the Lock (package, constraints)."""
    seen: list[str] = []
    implied: list[tuple[str, str]] = []
    stack: list[tuple[str, str]] = [(d.package, d.constraints) for d in reversed(list(direct))]
    while stack:
        pkg, constraints = stack.pop()
        if pkg in seen or pkg == source:
            continue
        seen.append(pkg)
        node = packages.get(pkg)
        if node is None:
            implied.append((pkg, constraints))
            continue
        for dep in reversed(node.get("dependencies") or []):
            stack.append((str(dep.get("package")), str(dep.get("constraints") or "")))
    return seen, implied
