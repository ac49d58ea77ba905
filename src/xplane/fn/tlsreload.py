"""mTLS server credentials that follow certificate rotation in ``TLS_SERVER_CERTS_DIR``.

In Kubernetes ``tls.crt``, ``tls.key`` and ``ca.crt`` come from a Secret volume that is rotated in
place: the kubelet writes a new timestamped directory and swaps the ``..data`` symlink the
top-level names point through. :class:`ReloadingCredentials` serves what is there now without a
restart, using grpc's dynamic server credentials: grpc asks for the certificate configuration on
every new connection, before its TLS handshake, and :meth:`ReloadingCredentials.check` answers
from a cheap signature (the ``..data`` link target and the files' inode, size and mtime). The
files are re-read only when that signature changed. Existing connections and their calls keep
the certificate they were opened with.

A rotation to files that are missing, empty, do not parse or whose key does not match the
certificate does not break serving: the last good configuration stays, one WARN is logged per bad
state (naming the file and the problem, never its contents) and :meth:`ReloadingCredentials.status`
reports it until good files arrive.

grpc gives each server's credentials object its own initial configuration and keeps one
handshaker per server, so every gRPC server (the main port and each function port) gets its own
credentials from :meth:`ReloadingCredentials.for_server`; all of them share one watcher.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from xplane.fn.settings import RunnerConfigError

log = logging.getLogger(__name__)

CERT_FILE, KEY_FILE, CA_FILE = "tls.crt", "tls.key", "ca.crt"
TLS_FILES = (CERT_FILE, KEY_FILE, CA_FILE)
DATA_LINK = "..data"  # the kubelet's atomic-writer symlink in Secret and ConfigMap volumes
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_FILES_HINT = "TLS_SERVER_CERTS_DIR must hold tls.crt, tls.key and ca.crt; or pass --insecure"

#: What makes one grpc server's credentials (see :meth:`ReloadingCredentials.for_server`).
CredentialsFactory = Callable[[], grpc.ServerCredentials]


class TLSFilesError(RunnerConfigError):
    """The files in ``TLS_SERVER_CERTS_DIR`` are missing, empty or not a usable key/cert pair and CA."""


@dataclass(frozen=True)
class TLSMaterial:
    """One good set of PEM files, checked: the key matches the certificate, the CA parses."""

    cert: bytes
    key: bytes
    ca: bytes

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the serving (first) certificate: tells certificates apart, reveals nothing."""
        first = _PEM_CERT.search(self.cert)
        der = ssl.PEM_cert_to_DER_cert(first.group(0).decode("ascii")) if first else self.cert
        return "sha256:" + hashlib.sha256(der).hexdigest()

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        """The grpc certificate configuration: this key and chain, client certificates checked against the CA."""
        return grpc.ssl_server_certificate_configuration([(self.key, self.cert)], root_certificates=self.ca)


def read_tls_dir(tls_dir: Path) -> TLSMaterial:
    """Read and check ``tls.crt``, ``tls.key`` and ``ca.crt``; raises :class:`TLSFilesError`.

    Each file is read and checked through its resolved path, so the bytes read are the bytes
    checked; the messages name the files and the problem, never their contents.
    """
    resolved = {name: Path(os.path.realpath(tls_dir / name)) for name in TLS_FILES}
    data: dict[str, bytes] = {}
    for name in TLS_FILES:
        path = tls_dir / name
        try:
            data[name] = resolved[name].read_bytes()
        except OSError as e:
            raise TLSFilesError(f"cannot read {path}: {e.strerror or e}", hint=_FILES_HINT) from None
        if not data[name].strip():
            raise TLSFilesError(f"{path} is empty", hint="mount the function's TLS Secret there")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=str(resolved[CERT_FILE]))
    except (ssl.SSLError, ValueError):
        raise TLSFilesError(
            f"{tls_dir / CERT_FILE} does not hold a PEM certificate", hint="tls.crt is the server certificate"
        ) from None
    try:
        context.load_cert_chain(resolved[CERT_FILE], resolved[KEY_FILE], password=_no_password)
    except (ssl.SSLError, ValueError, TypeError) as e:
        if "KEY_VALUES_MISMATCH" in str(e):
            message = f"{tls_dir / KEY_FILE} is not the private key of {tls_dir / CERT_FILE}"
        else:
            message = f"{tls_dir / KEY_FILE} does not hold an unencrypted PEM private key"
        raise TLSFilesError(message, hint="tls.crt and tls.key must be one certificate and its key") from None
    try:
        context.load_verify_locations(cadata=data[CA_FILE].decode("ascii"))
    except (ssl.SSLError, ValueError):  # UnicodeDecodeError is a ValueError
        raise TLSFilesError(
            f"{tls_dir / CA_FILE} does not hold a PEM certificate",
            hint="ca.crt is the CA that signs the clients' certificates",
        ) from None
    return TLSMaterial(cert=data[CERT_FILE], key=data[KEY_FILE], ca=data[CA_FILE])


def _no_password() -> bytes:
    return b""  # an encrypted key then fails to load instead of prompting on a terminal


class ReloadingCredentials:
    """The TLS files of one directory, watched; hands out per-server grpc credentials that follow them."""

    def __init__(self, tls_dir: Path, material: TLSMaterial, signature: tuple[Any, ...]) -> None:
        self.tls_dir = tls_dir
        self._lock = threading.Lock()
        self._material = material
        self._config = material.configuration()
        self._seen = signature  # the files' signature last looked at, good or bad
        self._generation = 0  # bumped on every installed change; servers compare theirs with it
        self.loaded_at = _now()
        self.reloads = 0
        #: Why the current files are not served (``None`` while they are).
        self.error: str | None = None

    @classmethod
    def load(cls, tls_dir: Path) -> ReloadingCredentials:
        """Read the directory at start; bad files are a :class:`TLSFilesError` (the runner refuses to start)."""
        signature = tls_signature(tls_dir)
        return cls(tls_dir, read_tls_dir(tls_dir), signature)

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the certificate new connections get."""
        return self._material.fingerprint

    def for_server(self) -> grpc.ServerCredentials:
        """Fresh grpc credentials for one server (mTLS, client certificates required) that follow rotation."""
        with self._lock:
            seen = [self._generation]
            initial = self._config

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            self.check()
            with self._lock:
                if seen[0] == self._generation:
                    return None  # grpc keeps this server's current configuration
                seen[0] = self._generation
                return self._config

        return grpc.dynamic_ssl_server_credentials(initial, fetch, require_client_authentication=True)

    def check(self) -> bool:
        """Look for a rotation and install it; ``True`` if new files are now served. Never raises.

        Costs a few ``stat`` calls when nothing changed; safe from any thread.
        """
        try:
            with self._lock:
                return self._check_locked()
        except Exception as e:  # a bug here must not break grpc's handshakes
            log.exception("TLS certificate check failed", extra={"fields": {"dir": str(self.tls_dir)}})
            self.error = f"checking the TLS files failed: {type(e).__name__}"
            return False

    def _check_locked(self) -> bool:
        signature = tls_signature(self.tls_dir)
        if signature == self._seen:
            return False
        try:
            material = read_tls_dir(self.tls_dir)
        except TLSFilesError as e:
            if tls_signature(self.tls_dir) != signature:
                return False  # still being written: look again on the next connection
            self._seen = signature  # so this bad state is read, and warned about, once
            log.warning(
                "TLS certificates not reloaded; still serving the previous ones",
                extra={"fields": {"dir": str(self.tls_dir), "error": e.message, "serving": self.fingerprint}},
            )
            self.error = e.message
            return False
        if tls_signature(self.tls_dir) != signature:
            return False
        self._seen = signature
        self.error = None
        if material == self._material:
            return False  # touched or rewritten with the same content
        self._material, self._config = material, material.configuration()
        self._generation += 1
        self.reloads += 1
        self.loaded_at = _now()
        log.info(
            "TLS certificates reloaded",
            extra={"fields": {"dir": str(self.tls_dir), "certificate": material.fingerprint}},
        )
        return True

    def status(self) -> dict[str, Any]:
        """What ``/ready`` shows under ``tls``: the serving certificate, when loaded, reloads, any error."""
        out: dict[str, Any] = {
            "certificate": self.fingerprint,
            "loadedAt": self.loaded_at,
            "reloads": self.reloads,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def tls_signature(tls_dir: Path) -> tuple[Any, ...]:
    """What changes when the files do: the ``..data`` link target, each file's inode, size and mtime."""
    try:
        parts: list[Any] = [os.readlink(tls_dir / DATA_LINK)]
    except OSError:
        parts = [None]
    for name in TLS_FILES:
        try:
            st = os.stat(tls_dir / name)
        except OSError as e:
            parts.append(("missing", e.errno))
            continue
        parts.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(parts)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
