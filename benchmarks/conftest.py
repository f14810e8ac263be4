"""Fixtures for the pytest-benchmark suite: every benchmark backend (numpy; torch when installed; cupy
when a GPU answers; each skipped with the reason otherwise) x float32/float64, and the cases of
:mod:`dlcore.benchmarks.workloads`.

``--bench-quick`` (implied by ``--benchmark-disable``) uses the small loop sizes: with
``python -m pytest benchmarks --benchmark-disable`` every contestant runs once, after its case's
correctness check, as a fast smoke test.
"""

from __future__ import annotations

import os

import pytest
from dlcore.backends import cupy_status, get_backend
from dlcore.benchmarks import workloads
from dlcore.benchmarks.timing import (
    SETTLE_S,
    batched,
    calls_per_round,
    library,
    settle_down,
    timed,
    timing_method,
)

BENCH_BACKENDS = ["numpy", "torch", "cupy"]  # array_api_strict is the correctness referee, not a contestant
_CASES: dict[tuple, list[workloads.Case]] = {}
_CHECKED: set[tuple] = set()
_LAST_LIBRARY: list[str] = [""]  # whose threads ran last (see benchmarks/timing.py: SETTLE_S)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-quick", action="store_true", help="dlcore benchmarks: small loop sizes")


def _backend_param(name: str):
    marks = []
    reason = cupy_status()[1]
    if name == "cupy" and reason and os.environ.get("DLCORE_REQUIRE_CUPY") != "1":
        # one short clause (dlcore info prints the whole reason and its fix); DLCORE_REQUIRE_CUPY=1 fails
        marks.append(pytest.mark.skip(reason="cupy backend unavailable: " + reason.split(";")[0]))
    if name == "torch" and workloads.torch_status()[0] is None:
        marks.append(pytest.mark.skip(reason="torch backend unavailable: PyTorch is not installed"))
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="session", params=[_backend_param(n) for n in BENCH_BACKENDS])
def bench_backend(request):
    return get_backend(request.param)


@pytest.fixture(scope="session", params=["float32", "float64"])
def dtype(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def quick(request) -> bool:
    return bool(request.config.getoption("--bench-quick") or request.config.getoption("benchmark_disable"))


def get_case(backend, dtype: str, quick: bool, group: str, name: str) -> workloads.Case:
    """The case ``name`` of ``group`` on this backend and dtype (built once per session; the largest size)."""
    key = (backend.name, dtype, quick, group)
    if key not in _CASES:
        _CASES[key] = workloads.GROUPS[group](backend, dtype, quick)
    matches = [case for case in _CASES[key] if case.name == name]
    if not matches:
        raise KeyError(name)
    return max(matches, key=lambda case: case.elements)  # the primitives' size sweep: the loop size


@pytest.fixture
def run_case(benchmark, bench_backend, dtype, quick):
    """``run_case(group, name, role)``: check the case's contestants agree, then time one of them."""

    def run(group: str, name: str, role: str) -> None:
        case = get_case(bench_backend, dtype, quick, group, name)
        if role not in case.contestants:
            pytest.skip(f"no {role} contestant here: {workloads.torch_status()[1] or 'not on this device'}")
        key = (bench_backend.name, dtype, quick, group, name)
        if key not in _CHECKED:
            with bench_backend.quiet_floating_point():
                case.check()
            _CHECKED.add(key)
        benchmark.group = f"{case.name} {case.size} {bench_backend.name} {dtype}"
        benchmark.extra_info.update(
            backend=bench_backend.name,
            device=bench_backend.device_name(),
            dtype=dtype,
            benchmark=case.name,
            role=role,
            size=case.size,
            elements=case.elements,
            **case.info,
        )
        benchmark.extra_info["timing"] = timing_method(bench_backend)
        fn = timed(case.contestants[role], bench_backend)
        switched = _LAST_LIBRARY[0] not in ("", library(role))
        if switched and not benchmark.disabled and not bench_backend.is_gpu:
            settle_down(SETTLE_S)  # let the other library's worker threads stop spinning
        _LAST_LIBRARY[0] = library(role)
        n = 1
        if bench_backend.is_gpu and not benchmark.disabled:  # N queued calls, then one synchronize
            n = calls_per_round(case.contestants[role], bench_backend)  # from a warm call, not the cold one
            fn = batched(case.contestants[role], bench_backend, n)
        else:
            fn()  # warm-up
        benchmark.extra_info["calls_per_round"] = n
        benchmark.pedantic(fn, rounds=case.rounds, iterations=n, warmup_rounds=1 if role != "loop" else 0)

    return run
