"""Timing that is fair on CPU and GPU: warm up first, time N calls of a contestant and then
synchronize the device once (the way ``fit`` queues its steps: a synchronize per call would add a
round trip to every step and overstate it), and interleave the contestants of a case round by round
so that they share the machine's noise (ratios measured in the same rounds are steadier than the
medians themselves). :func:`timing_method` names the method; the report prints it.

Contestants from different libraries (NumPy/OpenBLAS against PyTorch) are kept apart by a pause.
After a call, a library's worker threads keep spinning on their cores for a while: OpenBLAS for up
to ~0.1 s (its ``THREAD_TIMEOUT``), OpenMP for a shorter spin-wait. On a 2-core machine the
other library's threads then have to share the cores with them. Measured here, PyTorch's deep-net
step took 10 ms right after an OpenBLAS call and 5 ms after a pause, and dlcore's took 5.4 ms right
after PyTorch against 3.5 ms alone. So each round runs one library's contestants, waits
:data:`SETTLE_S`, then runs the other's."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from dlcore.backends import Backend
from dlcore.benchmarks.workloads import Case, inner_iterations, max_difference, ops_case


def timed(fn: Callable[[], Any], backend: Backend) -> Callable[[], Any]:
    """``fn`` followed by a device synchronize: one call's whole time (warm-ups and one-call rounds)."""

    def run() -> Any:
        out = fn()
        backend.synchronize()
        return out

    return run


def batched(fn: Callable[[], Any], backend: Backend, n: int) -> Callable[[], Any]:
    """``fn`` with a device synchronize after every ``n``-th call only: for pytest-benchmark rounds of
    ``iterations=n`` calls, which then time N queued calls and one synchronize."""
    calls = [0]

    def run() -> Any:
        out = fn()
        calls[0] += 1
        if calls[0] % n == 0:
            backend.synchronize()
        return out

    return run


def timing_method(backend: Backend) -> str:
    """How a sample is timed on ``backend`` (the report prints it and stores it in the JSON)."""
    if backend.is_gpu:
        return (
            "host clock around N calls then one device synchronize per sample "
            "(no synchronize between calls; N >= 1 so a sample lasts ~20 ms)"
        )
    return "host clock around N calls per sample (CPU: a call returns when its work is done)"


SETTLE_S = 0.25  # pause between contestants of different libraries (their threads stop spinning)
#: a first call shorter than this is followed by a second, warm one that sets N (planar's first step:
#: 398 us against 24 us warm, so N from it made samples of 1.2 ms, not ~20; a GPU's first call pays
#: compilation and cuBLAS set-up); a slower one sets N itself (a slow loop: one call per round anyway)
WARM_ESTIMATE_S = 2.0


def settle_down(seconds: float) -> None:
    """Wait ``seconds`` busily: the other library's threads stop spinning meanwhile, and this core stays
    awake (after a ``time.sleep`` of 0.25 s the planar step often ran 1.5x slower on this VM)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def library(role: str) -> str:
    """Which library's threads a contestant runs on: ``"torch"`` for the PyTorch peers, else ``"dlcore"``."""
    return "torch" if role.startswith("pytorch") else "dlcore"


def by_library(roles: Iterable[str]) -> list[list[str]]:
    """The roles grouped by :func:`library`, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for role in roles:
        groups.setdefault(library(role), []).append(role)
    return list(groups.values())


def time_case(case: Case, backend: Backend, rounds: int | None = None) -> dict[str, list[float]]:
    """Seconds per call of every contestant, ``rounds`` samples each, interleaved.

    Each contestant is warmed up once, and a fast one makes a second, warm call that estimates how many
    calls a round needs to last about 20 ms (fast calls are grouped, slow loops are timed one call per
    round). Within a round, each library's contestants run after a :data:`SETTLE_S` pause when there is
    more than one library, and then each contestant makes one untimed call before its timed calls. A
    sample is N calls followed by one device synchronize, divided by N (see :func:`timing_method`).
    """
    rounds = rounds or case.rounds
    runs = case.contestants
    groups = by_library(runs)
    settle = SETTLE_S if len(groups) > 1 and not backend.is_gpu else 0.0
    backend.synchronize()
    inner = {name: calls_per_round(run, backend) for name, run in runs.items()}
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for group in groups:
            if settle:
                settle_down(settle)
            for name in group:
                run, n = runs[name], inner[name]
                if settle:
                    timed(run, backend)()  # untimed: wakes the library's sleeping threads, refills caches
                start = time.perf_counter()  # the queue is empty: every earlier call was synchronized
                for _ in range(n):
                    run()
                backend.synchronize()  # once: N calls queued as fit queues its steps
                samples[name].append((time.perf_counter() - start) / n)
    return samples


def calls_per_round(run: Callable[[], Any], backend: Backend) -> int:
    """Warm ``run`` up (and compile, create cuBLAS handles on a GPU) and return N, the calls one round
    needs (:func:`inner_iterations`), from a second, warm call when the first was under
    :data:`WARM_ESTIMATE_S` (the first pays recording, allocation, set-up)."""
    start = time.perf_counter()
    timed(run, backend)()
    seconds = time.perf_counter() - start
    if seconds < WARM_ESTIMATE_S:
        start = time.perf_counter()
        timed(run, backend)()
        seconds = time.perf_counter() - start
    return inner_iterations(seconds)


def time_sides(
    group: str, backend: Backend, dtype: str, name: str, sides: dict[str, Any], rounds: int
) -> tuple[Case, dict[str, tuple[float, float | None]], float]:
    """Ops against ops (the GPU scripts): ``(the case of`` :func:`~dlcore.benchmarks.workloads.ops_case`,
    ``{contestant: (median seconds, paired ratio to the first side)}``, the largest |parameter difference|
    of the second side from the first after the same warm-up steps``)``."""
    case, own = ops_case(group, backend, dtype, name, sides, rounds)
    base, other = list(sides)[:2]
    differ = max_difference(backend, own[other], own[base])
    samples = time_case(case, backend)
    return case, {label: (median(s), paired(samples, label, base)) for label, s in samples.items()}, differ


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def paired(samples: dict[str, list[float]], a: str, b: str) -> float | None:
    """The median over rounds of a's time / b's time in the same round (None if either is missing)."""
    if a not in samples or b not in samples:
        return None
    return median([x / y for x, y in zip(samples[a], samples[b], strict=True)])


def median_interval(xs: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median of ``xs``: the k-th smallest and k-th largest
    value, k the largest with P(Binomial(n, 1/2) < k) <= (1 - level) / 2 (the sign test's interval; at least
    ``level`` coverage for any continuous distribution). ``None`` when n is too small for ``level``
    (n < 6 at 95%)."""
    n = len(xs)
    tail = (1.0 - level) / 2.0
    k, below = 0, 0.0  # below: P(Binomial(n, 1/2) < k + 1) as k grows
    while k < n // 2:
        below += math.comb(n, k) / 2.0**n
        if below > tail:
            break
        k += 1
    if k == 0:
        return None
    ordered = sorted(xs)
    return ordered[k - 1], ordered[n - k]


def paired_interval(
    samples: dict[str, list[float]], a: str, b: str, level: float = 0.95
) -> tuple[float, float] | None:
    """:func:`median_interval` of the per-round ratios a / b (:func:`paired` is their median); None if
    either is missing."""
    if a not in samples or b not in samples:
        return None
    return median_interval([x / y for x, y in zip(samples[a], samples[b], strict=True)], level)
