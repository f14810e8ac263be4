"""The benchmark report (benchmarks/report.py) and its timing (benchmarks/timing.py): table, JSON,
ratios, and the separation of libraries' thread pools. Timings themselves are never asserted."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import subprocess
import sys
import types

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


@pytest.mark.parametrize("failure", ["broken pipe", "disk full"])
def test_a_failing_stdout_keeps_the_raw_results(tmp_path, capsys, monkeypatch, failure):
    """dlcore bench ... | true (or > /dev/full): the table was printed before the JSON was written, so a
    failing stdout lost the run's results, with a bare "[Errno 32] Broken pipe" and exit 2."""
    import errno
    import io

    from dlcore.cli import main

    monkeypatch.setattr(workloads, "USE_TORCH", True)
    out = tmp_path / "bench.json"

    class Failing(io.StringIO):
        def write(self, text):
            if failure == "broken pipe":
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", Failing())
    monkeypatch.setattr("dlcore.cli._quiet_stdout", lambda: None)  # (it points fd 1 at /dev/null)
    argv = ["--quick", "--backend", "numpy", "--only", "logistic", "--dtype", "float32", "--no-torch"]
    picture = tmp_path / "speedup.png"
    drawn = importlib.util.find_spec("matplotlib") is not None
    code = main(["bench", *argv, "--json", str(out), *(["--plot", str(picture)] if drawn else [])])
    err = capsys.readouterr().err
    assert json.loads(out.read_text())["rows"]  # the results, whatever happened to stdout
    assert picture.exists() == drawn  # and the picture (it was drawn after the report, so lost too)
    if failure == "broken pipe":
        assert code == 141 and "error" not in err
    else:
        why = "cannot write the report to stdout (No space left on device)"
        assert code == 2 and err.endswith(f"error: {why}; the raw results are in {out}\n")


def test_a_pytorch_that_fails_to_import_leaves_the_peer_out(tmp_path, capsys, monkeypatch):
    """A broken PyTorch (libtorch_cuda.so missing: OSError; or a RuntimeError) stopped dlcore bench, even
    with --backend numpy: torch_status caught ImportError only. It leaves the peer out with the reason
    dlcore info gives (the backends' own import probe)."""
    import dlcore.backends.torch_backend as torch_backend

    monkeypatch.setattr(workloads, "USE_TORCH", True)
    real_import = torch_backend.importlib.import_module

    def import_module(name, *args):
        if name == "torch":
            raise OSError("libtorch_cuda.so: cannot open shared object file: No such file or directory")
        return real_import(name, *args)

    monkeypatch.setattr(torch_backend.importlib, "import_module", import_module)  # one module, everyone's
    torch_backend.import_torch.cache_clear()
    try:
        torch, reason = workloads.torch_status()
        assert torch is None and reason.startswith("PyTorch is installed but fails to import (")
        out = tmp_path / "b.json"
        argv = [
            "--quick",
            "--backend",
            "numpy",
            "--only",
            "logistic",
            "--dtype",
            "float32",
            "--json",
            str(out),
        ]
        assert report.main(argv) == 0 and json.loads(out.read_text())["rows"]
    finally:
        torch_backend.import_torch.cache_clear()


def test_a_plot_that_cannot_be_saved_leaves_the_report_and_the_json(tmp_path, capsys, monkeypatch):
    """The picture, drawn before the report so that a failing stdout keeps it, took the whole table with
    it when its own save failed (a full disk)."""
    import errno

    def full(rows, path):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(report, "plot", full)
    monkeypatch.setattr(report, "check_output", lambda path: None)
    out = tmp_path / "b.json"
    argv = ["--quick", "--backend", "numpy", "--only", "logistic", "--dtype", "float32", "--no-torch"]
    assert report.main([*argv, "--json", str(out), "--plot", str(tmp_path / "p.png")]) == 2
    text, err = capsys.readouterr()
    assert report.HEADER in text and "plot:" not in text and json.loads(out.read_text())["rows"]
    last = err.splitlines()[-1]  # after the progress lines
    assert last.startswith("dlcore bench: error: [Errno 28] No space left on device") and str(out) in last
    monkeypatch.setattr(report, "plot", lambda rows, path: pytest.fail("nothing to draw"))
    assert report.main([*argv, "--json", str(out), "--plot", ""]) == 0  # an empty --plot draws nothing:
    assert "plot:" not in capsys.readouterr().out  # and says no "plot: "


def test_the_report_module_run_as_a_script_ends_quietly_when_its_reader_goes(tmp_path):
    """python -m dlcore.benchmarks.report ... | head ended with a BrokenPipeError traceback (exit 1)."""
    argv = ["--quick", "--backend", "numpy", "--only", "logistic", "--dtype", "float32", "--no-torch"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcore.benchmarks.report", *argv, "--json", str(tmp_path / "b.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err
    assert json.loads((tmp_path / "b.json").read_text())["rows"]


def test_threads_beyond_the_machine_and_a_group_named_twice(capsys, tmp_path):
    """--threads 100000 ran, and PyTorch crashed (SIGSEGV) after it; --only logistic,logistic timed the
    group twice."""
    import os

    too_many = str(4 * (os.cpu_count() or 1) + 1)
    assert report.main(["--only", "logistic", "--threads", too_many, "--json", str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.startswith(f"dlcore bench: error: --threads {too_many} on ")
    args = report.build_parser().parse_args(["--only", "logistic,primitive,logistic"])
    assert args.only == ["logistic", "primitive"]


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
    with pytest.raises(SystemExit) as exit_:
        report.main(["--only", "nonsense", "--json", "unused.json"])
    err = capsys.readouterr().err.strip()
    choices = ",".join(workloads.GROUPS)
    assert exit_.value.code == 2 and err.endswith(
        f"argument --only: unknown 'nonsense'; choose from {choices}"
    )


@pytest.mark.filterwarnings("ignore:No artists with labels")  # the lines are recorded here, not drawn
def test_the_plot_draws_tf32_float32_rows_solid_as_its_title_says(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    drawn = []
    monkeypatch.setattr(
        Axes, "plot", lambda ax, xs, ys, style, **kw: drawn.append((kw["label"], style, kw["fillstyle"]))
    )
    rows = [{"benchmark": "dot", "backend": "cupy", "dtype": d, "elements": n, "speedup": 100.0}
            for d in ("float32 (TF32)", "float64") for n in (10, 100)]  # fmt: skip
    report.plot(rows, str(tmp_path / "p.png"))
    # TF32 was "--"; and a --quick plot (one point a series) told float32 from float64 by nothing
    assert sorted(drawn) == [
        ("dot (cupy, float32 (TF32))", "-", "full"),
        ("dot (cupy, float64)", "--", "none"),
    ]


@pytest.mark.parametrize("only", ["", " , "])
def test_an_only_that_names_no_group_is_refused_not_read_as_all(capsys, monkeypatch, only):
    """--only "" ran every group (the full run: ~16 minutes)."""
    monkeypatch.setattr(workloads, "GROUPS", {name: pytest.fail for name in workloads.GROUPS})
    with pytest.raises(SystemExit) as exit_:
        report.main(["--only", only, "--json", "unused.json"])
    assert (
        exit_.value.code == 2
        and "argument --only: no name; choose from primitive," in capsys.readouterr().err
    )


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
    warm_ups = [role for role in roles for _ in range(2)]  # a fast contestant's N from its second call
    assert calls == warm_ups + one_round * 2  # then each contestant: untimed call + timed call


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
    warm_ups = ["sync"] + ["loop", "sync"] * 2 + ["vec", "sync"] * 2  # the queue drained, 2 synced calls
    one_round = ["loop"] * 4 + ["sync"] + ["vec"] * 4 + ["sync"]
    assert gpu.events == warm_ups + one_round * 3
    assert gpu.events.count("sync") == 5 + 2 * 3  # not one per call (28 calls)
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


def test_n_comes_from_a_warm_call_not_the_cold_first_one(monkeypatch):
    """A contestant whose first call pays a one-time cost (recording, allocation, cuBLAS set-up) of 60 ms
    and then takes 1 ms: N is ~20 calls (a ~20 ms sample), not 1 (the cold call's estimate)."""
    calls, clock, estimated_from = [], [0.0], []

    def step():  # on a fake clock: no real time is measured
        clock[0] += 0.06 if not calls else 0.001
        calls.append(1)

    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(timing, "inner_iterations", lambda seconds: estimated_from.append(seconds) or 5)
    case = workloads.Case("primitive", "t", "s", 1, {"vectorized": step}, lambda: None, rounds=1)
    timing.time_case(case, get_backend("numpy"))
    assert estimated_from == [pytest.approx(0.001)]  # the warm call's time, not the cold one's 0.06
    assert len(calls) == 2 + 5  # two warm-ups, then the round's N calls


def test_seconds_round_before_they_choose_a_unit():
    assert [report._seconds(t) for t in (0.9996, 0.0009996, 9.9996e-07, 1.234e-05, 5e-10)] == [
        "1 s", "1 ms", "1 µs", "12.3 µs", "0.5 ns"
    ]  # fmt: skip


@pytest.mark.parametrize("threads", ["0", "-1", "two"])
def test_threads_must_be_a_whole_number_of_at_least_one(capsys, threads):
    with pytest.raises(SystemExit) as exit_:
        report.main(["--threads", threads])
    assert exit_.value.code == 2 and "--threads: wants an integer >= 1" in capsys.readouterr().err


def test_threads_reach_pytorch_too(monkeypatch):
    """--threads limits PyTorch's pool as well as the BLAS (the torch backend's own steps in every group,
    not only the peers of the groups that build them)."""
    pytest.importorskip("threadpoolctl")  # --threads needs it for the BLAS first
    set_to = []

    class FakeTorch:
        set_num_threads = staticmethod(set_to.append)

    monkeypatch.setitem(report.sys.modules, "torch", FakeTorch)
    monkeypatch.setattr(workloads, "THREADS", None)
    report._limit_threads(1)
    assert set_to == [1]


def test_output_paths_are_checked_before_the_run(capsys, monkeypatch, tmp_path):
    """A --json or --plot in a missing directory is refused before any timing (it once failed after the
    whole run, throwing its results away)."""
    monkeypatch.setattr(workloads, "GROUPS", {**workloads.GROUPS, "logistic": pytest.fail})
    missing = tmp_path / "missing"
    assert report.main(["--only", "logistic", "--backend", "numpy", "--json", str(missing / "b.json")]) == 2
    assert f"--json {missing / 'b.json'}: the directory {missing} does not exist" in capsys.readouterr().err
    pytest.importorskip("matplotlib")
    argv = ["--only", "logistic", "--json", str(tmp_path / "b.json"), "--plot", str(missing / "p.png")]
    assert report.main(argv) == 2
    assert f"--plot {missing / 'p.png'}: the directory {missing} does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("only", ["train_step", "scaling,minibatch_epoch", "scaling, minibatch_epoch,"])
def test_a_plot_of_groups_without_loops_is_refused_before_the_run(capsys, monkeypatch, tmp_path, only):
    """--plot with groups that time no loop drew empty axes after the whole run (and a matplotlib warning)."""
    monkeypatch.setattr(workloads, "GROUPS", {name: pytest.fail for name in workloads.GROUPS})
    argv = ["--only", only, "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "p.png")]
    assert report.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "--plot draws loop against vectorized speed-ups, which only primitive, logistic, network time: "
        "add one of them to --only, or drop --plot"
    )
    assert len(err.splitlines()) == 1 and not (tmp_path / "p.png").exists()


def test_the_pytorch_peers_leave_synchronizing_to_the_timer(monkeypatch):
    """On a GPU the PyTorch steps synchronized after every call while dlcore's are synchronized once per
    N calls (timing_method), which favoured dlcore. A device other than "cpu" stands in for CUDA."""
    torch = pytest.importorskip("torch")
    syncs = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: syncs.append(1))
    monkeypatch.setattr(workloads, "torch_device", lambda backend: (torch, "cpu:0"))
    backend = get_backend("numpy")
    _, X, Y, params, acts = workloads._network(backend, "float32", "planar")
    steps = workloads.torch_steps(backend, X, Y, params, "tanh")
    for step, _ in steps.values():
        step()
    assert len(steps) == 2 and syncs == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (  # it printed "PyTorch left out (--no-torch)" above rows timed on PyTorch
            ["--backend", "torch", "--no-torch"],
            "--no-torch leaves PyTorch out, and --backend torch runs on it",
        ),
        (
            ["--backend", "numpy", "--tf32"],
            r"--tf32 times float32 products in TF32.*--backend cupy or torch:cuda",
        ),
        (["--backend", "numpy", "--dtype", "float64", "--tf32"], "--tf32 changes float32 products only"),
    ],
    ids=["no-torch-on-torch", "tf32-on-cpu", "tf32-float64"],
)
def test_contradicting_options_are_refused_before_any_timing(capsys, monkeypatch, tmp_path, argv, message):
    monkeypatch.setattr(workloads, "GROUPS", dict.fromkeys(workloads.GROUPS, pytest.fail))
    assert report.main([*argv, "--json", str(tmp_path / "b.json")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "b.json").exists()


def test_tf32_reaches_only_a_gpu_backends_float32_timing(monkeypatch):
    """Only a GPU backend's float32 timing enters the switch, and leaves it after; float64 and CPU
    backends never enter it."""
    entered = []

    class FakeGPU:
        name, is_gpu = "cupy", True

        @contextlib.contextmanager
        def tf32(self):
            entered.append("on")
            yield
            entered.append("off")

    monkeypatch.setattr(report.workloads, "torch_device", lambda backend: None)
    gpu, cpu = FakeGPU(), get_backend("numpy")
    assert report._in_tf32(True, gpu, "float32")
    assert not report._in_tf32(True, gpu, "float64") and not report._in_tf32(True, cpu, "float32")
    assert not report._in_tf32(False, gpu, "float32")
    with report._tf32(gpu):
        assert entered == ["on"]
    assert entered == ["on", "off"]
    asked = []  # a GPU backend's PyTorch peers run on its own GPU: theirs is switched too, not cuda:0's
    monkeypatch.setattr(report.workloads, "torch_device", lambda backend: (None, "cuda:1"))
    monkeypatch.setattr(report, "get_backend", lambda spec: asked.append(spec) or FakeGPU())
    with report._tf32(gpu):
        assert entered[2:] == ["on", "on"]
    assert asked == ["torch:cuda:1"] and entered[2:] == ["on", "on", "off", "off"]


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_ops_case_warms_each_side_on_its_own_copy(name):
    """The GPU scripts' ops-against-ops case (cupy_step, torch_graphs): each side has trained three steps
    from one start on parameters of its own, as train_step on a copy does; the floor comes with them."""
    import dlcore
    from dlcore.ops import Ops

    backend = get_backend(name)
    sides = {"default": Ops(backend.xp), "backend": backend.ops}
    case, own = workloads.ops_case("ops", backend, "float64", "planar", sides, rounds=2)
    assert set(case.contestants) == {"default", "backend", "floor"} and case.rounds == 2
    assert case.size == "[2, 4, 1] m=400" and case.elements == 400
    _, X, Y, params, acts = workloads._network(backend, "float64", "planar")
    for _ in range(3):
        dlcore.train_step(X, Y, params, acts, 1e-5, compute_cost=False)
    for side in sides:
        assert workloads.max_difference(backend, own[side], params) == 0.0, side
    assert own["default"]["W1"] is not own["backend"]["W1"]


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_time_sides_times_each_side_against_the_first(name):
    """cupy_step's and torch_graphs' measurement: every contestant's median and its paired ratio to the
    first side (1 for that side itself), and how far the second side's parameters moved from the first's."""
    from dlcore.benchmarks.timing import time_sides

    from dlcore.ops import Ops

    backend = get_backend(name)
    sides = {"default": Ops(backend.xp), "backend": backend.ops}
    case, times, differ = time_sides("ops", backend, "float64", "planar", sides, rounds=2)
    assert set(times) == set(case.contestants) == {"default", "backend", "floor"}
    assert times["default"][1] == 1.0 and all(t[0] > 0 and t[1] > 0 for t in times.values())
    assert differ == 0.0  # numpy's ops compute the default's bits


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_step_memory_counts_the_workspace_the_first_step_keeps(dtype):
    """Traced only from the second step on, the wide net's step "peaked at 0.1 MiB beyond the parameters":
    the ops' buffers allocated by the first step went uncounted (and still did after the train_step
    cases, whose steps had made them already). Whatever the split, a step holds its gradients and cached
    Z and A at some point."""
    from dlcore.propagation import train_step

    _, X, Y, params, acts = workloads._network(get_backend("numpy"), dtype, "wide")
    train_step(X, Y, params, acts, workloads.LEARNING_RATE)  # as the train_step cases run before it
    mem = report.peak_memory(dtype)
    assert mem["workspace"] + mem["step_peak_extra"] >= mem["grads"] + mem["cache_Z_A"]
    assert mem["resident_before"] == mem["params"] + mem["workspace"]
    # and no more than that plus backward's dA[2], dA[1] and one ReLU' mask (1024 x 2048 each): a
    # process's first float32 step counted numba's compilation too, 85.9 MiB against these 63.1
    largest = 1024 * 2048 * np.dtype(dtype).itemsize
    assert mem["workspace"] <= mem["grads"] + mem["cache_Z_A"] + 3 * largest + 2**20


def test_the_step_memory_of_a_fresh_process_leaves_numbas_compilation_out():
    """`dlcore bench` measures float32 first, in a process that has run no float32 step: numba's first
    call (its compilation, or loading it from the cache) held ~31 MiB of Python objects, counted as the
    workspace (85.9 MiB against 55.1)."""
    pytest.importorskip("numba", reason="without numba's kernels there is no first compilation to leave out")
    code = "import json; from dlcore.benchmarks import report; print(json.dumps(report.peak_memory(%r)))"
    run = subprocess.run([sys.executable, "-c", code % "float32"], capture_output=True, check=True)
    mem = json.loads(run.stdout)
    # gradients, cached Z and A, backward's dA[2] and dA[1] (numba's kernels need no ReLU' mask)
    assert mem["workspace"] <= mem["grads"] + mem["cache_Z_A"] + 2 * 1024 * 2048 * 4 + 2**20
