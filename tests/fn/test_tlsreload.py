"""Certificate rotation: xfn serves new connections the rotated TLS files without a restart.

Real runners on loopback with mTLS, two test PKIs (each its own CA, server and client certificate),
and a certificate directory rotated the way the kubelet rotates a Secret volume: a new timestamped
directory, the ``..data`` symlink swapped atomically, top-level names linking through ``..data``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.fn.runner_fixtures import RunnerThread, running, test_settings, write_function, xr_request
from tests.support.certs import TLSCerts, make_test_certs
from tests.support.procs import free_port
from xplane.fn.proto import grpcv1
from xplane.fn.settings import RunnerConfigError
from xplane.fn.tlsreload import ReloadingCredentials, TLSFilesError, read_tls_dir

LOGGER = "xplane.fn.tlsreload"


class SecretVolume:
    """A directory rotated like a Kubernetes Secret volume (the kubelet's atomic writer)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        self.root = root
        self.versions = 0

    def publish(self, files: Mapping[str, bytes]) -> None:
        """Write ``files`` as the new version: ``..<stamp>/``, swap ``..data``, fix the top-level links."""
        self.versions += 1
        version = self.root / f"..2025_01_01_00_00_00.{self.versions:09d}"
        version.mkdir()
        for name, data in files.items():
            (version / name).write_bytes(data)
        data_link = self.root / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version.name)
        os.replace(tmp, data_link)
        for name in files:
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")
        for link in self.root.iterdir():
            if not link.name.startswith("..") and link.name not in files:
                link.unlink()
        if old is not None:
            shutil.rmtree(self.root / old)


def server_files(server: TLSCerts, client_ca: TLSCerts | None = None) -> dict[str, bytes]:
    """``tls.crt``/``tls.key`` from ``server``'s PKI, ``ca.crt`` (the client CA) from ``client_ca``'s."""
    return {
        "tls.crt": server.server_cert.read_bytes(),
        "tls.key": server.server_key.read_bytes(),
        "ca.crt": (client_ca or server).ca_pem,
    }


def client_creds(trust: TLSCerts, client: TLSCerts) -> grpc.ChannelCredentials:
    """A client that trusts only ``trust``'s CA and presents ``client``'s client certificate."""
    return grpc.ssl_channel_credentials(
        trust.ca_pem, client.client_key.read_bytes(), client.client_cert.read_bytes()
    )


def run(channel: grpc.Channel, function: str = "f") -> str:
    stub = grpcv1.FunctionRunnerServiceStub(channel)
    rsp = stub.RunFunction(xr_request(), timeout=5, metadata=(("x-xplane-function", function),))
    return str(rsp.results[0].message)


def call(port: int, creds: grpc.ChannelCredentials, function: str = "f") -> str:
    """One call on a new channel (a new connection, so a new TLS handshake)."""
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        return run(channel, function)


def refused(port: int, creds: grpc.ChannelCredentials) -> bool:
    """Whether a new connection with ``creds`` fails its handshake."""
    try:
        call(port, creds)
    except grpc.RpcError as e:
        return bool(e.code() == grpc.StatusCode.UNAVAILABLE)
    return False


def ready_tls(rt: RunnerThread) -> dict[str, Any]:
    """The ``tls`` details of ``GET /ready``."""
    with urllib.request.urlopen(f"{rt.http_base}/ready", timeout=5) as resp:
        tls: dict[str, Any] = json.load(resp)["tls"]
    return tls


@pytest.fixture(scope="module")
def pki1(tmp_path_factory: pytest.TempPathFactory) -> TLSCerts:
    return make_test_certs(tmp_path_factory.mktemp("pki1"))


@pytest.fixture(scope="module")
def pki2(tmp_path_factory: pytest.TempPathFactory) -> TLSCerts:
    return make_test_certs(tmp_path_factory.mktemp("pki2"))


@pytest.fixture
def volume(tmp_path: Path, pki1: TLSCerts) -> SecretVolume:
    vol = SecretVolume(tmp_path / "tls")
    vol.publish(server_files(pki1))
    return vol


@pytest.fixture
def tls_runner(tmp_path: Path, volume: SecretVolume) -> Iterator[RunnerThread]:
    """A runner serving ``f`` and ``slow`` (each also on a port of its own) with mTLS from ``volume``."""
    fns = tmp_path / "fns"
    write_function(fns, "f", message="secure")
    write_function(fns, "slow", message="late", delay=0.5)
    own_ports = (("f", free_port()), ("slow", free_port()))  # each server needs credentials of its own
    settings = test_settings(fns, insecure=False, tls_certs_dir=volume.root, function_ports=own_ports)
    with running(settings) as rt:
        yield rt


# -- a running runner ------------------------------------------------------------------------------


def test_new_connections_get_the_rotated_certificate(
    tls_runner: RunnerThread, volume: SecretVolume, pki1: TLSCerts, pki2: TLSCerts
) -> None:
    main = tls_runner.runner.grpc_port
    own = tls_runner.runner.function_ports["f"]
    assert main is not None
    old = client_creds(pki1, pki1)
    new = client_creds(pki2, pki2)
    with grpc.secure_channel(f"localhost:{main}", old) as open_channel:
        assert run(open_channel) == "secure from f"
        in_flight = grpcv1.FunctionRunnerServiceStub(open_channel).RunFunction.future(
            xr_request(), timeout=5, metadata=(("x-xplane-function", "slow"),)
        )
        volume.publish(server_files(pki2))

        for port in (main, own):  # the main port and a function's own port both follow
            assert call(port, new) == "secure from f"
            assert refused(port, old)
            assert refused(port, client_creds(pki1, pki2)), "the old server certificate is still served"
        assert in_flight.result().results[0].message == "late from slow"
        assert run(open_channel) == "secure from f"  # same connection, opened with the old certificate
    status = ready_tls(tls_runner)
    assert status["reloads"] == 1 and "error" not in status


def test_a_client_ca_rotation_accepts_the_new_clients(
    tls_runner: RunnerThread, volume: SecretVolume, pki1: TLSCerts, pki2: TLSCerts
) -> None:
    port = tls_runner.runner.grpc_port
    assert port is not None
    new_client = client_creds(pki1, pki2)  # trusts the unchanged server CA, presents a client cert of CA 2
    assert refused(port, new_client)

    volume.publish(server_files(pki1, client_ca=pki2))

    assert call(port, new_client) == "secure from f"
    assert refused(port, client_creds(pki1, pki1))


def test_bad_files_keep_the_last_good_certificate_until_good_ones_arrive(
    tls_runner: RunnerThread,
    volume: SecretVolume,
    pki1: TLSCerts,
    pki2: TLSCerts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    port = tls_runner.runner.grpc_port
    assert port is not None
    old, new = client_creds(pki1, pki1), client_creds(pki2, pki2)
    serving = ready_tls(tls_runner)["certificate"]

    volume.publish({"tls.crt": b"garbage\n", "tls.key": b"garbage\n", "ca.crt": pki2.ca_pem})
    for _ in range(3):
        assert call(port, old) == "secure from f"
    assert refused(port, new)
    status = ready_tls(tls_runner)
    assert "tls.crt does not hold a PEM certificate" in status["error"]
    assert status["certificate"] == serving and status["reloads"] == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one WARN per bad state, not one per connection"

    volume.publish(server_files(pki2))

    assert call(port, new) == "secure from f"
    assert refused(port, old)
    status = ready_tls(tls_runner)
    assert "error" not in status and status["reloads"] == 1 and status["certificate"] != serving
    assert "TLS certificates reloaded" in caplog.text


# -- the watcher on its own ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"tls.crt": "cert", "ca.crt": "ca"}, r"cannot read .*tls\.key"),
        ({"tls.crt": "cert", "tls.key": "key", "ca.crt": b"\n"}, r"ca\.crt is empty"),
        ({"tls.crt": b"garbage", "tls.key": "key", "ca.crt": "ca"}, r"tls\.crt does not hold a PEM cert"),
        (
            {"tls.crt": "cert", "tls.key": b"garbage", "ca.crt": "ca"},
            r"tls\.key does not hold an unencrypted",
        ),
        ({"tls.crt": "cert", "tls.key": "other key", "ca.crt": "ca"}, r"tls\.key is not the private key of"),
        ({"tls.crt": "cert", "tls.key": "key", "ca.crt": b"\xff\xfe"}, r"ca\.crt does not hold a PEM cert"),
    ],
    ids=["missing", "empty", "bad-cert", "bad-key", "mismatch", "bad-ca"],
)
def test_bad_files_are_refused_at_start_and_on_rotation(
    tmp_path: Path,
    pki1: TLSCerts,
    pki2: TLSCerts,
    caplog: pytest.LogCaptureFixture,
    files: dict[str, Any],
    message: str,
) -> None:
    real = {
        "cert": pki1.server_cert.read_bytes(),
        "key": pki1.server_key.read_bytes(),
        "other key": pki2.server_key.read_bytes(),
        "ca": pki1.ca_pem,
    }
    content = {name: real[v] if isinstance(v, str) else v for name, v in files.items()}
    bad = SecretVolume(tmp_path / "bad")
    bad.publish(content)
    with pytest.raises(TLSFilesError, match=message) as err:
        ReloadingCredentials.load(bad.root)
    assert isinstance(err.value, RunnerConfigError) and err.value.hint

    caplog.set_level(logging.INFO, logger=LOGGER)
    vol = SecretVolume(tmp_path / "good")
    vol.publish(server_files(pki1))
    creds = ReloadingCredentials.load(vol.root)
    vol.publish(content)
    assert creds.check() is False
    assert creds.error is not None and re.search(message, creds.error)
    assert creds.status()["error"] == creds.error
    key_lines = {line for k in ("key", "other key") for line in real[k].decode().splitlines()[1:-1]}
    assert not any(line in caplog.text or line in creds.error for line in key_lines), "key material leaked"


def test_files_are_reread_only_when_they_change(tmp_path: Path, pki1: TLSCerts, pki2: TLSCerts) -> None:
    d = tmp_path / "plain"  # a plain directory (no ..data), files replaced in place
    d.mkdir()
    for name, data in server_files(pki1).items():
        (d / name).write_bytes(data)
    creds = ReloadingCredentials.load(d)
    first = creds.fingerprint
    assert creds.check() is False

    ca = d / "ca.crt"
    before = ca.stat()
    ca.write_bytes(b"X" * before.st_size)  # same inode and size, mtime put back: looks unchanged
    os.utime(ca, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert creds.check() is False and creds.error is None, "re-read although nothing visible changed"

    os.utime(ca, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # now it looks changed: re-read, bad
    assert creds.check() is False and creds.error is not None

    for name, data in server_files(pki2).items():
        (d / name).write_bytes(data)
    assert creds.check() is True
    assert creds.fingerprint != first and creds.error is None and creds.reloads == 1
    assert creds.check() is False  # nothing new since


def test_a_touch_without_new_content_is_not_a_reload(volume: SecretVolume, pki1: TLSCerts) -> None:
    creds = ReloadingCredentials.load(volume.root)
    volume.publish(server_files(pki1))  # same files, new version directory
    assert creds.check() is False
    assert creds.reloads == 0 and creds.error is None


def test_a_warning_per_bad_state(
    volume: SecretVolume, pki1: TLSCerts, pki2: TLSCerts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    creds = ReloadingCredentials.load(volume.root)
    volume.publish({**server_files(pki1), "tls.key": pki2.server_key.read_bytes()})
    for _ in range(5):
        creds.check()
    volume.publish({**server_files(pki1), "ca.crt": b"\n"})
    creds.check()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    errors = [str(r.fields["error"]) for r in warnings]  # type: ignore[attr-defined]
    assert "tls.key is not the private key of" in errors[0]
    assert errors[1].endswith("ca.crt is empty")


def test_read_tls_dir_returns_what_is_served(volume: SecretVolume, pki1: TLSCerts) -> None:
    material = read_tls_dir(volume.root)
    assert material.cert == pki1.server_cert.read_bytes()
    assert material.ca == pki1.ca_pem
    cert = x509.load_pem_x509_certificate(material.cert)
    assert material.fingerprint == "sha256:" + cert.fingerprint(hashes.SHA256()).hex()  # as openssl shows it
