"""Timing that is fair on CPU and GPU: warm up first, synchronize the device around every timed
region, and interleave the contestants of a case round by round so that they share the machine's
noise (ratios measured in the same rounds are steadier than the medians themselves)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from backends import Backend
from benchmarks.workloads import Case, inner_iterations


def timed(fn: Callable[[], Any], backend: Backend) -> Callable[[], Any]:
    """``fn`` followed by a device synchronize, so that the time covers the work, not its launch."""

    def run() -> Any:
        out = fn()
        backend.synchronize()
        return out

    return run


def time_case(case: Case, backend: Backend, rounds: int | None = None) -> dict[str, list[float]]:
    """Seconds per call of every contestant, ``rounds`` samples each, interleaved.

    Each contestant is warmed up once (which also estimates how many calls a round needs to last
    about 20 ms: fast calls are grouped, slow loops are timed one call per round).
    """
    rounds = rounds or case.rounds
    runs = {name: timed(fn, backend) for name, fn in case.contestants.items()}
    inner = {}
    backend.synchronize()
    for name, run in runs.items():
        start = time.perf_counter()
        run()  # warm-up (and compilation / cuBLAS handle creation on a GPU)
        inner[name] = inner_iterations(time.perf_counter() - start)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            n = inner[name]
            start = time.perf_counter()
            for _ in range(n):
                run()
            samples[name].append((time.perf_counter() - start) / n)
    return samples


def median(xs: list[float]) -> float:
    return statistics.median(xs)
