"""Running a Function from its package, without Docker: pull, unpack, start under bubblewrap (docs/render.md).

:class:`PackageRunner` pulls the Function's package (``spec.package``, or the
``render.crossplane.io/runtime-docker-image`` annotation's image) through xplane's cache and
registry client, unpacks its layers into a content-addressed rootfs (:mod:`xplane.compose.rootfs`)
and starts :class:`FunctionProcess` es: the image's Entrypoint plus ``--insecure`` and ``--address``
in a ``bwrap`` sandbox (read-only rootfs as ``/``, private ``/tmp``, ``/proc`` and ``/dev``; new
user, PID, IPC, UTS and cgroup namespaces; no capabilities; killed with xplane).

Network (the ``render.xplane.io/network`` annotation): ``Loopback``, the default where the kernel
allows it, gives the sandbox a network namespace of its own whose only interface is its loopback;
the function listens on ``127.0.0.1:9443`` there and xplane reaches it through
:mod:`xplane.compose.netrelay`, which joins that namespace itself and listens on a unix
socket in a private directory. ``Host`` keeps the host's network (a function that calls out to
the world needs it); the function then listens on a free port of the host's 127.0.0.1.

Readiness is a gRPC connect (HTTP/2 handshake) bounded by the caller's deadline, raced against the
process's exit (a pidfd): never a sleep. stderr is kept in a bounded ring for error messages.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.compose.errors import ComposeError, q
from xplane.compose.rootfs import RootfsLimits, ensure_rootfs, rootfs_path
from xplane.compose.sandbox import (
    NETWORK_ANNOTATION,
    SANDBOX_PORT,
    FunctionProcess,
    Prepared,
    free_port,
    own_network_unavailable,
    sandbox_argv,
)

if TYPE_CHECKING:
    from xplane.oci import RegistryClient

IMAGE_ANNOTATION = "render.crossplane.io/runtime-docker-image"
PULL_POLICY_ANNOTATION = "render.crossplane.io/runtime-docker-pull-policy"
ENV_ANNOTATION = "render.crossplane.io/runtime-docker-env"
CLEANUP_ANNOTATION = "render.crossplane.io/runtime-docker-cleanup"
PULL_POLICIES = ("Always", "Never", "IfNotPresent")
CLEANUPS = ("Remove", "Stop", "Orphan")
NETWORKS = ("Loopback", "Host")
BWRAP = "/usr/bin/bwrap"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class PackageSpec:
    """How to run one Function from its package, from the Function object and its annotations."""

    name: str
    image: str
    pull_policy: str = "IfNotPresent"
    env: tuple[tuple[str, str], ...] = ()
    cleanup: str = "Remove"
    network: str = ""  # "Loopback", "Host", or "" (Loopback where the kernel allows it)


def package_spec(name: str, fn_obj: Mapping[str, Any], annotations: Mapping[str, str]) -> PackageSpec:
    """The :class:`PackageSpec` of a Function object; raises ComposeError naming a bad annotation."""
    image = annotations.get(IMAGE_ANNOTATION) or str((fn_obj.get("spec") or {}).get("package") or "")
    if not image:
        raise ComposeError(
            f"cannot run Function {q(name)}: it has no spec.package and no {q(IMAGE_ANNOTATION)} annotation",
            hint="give the Function a spec.package, or --functions-dir DIR holding a function of that name",
        )
    policy = annotations.get(PULL_POLICY_ANNOTATION) or "IfNotPresent"
    if policy not in PULL_POLICIES:
        raise ComposeError(
            f"unsupported {q(PULL_POLICY_ANNOTATION)} annotation value {q(policy)} (unknown pull policy)"
        )
    cleanup = annotations.get(CLEANUP_ANNOTATION) or "Remove"
    if cleanup not in CLEANUPS:
        raise ComposeError(
            f"unsupported {q(CLEANUP_ANNOTATION)} annotation value {q(cleanup)} (unknown cleanup policy)"
        )
    network = annotations.get(NETWORK_ANNOTATION) or ""
    if network and network not in NETWORKS:
        raise ComposeError(
            f"unsupported {q(NETWORK_ANNOTATION)} annotation value {q(network)} (want Loopback or Host)"
        )
    env = []
    for item in (annotations.get(ENV_ANNOTATION) or "").split(","):
        key, eq, value = item.partition("=")
        if eq and key.strip():  # entries without "=" are ignored, as upstream
            env.append((key.strip(), value))
    return PackageSpec(name, image, policy, tuple(env), cleanup, network)


def _image_env(config: Mapping[str, Any], extra: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, eq, value = str(item).partition("=")
        if eq:
            env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(dict(extra))
    return tuple(env.items())


log = logging.getLogger(__name__)


class PackageRunner:
    """Pulls, unpacks and starts package functions; holds warm processes (``keep_warm``, Orphan).

    ``client_factory`` makes the registry client when a pull must contact a registry (the CLI's,
    with every credential source and per-registry TLS). ``close()`` stops every process it holds.
    """

    def __init__(
        self,
        *,
        cache_root: Path | None = None,
        client_factory: Callable[[], RegistryClient] | None = None,
        keep_warm: bool = False,
        bwrap: str | None = None,
        limits: RootfsLimits | None = None,
    ) -> None:
        self.cache_root = cache_root
        self.client_factory = client_factory
        self.keep_warm = keep_warm
        self.bwrap = bwrap
        self.limits = limits
        self._warm: dict[tuple[object, ...], FunctionProcess] = {}
        self._lock = threading.Lock()

    def _bwrap(self, name: str) -> str:
        found = self.bwrap or shutil.which("bwrap") or (BWRAP if os.path.exists(BWRAP) else None)
        if not found:
            raise ComposeError(
                f"cannot run Function {q(name)} from its package: bubblewrap (bwrap) is not installed",
                hint="apt-get install bubblewrap (scripts/setup.sh does), or give --functions-dir",
            )
        return found

    def prepare(self, spec: PackageSpec) -> Prepared:
        """Pull ``spec.image`` under its pull policy and unpack it (both reused when cached)."""
        from xplane.oci import ImageCache, OCIError, pull

        cache = ImageCache(self.cache_root)
        try:
            image = pull(spec.image, policy=spec.pull_policy, cache=cache, client_factory=self.client_factory)
        except OCIError as e:
            hint = f"{e.hint}; " if e.hint else ""
            raise ComposeError(
                f"cannot run Function {q(spec.name)} from its package {spec.image}: cannot pull it: {e.message}",
                hint=f"{hint}or give --functions-dir DIR holding a function of that name",
            ) from None
        config = image.config.get("config") or {}
        entrypoint = [str(a) for a in config.get("Entrypoint") or []]
        argv = entrypoint or [str(a) for a in config.get("Cmd") or []]
        if not argv:
            raise ComposeError(
                f"cannot run Function {q(spec.name)}: its image {spec.image} has no Entrypoint or Cmd",
                hint="was the package built with an embedded runtime image (--embed-runtime-image)?",
            )
        digest = image.config_descriptor.digest if image.config_descriptor else image.manifest_digest
        layers = [image.layer_path(i) for i in range(len(image.layers))]
        rootfs, unpacked = ensure_rootfs(
            layers, rootfs_path(cache.root, str(digest)), label=spec.image, limits=self.limits
        )
        return Prepared(
            spec.image,
            rootfs,
            tuple(argv),
            _image_env(config, spec.env),
            str(config.get("WorkingDir") or "/"),
            unpacked,
        )

    def process(self, spec: PackageSpec, prepared: Prepared) -> FunctionProcess:
        """A running (maybe warm) process for ``prepared``; started here, not yet known ready."""
        key = (prepared.rootfs, prepared.argv, prepared.env, prepared.workdir, spec.network)
        with self._lock:
            warm = self._warm.get(key)
            if warm is not None and warm.exit_code() is None:
                return warm
            proc = self._new_process(spec, prepared)
            try:
                proc.start()
            except BaseException:
                proc.stop()  # removes its relay directory
                raise
            if self.keep_warm or spec.cleanup == "Orphan":
                self._warm[key] = proc
            return proc

    def _own_network(self, spec: PackageSpec, bwrap: str) -> bool:
        if spec.network == "Host":
            return False
        reason = own_network_unavailable(bwrap)
        if reason is None:
            return True
        if spec.network == "Loopback":
            raise ComposeError(
                f"cannot run Function {q(spec.name)} with {NETWORK_ANNOTATION}: Loopback: this machine "
                f"cannot give a sandbox a network namespace of its own: {reason}",
                hint=f"set {NETWORK_ANNOTATION}: Host to share the host's network",
            )
        log.warning(
            "function %s shares the host's network: a sandbox cannot have a network namespace of its own "
            "here (%s)",
            spec.name,
            reason,
        )
        return False

    def _new_process(self, spec: PackageSpec, prepared: Prepared) -> FunctionProcess:
        bwrap = self._bwrap(spec.name)
        if self._own_network(spec, bwrap):
            relay_dir = Path(tempfile.mkdtemp(prefix="xplane-fn-"))
            argv = sandbox_argv(bwrap, prepared, SANDBOX_PORT, own_network=True)
            return FunctionProcess(
                spec.name, spec.image, argv, f"unix:{relay_dir / 'grpc.sock'}", relay_dir=relay_dir
            )
        port = free_port()
        argv = sandbox_argv(bwrap, prepared, port)
        return FunctionProcess(spec.name, spec.image, argv, f"127.0.0.1:{port}")

    def discard(self, proc: FunctionProcess) -> None:
        """Stop ``proc`` and forget it, warm or not (it failed: the next render starts a new one)."""
        with self._lock:
            self._warm = {k: p for k, p in self._warm.items() if p is not proc}
        proc.stop()

    def release(self, spec: PackageSpec, proc: FunctionProcess) -> None:
        """The render is done with ``proc``: stop it unless it is kept warm."""
        with self._lock:
            if proc in self._warm.values():
                return
        proc.stop()

    def close(self) -> None:
        """Stop every process this runner keeps."""
        with self._lock:
            procs, self._warm = list(self._warm.values()), {}
        for proc in procs:
            proc.stop()

    def __enter__(self) -> PackageRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
