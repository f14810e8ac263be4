"""The benchmark report (benchmarks/report.py) and its timing (benchmarks/timing.py): table, JSON,
ratios, and the separation of libraries' thread pools. Timings themselves are never asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dlcore.backends import get_backend
from dlcore.benchmarks import report, timing, workloads


def test_quick_report_writes_the_table_and_the_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(workloads, "USE_TORCH", True)  # restored afterwards: --no-torch sets it
    out = tmp_path / "bench.json"
    # --backend numpy: the rows below are numpy's, also where a GPU answers (the default "all" adds cupy)
    code = report.main(["--quick", "--backend", "numpy", "--only", "primitive,logistic", "--dtype", "float32",
                        "--no-torch", "--json", str(out)])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert report.HEADER in text
    data = json.loads(out.read_text())
    names = [row["benchmark"] for row in data["rows"]]
    assert names == ["dot", "exp", "matvec", "logistic gradient (two loops)", "logistic gradient (one loop)"]
    for row in data["rows"]:
        assert row["backend"] == "numpy" and row["dtype"] == "float32"
        assert row["speedup"] == pytest.approx(row["loop_median_s"] / row["vectorized_median_s"])
        assert row["loop_median_s"] > 0 and row["vectorized_median_s"] > 0
    assert data["machine"]["command"].startswith("dlcore bench --quick")
    assert data["machine"]["timing"] == {"numpy": timing.timing_method(get_backend("numpy"))}
    assert f"timing (numpy): {timing.timing_method(get_backend('numpy'))}" in text
    assert all(raw["samples_s"]["vectorized"] for raw in data["raw"])
    assert not workloads.USE_TORCH and workloads.torch_status()[1] == "PyTorch left out (--no-torch)"


def test_full_primitives_sweep_sizes_below_the_loop_size():
    cases = workloads.primitive_cases(get_backend("numpy"), "float32", quick=False)
    dots = [c.elements for c in cases if c.name == "dot"]
    assert dots == sorted(dots) and dots[-1] == workloads.loop_sizes(get_backend("numpy"), False)["dot"]
    assert len(dots) > 3
    assert workloads.primitive_cases(get_backend("numpy"), "float32", quick=True)[0].elements == 100_000


def test_rows_give_floor_pytorch_and_other_peer_ratios():
    case = workloads.Case("train_step", "train step x", "[2, 1] m=4", 4, {}, lambda: None)
    samples = {
        "vectorized": [2.0, 4.0, 6.0],
        "floor": [1.0, 2.0, 2.0],
        "pytorch": [4.0, 8.0, 12.0],
        "pytorch_tensors": [1.0, 1.0, 1.0],
    }
    (row,) = report.rows_for(case, samples, get_backend("numpy"), "float32")
    assert row["step_over_floor"] == pytest.approx(4.0 / 2.0)
    assert row["step_over_floor_paired"] == pytest.approx(2.0)  # median of 2, 2, 3
    assert row["step_over_floor_interval"] is None  # 3 rounds: too few for a 95% interval
    samples = {role: times * 2 for role, times in samples.items()}  # 6 rounds: min and max of the ratios
    (row,) = report.rows_for(case, samples, get_backend("numpy"), "float32")
    assert row["step_over_floor_interval"] == pytest.approx((2.0, 3.0))
    assert row["dlcore_over_pytorch"] == pytest.approx(0.5)
    assert row["dlcore_over_peers"] == {"pytorch_tensors": pytest.approx(4.0)}
    assert "tensors 4x" in report.markdown([row])


def test_unknown_group_is_one_line_and_exit_2(capsys):
    assert report.main(["--only", "nonsense", "--json", "unused.json"]) == 2
    assert "unknown group(s) nonsense" in capsys.readouterr().err


def test_libraries_are_timed_apart_with_a_settle_and_a_warm_call(monkeypatch):
    calls: list[str] = []
    settles: list[float] = []
    monkeypatch.setattr(timing, "settle_down", settles.append)
    roles = ["vectorized", "floor", "pytorch", "pytorch_tensors"]
    contestants = {role: (lambda role=role: calls.append(role)) for role in roles}
    case = workloads.Case("train_step", "t", "s", 1, contestants, lambda: None, rounds=2)
    monkeypatch.setattr(timing, "inner_iterations", lambda seconds: 1)
    samples = timing.time_case(case, get_backend("numpy"))
    assert {role: len(ts) for role, ts in samples.items()} == dict.fromkeys(roles, 2)
    assert settles == [timing.SETTLE_S] * 4  # before each library's block, every round
    one_round = ["vectorized"] * 2 + ["floor"] * 2 + ["pytorch"] * 2 + ["pytorch_tensors"] * 2
    assert calls == roles + one_round * 2  # warm-ups, then each contestant: untimed call + timed call


def test_one_library_needs_no_settle(monkeypatch):
    settles: list[float] = []
    monkeypatch.setattr(timing, "settle_down", settles.append)
    case = workloads.Case("primitive", "t", "s", 1, {"loop": lambda: None, "vectorized": lambda: None},
                          lambda: None, rounds=3)  # fmt: skip
    timing.time_case(case, get_backend("numpy"))
    assert settles == []


def test_threads_option_is_what_every_peer_gets(monkeypatch):
    monkeypatch.setattr(workloads, "THREADS", 3)
    assert workloads.cpu_threads() == 3
    monkeypatch.setattr(workloads, "THREADS", None)
    assert workloads.cpu_threads() >= 1


def test_all_backends_is_numpy_then_torch_then_cupy_when_each_answers(monkeypatch):
    monkeypatch.setattr(report, "get_backend", lambda name: name)
    monkeypatch.setattr(workloads, "torch_status", lambda: (None, "no PyTorch"))
    monkeypatch.setattr(report, "cupy_status", lambda: (object(), ""))
    assert report._backends("all") == ["numpy", "cupy"]
    monkeypatch.setattr(report, "cupy_status", lambda: (None, "no GPU here"))
    assert report._backends("all") == ["numpy"]
    assert report._backends("numpy") == ["numpy"]
    monkeypatch.setattr(workloads, "torch_status", lambda: (object(), ""))
    assert report._backends("all") == ["numpy", "torch"]


class CountingGPU:
    """A GPU backend that records each contestant call and each synchronize, in order."""

    is_gpu = True
    name = "fake_gpu"

    def __init__(self) -> None:
        self.events: list[str] = []

    def synchronize(self) -> None:
        self.events.append("sync")


def test_gpu_samples_are_n_calls_then_one_synchronize(monkeypatch):
    gpu = CountingGPU()
    monkeypatch.setattr(timing, "inner_iterations", lambda seconds: 4)
    contestants = {"loop": lambda: gpu.events.append("loop"), "vectorized": lambda: gpu.events.append("vec")}
    case = workloads.Case("primitive", "t", "s", 1, contestants, lambda: None, rounds=3)
    samples = timing.time_case(case, gpu)
    assert {role: len(ts) for role, ts in samples.items()} == {"loop": 3, "vectorized": 3}
    warm_ups = ["sync", "loop", "sync", "vec", "sync"]  # the queue drained, then one synced call each
    one_round = ["loop"] * 4 + ["sync"] + ["vec"] * 4 + ["sync"]
    assert gpu.events == warm_ups + one_round * 3
    assert gpu.events.count("sync") == 3 + 2 * 3  # not one per call (27 calls)
    assert "one device synchronize per sample" in timing.timing_method(gpu)
    assert "no synchronize between calls" in timing.timing_method(gpu)


def test_pytest_benchmark_rounds_synchronize_after_their_last_call():
    gpu = CountingGPU()
    run = timing.batched(lambda: gpu.events.append("call"), gpu, 3)
    for _ in range(6):  # two rounds of iterations=3
        run()
    assert gpu.events == (["call"] * 3 + ["sync"]) * 2


@pytest.mark.parametrize(("n", "k"), [(6, 1), (9, 2), (15, 4), (20, 6), (25, 8)])
def test_median_interval_is_the_sign_tests_order_statistics(n, k):
    # the sign test's 95% ranks, from the binomial sums by hand (n = 9: the 2nd smallest and 2nd largest,
    # 96.1% coverage); the values shuffled, so the interval comes from the order, not the index
    xs = [float(v) for v in np.random.default_rng(n).permutation(np.arange(1, n + 1))]
    assert timing.median_interval(xs) == (k, n + 1 - k)
    assert timing.median_interval(xs[:5]) is None  # 5 rounds cannot give 95% (2 / 2^5 = 6.25% outside)


def test_median_interval_covers_the_median_at_its_level():
    rng = np.random.default_rng(0)
    trials = 2000
    hits = sum(
        lo <= 1.0 <= hi
        for lo, hi in (timing.median_interval(list(rng.lognormal(0.0, 0.1, 9))) for _ in range(trials))
    )
    assert 0.94 <= hits / trials <= 0.98  # exactly 96.1% for n = 9; a wrong k gives 82% or 99.6%


def test_paired_interval_is_the_interval_of_the_per_round_ratios():
    samples = {
        "a": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
        "b": [1.0, 2.0, 2.0, 4.0, 5.0, 4.0],
    }  # ratios 2,2,3,2,2,3
    assert timing.paired(samples, "a", "b") == 2.0
    assert timing.paired_interval(samples, "a", "b") == (2.0, 3.0)


def test_the_table_prints_the_per_round_ratios_where_the_rows_have_them():
    case = workloads.Case("train_step", "train step x", "[2, 1] m=4", 4, {}, lambda: None)
    samples = {"vectorized": [1.0, 10.0, 3.0], "floor": [1.0, 5.0, 1.0], "pytorch_tensors": [2.0, 5.0, 1.0]}
    (row,) = report.rows_for(case, samples, get_backend("numpy"), "float32")  # per round: 1, 2, 3
    assert row["step_over_floor"] == pytest.approx(3.0) and row["step_over_floor_paired"] == pytest.approx(
        2.0
    )
    cells = report.markdown([row]).splitlines()[-1].split(" | ")
    assert cells[-3:] == ["2x", "—", "tensors 2x |"]  # not the ratios of the medians, 3x and 1.5x
    del row["step_over_floor_paired"], row["dlcore_over_peers_paired"]  # an older JSON: the medians'
    assert report.markdown([row]).endswith("| 3x | — | tensors 1.5x |")
