"""Running skopeo (1.9.3) in tests, isolated from the machine's logins.

skopeo falls back to ``$XDG_RUNTIME_DIR/containers/auth.json``, ``/run/containers/0/auth.json`` and
``$HOME/.docker/config.json`` for credentials (spec machine-tools §2.2). :class:`Skopeo` points
``HOME``, ``XDG_RUNTIME_DIR`` and ``DOCKER_CONFIG`` at a private directory, so only credentials
passed explicitly (``--creds``/``--authfile``) are used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.support.images import TestImage, TestIndex
from tests.support.procs import TestServerError
from tests.support.registry import RegistryServer

SKOPEO_BIN = "skopeo"


def skopeo_binary() -> str | None:
    """Path of the ``skopeo`` binary, or None when it is not installed."""
    return shutil.which(SKOPEO_BIN)


class Skopeo:
    """Callable wrapper: ``skopeo("inspect", "--raw", ...)`` returns a text ``CompletedProcess``."""

    def __init__(self, home: Path, *, timeout: float = 60.0) -> None:
        binary = skopeo_binary()
        if binary is None:
            raise TestServerError("skopeo is not installed", hint="apt-get install -y skopeo")
        self.binary = binary
        self.home = home
        self.timeout = timeout
        (home / "run").mkdir(parents=True, exist_ok=True)
        (home / "run").chmod(0o700)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment skopeo runs with (isolated HOME/XDG_RUNTIME_DIR/DOCKER_CONFIG)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REGISTRY_AUTH_FILE", "CONTAINERS_REGISTRIES_CONF")
        }
        env.update(
            HOME=str(self.home),
            XDG_RUNTIME_DIR=str(self.home / "run"),
            DOCKER_CONFIG=str(self.home / ".docker"),
        )
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        timeout: float | None = None,
        check: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``skopeo *args``; with ``check=True`` raise ``AssertionError`` showing stderr on failure."""
        proc = subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            timeout=timeout or self.timeout,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def push(
        self,
        image: TestImage | TestIndex,
        registry: RegistryServer,
        repository: str | None = None,
        tag: str | None = None,
    ) -> str:
        """Copy ``image`` (from its OCI layout, bytes preserved) into ``registry``; return the reference."""
        repo = repository or (image.name if isinstance(image, TestImage) else "test/pkg")
        ref = registry.ref(repo, tag or image.tag)
        extra = ["--all"] if isinstance(image, TestIndex) else []
        self(
            "copy",
            *extra,
            *registry.skopeo_flags(direction="dest"),
            image.oci_ref,
            f"docker://{ref}",
            check=True,
        )
        return ref
