"""Real ``docker-registry`` (distribution 2.8) processes for tests, one config and root dir each.

Modes (``RegistryServer.mode``):

- ``plain``      HTTP, no auth
- ``basic``      HTTP + htpasswd (bcrypt) basic auth
- ``tls``        HTTPS with the test CA on a free port, no auth
- ``tls+basic``  HTTPS + basic auth
- ``token``      HTTP + token auth behind a :class:`~tests.support.tokenserver.TokenServer`

Start-up takes ~30 ms; :meth:`RegistryServer.start` waits until ``/v2/`` answers (any status).
Teardown is SIGKILL (instant; the storage is scratch). See spec machine-tools §1.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from tests.support.certs import TLSCerts
from tests.support.procs import TestServerError, clean_env, free_port, kill, log_tail, spawn
from tests.support.tokenserver import TokenServer

REGISTRY_BIN = "docker-registry"
DEFAULT_USER = "testuser"
DEFAULT_PASSWORD = "testpass"
READY_TIMEOUT = 5.0


def registry_binary() -> str | None:
    """Path of the ``docker-registry`` binary, or None when it is not installed."""
    return shutil.which(REGISTRY_BIN)


def htpasswd_line(user: str, password: str) -> str:
    """One bcrypt htpasswd entry (the registry accepts only bcrypt)."""
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


class RegistryServer:
    """A ``docker-registry serve`` process on 127.0.0.1:<free port> with its own config and storage.

    ``auth`` is ``None``, ``"basic"`` or ``"token"`` (token needs ``token_server``); ``tls`` turns
    on HTTPS with ``certs`` (``require_client_cert`` adds ``http.tls.clientcas``). ``extra_config``
    is deep-merged into the generated config (e.g. ``{"proxy": {"remoteurl": ...}}``).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        auth: str | None = None,
        tls: bool = False,
        certs: TLSCerts | None = None,
        require_client_cert: bool = False,
        username: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        token_server: TokenServer | None = None,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        if auth not in (None, "basic", "token"):
            raise ValueError(f"unknown auth {auth!r}; use None, 'basic' or 'token'")
        if tls and certs is None:
            raise ValueError("tls=True needs certs (tests.support.certs.make_test_certs)")
        if auth == "token" and token_server is None:
            raise ValueError("auth='token' needs a started TokenServer")
        self.workdir = workdir
        self.auth = auth
        self.tls = tls
        self.certs = certs
        self.require_client_cert = require_client_cert
        self.username: str | None = username if auth else None
        self.password: str | None = password if auth else None
        self.token_server = token_server
        self.extra_config = dict(extra_config or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.root = workdir / "data"
        self.config_path = workdir / "config.yml"
        self.log_path = workdir / "registry.log"
        self.htpasswd_path = workdir / "htpasswd"

    # -- facts tests use ---------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``plain``, ``basic``, ``tls``, ``tls+basic``, ``token`` (or ``tls+token``)."""
        if self.tls:
            return "tls" + (f"+{self.auth}" if self.auth else "")
        return self.auth or "plain"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` as used in image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"{self.scheme}://{self.host}"

    @property
    def ca_file(self) -> Path | None:
        """The CA file clients must trust (TLS modes only)."""
        return self.certs.ca_cert if (self.tls and self.certs) else None

    @property
    def creds(self) -> str | None:
        """``user:password`` for skopeo ``--creds`` (None without auth)."""
        return f"{self.username}:{self.password}" if self.username else None

    def ref(self, repository: str, tag: str = "latest") -> str:
        """An image reference into this registry: ``127.0.0.1:PORT/repository:tag``."""
        return f"{self.host}/{repository}:{tag}"

    def skopeo_flags(self, *, direction: str = "", creds: bool = True) -> list[str]:
        """TLS/credential flags for skopeo; ``direction`` is ``""``, ``"src"`` or ``"dest"``."""
        p = f"--{direction}-" if direction else "--"
        flags = (
            [f"{p}cert-dir", str(self.certs.certs_d)]
            if (self.tls and self.certs)
            else [f"{p}tls-verify=false"]
        )
        if creds and self.creds:
            flags += [f"{p}creds", self.creds]
        return flags

    def add_user(self, user: str, password: str) -> None:
        """Add a basic-auth user; the registry re-reads the htpasswd file without a restart."""
        with self.htpasswd_path.open("a") as f:
            f.write(htpasswd_line(user, password))

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the registry's log."""
        return log_tail(self.log_path, lines)

    # -- lifecycle ---------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "not-a-secret-just-for-tests"},
        }
        if self.tls:
            assert self.certs is not None
            tls: dict[str, Any] = {
                "certificate": str(self.certs.server_cert),
                "key": str(self.certs.server_key),
            }
            if self.require_client_cert:
                tls["clientcas"] = [str(self.certs.ca_cert)]
            cfg["http"]["tls"] = tls
        if self.auth == "basic":
            cfg["auth"] = {"htpasswd": {"realm": "test-realm", "path": str(self.htpasswd_path)}}
        elif self.auth == "token":
            assert self.token_server is not None
            cfg["auth"] = {
                "token": {
                    "realm": self.token_server.realm,
                    "service": self.token_server.service,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(self.token_server.certs.ca_cert),
                }
            }
        return _merge(cfg, self.extra_config)

    def start(self) -> RegistryServer:
        """Write the config, spawn the registry and wait until ``/v2/`` answers."""
        binary = registry_binary()
        if binary is None:
            raise TestServerError(
                "docker-registry is not installed",
                hint="apt-get install -y docker-registry (spec machine-tools §1)",
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        if self.auth == "basic" and not self.htpasswd_path.exists():
            assert self.username is not None and self.password is not None
            self.htpasswd_path.write_text(htpasswd_line(self.username, self.password))
        env = clean_env(drop_prefixes=("REGISTRY_", "OTEL_"))
        last_error: TestServerError | None = None
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            self.config_path.write_text(yaml.safe_dump(self._config(), sort_keys=False))
            self.log_path.write_bytes(b"")
            self.proc = spawn([binary, "serve", str(self.config_path)], self.log_path, env=env)
            try:
                self._wait_ready()
                return self
            except TestServerError as e:
                self.stop()
                last_error = e
                if "address already in use" not in self.log_tail(50):
                    break
        assert last_error is not None
        raise last_error

    def _probe(self) -> bool:
        conn: http.client.HTTPConnection
        if self.tls:
            assert self.certs is not None
            ctx = self.certs.client_context(with_client_cert=True)
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=1, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        delay = 0.005
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestServerError(
                    f"docker-registry ({self.mode}) exited with code {self.proc.returncode} during start-up; "
                    f"config {self.config_path}; log tail:\n{self.log_tail()}"
                )
            if self._probe() and self.proc.poll() is None:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        raise TestServerError(
            f"docker-registry ({self.mode}) did not answer {self.url}/v2/ within {READY_TIMEOUT:.0f} s; "
            f"config {self.config_path}; log tail:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGKILL the registry. Idempotent."""
        if self.proc is not None:
            kill(self.proc)
            self.proc = None

    def wipe(self) -> None:
        """Delete all stored content (while stopped or running; running registries see an empty store)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RegistryServer(mode={self.mode!r}, url={self.url!r})"
