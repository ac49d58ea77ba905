"""The engine (xplane.compose.run_pipeline) with real functions: TTL, the requirements loop, context,
FATAL, unknown functions and the timeout."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from xplane.compose import (
    MAX_REQUIREMENTS_ITERATIONS,
    ComposeError,
    InProcess,
    PipelineFatalError,
    ResourceFetcher,
    Runtime,
    Sources,
    run_pipeline,
)
from xplane.fn import fnv1, load_function


def _observed() -> fnv1.State:
    st = fnv1.State()
    st.composite.resource.update({"apiVersion": "example.org/v1", "kind": "XR", "metadata": {"name": "x"}})
    return st


def _step(name: str, fn: str = "script", **input_: Any) -> dict[str, Any]:
    return {"step": name, "functionRef": {"name": fn}, "input": {"apiVersion": "t/v1", "kind": "I", **input_}}


@pytest.fixture
def script(functions_dir: Path) -> InProcess:
    return InProcess("script", load_function(functions_dir / "function-script"))


class Counting(Runtime):
    """Wraps a runtime and records every request it answers."""

    def __init__(self, inner: Runtime) -> None:
        self.name = inner.name
        self.inner = inner
        self.requests: list[fnv1.RunFunctionRequest] = []

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        copy = fnv1.RunFunctionRequest()
        copy.CopyFrom(req)
        self.requests.append(copy)
        return await self.inner.run(req, timeout=timeout)


def test_ttl_context_and_desired_replaced(script: InProcess) -> None:
    steps = [
        _step("a", ttl=30, context={"k": "a"}, resources={"r1": {"apiVersion": "v1", "kind": "ConfigMap"}}),
        _step("b", ttl=0, echoContext=True),
        _step("c", ttl=10, resources={"r2": {"apiVersion": "v1", "kind": "Secret"}}),
        _step("d", ttl=20),
    ]
    out = asyncio.run(run_pipeline(steps, {"script": script}, _observed(), context={"start": 1}))
    assert out.ttl == 10
    assert sorted(out.desired.resources) == ["r1", "r2"]
    assert out.context == {"start": 1, "k": "a"}
    assert [(r.step, r.message) for r in out.results] == [("b", "context: k,start")]
    assert out.calls == 4


def test_requirements_loop_resends_same_desired_with_new_context(script: InProcess) -> None:
    counting = Counting(script)
    sel = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm"}
    extra = ResourceFetcher([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}])
    out = asyncio.run(
        run_pipeline(
            [_step("req", require={"x": sel}, context={"n": 1})],
            {"script": counting},
            _observed(),
            sources=Sources(extra=extra),
        )
    )
    assert out.calls == 2 and len(counting.requests) == 2
    first, second = counting.requests
    assert "x" not in first.required_resources and len(second.required_resources["x"].items) == 1
    assert second.desired == first.desired and dict(second.context) == {"n": 1.0}
    assert [r.message for r in out.results] == ["x: cm"]
    assert "req" in out.requirements


class Unstable(Runtime):
    """Asks for a different resource on every call."""

    name = "unstable"

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        self.calls += 1
        rsp = fnv1.RunFunctionResponse()
        sel = rsp.requirements.resources["r"]
        sel.api_version, sel.kind, sel.match_name = "v1", "ConfigMap", f"cm-{self.calls}"
        return rsp


def test_requirements_that_never_settle_fail_after_six_calls() -> None:
    rt = Unstable()
    with pytest.raises(
        ComposeError,
        match=r"requirements didn't stabilize after the maximum number of "
        r"iterations \(5\)",
    ):
        asyncio.run(run_pipeline([_step("s", "unstable")], {"unstable": rt}, _observed()))
    assert rt.calls == MAX_REQUIREMENTS_ITERATIONS + 1 == 6


def test_fatal_stops_the_pipeline(script: InProcess) -> None:
    counting = Counting(script)
    steps = [
        _step("one", results=[{"severity": "warning", "message": "w"}]),
        _step("two", results=[{"severity": "fatal", "message": "no"}]),
        _step("three"),
    ]
    with pytest.raises(PipelineFatalError, match='pipeline step "two" returned a fatal result: no') as e:
        asyncio.run(run_pipeline(steps, {"script": counting}, _observed()))
    assert e.value.exit_code == 6 and e.value.step == "two"
    assert len(counting.requests) == 2


def test_unknown_function(script: InProcess) -> None:
    with pytest.raises(ComposeError, match='unknown Function "nope" - does it exist in your Functions file?'):
        asyncio.run(run_pipeline([_step("s", "nope")], {"script": script}, _observed()))


def test_missing_secret_names_it(script: InProcess) -> None:
    step = _step("s", credential="c")
    step["credentials"] = [
        {"name": "c", "source": "Secret", "secretRef": {"namespace": "ns", "name": "gone"}}
    ]
    with pytest.raises(
        ComposeError, match='cannot get credentials from secret "gone": secret "gone" not found'
    ):
        asyncio.run(run_pipeline([step], {"script": script}, _observed()))


def test_timeout_bounds_the_pipeline(tmp_path: Path) -> None:
    d = tmp_path / "slow"
    d.mkdir()
    (d / "fn.py").write_text(
        textwrap.dedent("""\
        import asyncio
        from crossplane.function import response

        async def run_function(req):
            await asyncio.sleep(30)
            return response.to(req)
        """)
    )
    rt = InProcess("slow", load_function(d))
    loop_start = asyncio.new_event_loop()
    try:
        t0 = loop_start.time()
        with pytest.raises((ComposeError, PipelineFatalError)) as e:
            loop_start.run_until_complete(
                run_pipeline([_step("s", "slow")], {"slow": rt}, _observed(), timeout=0.5)
            )
        assert loop_start.time() - t0 < 5
    finally:
        loop_start.close()
    assert '"s"' in str(e.value)


class Starting(Runtime):
    """Wraps a real runtime; records when it is started and called (and can fail to start)."""

    def __init__(self, inner: Runtime, name: str, events: list[str], fail: bool = False) -> None:
        self.name, self.inner, self.events, self.fail = name, inner, events, fail

    async def start(self, *, timeout: float) -> None:
        self.events.append(f"start {self.name}")
        await asyncio.sleep(0.01)  # a sandbox coming up
        if self.fail:
            raise ComposeError(f"function {self.name} did not start")
        self.events.append(f"ready {self.name}")

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        self.events.append(f"run {self.name}")
        return await self.inner.run(req, timeout=timeout)


def test_every_runtime_starts_before_the_first_step_runs(script: InProcess) -> None:
    events: list[str] = []
    rts = {n: Starting(script, n, events) for n in ("a", "b", "c")}
    steps = [_step("one", "a"), _step("two", "b"), _step("three", "c"), _step("four", "a")]
    asyncio.run(run_pipeline(steps, rts, _observed()))
    assert sorted(events[:3]) == ["start a", "start b", "start c"]  # together, not step by step
    assert [e for e in events if e.startswith("run")] == ["run a", "run b", "run c", "run a"]
    assert events.count("start a") == 1


def test_a_start_failure_is_reported_at_its_step_and_only_if_it_is_reached(script: InProcess) -> None:
    events: list[str] = []
    rts = {"a": Starting(script, "a", events), "broken": Starting(script, "broken", events, fail=True)}
    with pytest.raises(ComposeError, match='cannot run pipeline step "two": function broken did not start'):
        asyncio.run(run_pipeline([_step("one", "a"), _step("two", "broken")], rts, _observed()))
    assert "run a" in events  # step one ran first
    with pytest.raises(PipelineFatalError):  # FATAL at step one: the broken start never surfaces
        asyncio.run(
            run_pipeline(
                [
                    _step("one", "a", results=[{"severity": "fatal", "message": "stop"}]),
                    _step("two", "broken"),
                ],
                rts,
                _observed(),
            )
        )
