"""Fixtures for the function kinds: test functions, compilers, a request factory."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.protobuf import struct_pb2

from xplane.fn.proto import fnv1

FIXTURES = Path(__file__).parent / "fixtures"
T = TypeVar("T")


def arun(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def make_request(tag: str = "tag-1", xr_name: str = "my-xr", **input_: Any) -> fnv1.RunFunctionRequest:
    """A request with an observed XR, a desired XR, optional input and context."""
    xr = struct_pb2.Struct()
    xr.update(
        {
            "apiVersion": "example.org/v1",
            "kind": "XBucket",
            "metadata": {"name": xr_name},
            "spec": {"region": "us-east-2", "size": 3},
        }
    )
    req = fnv1.RunFunctionRequest(meta=fnv1.RequestMeta(tag=tag))
    req.observed.composite.resource.CopyFrom(xr)
    req.observed.composite.connection_details["password"] = b"s3cret"
    req.observed.resources["old"].resource.update({"apiVersion": "v1", "kind": "ConfigMap"})
    req.context.update({"apiextensions.crossplane.io/environment": {"team": "a"}})
    if input_:
        req.input.update(input_)
    return req


def results(rsp: fnv1.RunFunctionResponse) -> list[tuple[int, str]]:
    return [(r.severity, r.message) for r in rsp.results]


def fatal_message(rsp: fnv1.RunFunctionResponse) -> str:
    fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    assert fatal, f"expected a FATAL result, got {results(rsp)}"
    return fatal[0]


@pytest.fixture(scope="session")
def fnio_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fixtures/fnio.c compiled with gcc: a FunctionIO function with fault modes."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("fnio") / "fnio"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(FIXTURES / "fnio.c")], check=True)
    return out
