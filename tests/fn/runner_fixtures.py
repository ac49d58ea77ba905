"""Shared helpers for the runner tests: scripted functions read from real files, and a runner in a thread.

A *scripted* function is a directory ``<name>/function.json`` (or a top-level ``<name>.fn.json``
file, for Secret volumes whose keys are flat files) holding its behaviour: ``message``, ``delay``
seconds, ``raise`` (an xplane-side bug), ``fatal`` (a FATAL result), ``pad`` (response padding bytes),
``broken`` (fails to load), ``timeout`` (its spec's timeout), ``show_timeout`` (the message ends with
the timeout the call was given). Functions are real ``xplane.fn.base.Function`` subclasses, loaded through
the function table's real discover seam, so reloads are driven by real file changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from crossplane.function import response

from xplane.fn.base import Function, FunctionSpec, fatal_response
from xplane.fn.errors import FunctionLoadError
from xplane.fn.proto import fnv1
from xplane.fn.runner import Runner
from xplane.fn.settings import Address, Settings

T = TypeVar("T")
CLOSED: list[str] = []  # "name@message" of every closed scripted function, in order


class ScriptedFunction(Function):
    """A function whose behaviour comes from its JSON file (see the module docstring)."""

    def __init__(self, spec: FunctionSpec, config: dict[str, Any]) -> None:
        self.spec = spec
        self.config = config
        self.calls = 0
        self.closed = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str | None:
        return str(self.config.get("version", "v1"))

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        self.calls += 1
        cfg = self.config
        if cfg.get("delay"):
            await asyncio.sleep(float(cfg["delay"]))
        if cfg.get("raise"):
            raise RuntimeError("scripted xplane-side bug")
        if cfg.get("fatal"):
            return fatal_response(req, str(cfg["fatal"]))
        rsp = response.to(req)
        message = f"{cfg.get('message', 'hello')} from {self.name}"
        if cfg.get("show_timeout"):
            message += f" within {timeout:g}s"
        response.normal(rsp, message)
        if cfg.get("pad"):
            rsp.context["pad"] = "x" * int(cfg["pad"])
        return rsp

    async def close(self) -> None:
        self.closed = True
        CLOSED.append(f"{self.name}@{self.config.get('message', 'hello')}")


def scripted_discover(root: Path) -> dict[str, Function | FunctionLoadError]:
    """The function table's discover seam for scripted functions."""
    found: dict[str, Function | FunctionLoadError] = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir() and (path / "function.json").is_file():
            name, file = path.name, path / "function.json"
        elif path.is_file() and path.name.endswith(".fn.json"):
            name, file = path.name.removesuffix(".fn.json"), path
        else:
            continue
        config = json.loads(file.read_text())
        if config.get("broken"):
            found[name] = FunctionLoadError(f"function {name}: {config['broken']}")
            continue
        spec = FunctionSpec(
            name=name,
            kind="python",
            path=path,
            entrypoint=None,
            protocol=None,
            timeout=config.get("timeout"),
            limits={},
            env={},
            options={},
        )
        found[name] = ScriptedFunction(spec, config)
    return found


def write_function(root: Path, name: str, **config: Any) -> Path:
    """Write (or rewrite) ``root/name/function.json``."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "function.json").write_text(json.dumps(config))
    return d


def test_settings(functions_dir: Path, **overrides: Any) -> Settings:
    """Settings for a loopback runner on free ports, insecure, no background reloading."""
    values: dict[str, Any] = {
        "functions_dir": functions_dir,
        "listen_addr": Address("127.0.0.1", 0),
        "grpc_addr": Address("127.0.0.1", 0),
        "insecure": True,
        "reload_interval": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # imported by test modules: not a test itself


class RunnerThread:
    """A :class:`Runner` on its own event loop in a thread, so tests can use blocking clients."""

    def __init__(self, settings: Settings, **kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: Runner = self.call(self._make(settings, **kw))

    @staticmethod
    async def _make(settings: Settings, **kw: Any) -> Runner:
        return Runner(settings, **kw)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the runner's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.runner.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.runner.http_port}"

    def refresh(self) -> bool:
        return self.call(self.runner.table.refresh())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.runner.stop(grace=1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def running(settings: Settings, *, discover: Any = scripted_discover, **kw: Any) -> Iterator[RunnerThread]:
    """A started runner (see :class:`RunnerThread`), stopped on exit."""
    rt = RunnerThread(settings, discover=discover, **kw)
    try:
        rt.call(rt.runner.start())
        yield rt
    finally:
        rt.stop()


def xr_request(tag: str = "t1", **extra: Any) -> fnv1.RunFunctionRequest:
    """A small RunFunctionRequest with an observed XR."""
    req = fnv1.RunFunctionRequest(meta=fnv1.RequestMeta(tag=tag), **extra)
    req.observed.composite.resource.update(
        {
            "apiVersion": "example.org/v1",
            "kind": "XBucket",
            "metadata": {"name": "my-xr"},
            "spec": {"region": "eu"},
        }
    )
    return req
