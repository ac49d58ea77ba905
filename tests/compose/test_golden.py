"""Golden files: every case under cases/ rendered with ``xp render`` and compared byte for byte.

A case directory holds ``xr.yaml``, ``composition.yaml``, ``functions.yaml``, any other inputs,
``args`` (extra arguments, one a line) and ``expected.yaml`` (stdout) or ``expected.err`` +
``expected.code``. ``XPLANE_UPDATE_GOLDEN=1`` rewrites the expected files (review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.compose.conftest import CASES

UPDATE = os.environ.get("XPLANE_UPDATE_GOLDEN") == "1"
ALL = sorted(p.name for p in CASES.iterdir() if (p / "args").is_file())


@pytest.mark.parametrize("case", ALL)
def test_case(case: str, functions_dir: Path, render_cli: Any) -> None:
    d = CASES / case
    if (
        "function-wasm" in (d / "functions.yaml").read_text()
        and not (functions_dir / "function-wasm").exists()
    ):
        pytest.skip("clang cannot build wasm32-wasi here")
    args = [line for line in (d / "args").read_text().splitlines() if line]
    got = render_cli(
        ["xr.yaml", "composition.yaml", "functions.yaml", "--functions-dir", str(functions_dir), *args], cwd=d
    )
    if UPDATE:
        (d / "expected.yaml").unlink(missing_ok=True)
        (d / "expected.err").unlink(missing_ok=True)
        if got.code == 0:
            (d / "expected.yaml").write_text(got.out)
        else:
            (d / "expected.err").write_text(f"{got.code}\n{got.err}")
    if (d / "expected.yaml").exists():
        assert got.err == "" and got.code == 0
        assert got.out == (d / "expected.yaml").read_text()
    else:
        code, _, err = (d / "expected.err").read_text().partition("\n")
        assert (got.code, got.err, got.out) == (int(code), err, "")
