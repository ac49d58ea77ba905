"""Executable functions: a C program speaking FunctionIO, scripts speaking JSON, and every fault."""

from __future__ import annotations

import errno
import logging
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.fn.conftest import arun, fatal_message, make_request, results
from xplane.fn.errors import FunctionLoadError
from xplane.fn.kinds import sandbox
from xplane.fn.kinds.exec import ExecFunction
from xplane.fn.loader import load_function
from xplane.fn.proto import fnv1, struct_to_dict

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_available() is None, reason="bubblewrap cannot run here")


def fnio_dir(tmp_path: Path, binary: Path, *extra: str) -> Path:
    d = tmp_path / "fnio"
    d.mkdir(exist_ok=True)
    target = d / "fnio"
    if not target.exists():
        target.symlink_to(binary)
    (d / "function.yaml").write_text(
        textwrap.dedent(
            """\
            name: legacy
            kind: exec
            entrypoint: fnio
            protocol: functionio
            env: {FNIO_GREETING: bonjour}
            """
        )
        + "\n".join(extra)
        + "\n"
    )
    return d


def script(tmp_path: Path, body: str, name: str = "fn", yaml: str = "") -> Path:
    """A Python script (run with this interpreter) as an executable function directory."""
    d = tmp_path / name
    d.mkdir()
    exe = d / "main"
    exe.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    exe.chmod(0o755)
    if yaml:
        (d / "function.yaml").write_text(textwrap.dedent(yaml))
    return d


JSON_FN = """\
import json, os, sys
req = json.load(sys.stdin)
rsp = {"meta": {"tag": req["meta"]["tag"]}, "desired": req.get("desired", {}),
       "results": [{"severity": "SEVERITY_NORMAL",
                    "message": "region=%s env=%s" % (req["observed"]["composite"]["resource"]["spec"]["region"],
                                                    sorted(os.environ))}]}
rsp["desired"].setdefault("resources", {})["cm"] = {"resource": {"apiVersion": "v1", "kind": "ConfigMap"},
                                                     "ready": "READY_TRUE"}
json.dump(rsp, sys.stdout)
"""


def test_c_program_speaking_functionio(tmp_path: Path, fnio_binary: Path) -> None:
    fn = load_function(fnio_dir(tmp_path, fnio_binary))
    assert isinstance(fn, ExecFunction) and fn.protocol == "functionio"
    rsp = arun(fn.run(make_request(tag="legacy-1", mode="x"), timeout=10))
    assert rsp.meta.tag == "legacy-1"
    ((sev, msg),) = results(rsp)
    assert sev == fnv1.SEVERITY_NORMAL and msg.startswith("bonjour from C")
    # The desired XR was seeded from observed for the old protocol and came back untouched: not copied.
    assert not rsp.desired.composite.resource
    assert rsp.context["apiextensions.crossplane.io/environment"]["team"] == "a"


def test_functionio_fatal_result(tmp_path: Path, fnio_binary: Path) -> None:
    fn = load_function(fnio_dir(tmp_path, fnio_binary, "args: [fatal]"))
    rsp = arun(fn.run(make_request(), timeout=10))
    assert fatal_message(rsp).startswith("bonjour from C")


def test_json_protocol_and_clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPLANE_SECRET_TOKEN", "do-not-leak")
    d = script(tmp_path, JSON_FN, yaml="kind: exec\nentrypoint: main\nenv: {FOO: bar}\n")
    fn = load_function(d)
    rsp = arun(fn.run(make_request(tag="j"), timeout=10))
    ((sev, msg),) = results(rsp)
    assert sev == fnv1.SEVERITY_NORMAL and msg.startswith("region=us-east-2")
    env_names = eval(msg.split("env=", 1)[1])  # a repr'd list of names
    assert "XPLANE_SECRET_TOKEN" not in env_names and "FOO" in env_names
    assert set(env_names) <= {"PATH", "HOME", "LANG", "FOO", "LC_CTYPE", "PWD", "SHLVL", "_"}
    assert rsp.desired.resources["cm"].ready == fnv1.READY_TRUE
    assert struct_to_dict(rsp.desired.resources["cm"].resource)["kind"] == "ConfigMap"


def test_convention_single_executable_is_json(tmp_path: Path) -> None:
    fn = load_function(script(tmp_path, JSON_FN))
    assert fn.spec.kind == "exec" and fn.spec.protocol == "json" and fn.spec.entrypoint == "main"


@pytest.mark.parametrize(
    ("mode", "expect"),
    [
        ("crash", "exited with code 3: fnio: cannot reticulate splines"),
        ("abort", "was killed by SIGABRT"),
        ("garbage", "wrote invalid functionio output"),
    ],
)
def test_faults_become_fatal(tmp_path: Path, fnio_binary: Path, mode: str, expect: str) -> None:
    fn = load_function(fnio_dir(tmp_path, fnio_binary, f"args: [{mode}]"))
    rsp = arun(fn.run(make_request(tag="f"), timeout=10))
    assert rsp.meta.tag == "f"
    assert expect in fatal_message(rsp)


def test_hang_is_killed_at_the_timeout(tmp_path: Path, fnio_binary: Path) -> None:
    fn = load_function(fnio_dir(tmp_path, fnio_binary, "args: [spin]"))
    start = time.monotonic()
    rsp = arun(fn.run(make_request(), timeout=0.5))
    assert time.monotonic() - start < 3
    assert "timed out after 0.5s" in fatal_message(rsp)


@pytest.mark.parametrize("sandbox", ["none", "auto"])
def test_memory_limit(tmp_path: Path, fnio_binary: Path, sandbox: str) -> None:
    # no preexec_fn (see spawn_piped): util-linux prlimit sets the limit and execs the program,
    # inside the sandbox when there is one
    fn = load_function(
        fnio_dir(tmp_path, fnio_binary, "args: [hog]", "limits: {memory: 64Mi}", f"sandbox: {sandbox}")
    )
    assert isinstance(fn, ExecFunction)
    if shutil.which("prlimit"):
        command = fn.command()
        assert f"--as={64 << 20}" in command and command.index("--core=0") < command.index(str(fn.executable))
    rsp = arun(fn.run(make_request(), timeout=10))
    assert "exited with code 12: fnio: out of memory after" in fatal_message(rsp)


def test_output_cap(tmp_path: Path, fnio_binary: Path) -> None:
    fn = load_function(fnio_dir(tmp_path, fnio_binary, "args: [flood]", "limits: {outputBytes: 1Mi}"))
    rsp = arun(fn.run(make_request(), timeout=10))
    assert f"wrote more than {1024 * 1024} bytes to stdout" in fatal_message(rsp)


def test_json_garbage_and_empty_output(tmp_path: Path) -> None:
    garbage = load_function(script(tmp_path, "print('{not json')\n", name="g"))
    assert "wrote invalid json output" in fatal_message(arun(garbage.run(make_request(), timeout=10)))
    empty = load_function(script(tmp_path, "pass\n", name="e"))
    assert "empty output" in fatal_message(arun(empty.run(make_request(), timeout=10)))


def test_os_exit_in_script_is_fatal_and_others_unaffected(tmp_path: Path) -> None:
    crash = load_function(
        script(tmp_path, "import os, sys\nsys.stderr.write('dying\\n')\nos._exit(7)\n", name="c")
    )
    ok = load_function(script(tmp_path, JSON_FN, name="ok"))

    async def both() -> tuple[fnv1.RunFunctionResponse, fnv1.RunFunctionResponse]:
        import asyncio

        a, b = await asyncio.gather(crash.run(make_request(), timeout=10), ok.run(make_request(), timeout=10))
        return a, b

    a, b = arun(both())
    assert fatal_message(a).endswith("exited with code 7: dying")
    assert results(b)[0][0] == fnv1.SEVERITY_NORMAL


def test_missing_or_non_executable_entrypoint(tmp_path: Path) -> None:
    d = tmp_path / "x"
    d.mkdir()
    (d / "run.sh").write_text("#!/bin/sh\n")
    (d / "function.yaml").write_text("kind: exec\nentrypoint: run.sh\n")
    with pytest.raises(FunctionLoadError, match="is not executable"):
        load_function(d)
    (d / "function.yaml").write_text("kind: exec\nentrypoint: nope\n")
    with pytest.raises(FunctionLoadError, match="does not exist"):
        load_function(d)


WRITER = """\
import json, sys
req = json.load(sys.stdin)
try:
    open("written-by-function", "w").write("x")
    outcome = "wrote"
except OSError as e:
    outcome = "denied: " + type(e).__name__
print(json.dumps({"results": [{"severity": "SEVERITY_NORMAL", "message": outcome}]}))
"""


@needs_bwrap
def test_bwrap_sandbox_makes_the_filesystem_read_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="xplane.fn.kinds.exec")
    fn = load_function(script(tmp_path, WRITER, yaml="kind: exec\nentrypoint: main\nsandbox: bwrap\n"))
    assert isinstance(fn, ExecFunction) and fn.sandbox == "bwrap"
    assert "sandbox=bwrap" in caplog.text
    assert results(arun(fn.run(make_request(), timeout=10)))[0][1].startswith("denied: ")
    assert not (tmp_path / "fn" / "written-by-function").exists()


def test_sandbox_none_runs_directly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xplane.fn.kinds.exec")
    fn = load_function(script(tmp_path, WRITER, yaml="kind: exec\nentrypoint: main\nsandbox: none\n"))
    assert "sandbox=none" in caplog.text
    assert results(arun(fn.run(make_request(), timeout=10)))[0][1] == "wrote"
    assert (tmp_path / "fn" / "written-by-function").exists()


@needs_bwrap
def test_bwrap_has_no_network_unless_granted(tmp_path: Path) -> None:
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    body = f"""\
import json, socket, sys
sys.stdin.read()
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    outcome = "connected"
except OSError as e:
    outcome = "errno=%s" % e.errno
print(json.dumps({{"results": [{{"severity": "SEVERITY_NORMAL", "message": outcome}}]}}))
"""
    try:
        iso = load_function(
            script(tmp_path, body, name="iso", yaml="kind: exec\nentrypoint: main\nsandbox: bwrap\n")
        )
        net = load_function(
            script(
                tmp_path,
                body,
                name="net",
                yaml="kind: exec\nentrypoint: main\nsandbox: bwrap\nnetwork: true\n",
            )
        )
        # Its own network namespace: the host's listener on 127.0.0.1 is not there.
        assert results(arun(iso.run(make_request(), timeout=10)))[0][1] == f"errno={errno.ECONNREFUSED}"
        assert results(arun(net.run(make_request(), timeout=10)))[0][1] == "connected"
    finally:
        server.close()
