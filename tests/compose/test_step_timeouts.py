# ruff: noqa: F811 (pytest fixtures imported from tests/compose/conftest.py are parameters here)
"""Per-step timeouts: ``--step-timeout`` for every step, the ``render.xplane.io/step-timeout``
annotation per Function, both under the whole render's ``--timeout``; real functions that hang."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.compose.conftest import CASES, functions_dir, render_cli  # noqa: F401 (fixtures)
from xplane.compose import ComposeError, Runtime, StepTimeoutError, run_pipeline
from xplane.fn import fnv1

EXAMPLE = CASES / "worked-example"
SLEEPER = """\
import asyncio
from crossplane.function import response

async def run_function(req):
    await asyncio.sleep({seconds})
    rsp = response.to(req)
    response.normal(rsp, "slept {seconds}s")
    return rsp
"""
COMPOSITION = """\
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata:
  name: xbuckets
spec:
  compositeTypeRef:
    apiVersion: example.org/v1alpha1
    kind: XBucket
  mode: Pipeline
  pipeline:
{steps}"""


def _case(
    tmp_path: Path, functions_dir: Path, fns: dict[str, str | None], annotations: dict[str, str]
) -> Path:
    """A case whose pipeline calls ``fns`` in order (source of a python function, or None: a fixture)."""
    d = tmp_path / "case"
    fdir = d / "fns"
    fdir.mkdir(parents=True)
    steps, objs = "", ""
    for name, source in fns.items():
        if source is None:
            shutil.copytree(functions_dir / name, fdir / name)
        else:
            (fdir / name).mkdir()
            (fdir / name / "fn.py").write_text(source)
        steps += f"  - step: run-{name}\n    functionRef:\n      name: {name}\n"
        ann = (
            f"  annotations:\n    render.xplane.io/step-timeout: {annotations[name]}\n"
            if name in annotations
            else ""
        )
        objs += f"---\napiVersion: pkg.crossplane.io/v1\nkind: Function\nmetadata:\n  name: {name}\n{ann}"
    (d / "xr.yaml").write_text((EXAMPLE / "xr.yaml").read_text())
    (d / "composition.yaml").write_text(COMPOSITION.format(steps=steps))
    (d / "functions.yaml").write_text(objs)
    return d


def _render(render_cli: Any, d: Path, *args: str) -> tuple[Any, float]:
    start = time.monotonic()
    got = render_cli(
        ["xr.yaml", "composition.yaml", "functions.yaml", "--functions-dir", str(d / "fns"), *args], cwd=d
    )
    return got, time.monotonic() - start


def test_step_timeout_fires_long_before_the_render_timeout(
    tmp_path: Path, render_cli: Any, functions_dir: Path
) -> None:
    d = _case(tmp_path, functions_dir, {"function-slow": SLEEPER.format(seconds=60)}, {})
    got, took = _render(render_cli, d, "--step-timeout", "500ms", "--timeout", "1m")
    assert took < 5, took
    assert (got.code, got.out) == (1, "")
    assert got.err.startswith(
        'xp: error: cannot render composite resource: cannot run pipeline step "run-function-slow": '
        'function "function-slow" timed out after 0.5s'
    ), got.err
    assert "--step-timeout" in got.err  # the hint


def test_annotation_overrides_the_default_for_its_function(
    tmp_path: Path, render_cli: Any, functions_dir: Path
) -> None:
    fns = {
        "function-script": None,  # fast: the default applies
        "function-patient": SLEEPER.format(seconds=0.6),  # over the default, under its own annotation
        "function-stuck": SLEEPER.format(seconds=60),  # its annotation is shorter than the default
    }
    d = _case(tmp_path, functions_dir, fns, {"function-patient": "10s", "function-stuck": "300ms"})
    got, took = _render(render_cli, d, "--step-timeout", "0.4s", "-r")
    assert took < 5, took
    assert got.code == 1, got.err
    assert 'step "run-function-stuck": function "function-stuck" timed out after 0.3s' in got.err

    ok = _case(tmp_path / "ok", functions_dir, dict(list(fns.items())[:2]), {"function-patient": "10s"})
    got, _ = _render(render_cli, ok, "--step-timeout", "0.4s", "-r")
    assert got.code == 0, got.err
    assert "message: slept 0.6s" in got.out
    # without its annotation the same function hits the default
    ok.joinpath("functions.yaml").write_text(ok.joinpath("functions.yaml").read_text().replace("10s", "0.2s"))
    got, _ = _render(render_cli, ok, "--step-timeout", "10s")
    assert got.code == 1 and 'function "function-patient" timed out after 0.2s' in got.err


def test_an_executable_that_hangs_is_killed_at_its_step_timeout(
    tmp_path: Path, render_cli: Any, functions_dir: Path
) -> None:
    d = _case(tmp_path, functions_dir, {"function-exec": None}, {})
    exe = d / "fns" / "function-exec" / "function"
    exe.write_text("#!/bin/sh\necho 'function-exec: waiting for a lock' >&2\nexec sleep 60\n")
    exe.chmod(0o755)
    got, took = _render(render_cli, d, "--step-timeout", "0.5s")
    assert took < 5, took
    assert got.code == 1, got.err
    assert (
        'cannot run pipeline step "run-function-exec": function "function-exec" timed out after 0.5s'
        in got.err
    )


def test_the_render_timeout_still_bounds_every_step(
    tmp_path: Path, render_cli: Any, functions_dir: Path
) -> None:
    d = _case(tmp_path, functions_dir, {"function-slow": SLEEPER.format(seconds=60)}, {"function-slow": "1m"})
    got, took = _render(render_cli, d, "--step-timeout", "30s", "--timeout", "1s")
    assert took < 5, took
    assert got.code == 1, got.err
    assert 'function "function-slow" timed out after' in got.err
    assert "the render's --timeout ran out" in got.err and "raise --timeout" in got.err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "soon",
            'Function "function-script": annotation "render.xplane.io/step-timeout": \'soon\' is not a duration',
        ),
        ("0s", "must be positive"),
    ],
)
def test_a_bad_annotation_fails_before_any_call(
    tmp_path: Path, render_cli: Any, functions_dir: Path, value: str, message: str
) -> None:
    d = _case(tmp_path, functions_dir, {"function-script": None}, {"function-script": value})
    got, _ = _render(render_cli, d)
    assert (got.code, got.out) == (1, ""), got.err
    assert message in got.err


@pytest.mark.parametrize("value", ["soon", "0"])
def test_a_bad_step_timeout_flag_is_a_usage_error(
    tmp_path: Path, render_cli: Any, functions_dir: Path, value: str
) -> None:
    d = _case(tmp_path, functions_dir, {"function-script": None}, {})
    got, _ = _render(render_cli, d, "--step-timeout", value)
    assert got.code == 2 and "--step-timeout" in got.err


class _Unanswered(Runtime):
    """A server that never answers: the call fails at its deadline with the transport's reason."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.timeouts: list[float] = []

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        self.timeouts.append(timeout)
        await asyncio.sleep(timeout)
        raise ComposeError(
            f"cannot call function {self.name}: no answer within {timeout:.2g}s; stderr: stuck on a lock"
        )


def test_pipeline_step_timeout_carries_the_runtimes_reason() -> None:
    rt = _Unanswered("fn")
    step = {"step": "s", "functionRef": {"name": "fn"}}
    with pytest.raises(StepTimeoutError) as e:
        asyncio.run(run_pipeline([step], {"fn": rt}, fnv1.State(), timeout=30, function_timeouts={"fn": 0.2}))
    assert rt.timeouts and rt.timeouts[0] <= 0.2
    assert (e.value.step, e.value.function, e.value.whole, e.value.after) == ("s", "fn", False, 0.2)
    assert e.value.message == (
        'cannot run pipeline step "s": function "fn" timed out after 0.2s; '
        "cannot call function fn: no answer within 0.2s; stderr: stuck on a lock"
    )


def test_an_in_process_functions_declared_timeout_bounds_its_step_under_the_annotation(
    tmp_path: Path, render_cli: Any, functions_dir: Path
) -> None:
    """function.yaml's ``timeout`` (what xfn serve honours) applies in render too, over --step-timeout."""
    d = _case(tmp_path, functions_dir, {"function-slow": SLEEPER.format(seconds=0.6)}, {})
    (d / "fns" / "function-slow" / "function.yaml").write_text(
        "kind: python\nentrypoint: fn.py\ntimeout: 300ms\n"
    )
    got, took = _render(render_cli, d, "--step-timeout", "1m")
    assert took < 5, took
    assert got.code == 1, got.err
    assert 'step "run-function-slow": function "function-slow" timed out after 0.3s' in got.err
    # the Function's annotation wins over its function.yaml
    text = (d / "functions.yaml").read_text()
    (d / "functions.yaml").write_text(text + "  annotations:\n    render.xplane.io/step-timeout: 10s\n")
    got, _ = _render(render_cli, d, "-r")
    assert got.code == 0, got.err
    assert "message: slept 0.6s" in got.out
