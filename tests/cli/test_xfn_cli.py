"""The ``xfn`` script (and ``xp fn``): help, settings errors, ``xfn run``, ``xfn call``, real ``xfn`` processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fn.runner_fixtures import RunnerThread, running, test_settings, xr_request
from tests.support.certs import TLSCerts
from tests.support.procs import free_port
from xplane.cli.xfn import main, serve
from xplane.fn.client import FunctionClient
from xplane.fn.errors import FunctionCallError
from xplane.fn.loader import load_spec
from xplane.fn.proto import fnv1
from xplane.fn.router import FUNCTION_METADATA_KEY
from xplane.fn.settings import FLAG_ENV, Address, Settings

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
FATAL_FUNCTION = (
    "from crossplane.function import response\n\n"
    "def run_function(req):\n    rsp = response.to(req)\n    response.fatal(rsp, 'no bucket today')\n    return rsp\n"
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
    for text, why in [
        ("- 1\n", "it is an array, not an object"),
        ("observed: {composite: {resource: {a: .nan}}}\n", "JSON cannot hold"),  # not a FATAL from the SDK
        ("observed: [1\n", f"{bad}:2:1: invalid YAML"),
    ]:
        bad.write_text(text)
        assert main(["run", "hello", "-r", str(bad), "--functions-dir", str(functions)]) == 2
        assert why in capsys.readouterr().err
    good = tmp_path / "req.json"
    good.write_text(json.dumps(REQUEST))
    assert main(["run", "nope", "-r", str(good), "--functions-dir", str(functions)]) == 3
    assert "functions there: hello" in capsys.readouterr().err


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


# -- xfn run: only the named function is loaded, and its errors are named ------------------------


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``xfn run`` configures the root logger (as a console script does); undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _cluttered(tmp_path: Path) -> Path:
    """A working directory as users have them: the function beside files that are not functions."""
    cwd = tmp_path / "work"
    (cwd / "hello").mkdir(parents=True)
    (cwd / "hello" / "fn.py").write_text(SDK_FUNCTION)
    (cwd / "req.yaml").write_text(yaml.safe_dump(REQUEST))
    (cwd / "setup.py").write_text("raise SystemExit('setup.py must not run')\n")
    (cwd / "docs").mkdir()
    (cwd / "docs" / "notes.txt").write_text("notes\n")
    return cwd


def test_run_loads_only_the_named_function_and_reports_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(_cluttered(tmp_path))
    assert main(["run", "hello", "-r", "req.yaml", "-o", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["results"][0]["message"] == "composed bucket for my-xr"
    assert out.err == ""


def test_run_debug_says_why_other_entries_were_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(_cluttered(tmp_path))
    assert main(["run", "hello", "-r", "req.yaml", "--debug"]) == 0
    err = capsys.readouterr().err
    assert "skipped: not a function entry=docs" in err
    assert "entry=req" in err and "unknown field(s)" in err


def test_run_names_the_function_that_failed_to_load_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = _cluttered(tmp_path)
    (cwd / "hello" / "fn.py").write_text("import no_such_module_for_xfn\n")
    monkeypatch.chdir(cwd)
    assert main(["run", "hello", "-r", "req.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xfn: error: function 'hello' failed to load: ")
    assert "ModuleNotFoundError: No module named 'no_such_module_for_xfn'" in err
    assert "setup" not in err and "docs" not in err


def test_run_exits_1_on_a_fatal_result_after_printing_the_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = _cluttered(tmp_path)
    (cwd / "fatal.py").write_text(FATAL_FUNCTION)
    monkeypatch.chdir(cwd)
    assert main(["run", "fatal", "-r", "req.yaml", "-o", "json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["results"][0] == {"severity": "SEVERITY_FATAL", "message": "no bucket today"}
    assert "function 'fatal' answered with a FATAL result: no bucket today" in out.err


# -- xfn call: a request to a running runner ---------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RunnerThread]:
    """A runner (in this process, on 127.0.0.1) serving two real Python functions: hello and fatal."""
    root = tmp_path / "served"
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "fn.py").write_text(SDK_FUNCTION)
    (root / "fatal.py").write_text(FATAL_FUNCTION)
    with running(test_settings(root), discover=None) as rt:
        yield rt


def _requests(tmp_path: Path) -> tuple[Path, Path]:
    as_yaml, as_json = tmp_path / "req.yaml", tmp_path / "req.json"
    as_yaml.write_text(yaml.safe_dump(REQUEST))
    as_json.write_text(json.dumps(REQUEST))
    return as_yaml, as_json


def test_call_prints_the_response_and_exits_as_run_does(
    served: RunnerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    as_yaml, as_json = _requests(tmp_path)
    target = served.grpc_target
    assert main(["call", target, "hello", "--insecure", "-r", str(as_json), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["meta"]["tag"] == "cli"
    assert out["desired"]["resources"]["bucket"]["resource"]["spec"] == {"region": "eu", "replicas": 3}
    assert main(["call", target, "hello", "--insecure", "--request", str(as_yaml)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["results"][0]["message"] == "composed bucket for my-xr"
    assert main(["call", target, "fatal", "--insecure", "-r", str(as_yaml), "-o", "json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["results"][0]["message"] == "no bucket today"
    assert "function 'fatal' answered with a FATAL result" in out.err
    assert main(["call", target, "nope", "--insecure", "-r", str(as_yaml)]) == 3
    err = capsys.readouterr().err
    assert "no function named 'nope' is loaded; loaded functions: fatal, hello" in err


def test_call_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    as_yaml, _ = _requests(tmp_path)
    assert main(["call", "127.0.0.1:1", "f", "-r", str(as_yaml), "--cert", str(as_yaml)]) == 2
    assert "--cert and --key go together" in capsys.readouterr().err
    assert main(["call", "127.0.0.1:1", "f", "-r", str(as_yaml), "--insecure", "--ca", str(as_yaml)]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("observed: 7\n")
    assert main(["call", "127.0.0.1:1", "f", "-r", str(bad), "--insecure"]) == 2
    assert "is not a RunFunctionRequest" in capsys.readouterr().err


def test_call_waits_for_a_runner_that_is_still_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    as_yaml, _ = _requests(tmp_path)
    root = tmp_path / "late"
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "fn.py").write_text(SDK_FUNCTION)
    port = free_port()
    assert main(["call", f"127.0.0.1:{port}", "hello", "--insecure", "-r", str(as_yaml)]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err  # nothing listens yet, and no --wait

    started: list[RunnerThread] = []

    def start_later() -> None:
        time.sleep(1.0)
        started.append(RunnerThread(test_settings(root, grpc_addr=Address("127.0.0.1", port)), discover=None))
        started[0].call(started[0].runner.start())

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        begun = time.monotonic()
        code = main(["call", f"127.0.0.1:{port}", "hello", "--insecure", "--wait", "20s", "-r", str(as_yaml)])
        assert code == 0, capsys.readouterr().err
        assert time.monotonic() - begun < 10
    finally:
        thread.join()
        for rt in started:
            rt.stop()


def _tls_dir(tmp_path: Path, certs: TLSCerts) -> Path:
    d = tmp_path / "tls"
    d.mkdir()
    for src, dst in (
        (certs.server_cert, "tls.crt"),
        (certs.server_key, "tls.key"),
        (certs.ca_cert, "ca.crt"),
    ):
        shutil.copy(src, d / dst)
    return d


def test_call_over_mtls_and_tls_failures_exit_5(
    tmp_path: Path, tls_certs: TLSCerts, capsys: pytest.CaptureFixture[str]
) -> None:
    as_yaml, _ = _requests(tmp_path)
    root = tmp_path / "secure"
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "fn.py").write_text(SDK_FUNCTION)
    settings = test_settings(root, insecure=False, tls_certs_dir=_tls_dir(tmp_path, tls_certs))
    with running(settings, discover=None) as rt:
        target = f"localhost:{rt.runner.grpc_port}"
        tls = [
            "--ca",
            str(tls_certs.ca_cert),
            "--cert",
            str(tls_certs.client_cert),
            "--key",
            str(tls_certs.client_key),
        ]
        assert main(["call", target, "hello", *tls, "-r", str(as_yaml), "-o", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["meta"]["tag"] == "cli"
        # The server certificate names localhost, not this name: refused by the client.
        wrong_name = [*tls, "--server-name", "function-elsewhere"]
        assert main(["call", target, "hello", *wrong_name, "-r", str(as_yaml)]) == 5
        assert "hint: the TLS handshake failed" in capsys.readouterr().err
        # No client certificate: the runner refuses the handshake.
        assert main(["call", target, "hello", "--ca", str(tls_certs.ca_cert), "-r", str(as_yaml)]) == 5
        assert "it may require a client certificate (mTLS)" in capsys.readouterr().err
    plain = tmp_path / "plain"
    (plain / "hello").mkdir(parents=True)
    (plain / "hello" / "fn.py").write_text(SDK_FUNCTION)
    with running(test_settings(plain), discover=None) as rt:  # TLS client, plaintext runner
        target = f"localhost:{rt.runner.grpc_port}"
        assert main(["call", target, "hello", "--ca", str(tls_certs.ca_cert), "-r", str(as_yaml)]) == 5


def test_not_found_hint_names_only_routing_options_that_exist(served: RunnerThread) -> None:
    """The NOT_FOUND a metadata-less call gets (what Crossplane sends) names options that really route."""

    async def call(metadata: tuple[tuple[str, str], ...]) -> fnv1.RunFunctionResponse:
        async with FunctionClient(served.grpc_target, metadata=metadata) as client:
            return await client.run(xr_request(), timeout=10)

    with pytest.raises(FunctionCallError) as err:
        asyncio.run(call(()))
    text = err.value.message
    assert err.value.code == "NOT_FOUND" and "did not say which one it is for" in text
    assert "Service named after" not in text  # grpcio cannot route by :authority
    hint = text.split("hint: ", 1)[1]
    flags = set(re.findall(r"--[a-z][a-z-]+", hint))
    envs = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", hint))
    fields = set(re.findall(r"\b[a-z]+[A-Z][a-z]+[A-Za-z]*\b", hint))  # camelCase: grpcPort
    keys = set(re.findall(r"\b(?:x-[a-z-]+|host)\b", hint))
    assert flags and envs and fields and keys
    serve_flags = {opt for param in serve.params for opt in param.opts}
    assert flags <= serve_flags, flags - serve_flags
    assert envs <= {env for _, _, env in FLAG_ENV}
    for env in envs:  # each variable takes a name=port list
        assert Settings.load({}, {env: "hello=9501"}).function_ports == (("hello", 9501),)
    for field in fields:  # each field gives the function its own port
        d = served.runner.settings.functions_dir / "hello"
        (d / "function.yaml").write_text(f"{field}: 9501\n")
        try:
            assert load_spec(d).options["grpc_port"] == 9501
        finally:
            (d / "function.yaml").unlink()
    for key in keys:  # each metadata key or header routes the call
        value = "hello" if key == FUNCTION_METADATA_KEY else "hello.crossplane-system:9443"
        rsp = asyncio.run(call(((key, value),)))
        assert rsp.results[0].message == "composed bucket for my-xr", key


# -- logs: every line a runner writes is its own JSON, the SDK's lines included -------------------

SDK_LOGGING_FUNCTION = textwrap.dedent(
    """
    from crossplane.function import logging, response
    from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1


    class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
        def __init__(self):
            self.log = logging.get_logger()

        async def RunFunction(self, req, context):
            log = self.log.bind(tag=req.meta.tag)
            log.info("Running function", name="clashes-with-LogRecord.name")
            log.debug("not shown at info")
            rsp = response.to(req)
            response.normal(rsp, "logged")
            return rsp
    """
)
# The same, configuring the SDK's logging itself at import, as a function written to run alone may.
SDK_CONFIGURING_FUNCTION = SDK_LOGGING_FUNCTION.replace(
    "class FunctionRunner", "logging.configure(logging.Level.DEBUG)\n\n\nclass FunctionRunner"
)


def test_sdk_log_lines_come_out_as_xfn_json(tmp_path: Path) -> None:
    root = tmp_path / "fns"
    for name, source in (("quiet", SDK_LOGGING_FUNCTION), ("loud", SDK_CONFIGURING_FUNCTION)):
        (root / name / "function").mkdir(parents=True)
        (root / name / "function" / "fn.py").write_text(source)
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "LISTEN_ADDR": f"127.0.0.1:{http_port}", "FUNCTIONS_DIR": str(root)}
    env.pop("LOG_LEVEL", None)
    out, err = (tmp_path / "stdout").open("w"), (tmp_path / "stderr").open("w")
    proc = subprocess.Popen(
        [*_xfn_argv(), "--insecure", "--grpc-addr", f"127.0.0.1:{grpc_port}"], env=env, stdout=out, stderr=err
    )
    try:
        for name in ("quiet", "loud"):
            cmd = [*_xfn_argv(), "call", f"127.0.0.1:{grpc_port}", name, "--insecure", "--wait", "20s"]
            req = tmp_path / "req.yaml"
            req.write_text(yaml.safe_dump(REQUEST))
            done = subprocess.run([*cmd, "-r", str(req)], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
        err.close()
    lines = (tmp_path / "stdout").read_text().splitlines() + (tmp_path / "stderr").read_text().splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
    running_lines = [r for r in records if r["msg"] == "Running function"]
    assert sorted(r["function"] for r in running_lines) == ["loud", "quiet"]
    for record in running_lines:
        assert record["level"] == "info" and record["tag"] == "cli"
        assert record["logger"] == "function.fn"  # the module inside the function, not its unique package
        assert record["name"] == "clashes-with-LogRecord.name"
    assert not [r for r in records if r["msg"] == "not shown at info"]


def _xfn_argv() -> list[str]:
    xfn = Path(sys.executable).parent / "xfn"
    return [str(xfn)] if xfn.exists() else [sys.executable, "-m", "xplane.cli.xfn"]
