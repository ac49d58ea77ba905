# ruff: noqa: F811 (pytest fixtures imported from tests/compose/conftest.py are parameters here)
"""``xp render``: pre-checks and their messages in upstream's order, flags, exit codes, failures,
and the Development runtime against a real ``xfn serve`` process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compose.conftest import CASES, functions_dir, render_cli  # noqa: F401 (fixtures)

EXAMPLE = CASES / "worked-example"


def _inputs(
    tmp_path: Path, *, xr: str | None = None, comp: str | None = None, fns: str | None = None
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in (("xr.yaml", xr), ("composition.yaml", comp), ("functions.yaml", fns)):
        (tmp_path / name).write_text(text if text is not None else (EXAMPLE / name).read_text())
    return tmp_path


def _render(render_cli: Any, d: Path, functions_dir: Path, *args: str) -> Any:
    return render_cli(
        ["xr.yaml", "composition.yaml", "functions.yaml", "--functions-dir", str(functions_dir), *args], cwd=d
    )


COMP = (EXAMPLE / "composition.yaml").read_text()


@pytest.mark.parametrize(
    ("comp", "message"),
    [
        (
            COMP.replace("kind: XBucket", "kind: XOther").replace(
                "apiVersion: example.org/v1alpha1", "apiVersion: x/v1"
            ),
            "composition's compositeTypeRef.kind (XOther) does not match XR's kind (XBucket)",
        ),
        (
            COMP.replace("apiVersion: example.org/v1alpha1", "apiVersion: example.org/v2"),
            "composition's compositeTypeRef.apiVersion (example.org/v2) does not match XR's apiVersion "
            "(example.org/v1alpha1)",
        ),
        (
            COMP.replace("  mode: Pipeline\n", "  mode: Resources\n"),
            'render only supports Composition Function pipelines: Composition "xbuckets" must use spec.mode: Pipeline',
        ),
        (
            COMP.replace("  mode: Pipeline\n", ""),
            'render only supports Composition Function pipelines: Composition "xbuckets" must use spec.mode: Pipeline',
        ),
        (
            COMP.replace("kind: Composition", "kind: Other"),
            'cannot load Composition from "composition.yaml": not a composition: Other/xbuckets',
        ),
    ],
)
def test_prechecks(tmp_path: Path, render_cli: Any, functions_dir: Path, comp: str, message: str) -> None:
    got = _render(render_cli, _inputs(tmp_path, comp=comp), functions_dir)
    assert (got.code, got.out) == (1, "")
    assert got.err == f"xp: error: {message}\n"


def test_composition_selector_labels(tmp_path: Path, render_cli: Any, functions_dir: Path) -> None:
    xr = (
        EXAMPLE / "xr.yaml"
    ).read_text() + "  crossplane:\n    compositionSelector:\n      matchLabels:\n        tier: gold\n"
    got = _render(render_cli, _inputs(tmp_path, xr=xr), functions_dir)
    assert got.err == 'xp: error: composition "xbuckets" is missing required label "tier"\n'
    comp = COMP.replace("  name: xbuckets\n", "  name: xbuckets\n  labels:\n    tier: silver\n")
    got = _render(render_cli, _inputs(tmp_path, xr=xr, comp=comp), functions_dir)
    assert got.err == (
        'xp: error: composition "xbuckets" has incorrect value for label "tier": want "gold", got "silver"\n'
    )
    got = _render(render_cli, _inputs(tmp_path, xr=xr, comp=comp.replace("silver", "gold")), functions_dir)
    assert got.code == 0, got.err


def test_checks_run_in_upstream_order(tmp_path: Path, render_cli: Any, functions_dir: Path) -> None:
    """A wrong kind is reported before a bad functions file and a wrong mode."""
    comp = COMP.replace("kind: XBucket", "kind: XOther").replace("  mode: Pipeline\n", "")
    got = _render(
        render_cli, _inputs(tmp_path, comp=comp, fns="apiVersion: v1\nkind: ConfigMap\n"), functions_dir
    )
    assert "compositeTypeRef.kind (XOther)" in got.err
    got = _render(
        render_cli,
        _inputs(tmp_path, fns="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
        functions_dir,
    )
    assert got.err == 'xp: error: cannot load functions from "functions.yaml": not a function: ConfigMap/x\n'


def test_functions_directory_and_empty_directory(
    tmp_path: Path, render_cli: Any, functions_dir: Path
) -> None:
    d = _inputs(tmp_path)
    (d / "fns").mkdir()
    got = render_cli(["xr.yaml", "composition.yaml", "fns", "--functions-dir", str(functions_dir)], cwd=d)
    assert (
        got.err
        == 'xp: error: cannot load functions from "fns": no YAML files found in "fns" (.yaml or .yml)\n'
    )
    shutil.copy(d / "functions.yaml", d / "fns" / "a.yml")
    (d / "fns" / "sub").mkdir()
    (d / "fns" / "sub" / "bad.yaml").write_text("kind: Nope\n")
    got = render_cli(
        ["xr.yaml", "composition.yaml", "fns", "--functions-dir", str(functions_dir), "-r"], cwd=d
    )
    assert got.code == 0 and got.out == (EXAMPLE / "expected.yaml").read_text()


def test_annotations_flag_and_unknown_runtime(tmp_path: Path, render_cli: Any, functions_dir: Path) -> None:
    d = _inputs(tmp_path)
    got = _render(render_cli, d, functions_dir, "-a", "render.crossplane.io/runtime=Bogus")
    assert got.err == (
        'xp: error: cannot render composite resource: unsupported "render.crossplane.io/runtime" '
        'annotation value "Bogus" (unknown runtime)\n'
    )
    got = _render(render_cli, d, functions_dir, "-a", "no-equals")
    assert got.err == 'xp: error: invalid function annotation format "no-equals", expected key=value\n'


def test_unknown_function_and_missing_functions_dir(
    tmp_path: Path, render_cli: Any, functions_dir: Path
) -> None:
    d = _inputs(tmp_path, comp=COMP.replace("name: function-script", "name: function-gone"))
    got = _render(render_cli, d, functions_dir)
    assert got.err == (
        'xp: error: cannot render composite resource: unknown Function "function-gone" - '
        "does it exist in your Functions file?\n"
    )
    got = render_cli(["xr.yaml", "composition.yaml", "functions.yaml"], cwd=_inputs(tmp_path))
    assert (
        got.code == 1 and 'cannot run Function "function-script"' in got.err and "--functions-dir" in got.err
    )


def test_include_full_xr_needs_spec(tmp_path: Path, render_cli: Any, functions_dir: Path) -> None:
    xr = "apiVersion: example.org/v1alpha1\nkind: XBucket\nmetadata: {name: demo}\n"
    got = _render(render_cli, _inputs(tmp_path, xr=xr), functions_dir, "-x")
    assert got.code == 1 and "has no spec" in got.err


def test_xrd_version_must_exist(tmp_path: Path, render_cli: Any, functions_dir: Path) -> None:
    d = _inputs(tmp_path)
    xrd = (CASES / "xrd-defaults" / "xrd.yaml").read_text().replace("name: v1alpha1", "name: v1beta1")
    (d / "xrd.yaml").write_text(xrd)
    got = _render(render_cli, d, functions_dir, "--xrd", "xrd.yaml")
    assert (
        got.err == "xp: error: the specified API version 'example.org/v1alpha1' does not exist in the XRD\n"
    )


def test_fatal_exit_code_and_no_output(render_cli: Any, functions_dir: Path) -> None:
    got = _render(render_cli, CASES / "fatal", functions_dir, "-r")
    assert got.code == 6 and got.out == ""


def test_crashing_exec_function_reports_name_step_and_stderr(tmp_path: Path, render_cli: Any) -> None:
    fdir = tmp_path / "fns"
    (fdir / "function-script").mkdir(parents=True)
    exe = fdir / "function-script" / "function"
    exe.write_text("#!/bin/sh\necho 'panic: nil map in main.go:42' >&2\nexit 2\n")
    exe.chmod(0o755)
    got = _render(render_cli, _inputs(tmp_path / "in"), fdir)
    assert got.code == 6, got.err
    assert 'pipeline step "compose"' in got.err and "panic: nil map in main.go:42" in got.err


def test_timeout_bounds_the_render(tmp_path: Path, render_cli: Any) -> None:
    fdir = tmp_path / "fns"
    (fdir / "function-script").mkdir(parents=True)
    (fdir / "function-script" / "fn.py").write_text(
        textwrap.dedent("""\
        import asyncio

        async def run_function(req):
            await asyncio.sleep(60)
        """)
    )
    start = time.monotonic()
    got = _render(render_cli, _inputs(tmp_path / "in"), fdir, "--timeout", "1s")
    assert time.monotonic() - start < 10
    assert (got.code, got.out) == (1, ""), got.err
    assert 'step "compose": function "function-script" timed out after' in got.err
    assert "the render's --timeout ran out" in got.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def xfn_serve_process(tmp_path: Path, functions_dir: Path) -> Iterator[str]:
    """A real ``xfn serve --insecure`` process serving function-script alone; waits on /ready (bounded)."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copytree(functions_dir / "function-script", served / "function-script")
    grpc_port, http_port = _free_port(), _free_port()
    xfn = Path(sys.executable).with_name("xfn")
    proc = subprocess.Popen(
        [
            str(xfn),
            "serve",
            "--insecure",
            "--functions-dir",
            str(served),
            "--grpc-addr",
            f"127.0.0.1:{grpc_port}",
            "--listen-addr",
            f"127.0.0.1:{http_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"xfn serve did not become ready: {err[-2000:]}")
                time.sleep(0.05)  # poll interval of a bounded health check
        yield f"127.0.0.1:{grpc_port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_development_runtime_against_xfn_serve(
    tmp_path: Path, render_cli: Any, xfn_serve_process: str
) -> None:
    fns = (
        (EXAMPLE / "functions.yaml")
        .read_text()
        .replace(
            "  name: function-script\n",
            "  name: function-script\n  annotations:\n    render.crossplane.io/runtime: Development\n"
            f"    render.crossplane.io/runtime-development-target: {xfn_serve_process}\n",
        )
    )
    got = render_cli(["xr.yaml", "composition.yaml", "functions.yaml", "-r"], cwd=_inputs(tmp_path, fns=fns))
    assert (got.code, got.err) == (0, "")
    assert got.out == (EXAMPLE / "expected.yaml").read_text()


def test_development_runtime_with_nothing_listening(tmp_path: Path, render_cli: Any) -> None:
    port = _free_port()
    d = _inputs(tmp_path)
    got = render_cli(
        [
            "xr.yaml",
            "composition.yaml",
            "functions.yaml",
            "--timeout",
            "5s",
            "-a",
            "render.crossplane.io/runtime=Development",
            "-a",
            f"render.crossplane.io/runtime-development-target=127.0.0.1:{port}",
        ],
        cwd=d,
    )
    assert got.code == 1 and 'pipeline step "compose"' in got.err and f"127.0.0.1:{port}" in got.err


def test_watch_renders_again_and_prints_a_diff(tmp_path: Path, functions_dir: Path) -> None:
    import queue
    import signal
    import threading

    d = _inputs(tmp_path / "in")
    xp = Path(sys.executable).with_name("xp")
    proc = subprocess.Popen(
        [
            str(xp),
            "render",
            "xr.yaml",
            "composition.yaml",
            "functions.yaml",
            "-r",
            "--watch",
            "--functions-dir",
            str(functions_dir),
        ],
        cwd=d,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe: the diff (stdout) and "-- watching" (stderr) stay in order
        text=True,
    )
    lines: queue.Queue[tuple[str, str]] = queue.Queue()

    def pump(name: str, stream: Any) -> None:
        for line in stream:
            lines.put((name, line))

    threading.Thread(target=pump, args=("out", proc.stdout), daemon=True).start()

    def until_watching() -> str:
        got: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                name, line = lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line.startswith("-- watching"):
                return "".join(got)
            got.append(line if name == "out" else f"ERR {line}")
        pytest.fail(f"xp render --watch did not settle: {''.join(got)[-2000:]}")

    try:
        first = until_watching()
        assert first == (EXAMPLE / "expected.yaml").read_text()
        comp = d / "composition.yaml"
        comp.write_text(comp.read_text().replace("message: created", "message: created again"))
        second = until_watching()
        assert "-message: created\n" in second and "+message: created again\n" in second
        assert second.startswith("--- previous\n+++ current\n")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130


CHATTY = """\
from crossplane.function import logging, response

log = logging.get_logger()


async def run_function(req):
    print("a print from the function")
    log.info("a log line from the function", step="s")
    rsp = response.to(req)
    response.normal(rsp, "done")
    return rsp
"""


def test_what_functions_print_goes_to_stderr_and_stdout_is_the_documents(tmp_path: Path) -> None:
    """The SDK's logger writes to stdout; a render's stdout must stay a YAML stream (for | xp validate -)."""
    import yaml

    fns = tmp_path / "fns" / "function-chatty"
    fns.mkdir(parents=True)
    (fns / "fn.py").write_text(CHATTY)
    d = _inputs(
        tmp_path / "in",
        comp=COMP.split("  pipeline:")[0]
        + "  pipeline:\n  - step: s\n    functionRef:\n      name: function-chatty\n",
        fns="apiVersion: pkg.crossplane.io/v1\nkind: Function\nmetadata:\n  name: function-chatty\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "xplane.cli.main", "render", "xr.yaml", "composition.yaml", "functions.yaml",
         "--functions-dir", str(tmp_path / "fns"), "-r"],
        cwd=d, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("---\n")
    docs = list(yaml.safe_load_all(done.stdout))
    assert [doc["kind"] for doc in docs] == ["XBucket", "Result"] and docs[1]["message"] == "done"
    assert "a print from the function" in done.stderr and "a log line from the function" in done.stderr
