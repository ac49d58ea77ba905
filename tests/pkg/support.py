"""Helpers for the package-manager tests: packages built by xplane's own build, pushed to a real
registry, and a control plane whose registry settings speak plain HTTP and ignore the host's logins."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xplane.oci import (
    Credentials,
    ImageCache,
    RegistryClient,
    RegistryConfig,
    RegistryOverrides,
    default_keychain,
)
from xplane.pkg import ControlPlane, ControlPlaneSettings
from xplane.store import Store
from xplane.xpkg import BuildOptions, build_package, push_packages

CLOCK = 1_780_000_000.0

META_API = {
    "Configuration": "meta.pkg.crossplane.io/v1",
    "Provider": "meta.pkg.crossplane.io/v1",
    "Function": "meta.pkg.crossplane.io/v1beta1",
}


def xrd(name: str, group: str = "example.org") -> dict[str, Any]:
    plural = name.lower() + "s"
    return {
        "apiVersion": "apiextensions.crossplane.io/v2",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": name, "plural": plural},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "referenceable": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }


def composition(name: str, xr_kind: str, group: str = "example.org") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": {"apiVersion": f"{group}/v1", "kind": xr_kind},
            "mode": "Pipeline",
            "pipeline": [{"step": "s", "functionRef": {"name": "function-patch-and-transform"}}],
        },
    }


def crd(kind: str, group: str, categories: Sequence[str] = ()) -> dict[str, Any]:
    plural = kind.lower() + "s"
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
    }
    if categories:
        names["categories"] = list(categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Cluster",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def write_package(
    root: Path,
    kind: str,
    name: str,
    objects: Sequence[Mapping[str, Any]] = (),
    *,
    crossplane: str | None = ">=v2.0.0-0",
    depends_on: Sequence[Mapping[str, Any]] = (),
    capabilities: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """A package directory (JSON is YAML): crossplane.yaml plus one file per object."""
    root.mkdir(parents=True, exist_ok=True)
    spec: dict[str, Any] = {}
    if crossplane is not None:
        spec["crossplane"] = {"version": crossplane}
    if depends_on:
        spec["dependsOn"] = list(depends_on)
    if capabilities is not None:
        spec["capabilities"] = list(capabilities)
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    doc = {"apiVersion": META_API[kind], "kind": kind, "metadata": meta, "spec": spec}
    (root / "crossplane.yaml").write_text(json.dumps(doc))
    for i, obj in enumerate(objects):
        (root / f"obj{i:02d}.yaml").write_text(json.dumps(obj))
    return root


def plain_config() -> RegistryConfig:
    return RegistryConfig.load(overrides=RegistryOverrides(plain_http=True), env={})


def push(root: Path, ref: str, tmp: Path, *, creds: Credentials | None = None) -> str:
    """Build the package at ``root`` with xplane's build and push it to ``ref``; its digest."""
    built = build_package(BuildOptions(package_root=root, examples_root=None))
    xpkg = built.write(tmp / f"{root.name}-{built.digest[7:19]}.xpkg")
    keychain = default_keychain(explicit=creds, env={})
    with RegistryClient(keychain=keychain, config=plain_config()) as client:
        result = push_packages([xpkg], ref, client=client, cache=ImageCache(tmp / "pusher-cache"))
    return result.digest


def settings(tmp: Path, **kw: Any) -> ControlPlaneSettings:
    """Settings for a test control plane: its own cache, plain HTTP, no host logins, a fixed clock."""
    base: dict[str, Any] = {
        "cache_dir": tmp / "cache",
        "registry_config": plain_config,
        "keychain": lambda secrets: default_keychain(pull_secrets=secrets, env={}),
        "clock": lambda: CLOCK,
    }
    base.update(kw)
    return ControlPlaneSettings(**base)


def control_plane(tmp: Path, **kw: Any) -> tuple[Store, ControlPlane]:
    store = Store.open(tmp / "state.db")
    return store, ControlPlane(store, settings(tmp, **kw))


def package(kind: str, name: str, ref: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"package": ref, **spec},
    }


def image_config(name: str, match_images: Sequence[Mapping[str, str]], **spec: Any) -> dict[str, Any]:
    """An ImageConfig matching ``match_images`` (``rewriteImage=...``, ``registry=...`` as spec)."""
    return {
        "apiVersion": "pkg.crossplane.io/v1beta1",
        "kind": "ImageConfig",
        "metadata": {"name": name},
        "spec": {"matchImages": list(match_images), **spec},
    }


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c["type"] == type_:
            return dict(c)
    raise AssertionError(
        f"{obj['kind']}/{obj['metadata']['name']} has no {type_} condition: {obj.get('status')}"
    )


def revisions(store: Store, kind: str, package_name: str) -> list[dict[str, Any]]:
    return sorted(
        store.list(f"{kind}Revision", selector=f"pkg.crossplane.io/package={package_name}"),
        key=lambda r: r["spec"]["revision"],
    )


def docker_secret(name: str, registry: str, user: str, password: str) -> dict[str, Any]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    cfg = json.dumps({"auths": {registry: {"username": user, "password": password, "auth": auth}}})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "crossplane-system"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(cfg.encode()).decode()},
    }


class PortForwarder:
    """A plain TCP relay from ``127.0.0.1:port`` to ``upstream`` (``host:port``): makes a registry
    appear on a port chosen beforehand (one that refused connections a moment ago, say)."""

    def __init__(self, port: int, upstream: str) -> None:
        host, _, up_port = upstream.rpartition(":")
        self.upstream = (host, int(up_port))
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = port
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="port-forwarder", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        self.sock.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
