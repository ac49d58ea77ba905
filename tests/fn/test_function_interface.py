"""The kind interface on its own (no runner, no server): the hooks' defaults and the two call paths."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.fn.conftest import arun, fatal_message, make_request, results
from xplane.fn.base import DEADLINE_GRACE, Function, FunctionSpec
from xplane.fn.proto import fnv1


class Sleeper(Function):
    """A kind with only the required hooks: it answers after ``delay`` seconds, whatever the timeout."""

    def __init__(self, delay: float, path: Path) -> None:
        super().__init__(FunctionSpec(name="sleeper", kind="exec", path=path, options={"version": "1"}))
        self.delay = delay
        self.seen: list[fnv1.RunFunctionRequest] = []

    async def run(self, req: fnv1.RunFunctionRequest, *, timeout: float) -> fnv1.RunFunctionResponse:
        self.seen.append(req)
        await asyncio.sleep(self.delay)
        rsp = fnv1.RunFunctionResponse()
        rsp.results.add(severity=fnv1.SEVERITY_NORMAL, message=f"slept {self.delay:g}s")
        return rsp


class SelfTimed(Sleeper):
    """A kind that enforces its own timeout, and reports how it was called."""

    enforces_timeout = True

    async def run_owned(
        self, req: fnv1.RunFunctionRequest, *, timeout: float, timer: bool = True
    ) -> fnv1.RunFunctionResponse:
        rsp = await self.run(req, timeout=timeout)
        rsp.results[0].message += f" (owned, timer={timer})"
        return rsp


def test_a_kind_with_only_run_has_the_documented_defaults(tmp_path: Path) -> None:
    fn = Sleeper(0, tmp_path)
    assert fn.status() == {} and fn.version == "1" and not fn.enforces_timeout
    req = make_request(tag="t")
    assert results(arun(fn.call(req, timeout=5, owned=True))) == [(fnv1.SEVERITY_NORMAL, "slept 0s")]
    assert fn.seen == [req]  # the default run_owned is run
    arun(fn.close())
    arun(fn.close())  # idempotent


def test_owned_calls_reach_run_owned_with_the_timer_setting(tmp_path: Path) -> None:
    fn = SelfTimed(0, tmp_path)
    assert results(arun(fn.call(make_request(), timeout=5)))[0][1] == "slept 0s"
    owned = arun(fn.call(make_request(), timeout=5, owned=True, timer=False))
    assert results(owned)[0][1] == "slept 0s (owned, timer=False)"


def test_only_kinds_that_do_not_enforce_their_timeout_are_cut_off_after_the_grace(tmp_path: Path) -> None:
    overruns: list[str] = []
    delay = DEADLINE_GRACE + 0.3

    async def both() -> tuple[fnv1.RunFunctionResponse, fnv1.RunFunctionResponse]:
        cut = Sleeper(delay, tmp_path).call(
            make_request(tag="c"), timeout=0.05, on_overrun=lambda: overruns.append("c")
        )
        own = SelfTimed(delay, tmp_path).call(
            make_request(), timeout=0.05, on_overrun=lambda: overruns.append("o")
        )
        return await asyncio.gather(cut, own)

    start = time.monotonic()
    cut, own = asyncio.run(both())
    assert time.monotonic() - start < delay + 1
    assert cut.meta.tag == "c" and "function 'sleeper' did not answer within 0.05s" in fatal_message(cut)
    assert results(own) == [(fnv1.SEVERITY_NORMAL, f"slept {delay:g}s")]  # its own answer, late as it is
    assert overruns == ["c"]
