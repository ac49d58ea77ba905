"""The ``xfn`` script (and ``xp fn``): help, settings errors, ``xfn run``, and a real ``xfn`` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.procs import free_port
from xplane.cli.xfn import main

SDK_FUNCTION = textwrap.dedent(
    """
    from crossplane.function import resource, response
    from crossplane.function.proto.v1 import run_function_pb2 as fnv1
    from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1


    class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
        async def RunFunction(self, req, context):
            rsp = response.to(req)
            xr = resource.struct_to_dict(req.observed.composite.resource)
            resource.update(rsp.desired.resources["bucket"], {
                "apiVersion": "s3.example.org/v1", "kind": "Bucket",
                "spec": {"region": xr["spec"]["region"], "replicas": 3}})
            rsp.desired.resources["bucket"].ready = fnv1.READY_TRUE
            response.normal(rsp, f"composed bucket for {xr['metadata']['name']}")
            return rsp
    """
)
REQUEST = {
    "meta": {"tag": "cli"},
    "observed": {"composite": {"resource": {
        "apiVersion": "example.org/v1", "kind": "XBucket", "metadata": {"name": "my-xr"}, "spec": {"region": "eu"}}}},
}  # fmt: skip


def _need_loader() -> None:
    try:
        import xplane.fn.loader  # noqa: F401
    except ImportError:
        pytest.skip("xplane.fn.loader has not landed yet")


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    root = tmp_path / "functions"
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "fn.py").write_text(SDK_FUNCTION)
    return root


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "LOG_LEVEL",
        "LISTEN_ADDR",
        "FUNCTIONS_DIR",
        "DEBUG_MODE",
        "FUNCTION_LOAD_MODE",
        "FUNCTION_HTTP_URL",
        "CROSSPLANE_TIMEOUT",
        "CROSSPLANE_API_URL",
        "TLS_SERVER_CERTS_DIR",
    ):
        monkeypatch.delenv(var, raising=False)


def test_help_lists_serve_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "serve" in out and "run" in out
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in (
        "--log-level",
        "--listen-addr",
        "--functions-dir",
        "--debug",
        "--grpc-addr",
        "--insecure",
        "--max-message-size",
        "--tls-certs-dir",
    ):
        assert flag in out


def test_serve_without_tls_or_insecure_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--functions-dir", str(tmp_path)]) == 2
    assert "TLS_SERVER_CERTS_DIR" in capsys.readouterr().err


def test_bad_env_value_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTION_LOAD_MODE", "carrier-pigeon")
    assert main(["serve", "--insecure"]) == 2
    assert "FUNCTION_LOAD_MODE" in capsys.readouterr().err


def test_run_prints_the_response_as_json_and_yaml(
    functions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need_loader()
    req = tmp_path / "req.yaml"
    req.write_text(yaml.safe_dump(REQUEST))
    assert main(["run", "hello", "--request", str(req), "--functions-dir", str(functions), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["meta"]["tag"] == "cli"
    assert out["results"][0]["message"] == "composed bucket for my-xr"
    assert out["desired"]["resources"]["bucket"]["resource"]["spec"] == {"region": "eu", "replicas": 3}
    assert main(["run", "hello", "-r", str(req), "--functions-dir", str(functions)]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["desired"]["resources"]["bucket"]["ready"] == "READY_TRUE"


def test_run_errors(functions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need_loader()
    bad = tmp_path / "bad.json"
    bad.write_text('{"observed": 7}')
    assert main(["run", "hello", "-r", str(bad), "--functions-dir", str(functions)]) == 2
    assert "is not a RunFunctionRequest" in capsys.readouterr().err
    good = tmp_path / "req.json"
    good.write_text(json.dumps(REQUEST))
    assert main(["run", "nope", "-r", str(good), "--functions-dir", str(functions)]) == 3
    assert "loaded functions: hello" in capsys.readouterr().err


def test_xp_fn_run_is_the_same_command(
    functions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need_loader()
    from xplane.cli.main import cli
    from xplane.cli.output import run_cli

    req = tmp_path / "req.json"
    req.write_text(json.dumps(REQUEST))
    assert (
        run_cli(cli, ["fn", "run", "hello", "-r", str(req), "--functions-dir", str(functions), "-o", "json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["meta"]["tag"] == "cli"


def test_xfn_process_becomes_ready_and_stops_on_sigterm(functions: Path, tmp_path: Path) -> None:
    _need_loader()
    http_port = free_port()
    env = {**os.environ, "LISTEN_ADDR": f"127.0.0.1:{http_port}", "FUNCTIONS_DIR": str(functions)}
    xfn = Path(sys.executable).parent / "xfn"
    argv = [str(xfn)] if xfn.exists() else [sys.executable, "-m", "xplane.cli.xfn"]
    log = (tmp_path / "xfn.log").open("w")
    proc = subprocess.Popen(
        [*argv, "--insecure", "--grpc-addr", "127.0.0.1:0"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 15
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=1) as r:
                    body = json.loads(r.read())
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        assert body is not None, (tmp_path / "xfn.log").read_text()
        assert body["functions"] == ["hello"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    lines = [
        json.loads(line) for line in (tmp_path / "xfn.log").read_text().splitlines() if line.startswith("{")
    ]
    serving = [line for line in lines if line["msg"] == "xfn serving"]
    assert serving and serving[0]["eventLoop"] == "uvloop"  # the default, as uvloop is a dependency


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_busy_http_port_is_a_clean_config_error(functions: Path, loop: str) -> None:
    _need_loader()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        env = {
            **os.environ,
            "LISTEN_ADDR": f"127.0.0.1:{busy}",
            "FUNCTIONS_DIR": str(functions),
            "EVENT_LOOP": loop,
        }
        xfn = Path(sys.executable).parent / "xfn"
        argv = [str(xfn)] if xfn.exists() else [sys.executable, "-m", "xplane.cli.xfn"]
        proc = subprocess.run(
            [*argv, "--insecure", "--grpc-addr", "127.0.0.1:0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"cannot listen for HTTP on 127.0.0.1:{busy}" in proc.stderr and "--listen-addr" in proc.stderr
    assert "Traceback" not in proc.stderr
