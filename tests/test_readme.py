"""The README's Quickstart block runs as written after the setup command, with no network.

The block runs in a copy of examples/ beside a link to this checkout's .venv, with HOME and the XDG
directories in a scratch folder, so the cache and logins it touches are its own. It runs in a process
group of its own: whatever it leaves running (the registry, the background runner) is killed after.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart_block() -> str:
    """The first ```sh block after the README's Quickstart heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quickstart") :]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, "the Quickstart has no sh block"
    return m.group(1)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_quickstart_block_runs_as_written(tmp_path: Path) -> None:
    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is not installed: run ./scripts/setup.sh")
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("dist", ".registry"))
    (work / ".venv").symlink_to(ROOT / ".venv")
    home = tmp_path / "home"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("XPLANE_", "XDG_", "DOCKER_", "REGISTRY_"))
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        NO_COLOR="1",
    )
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", quickstart_block()],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=150)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, f"the Quickstart block failed (exit {proc.returncode}):\n{out}"
    # What a reader of the block is promised, command by command.
    assert (work / "examples/dist/configuration-demo.xpkg").is_file()
    assert "configuration-demo" in out  # inspect names the package
    assert "127.0.0.1:5050/demo/configuration-demo:v0.1.0" in out  # cache ls lists the pull
    assert "example.org/demo/configuration-demo:v0.1.0" in out  # ... and the side-loaded name
    assert out.count("Hello, World!") >= 3  # xfn run, xfn run -o json, xfn call
    assert "example.org/greeting" in out  # the executable labelled the composed resource
    assert not (work / "examples/.registry").exists(), "registry.sh stop leaves nothing behind"
