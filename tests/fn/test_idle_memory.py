"""An idle runner keeps only what it serves with: the memory budget, checked by what is imported.

The idle resident set of ``xfn`` is mostly the code of the modules it has imported (see Memory in
docs/runner.md; ``bench/fn_bench.py --idle-rss-only`` measures it). An absolute RSS figure moves
with the machine, so these tests guard the budget by behaviour instead: a real ``xfn`` process,
serving a Python and an executable function in local mode after one call of each, must not have
imported the modules that only other kinds, load modes or settings need.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import free_port, kill, log_tail, spawn
from xplane.fn.client import FunctionClient, TLSOptions
from xplane.fn.proto import fnv1

# Runs xfn in this interpreter after installing a SIGUSR1 handler that writes ``sys.modules``.
DUMPER = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path

    out = Path(sys.argv[1])

    def dump(signum, frame):
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text("\\n".join(sorted(sys.modules)))
        tmp.replace(out)

    signal.signal(signal.SIGUSR1, dump)
    from xplane.cli.xfn import main
    sys.exit(main(sys.argv[2:]))
    """
)

PLAIN_FUNCTION = textwrap.dedent(
    """
    from crossplane.function.proto.v1 import run_function_pb2 as fnv1

    def run_function(req):
        rsp = fnv1.RunFunctionResponse()
        rsp.meta.tag = req.meta.tag
        rsp.results.add(severity=fnv1.SEVERITY_NORMAL, message="plain")
        return rsp
    """
)
EXECUTABLE = textwrap.dedent(
    """\
    #!/bin/sh
    cat >/dev/null
    echo '{"results":[{"severity":"SEVERITY_NORMAL","message":"tool"}]}'
    """
)

#: What an idle local-mode runner with a Python and an executable function must not have imported,
#: with the reason each stays out (the modules and the kinds or settings that need them).
NOT_IMPORTED = {
    "httpx": "remote kind, http load mode and CROSSPLANE_API_URL only",
    "httpcore": "remote kind, http load mode and CROSSPLANE_API_URL only",
    "wasmtime": "wasm kind only",
    "xplane.fn.kinds.wasm": "wasm kind only",
    "xplane.fn.kinds.remote": "remote kind only",
    "xplane.fn.kinds.pyprocess": "python isolation: process only",
    "xplane.fn.client": "remote kind and xfn call only",
    "yaml": "only to read a function.yaml or the functionio protocol",
    "urllib.request": "imported by httpx only",
    "http.client": "imported by httpx only",
    "email": "imported by httpx, and by the http load mode (Last-Modified dates) only",
    "tarfile": "bundles (http and secret load modes) only",
    "tempfile": "http and secret load modes only",
    "shutil": "it loads zlib, bz2 and lzma; staging sources and memory limits only",
    "bz2": "loaded by shutil and tarfile",
    "lzma": "loaded by shutil and tarfile",
    "pydantic": "the SDK's helpers: imported by SDK functions, never by the runner",
}


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    root = tmp_path / "functions"
    (root / "plain").mkdir(parents=True)
    (root / "plain" / "fn.py").write_text(PLAIN_FUNCTION)
    tool = root / "tool"  # a bare executable: kind exec, protocol json, sandbox auto
    tool.write_text(EXECUTABLE)
    tool.chmod(0o755)
    return root


def _wait_ready(http_port: int, log: Path, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=1) as r:
                body: dict[str, object] = json.loads(r.read())
                return body
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise AssertionError(f"xfn did not become ready:\n{log_tail(log)}")


async def _call(port: int, name: str) -> fnv1.RunFunctionResponse:
    client = FunctionClient(
        f"127.0.0.1:{port}", tls=TLSOptions(insecure=True), metadata=[("x-xplane-function", name)]
    )
    try:
        return await client.run(fnv1.RunFunctionRequest(meta=fnv1.RequestMeta(tag=name)), timeout=30)
    finally:
        await client.close()


@pytest.fixture
def idle_modules(functions: Path, tmp_path: Path) -> Iterator[set[str]]:
    """The modules of a real xfn process that has served one call of each function."""
    grpc_port, http_port = free_port(), free_port()
    dump, log = tmp_path / "modules.txt", tmp_path / "xfn.log"
    argv = [
        sys.executable,
        "-c",
        DUMPER,
        str(dump),
        "serve",
        "--insecure",
        "--grpc-addr",
        f"127.0.0.1:{grpc_port}",
        "--listen-addr",
        f"127.0.0.1:{http_port}",
        "--functions-dir",
        str(functions),
    ]
    proc = spawn(argv, log)
    try:
        ready = _wait_ready(http_port, log)
        assert ready["functions"] == ["plain", "tool"], ready
        for name in ("plain", "tool"):
            rsp = asyncio.run(_call(grpc_port, name))
            assert [r.message for r in rsp.results] == [name], log_tail(log)
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dump.exists(), f"no module list from xfn:\n{log_tail(log)}"
        yield set(dump.read_text().split())
    finally:
        kill(proc)


def test_an_idle_runner_has_not_imported_what_other_kinds_and_modes_need(idle_modules: set[str]) -> None:
    assert {"xplane.fn.kinds.python", "xplane.fn.kinds.exec"} <= idle_modules  # it did serve both
    imported = {
        name: why
        for name, why in NOT_IMPORTED.items()
        if any(m == name or m.startswith(name + ".") for m in idle_modules)
    }
    assert imported == {}, "imported by an idle runner that does not need them: " + ", ".join(
        f"{name} ({why})" for name, why in imported.items()
    )


@pytest.mark.parametrize("name", ["sh", "true", "ls", "env", "no-such-command-xplane", "."])
def test_sandbox_which_finds_what_shutil_which_finds(name: str) -> None:
    """The bwrap probe's ``which`` (no shutil import) agrees with the standard library's."""
    import shutil

    from xplane.fn.kinds.sandbox import which

    assert which(name) == shutil.which(name)
