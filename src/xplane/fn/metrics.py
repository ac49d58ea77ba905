"""Prometheus metrics for the runner, in the text exposition format (no client library needed).

Series:

- ``xfn_function_calls_total{function,transport}``: calls that reached a function.
- ``xfn_function_errors_total{function,reason}``: ``fatal`` (the function answered with a FATAL
  result), ``internal`` (xplane failed), ``timeout``, ``not_found`` (no such function; ``function`` is
  what the caller asked for), ``invalid`` (malformed request), ``too_large`` (over the message limit),
  ``cancelled`` (the caller went away or its gRPC deadline passed while the function ran).
- ``xfn_function_duration_seconds`` histogram per function.
- ``xfn_functions_loaded``, ``xfn_function_load_errors``, ``xfn_reloads_total``, ``xfn_inflight_calls``,
  ``process_resident_memory_bytes``, ``process_start_time_seconds``.

All updates happen on the event loop thread; no locking is needed. The call path keeps one
:class:`CallSeries` per function and transport (from :meth:`Metrics.series`) and updates its plain
counters directly: no dict lookups, tuple keys or string formatting per call.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Iterable

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class Histogram:
    """Cumulative-bucket histogram of one label set."""

    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class CallSeries:
    """The counters one (function, transport) pair updates on every call; shares the function's histogram."""

    __slots__ = ("calls", "histogram")

    def __init__(self, histogram: Histogram) -> None:
        self.calls = 0
        self.histogram = histogram


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Metrics:
    """The runner's counters and histograms; :meth:`render` produces ``/metrics``."""

    def __init__(self, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self.buckets = buckets
        self._series: dict[tuple[str, str], CallSeries] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.durations: dict[str, Histogram] = {}
        self.reloads = 0
        self.inflight = 0
        self.started = time.time()

    def series(self, function: str, transport: str) -> CallSeries:
        """The call counter of ``function`` over ``transport`` (the same object every time)."""
        series = self._series.get((function, transport))
        if series is None:
            hist = self.durations.get(function)
            if hist is None:
                hist = self.durations[function] = Histogram(self.buckets)
            series = self._series[(function, transport)] = CallSeries(hist)
        return series

    @property
    def calls(self) -> dict[tuple[str, str], int]:
        """Calls that reached a function, by (function, transport)."""
        return {key: s.calls for key, s in self._series.items()}

    def observe_call(self, function: str, transport: str, seconds: float) -> None:
        """Count one call that reached ``function`` and record how long it took."""
        series = self.series(function, transport)
        series.calls += 1
        series.histogram.observe(seconds)

    def count_error(self, function: str, reason: str) -> None:
        """Count one failed call (see the module docstring for the reasons)."""
        key = (function, reason)
        self.errors[key] = self.errors.get(key, 0) + 1

    def render(self, *, loaded: Iterable[str] = (), load_errors: int = 0) -> str:
        """The metrics in Prometheus text format 0.0.4."""
        lines: list[str] = []
        lines += [
            "# HELP xfn_function_calls_total Calls that reached a function.",
            "# TYPE xfn_function_calls_total counter",
        ]
        for (fn, transport), n in sorted(self.calls.items()):
            lines.append(f"xfn_function_calls_total{_labels(function=fn, transport=transport)} {n}")
        lines += [
            "# HELP xfn_function_errors_total Failed calls by reason.",
            "# TYPE xfn_function_errors_total counter",
        ]
        for (fn, reason), n in sorted(self.errors.items()):
            lines.append(f"xfn_function_errors_total{_labels(function=fn, reason=reason)} {n}")
        lines += [
            "# HELP xfn_function_duration_seconds Time a function took to answer.",
            "# TYPE xfn_function_duration_seconds histogram",
        ]
        for fn, hist in sorted(self.durations.items()):
            cumulative = 0
            for bound, n in zip((*hist.buckets, float("inf")), hist.counts, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f"xfn_function_duration_seconds_bucket{_labels(function=fn, le=le)} {cumulative}"
                )
            lines.append(f"xfn_function_duration_seconds_sum{_labels(function=fn)} {hist.sum!r}")
            lines.append(f"xfn_function_duration_seconds_count{_labels(function=fn)} {hist.count}")
        names = sorted(loaded)
        lines += [
            "# HELP xfn_functions_loaded Functions loaded and serving.",
            "# TYPE xfn_functions_loaded gauge",
            f"xfn_functions_loaded {len(names)}",
        ]
        lines += ["# HELP xfn_function_info A loaded function.", "# TYPE xfn_function_info gauge"]
        lines += [f"xfn_function_info{_labels(function=n)} 1" for n in names]
        lines += [
            "# HELP xfn_function_load_errors Functions that failed to load.",
            "# TYPE xfn_function_load_errors gauge",
            f"xfn_function_load_errors {load_errors}",
        ]
        lines += [
            "# HELP xfn_reloads_total Reloads after a change of the function source.",
            "# TYPE xfn_reloads_total counter",
            f"xfn_reloads_total {self.reloads}",
        ]
        lines += [
            "# HELP xfn_inflight_calls Calls being served right now.",
            "# TYPE xfn_inflight_calls gauge",
            f"xfn_inflight_calls {self.inflight}",
        ]
        rss = resident_memory_bytes()
        if rss is not None:
            lines += [
                "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                "# TYPE process_resident_memory_bytes gauge",
                f"process_resident_memory_bytes {rss}",
            ]
        lines += [
            "# HELP process_start_time_seconds Start time of the process since the epoch.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.started!r}",
        ]
        return "\n".join(lines) + "\n"


def resident_memory_bytes() -> int | None:
    """This process's RSS from ``/proc/self/statm`` (``None`` where there is no procfs)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
