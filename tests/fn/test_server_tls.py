"""mTLS from TLS_SERVER_CERTS_DIR: a client with a cert from the CA is served, others are refused."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.fn.runner_fixtures import RunnerThread, running, test_settings, write_function, xr_request
from tests.support.certs import TLSCerts
from xplane.fn.proto import grpcv1
from xplane.fn.runner import Runner
from xplane.fn.settings import RunnerConfigError


def _certs_dir(tmp_path: Path, certs: TLSCerts) -> Path:
    d = tmp_path / "tls"
    d.mkdir()
    shutil.copy(certs.server_cert, d / "tls.crt")
    shutil.copy(certs.server_key, d / "tls.key")
    shutil.copy(certs.ca_cert, d / "ca.crt")
    return d


@pytest.fixture
def tls_runner(tmp_path: Path, tls_certs: TLSCerts) -> Iterator[RunnerThread]:
    write_function(tmp_path / "fns", "f", message="secure")
    settings = test_settings(tmp_path / "fns", insecure=False, tls_certs_dir=_certs_dir(tmp_path, tls_certs))
    with running(settings) as rt:
        yield rt


def _call(target: str, creds: grpc.ChannelCredentials | None) -> object:
    channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    with channel:
        return grpcv1.FunctionRunnerServiceStub(channel).RunFunction(xr_request(), timeout=5)


def test_client_with_a_valid_cert_is_served(tls_runner: RunnerThread, tls_certs: TLSCerts) -> None:
    creds = grpc.ssl_channel_credentials(
        tls_certs.ca_pem, tls_certs.client_key.read_bytes(), tls_certs.client_cert.read_bytes()
    )
    rsp = _call(f"localhost:{tls_runner.runner.grpc_port}", creds)
    assert rsp.results[0].message == "secure from f"  # type: ignore[attr-defined]


def test_client_without_a_cert_is_refused(tls_runner: RunnerThread, tls_certs: TLSCerts) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _call(f"localhost:{tls_runner.runner.grpc_port}", grpc.ssl_channel_credentials(tls_certs.ca_pem))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_is_refused(tls_runner: RunnerThread) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _call(tls_runner.grpc_target, None)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_insecure_wins_over_a_certs_dir(tmp_path: Path, tls_certs: TLSCerts) -> None:
    write_function(tmp_path / "fns", "f", message="plain")
    settings = test_settings(tmp_path / "fns", insecure=True, tls_certs_dir=_certs_dir(tmp_path, tls_certs))
    with running(settings) as rt:
        rsp = _call(rt.grpc_target, None)
    assert rsp.results[0].message == "plain from f"  # type: ignore[attr-defined]


def test_no_tls_and_no_insecure_is_a_config_error(tmp_path: Path) -> None:
    runner = Runner(test_settings(tmp_path, insecure=False))
    with pytest.raises(RunnerConfigError, match="TLS_SERVER_CERTS_DIR"):
        runner.credentials()


def test_missing_cert_file_is_named(tmp_path: Path, tls_certs: TLSCerts) -> None:
    d = _certs_dir(tmp_path, tls_certs)
    (d / "ca.crt").unlink()
    runner = Runner(test_settings(tmp_path, insecure=False, tls_certs_dir=d))
    with pytest.raises(RunnerConfigError, match=r"ca\.crt"):
        runner.credentials()
