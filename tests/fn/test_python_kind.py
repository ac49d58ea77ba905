"""Python functions: SDK servicers, plain callables, packages, and their faults."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from tests.fn.conftest import FIXTURES, arun, fatal_message, make_request, results
from xplane.fn.base import FunctionSpec
from xplane.fn.errors import FunctionLoadError
from xplane.fn.kinds.python import PythonFunction
from xplane.fn.loader import load_function
from xplane.fn.proto import fnv1, struct_to_dict

PY = FIXTURES / "python"


def faulty(obj: str) -> PythonFunction:
    spec = FunctionSpec(name=f"faulty-{obj}", kind="python", path=PY / "faulty.py", options={"object": obj})
    return PythonFunction(spec)


def test_sdk_function_runs_unchanged() -> None:
    fn = load_function(PY / "sdk_fn")
    assert fn.spec.kind == "python" and fn.name == "sdk_fn"
    rsp = arun(fn.run(make_request(tag="t-42", region="ap-south-1"), timeout=5))
    assert rsp.meta.tag == "t-42"
    assert rsp.meta.ttl.seconds == 60  # response.to() default
    bucket = struct_to_dict(rsp.desired.resources["bucket"].resource)
    assert bucket["metadata"]["name"] == "my-xr-bucket"  # via the sibling helpers.py
    assert bucket["spec"]["region"] == "ap-south-1"
    assert rsp.desired.resources["bucket"].ready == fnv1.READY_TRUE
    assert results(rsp) == [(fnv1.SEVERITY_NORMAL, "composed bucket for my-xr (data)")]
    assert rsp.context["apiextensions.crossplane.io/environment"]["team"] == "a"


def test_package_with_relative_import() -> None:
    fn = load_function(PY / "pkg_fn")
    rsp = arun(fn.run(make_request(), timeout=5))
    assert results(rsp) == [(fnv1.SEVERITY_WARNING, "from a package")]


def test_sync_callable_runs_off_the_event_loop() -> None:
    fn = load_function(PY / "sync_fn.py")
    rsp = arun(fn.run(make_request(), timeout=5))
    assert results(rsp) == [(fnv1.SEVERITY_NORMAL, "sync in a thread off the event loop")]


def test_raise_becomes_fatal_with_the_message() -> None:
    rsp = arun(faulty("raises").run(make_request(tag="x"), timeout=5))
    assert rsp.meta.tag == "x"
    assert "RuntimeError: boom: the bucket exploded" in fatal_message(rsp)
    assert rsp.desired == make_request().desired  # desired passes through


def test_hanging_async_function_times_out() -> None:
    start = time.monotonic()
    rsp = arun(faulty("hangs").run(make_request(), timeout=0.3))
    assert time.monotonic() - start < 2
    assert "timed out after 0.3s" in fatal_message(rsp)


def test_blocking_sync_function_does_not_block_the_loop() -> None:
    blocker = faulty("blocks")
    ok = load_function(PY / "pkg_fn")

    async def both() -> tuple[fnv1.RunFunctionResponse, float]:
        slow = asyncio.create_task(blocker.run(make_request(), timeout=0.5))
        t0 = time.monotonic()
        fast = await ok.run(make_request(), timeout=5)
        elapsed = time.monotonic() - t0
        assert "timed out" in fatal_message(await slow)
        await blocker.close()
        return fast, elapsed

    fast, elapsed = arun(both())
    assert elapsed < 0.4, "another function waited for a blocked synchronous one"
    assert results(fast) == [(fnv1.SEVERITY_WARNING, "from a package")]


def test_wrong_return_type_is_fatal() -> None:
    rsp = arun(faulty("wrong_type").run(make_request(), timeout=5))
    assert "returned dict, not a RunFunctionResponse" in fatal_message(rsp)


def test_import_error_is_a_load_error() -> None:
    with pytest.raises(FunctionLoadError) as e:
        load_function(PY / "broken_import.py")
    assert "ModuleNotFoundError" in str(e.value) and "broken_import.py" in str(e.value)


def test_module_without_function_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "nothing.py").write_text("X = 1\n")
    with pytest.raises(FunctionLoadError, match="no function found"):
        load_function(tmp_path / "nothing.py")


def test_two_functions_with_same_helper_module_are_isolated(tmp_path: Path) -> None:
    for word in ("alpha", "beta"):
        d = tmp_path / word
        d.mkdir()
        (d / "helpers.py").write_text(f"WORD = {word!r}\n")
        (d / "fn.py").write_text(
            "from crossplane.function import response\nimport helpers\n\n"
            "def run_function(req):\n    rsp = response.to(req)\n"
            "    response.normal(rsp, helpers.WORD)\n    return rsp\n"
        )
    a, b = load_function(tmp_path / "alpha"), load_function(tmp_path / "beta")
    assert results(arun(a.run(make_request(), timeout=5)))[0][1] == "alpha"
    assert results(arun(b.run(make_request(), timeout=5)))[0][1] == "beta"


def test_reload_picks_up_new_code(tmp_path: Path) -> None:
    d = tmp_path / "fn"
    shutil.copytree(PY / "sdk_fn", d)
    first = load_function(d)
    (d / "helpers.py").write_text("def bucket_name(n):\n    return n + '-v2'\n")
    second = load_function(d)
    assert first.version != second.version
    r1 = arun(first.run(make_request(), timeout=5))
    r2 = arun(second.run(make_request(), timeout=5))
    assert struct_to_dict(r1.desired.resources["bucket"].resource)["metadata"]["name"] == "my-xr-bucket"
    assert struct_to_dict(r2.desired.resources["bucket"].resource)["metadata"]["name"] == "my-xr-v2"


def test_function_cannot_mutate_callers_request(tmp_path: Path) -> None:
    (tmp_path / "mut.py").write_text(
        "from crossplane.function import response\n\n"
        "def run_function(req):\n    req.meta.tag = 'changed'\n    return response.to(req)\n"
    )
    req = make_request(tag="orig")
    rsp = arun(load_function(tmp_path / "mut.py").run(req, timeout=5))
    assert req.meta.tag == "orig" and rsp.meta.tag == "changed"
