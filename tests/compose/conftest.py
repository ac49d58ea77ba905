"""Fixtures for the render tests: a functions directory (SDK python, exec, Wasm) and a CLI runner."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
CASES = HERE / "cases"


@dataclass
class Outcome:
    """One ``xp render`` run."""

    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def functions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fixtures/functions plus ``function-wasm``, compiled from fixtures/wasm_fn.c with clang (wasm32-wasi)."""
    root = tmp_path_factory.mktemp("functions")
    shutil.copytree(
        FIXTURES / "functions", root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    wasm = root / "function-wasm"
    wasm.mkdir()
    proc = subprocess.run(
        [
            "clang",
            "--target=wasm32-wasi",
            "-O2",
            "-nodefaultlibs",
            "-o",
            str(wasm / "fn.wasm"),
            str(FIXTURES / "wasm_fn.c"),
            "-lc",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(wasm)
    return root


@pytest.fixture
def render_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``xp render ARGS`` in process in directory ``cwd``; return code, stdout, stderr."""
    from xplane.cli.main import cli
    from xplane.cli.output import run_cli

    def run(args: list[str], cwd: Path | None = None) -> Outcome:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = run_cli(cli, ["render", *args])
        got = capsys.readouterr()
        return Outcome(code, got.out, got.err)

    return run
