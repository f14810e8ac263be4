"""Data-parallel training (dlcore.distributed, dlcore.backends.comm): N ranks train one model.

The oracle is one process: ``Network.fit`` without a communicator on the same data. Through the
single-process communicator the data-parallel path must give the same bits on every backend; under
``mpiexec -n N`` (the ``mpi`` extra: mpi4py + MPICH's wheel) every rank's parameters must be bitwise
equal to the others' and within a relative 1e-9 of one process's (N = 1: bitwise). The multi-rank
tests start real MPI jobs (tests/distributed_worker.py, the CLI) and fail rather than hang (timeouts).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from dlcore.backends import BackendError, available_backends
from dlcore.backends.comm import SingleProcess, launcher_rank, launcher_size, load_mpi

from dlcore import Network
from dlcore.cli import Terminated
from dlcore.distributed import DataParallel, shard

sys.path.insert(0, str(Path(__file__).parent))
from distributed_worker import SCENARIOS, data, network  # noqa: E402

WORKER = Path(__file__).parent / "distributed_worker.py"
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=str(Path(sys.executable).parent))
DLCORE = shutil.which("dlcore", path=str(Path(sys.executable).parent)) or shutil.which("dlcore")


def _mpi_reason() -> str:
    try:
        load_mpi()
    except BackendError as exc:
        return "MPI unavailable: " + str(exc).split(":")[0]
    return "" if MPIEXEC else "MPI unavailable: no mpiexec on PATH"


needs_mpi = pytest.mark.skipif(bool(_mpi_reason()), reason=_mpi_reason() or "-")


def _env(n: int) -> dict[str, str]:
    """The environment of an MPI job: MPICH polls less when the ranks outnumber the cores (else 3 ranks
    on 2 cores spin against each other: 14 s instead of 1.5 s for the 2,000-step test). Open MPI's
    mpiexec (the GPU machine's system MPI) refuses to start as root, which test machines often are, and
    more ranks than cores: both allowed, for these jobs only (MPICH ignores the variables)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1"
    )
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        env.pop(name, None)
    if n > (os.cpu_count() or 1) - 1:
        env.update(
            MPIR_CVAR_CH4_PROGRESS_THROTTLE="1", MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT="10"
        )
    return env


def run(cmd: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run an MPI job in its own process group; on a timeout kill the whole group (mpiexec, its proxies
    and every rank: killing mpiexec alone leaves ranks spinning in a collective) and fail."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the MPI job hung for {timeout} s: {' '.join(cmd)}\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def run_ranks(
    n: int, *args: str, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``mpiexec -n n python tests/distributed_worker.py args...``; a hang fails the test (timeout)."""
    return run(
        [MPIEXEC, "-n", str(n), sys.executable, str(WORKER), *args], {**_env(n), **(env or {})}, timeout
    )


def reference(scenario: str, backend: str = "numpy") -> tuple[dict, list]:
    """One process's parameters and costs for a scenario (the oracle)."""
    net = network(scenario, backend)
    X, Y = data(backend)
    history = net.fit(X, Y, **SCENARIOS[scenario][3])
    return net.parameters_numpy(), list(history.costs)


def relative(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(b[k]))) for k in b)


def ranks_output(out: Path, n: int) -> list[dict]:
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(n)]


class _FakeMPIComm:
    """mpi4py's COMM_WORLD as rank ``rank`` of ``size`` sees it, ``local`` ranks on this machine (what
    NCCLComm asks MPI), every rank holding the same arrays: Allreduce sums to ``size`` times x, in place
    (the dtypes it was handed in ``reduced``); Bcast and allgather change nothing."""

    def __init__(self, rank=0, size=1, local=1):
        self.rank, self.size, self.local = rank, size, local
        self.reduced = []

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Split_type(self, kind):
        return types.SimpleNamespace(
            Get_rank=lambda: self.rank % self.local, Get_size=lambda: self.local, Free=lambda: None
        )

    def bcast(self, obj, root=0):
        return b"unique-id-of-rank-0"

    def Allreduce(self, inplace, buf, op):
        self.reduced.append(buf.dtype)
        buf *= self.size

    def Bcast(self, buf, root):
        pass

    def allgather(self, obj):
        return [obj] * self.size


def _fake_mpi(monkeypatch, world: _FakeMPIComm) -> None:
    """comm.load_mpi() gives mpi4py's MPI with ``world`` as COMM_WORLD."""
    from dlcore.backends import comm as comm_module

    mpi = types.SimpleNamespace(COMM_WORLD=world, COMM_TYPE_SHARED=1, IN_PLACE=0, SUM=0)
    monkeypatch.setattr(comm_module, "load_mpi", lambda: mpi)


# -- no MPI needed -----------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2, 3, 7, 400, 401])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shards_partition_the_columns_evenly(m, size):
    slices = [shard(m, size, r) for r in range(size)]
    columns = [c for lo, hi in slices for c in range(lo, hi)]
    assert columns == list(range(m))  # contiguous, in rank order, every column once
    widths = [hi - lo for lo, hi in slices]
    assert max(widths) - min(widths) <= 1


@pytest.mark.parametrize("scenario", ["full", "minibatch", "validation"])
def test_the_data_parallel_path_on_one_rank_is_bitwise_one_process(backend, scenario):
    name = backend.spec()
    if scenario == "full":  # 2,000 steps on four backends: 300 are enough to compare bits
        SCENARIOS["short"] = (*SCENARIOS["full"][:3], {**SCENARIOS["full"][3], "iterations": 300})
        scenario = "short"
    ref_params, ref_costs = reference(scenario, name)
    net = network(scenario, name)
    X, Y = data(name)
    history = net.fit(X, Y, comm=SingleProcess(), **SCENARIOS[scenario][3])
    got = net.parameters_numpy()
    assert all(np.array_equal(got[k], ref_params[k]) for k in ref_params)
    assert list(history.costs) == ref_costs


@pytest.mark.parametrize(
    ("name", "low", "l2"),
    [("numpy", "float16", 0), ("torch", "float16", 0), ("torch", "bfloat16", 0), ("torch", "bfloat16", 0.5)],
)
def test_mixed_precision_ranks_sum_in_the_master_dtype(monkeypatch, name, low, l2):
    """Mixed precision through the data-parallel path on one rank gives one process's bits, the recorded
    costs included (they travel in the allreduce buffer: in the low dtype they kept ~3 digits), and the
    buffer is float32 (the masters'), so a torch bfloat16 step passes MPI's host buffers (NumPy has no
    bfloat16). With L2 too: both add its gradient in float32 (one process once added it in bfloat16,
    1.6e-3 apart)."""
    reason = available_backends()[name]
    if reason:
        pytest.skip(f"{name} backend unavailable: {reason.split(';')[0]}")
    from dlcore.backends import comm as comm_module

    world = _FakeMPIComm()  # a job of one
    _fake_mpi(monkeypatch, world)
    fit = {**SCENARIOS["mixed"][3], "precision": low, "cost_every": 1, "l2": l2}
    X, Y = data(name)
    results = []
    for comm in (None, comm_module.MPIComm()):
        net = network("mixed", name)
        history = net.fit(X, Y, comm=comm, **fit)
        results.append((net.parameters_numpy(), list(history.costs)))
    (ref, ref_costs), (got, costs) = results
    assert costs == ref_costs and all(np.array_equal(got[k], ref[k]) for k in ref)
    assert world.reduced and set(world.reduced) == {np.dtype("float32")}


def test_every_rank_sums_in_one_dtype_of_at_least_float32():
    """A rank with an empty slice adds a zero cost in the compute dtype (float16 under mixed
    precision) while the others add a float32 cost: both travel as float32 (MPI would otherwise add
    2-byte and 4-byte buffers); float64 stays float64."""
    sent = []

    class Recording(SingleProcess):
        def allreduce(self, x):
            sent.append(x.dtype)
            return x

    parallel = DataParallel(Recording())
    for value in (np.zeros((), np.float16), np.float32(0.25), np.float64(0.5)):
        parallel.sum(value)
    parallel.allreduce_gradients({"dW1": np.ones((2, 2), np.float16)}, np.float32(0.25))
    assert sent == [np.float32, np.float32, np.float64, np.float32]


class _TwoRanks(SingleProcess):
    """Rank 0 of two in one process: allgather answers this rank's object and ``other(obj)`` as rank 1's,
    and keeps what it was handed in ``gathered``."""

    size = 2

    def __init__(self, other):
        super().__init__()
        self.other, self.gathered = other, []

    def allgather(self, obj):
        self.gathered.append(obj)
        return [obj, self.other(obj)]


def test_ranks_whose_mixed_precision_differs_inside_are_told_which(monkeypatch):
    """A MixedPrecision's wrapped optimizer (Adam's betas) and its scaler (growth_interval) were not
    compared: each rank scaled its gradients by its own S before the sum, and replicas drifted apart
    (0.13 in the review) without a word."""
    from dlcore import Adam, MixedPrecision

    X, Y = data()
    monkeypatch.setattr("dlcore.model.check_training_fits", lambda *args: None)

    def options_of(precision):  # what one rank hands the option check
        alike = _TwoRanks(lambda obj: obj)
        with contextlib.suppress(Exception):  # (the fit itself: two ranks of one process)
            Network([2, 4, 1], "tanh", backend="numpy", dtype="float32", seed=3).fit(
                X, Y, iterations=2, precision=precision, comm=alike
            )
        return next(g for g in alike.gathered if isinstance(g, dict) and "precision" in g)

    rank1 = options_of(MixedPrecision(Adam(0.01, beta1=0.9), "float16"))
    for rank0, differing in [
        (MixedPrecision(Adam(0.01, beta1=0.5), "float16"), "optimizer"),
        (MixedPrecision(Adam(0.01, beta1=0.9), "float16", growth_interval=1), "precision"),
    ]:
        other = _TwoRanks(lambda obj: rank1 if isinstance(obj, dict) and "precision" in obj else obj)
        with pytest.raises(
            ValueError, match=rf"^rank\(s\) 1 train with other options than rank 0 \({differing}\)"
        ):
            Network([2, 4, 1], "tanh", backend="numpy", dtype="float32", seed=3).fit(
                X, Y, iterations=2, precision=rank0, comm=other
            )


@pytest.mark.parametrize("mixed", [False, True])
def test_an_optimizer_used_in_a_second_data_parallel_fit_agrees_with_the_other_ranks(monkeypatch, mixed):
    """The options compared held the optimizer's private `_checked`, the id of the last parameter dict
    (a memory address, another on every rank): a second fit with the same optimizer (or MixedPrecision)
    was refused on every rank as 'other options'. Here rank 1 is the same fits in another object."""
    from dlcore import Adam, MixedPrecision

    X, Y = data()

    def two_fits(second_comm):  # a fit, then a second one with the same optimizer over second_comm
        net = Network([2, 4, 1], "tanh", backend="numpy", dtype="float32", seed=3)
        opt = MixedPrecision(Adam(0.01), "float16") if mixed else Adam(0.01)
        kind = {"precision": opt} if mixed else {"optimizer": opt}
        net.fit(X, Y, iterations=3, comm=_TwoRanks(lambda obj: obj), **kind)
        net.fit(X, Y, iterations=3, comm=second_comm, **kind)

    recording = _TwoRanks(lambda obj: obj)
    two_fits(recording)  # rank 1, in another object (another id of its parameter dict)
    rank1 = next(g for g in recording.gathered if isinstance(g, dict) and "precision" in g)
    two_fits(_TwoRanks(lambda obj: rank1 if isinstance(obj, dict) and "precision" in obj else obj))


def test_check_same_data_names_the_ranks_that_differ():
    X = np.arange(6.0).reshape(2, 3)
    other = _TwoRanks(lambda digests: {k: v + "x" for k, v in digests.items()})
    with pytest.raises(ValueError, match=r"rank\(s\) 1 hold different training data \(X\) than rank 0"):
        DataParallel(other).check_same_data(X=X)
    DataParallel(SingleProcess()).check_same_data(X=X)  # one rank agrees with itself
    missing = _TwoRanks(lambda digests: {"X": digests["X"]})  # only rank 0 has validation data
    with pytest.raises(ValueError, match=r"rank\(s\) 1 hold different training data \(X_val\) than rank 0"):
        DataParallel(missing).check_same_data(X=X, X_val=X)  # it named nothing: "()"


def test_a_second_ctrl_c_on_one_rank_stops_every_rank():
    """A second SIGINT sent to one rank (kill -INT, a scheduler) raised KeyboardInterrupt there alone while
    the other ranks waited in the next allreduce: a hang. It now aborts the job, naming why."""
    X, Y = data()
    aborted = []

    class Aborting(_TwoRanks):
        def abort(self, message, code=1):
            aborted.append(message)
            raise SystemExit(code)

    comm = Aborting(lambda obj: obj)
    comm.allreduce = lambda x: x + x  # rank 1 computes alike

    def twice(i, J):
        if i == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    net = Network([2, 4, 1], "tanh", backend="numpy", seed=3)
    with pytest.raises(SystemExit):
        net.fit(X, Y, 0.5, iterations=20, cost_every=1, callback=twice, comm=comm)
    assert aborted[0] == "interrupted twice (Ctrl-C)"  # (MPI's Abort ends the process there)


def test_mpi4py_without_an_mpi_library_says_how_to_fix_it(monkeypatch):
    def missing(name):  # what mpi4py 4.1 raises when no libmpi.so is found (measured with mpich removed)
        raise RuntimeError(
            "cannot load MPI library\n/venv/lib/libmpi.so: cannot open shared object file: No such file"
        )

    fake = types.ModuleType("mpi4py")
    fake.rc, fake.__getattr__ = types.SimpleNamespace(threads=True), missing
    monkeypatch.setitem(sys.modules, "mpi4py", fake)
    with pytest.raises(BackendError) as raised:
        load_mpi()
    assert str(raised.value).startswith(
        "mpi4py is installed but cannot load an MPI library (cannot load MPI library; /venv/lib/libmpi.so: "
        "cannot open shared object file: No such file): pip install mpich, or pip install 'dlcore[mpi]'"
    )
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(BackendError, match=r"needs mpi4py and an MPI library: pip install 'dlcore\[mpi\]'"):
        load_mpi()


def test_launcher_variables():
    assert launcher_size({}) is None and launcher_rank({}) is None
    assert launcher_size({"PMI_SIZE": "4", "PMI_RANK": "2"}) == 4
    assert launcher_rank({"PMI_SIZE": "4", "PMI_RANK": "2"}) == 2
    assert launcher_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3


def test_cli_distributed_without_a_launcher_is_refused(monkeypatch, capsys):
    from dlcore.cli import main

    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    assert main(["train", "--distributed", "--iterations", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--distributed needs an MPI launcher" in err and "mpiexec -n 2" in err


def test_cli_started_by_a_launcher_without_distributed_warns(monkeypatch, capsys):
    from dlcore.cli import main

    monkeypatch.setenv("PMI_SIZE", "3")
    monkeypatch.setenv("PMI_RANK", "0")
    assert main(["train", "--iterations", "5", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "3 independent copies are training the same model; add --distributed" in err


# -- real MPI jobs -----------------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("n", [1, 2, 3])
def test_full_batch_on_n_ranks_is_one_process(tmp_path, n):
    result = run_ranks(n, "full", str(tmp_path))
    assert result.returncode == 0, result.stderr
    ranks = ranks_output(tmp_path, n)
    ref, ref_costs = reference("full")
    for r in ranks[1:]:  # every rank holds the very same parameters
        assert all(np.array_equal(r[k], ranks[0][k]) for k in ref)
    if n == 1:
        assert all(np.array_equal(ranks[0][k], ref[k]) for k in ref)
        assert list(ranks[0]["costs"]) == ref_costs
    else:
        assert relative(ranks[0], ref) < 1e-9
        np.testing.assert_allclose(ranks[0]["costs"], ref_costs, rtol=1e-9)


@needs_mpi
@pytest.mark.parametrize(("scenario", "n"), [("minibatch", 2), ("minibatch", 3), ("validation", 3)])
def test_mini_batches_adam_l2_dropout_and_early_stopping_on_n_ranks(tmp_path, scenario, n):
    result = run_ranks(n, scenario, str(tmp_path))
    assert result.returncode == 0, result.stderr
    ranks = ranks_output(tmp_path, n)
    ref, ref_costs = reference(scenario)
    for r in ranks[1:]:
        assert all(np.array_equal(r[k], ranks[0][k]) for k in ref)
    assert relative(ranks[0], ref) < 1e-9
    np.testing.assert_allclose(ranks[0]["costs"], ref_costs, rtol=1e-9)  # the same epochs were recorded


@needs_mpi
def test_mixed_precision_on_two_ranks(tmp_path):
    result = run_ranks(2, "mixed", str(tmp_path))
    assert result.returncode == 0, result.stderr
    ranks = ranks_output(tmp_path, 2)
    ref, _ = reference("mixed")
    assert all(ranks[0][k].dtype == np.float32 for k in ref)  # the masters
    assert all(np.array_equal(ranks[1][k], ranks[0][k]) for k in ref)
    # each rank sums its half batch in float16, one process the whole batch: float16's tolerance (1e-3)
    assert relative(ranks[0], ref) < 1e-2


@needs_mpi
@pytest.mark.parametrize("name", ["array_api_strict", "array_api_strict:device1", "torch"])
def test_other_backends_on_two_ranks(tmp_path, name):
    reason = available_backends()[name.split(":")[0]]
    if reason:
        pytest.skip(f"{name} backend unavailable: {reason.split(';')[0]}")
    result = run_ranks(2, "minibatch", str(tmp_path), name)
    assert result.returncode == 0, result.stderr
    ranks = ranks_output(tmp_path, 2)
    ref, _ = reference("minibatch", name)
    assert all(np.array_equal(ranks[1][k], ranks[0][k]) for k in ref)
    assert relative(ranks[0], ref) < 1e-9


@needs_mpi
def test_ranks_with_different_data_fail_with_one_clear_error(tmp_path):
    result = run_ranks(2, "full", str(tmp_path), env={"DLCORE_TEST_DIFFERENT_DATA": "1"}, timeout=60)
    assert result.returncode != 0
    assert "rank(s) 1 hold different training data (X) than rank 0" in result.stderr


@needs_mpi
def test_a_failing_rank_stops_the_job_with_its_message(tmp_path):
    result = run_ranks(2, "full", str(tmp_path), env={"DLCORE_TEST_FAIL_RANK": "1"}, timeout=60)
    assert result.returncode != 0  # not a hang: rank 0 was waiting in an allreduce
    assert "error on rank 1 of 2: RuntimeError: rank 1 broke at iteration 200; stopping every rank" in (
        result.stderr
    )


@needs_mpi
def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_update(tmp_path):
    result = run_ranks(2, "full", str(tmp_path), env={"DLCORE_TEST_INTERRUPT_RANK": "1"}, timeout=60)
    assert result.returncode == 0, result.stderr
    ranks = ranks_output(tmp_path, 2)
    assert [str(r["stopped"]) for r in ranks] == ["interrupted", "interrupted"]
    assert all(np.array_equal(ranks[1][k], ranks[0][k]) for k in ("W1", "b1", "W2", "b2"))


MOONS_ADAM = ["--dataset", "moons", "--layers", "2,16,1", "--hidden-activation", "relu", "--init", "he"]
MOONS_ADAM += ["--optimizer", "adam", "--lr", "0.01", "--epochs", "10", "--batch-size", "64"]
MOONS_ADAM += ["--keep-prob", "0.9", "--validation-split", "0.1", "--patience", "3"]


@needs_mpi
@pytest.mark.parametrize(
    "options",
    [["--iterations", "300"], MOONS_ADAM],  # the second once printed 83.7% for 83.8% (summed fractions)
    ids=["planar-full-batch", "moons-adam-dropout-early-stopping"],
)
def test_cli_distributed_trains_saves_once_and_matches_one_process(tmp_path, options):
    args = ["train", *options, "--dtype", "float64", "--backend", "numpy"]  # CPU ranks (auto: a GPU's NCCL)
    single = run([DLCORE, *args, "--out", str(tmp_path / "one.npz")], _env(1))
    assert single.returncode == 0, single.stderr
    job = run(
        [MPIEXEC, "-n", "2", DLCORE, *args, "--distributed", "--out", str(tmp_path / "two.npz")], _env(2)
    )
    assert job.returncode == 0, job.stderr
    assert job.stdout.count("model saved to") == 1 and job.stdout.count("train accuracy") == 1
    assert "distributed: 2 ranks over MPI" in job.stdout
    accuracy = [line for line in single.stdout.splitlines() if "accuracy" in line]
    assert accuracy == [line for line in job.stdout.splitlines() if "accuracy" in line]
    one, two = (Network.load(tmp_path / f"{n}.npz", backend="numpy") for n in ("one", "two"))
    np.testing.assert_allclose(two.normalization.mean, one.normalization.mean, rtol=1e-12)
    np.testing.assert_allclose(two.normalization.std, one.normalization.std, rtol=1e-12)
    assert relative({k: np.asarray(v) for k, v in two.params.items()}, one.params) < 1e-9


@needs_mpi
def test_cli_a_rank_whose_set_up_fails_stops_every_rank(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("x1,x2,y\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(40)))
    common = ["train", "--iterations", "20", "--distributed", "--quiet", "--backend", "numpy"]
    job = run(  # MPMD: rank 0 reads good.csv, rank 1 a file that is not there
        [MPIEXEC, "-n", "1", DLCORE, *common, "--dataset", str(good), ":"]
        + ["-n", "1", DLCORE, *common, "--dataset", str(tmp_path / "no.csv")],
        _env(2),
        timeout=60,
    )
    assert job.returncode == 2
    errors = [line for line in job.stderr.splitlines() if line.startswith("dlcore: error")]
    assert len(errors) == 1 and "on rank 1:" in errors[0] and "no.csv" in errors[0]


@needs_mpi
def test_cli_a_rank_whose_backend_fails_stops_every_rank():
    """get_backend ran before MPI started: a rank that could not get its backend (cupy on the one machine
    without a GPU) exited, and the others waited in MPI_Init for good."""
    common = ["train", "--iterations", "20", "--distributed", "--quiet"]
    job = run(  # MPMD: rank 1 asks for a device the numpy backend does not have
        [MPIEXEC, "-n", "1", DLCORE, *common, "--backend", "numpy", ":"]
        + ["-n", "1", DLCORE, *common, "--backend", "numpy:1"],
        _env(2),
        timeout=60,
    )
    assert job.returncode == 2, job.stderr
    errors = [line for line in job.stderr.splitlines() if line.startswith("dlcore: error")]
    assert errors == ["dlcore: error: on rank 1: the numpy backend runs on the CPU only; got device '1'"]


@needs_mpi
def test_cli_ranks_given_other_options_are_told_which_before_any_collective():
    """Options were compared only inside fit: --no-normalize on one rank hung the job in the normalization's
    allreduce, and another --dtype was reported as "different training data"."""
    common = ["train", "--iterations", "20", "--distributed", "--quiet", "--backend", "numpy"]
    job = run(
        [MPIEXEC, "-n", "1", DLCORE, *common, ":", "-n", "1", DLCORE, *common, "--no-normalize"]
        + ["--dtype", "float32"],
        _env(2),
        timeout=60,
    )
    assert job.returncode == 2, job.stderr
    errors = [line for line in job.stderr.splitlines() if line.startswith("dlcore: error")]
    assert len(errors) == 1, job.stderr
    assert "rank(s) 1 train with other options than rank 0 (--dtype, --no-normalize)" in errors[0]
    # the defaults given explicitly on one rank, and --dtype float16 as --precision float16: the same run
    for mine, theirs in (
        ([], ["--dtype", "float64", "--samples", "400", "--lr", "1.2", "--iterations", "20"]),
        (["--dtype", "float16"], ["--precision", "float16"]),
    ):
        same = run(
            [MPIEXEC, "-n", "1", DLCORE, *common, *mine, ":", "-n", "1", DLCORE, *common, *theirs],
            _env(2),
            timeout=60,
        )
        assert same.returncode == 0, (mine, theirs, same.stderr)


def test_the_flat_gradient_buffer_has_one_layout_whatever_the_dict_order():
    class Recording(SingleProcess):
        def allreduce(self, x):
            self.sent = np.array(x)
            return x

    grads = {"dW2": np.full((1, 3), 2.0), "db2": np.full((1, 1), 3.0), "dW1": np.arange(6.0).reshape(3, 2)}
    buffers = []
    for order in (list(grads), sorted(grads), list(reversed(grads))):
        comm = Recording()
        summed, J = DataParallel(comm).allreduce_gradients({k: grads[k] for k in order}, np.float64(0.5))
        buffers.append(comm.sent)
        assert all(np.array_equal(summed[k], grads[k]) for k in grads) and float(J) == 0.5
    assert all(np.array_equal(b, buffers[0]) for b in buffers)
    assert buffers[0].shape == (6 + 3 + 1 + 1 + 2,)  # the gradients, the cost, two stop flags


def _fake_cupy(monkeypatch, gpus, calls, available=True, array_gpu=1):
    """Just enough of cupy (NumPy arrays on GPU ``array_gpu`` stand in for device arrays) to check
    NCCLComm's wiring; ``available=False``: CuPy could not load libnccl (``cupy.cuda.nccl.available``)."""
    nccl = types.SimpleNamespace(
        NCCL_FLOAT16=6, NCCL_FLOAT32=7, NCCL_FLOAT64=8, NCCL_SUM=0, get_unique_id=lambda: b"id"
    )
    nccl.available = available
    if not available:  # cupy/cuda/nccl.py: the import of the bindings failed, so they are missing
        del nccl.NCCL_FLOAT16, nccl.get_unique_id

    class Communicator:
        def __init__(self, size, uid, rank):
            calls.append(("init", size, uid, rank))

        def allReduce(self, send, recv, count, dtype, op, stream):
            calls.append(("allReduce", count, dtype, op, stream))

        def broadcast(self, send, recv, count, dtype, root, stream):
            calls.append(("broadcast", count, dtype, root, stream))

    nccl.NcclCommunicator = Communicator
    cuda = types.SimpleNamespace(
        nccl=nccl,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: gpus, runtimeGetVersion=lambda: 13020),
        Device=lambda i: types.SimpleNamespace(id=i, use=lambda: calls.append(("device", i))),
        get_current_stream=lambda: types.SimpleNamespace(ptr=1234),
    )

    class Array(np.ndarray):
        @property
        def data(self):
            return types.SimpleNamespace(ptr=self.ctypes.data)

        @property
        def device(self):
            return types.SimpleNamespace(id=array_gpu)

    fake = types.ModuleType("cupy")
    fake.cuda = cuda
    fake.ascontiguousarray = lambda x: np.ascontiguousarray(x).view(Array)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", nccl)


def test_nccl_comm_one_gpu_per_rank_and_its_calls(monkeypatch):
    from dlcore.backends import comm as comm_module

    calls = []
    _fake_cupy(monkeypatch, gpus=4, calls=calls)
    _fake_mpi(monkeypatch, _FakeMPIComm(rank=5, size=8, local=4))
    comm = comm_module.NCCLComm()
    assert (comm.rank, comm.size, comm.local_rank) == (5, 8, 1)
    assert ("device", 1) in calls and ("init", 8, b"unique-id-of-rank-0", 5) in calls
    comm.allreduce(np.ones((3, 2), np.float32))
    comm.broadcast(np.ones(5, np.float64), root=0)
    assert calls[-2:] == [("allReduce", 6, 7, 0, 1234), ("broadcast", 5, 8, 0, 1234)]
    with pytest.raises(BackendError, match="NCCL allreduce of int64 arrays is not supported"):
        comm.allreduce(np.ones(3, np.int64))


def test_nccl_without_libnccl_or_on_another_gpu_is_one_sentence(monkeypatch):
    """``from cupy.cuda import nccl`` succeeds without libnccl (``nccl.available`` is False, the bindings
    are missing): say which package brings it. An array on another GPU than the rank's
    NCCL device: name the backend to use, before NCCL reads a pointer of the wrong GPU."""
    from dlcore.backends import comm as comm_module

    _fake_mpi(monkeypatch, _FakeMPIComm(rank=1, size=2, local=2))
    _fake_cupy(monkeypatch, gpus=2, calls=[], available=False)
    with pytest.raises(BackendError, match=r"CuPy cannot load NCCL.*pip install nvidia-nccl-cu13"):
        comm_module.NCCLComm()
    _fake_cupy(monkeypatch, gpus=2, calls=[], array_gpu=0)
    comm = comm_module.NCCLComm()
    with pytest.raises(
        BackendError, match=r"rank 1's NCCL runs on GPU 1 but the array is on GPU 0; .*cupy:1"
    ):
        comm.allreduce(np.ones(3, np.float32))


def test_nccl_refuses_more_ranks_than_gpus_on_a_machine(monkeypatch):
    from dlcore.backends import comm as comm_module

    _fake_cupy(monkeypatch, gpus=2, calls=[])
    _fake_mpi(monkeypatch, _FakeMPIComm(rank=0, size=3, local=3))
    match = r"3 ranks on this machine but 2 GPU\(s\).*mpiexec -n 2.*--backend numpy"
    with pytest.raises(BackendError, match=match):
        comm_module.NCCLComm()


class _FakeMPICommOfMachines(_FakeMPIComm):
    """As :class:`_FakeMPIComm`, but every other rank's allgather entry is ``others`` (what a rank on
    another machine says)."""

    def __init__(self, others, **kwargs):
        super().__init__(**kwargs)
        self.others = others

    def allgather(self, obj):
        return [obj if rank == self.rank else self.others for rank in range(self.size)]

    def bcast(self, obj, root=0):
        raise AssertionError("NCCL's id broadcast while another rank had given up: a hang")


def test_nccl_set_up_failing_on_one_machine_stops_every_rank(monkeypatch):
    """Rank 2's machine has too few GPUs (or no CuPy, or no NCCL): it raised alone, and the ranks of the
    machines that passed their checks waited for NCCL's id for good. Every rank raises its message now."""
    from dlcore.backends import comm as comm_module

    _fake_cupy(monkeypatch, gpus=2, calls=[])
    problem = "3 ranks on this machine but 2 GPU(s): ..."
    _fake_mpi(monkeypatch, _FakeMPICommOfMachines(problem, rank=0, size=4, local=2))
    with pytest.raises(BackendError, match=r"^on rank 1: 3 ranks on this machine but 2 GPU\(s\)"):
        comm_module.NCCLComm()
    _fake_mpi(monkeypatch, _FakeMPICommOfMachines(None, rank=0, size=4, local=3))  # this rank's own
    with pytest.raises(BackendError, match=r"^3 ranks on this machine but 2 GPU\(s\)"):
        comm_module.NCCLComm()
    # CuPy without a GPU or driver behind it raises CUDARuntimeError, not a BackendError: exchanged too
    cuda = sys.modules["cupy.cuda"]

    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    monkeypatch.setattr(cuda.runtime, "getDeviceCount", no_device)
    gathered = []

    class Recording(_FakeMPICommOfMachines):
        def allgather(self, obj):
            gathered.append(obj)
            return super().allgather(obj)

    _fake_mpi(monkeypatch, Recording(None, rank=0, size=4, local=2))
    with pytest.raises(
        BackendError, match=r"^CuPy cannot reach a GPU on this machine \(RuntimeError: cudaErr"
    ):
        comm_module.NCCLComm()
    assert len(gathered) == 1 and gathered[0].startswith("CuPy cannot reach a GPU")


@needs_mpi
def test_an_output_only_rank_0_writes_is_checked_on_rank_0_alone(tmp_path):
    """Every rank checked --out before MPI started: a rank without the folder (another machine's working
    directory) exited, and the others waited in MPI_Init for good, past SIGTERM."""
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    argv = [sys.executable, "-m", "dlcore", "train", "--distributed", "--backend", "numpy",
            "--iterations", "20", "--quiet", "--out", "sub/m.npz"]  # fmt: skip
    cmd = [
        MPIEXEC,
        "-n",
        "1",
        "-wdir",
        str(tmp_path / "a"),
        *argv,
        ":",
        "-n",
        "1",
        "-wdir",
        str(tmp_path / "b"),
        *argv,
    ]
    result = run(cmd, _env(2), timeout=120)
    assert result.returncode == 0, result.stderr
    assert Network.load(tmp_path / "a" / "sub" / "m.npz").info["iterations"] == 20


DIFFERENT_OPTIONS = """
import sys
from dlcore import Network, get_backend
from dlcore.cli import Terminated
from dlcore.backends.comm import MPIComm
from dlcore.datasets import planar
comm = MPIComm()
X, Y = planar(get_backend("numpy"), m=64)
other = {"iterations": 40, "optimizer": "adam", "l2": 0.5} if comm.rank == 1 else {"iterations": 20}
try:
    Network([2, 5, 1], seed=1).fit(X, Y, learning_rate=0.1, comm=comm, **other)
except ValueError as exc:  # a file each: the ranks' lines on one stdout may run into each other
    open(f"{sys.argv[1]}/rank{comm.rank}.txt", "w").write(str(exc))
    sys.exit(3)
"""


@needs_mpi
def test_ranks_that_fit_with_other_options_are_told_which_before_training(tmp_path):
    """Options were never compared: another optimizer or l2 on one rank trained other models silently,
    another iteration count hung the job, other layers failed in a raw MPI traceback."""
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-c", DIFFERENT_OPTIONS, str(tmp_path)]
    result = run(cmd, _env(2), timeout=120)
    message = "rank(s) 1 train with other options than rank 0 (optimizer, plan, regularization); give every"
    assert result.returncode != 0, result.stderr
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text().startswith(message), result.stderr


def test_a_signal_on_one_rank_during_set_up_reaches_the_others():
    """agreement() caught Exception only: a rank that got SIGTERM (or Ctrl-C alone) while loading left
    without its allgather, and the others spun in theirs until killed."""

    class Comm(SingleProcess):
        def __init__(self, others):
            self.sent, self.others = [], others

        def allgather(self, obj):
            self.sent.append(obj)
            return [obj, *self.others]

    interrupted = DataParallel(Comm([None]))
    with pytest.raises(KeyboardInterrupt), interrupted.agreement():
        raise KeyboardInterrupt
    assert interrupted.comm.sent == ["stopped by KeyboardInterrupt"]
    waiting = DataParallel(Comm(["stopped by Terminated"]))
    with pytest.raises(ValueError, match=r"^on rank 1: stopped by Terminated$"), waiting.agreement():
        pass


def test_an_agreed_stop_raises_sigterms_error_when_any_rank_got_sigterm():
    class Terminated(KeyboardInterrupt):
        pass

    parallel = DataParallel(SingleProcess(), terminate_error=Terminated)
    assert not parallel.stop_requested()  # nothing allreduced yet
    parallel.flags = np.array([2.0, 0.0])  # two ranks pressed Ctrl-C
    assert parallel.stop_requested() and type(parallel.stop_error()) is KeyboardInterrupt
    parallel.flags = np.array([0.0, 1.0])  # one rank got SIGTERM
    assert parallel.stop_requested() and isinstance(parallel.stop_error(), Terminated)


def test_the_stop_flags_reach_the_device_once_not_every_step():
    """[SIGINT, SIGTERM] is made again only after a signal: no host-to-device copy per step (on a
    GPU a copy from pageable host memory would sync the stream)."""
    parallel = DataParallel(SingleProcess())
    grads = {"dW1": np.ones((2, 2)), "db1": np.ones((2, 1))}
    parallel.allreduce_gradients(grads, None)
    made = parallel._tail[1]
    _, J = parallel.allreduce_gradients(grads, np.float64(0.25))
    assert parallel._tail[1] is made and float(J) == 0.25 and not parallel.stop_requested()
    parallel.requests[0] += 1  # Ctrl-C on this rank
    parallel.allreduce_gradients(grads, None)
    assert parallel._tail[1] is not made and parallel.stop_requested()


class _DeviceFlags(DataParallel):
    """A rank whose collectives run on device buffers (as NCCL's): counts the host reads of the stop
    flags; Ctrl-C arrives just before update ``ctrl_c_at`` (1-based) is allreduced."""

    def __init__(self, device_buffers: bool, ctrl_c_at: int | None = None) -> None:
        comm = SingleProcess()
        comm.device_buffers = device_buffers
        super().__init__(comm)
        self.reads, self.updates, self.ctrl_c_at = 0, 0, ctrl_c_at

    def allreduce_gradients(self, grads, J):
        self.updates += 1
        if self.updates == self.ctrl_c_at:
            self.requests[0] += 1
        return super().allreduce_gradients(grads, J)

    def stop_requested(self, read: bool = True) -> bool:
        self.reads += self.flags is not None and (read or not self.comm.device_buffers)
        return super().stop_requested(read)


@pytest.mark.parametrize("device_buffers", [False, True])
def test_device_stop_flags_are_read_once_per_recorded_mini_batch_epoch(device_buffers):
    """With device collectives a read of the stop flags is a host sync: a recorded mini-batch epoch
    (cost_every=1) reads them once, at its end, not after each of its 7 updates; host flags are free to
    read after every update (and at the epoch's end). Ctrl-C before the 2nd update: host flags stop
    after it, device flags at the epoch's end, every rank after the same update either way. A full
    batch reads device flags only with its recorded costs (which sync anyway); all of them once more
    after the last update (a Ctrl-C after the last recorded cost is not lost)."""
    X, Y = data("numpy")
    fit = {**SCENARIOS["minibatch"][3], "epochs": 3}
    net = network("minibatch", "numpy")
    parallel = _DeviceFlags(device_buffers)
    net.fit(X, Y, comm=parallel, **fit)
    assert parallel.updates == 21 and parallel.reads == (3 + 1 if device_buffers else 21 + 3 + 1)
    net = network("minibatch", "numpy")
    parallel = _DeviceFlags(device_buffers, ctrl_c_at=2)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, comm=parallel, **fit)
    assert parallel.updates == (7 if device_buffers else 2)
    net, full = network("full", "numpy"), {**SCENARIOS["full"][3], "iterations": 10, "cost_every": 5}
    parallel = _DeviceFlags(device_buffers)
    net.fit(X, Y, comm=parallel, **full)  # full batch: device flags read with the 2 recorded costs
    assert parallel.updates == 10 and parallel.reads == (2 + 1 if device_buffers else 10 + 1)
    parallel = _DeviceFlags(device_buffers, ctrl_c_at=8)  # after the last recorded cost: not lost
    with pytest.raises(KeyboardInterrupt):
        network("full", "numpy").fit(X, Y, comm=parallel, **full)
    assert parallel.updates == (10 if device_buffers else 8)


def test_mpi_comm_host_buffer_copies_at_most_once(monkeypatch):
    """MPIComm's collectives run on a writable C-contiguous host buffer: a NumPy array itself, to_numpy's
    array as it is when it already is one (a torch CPU tensor's view of its memory: no second copy),
    else one contiguous copy; the result holds the collective's values in x's library either way."""
    from dlcore.backends import comm as comm_module

    _fake_mpi(monkeypatch, _FakeMPIComm(size=2, local=2))  # two ranks holding the same x: twice x
    comm = comm_module.MPIComm()
    x = np.arange(6.0).reshape(2, 3)
    host, own = comm._host(x)
    assert host is x and own
    assert comm.allreduce(x) is x and x.tolist() == [[0, 2, 4], [6, 8, 10]]
    for strange in (np.arange(6.0).reshape(2, 3).T, np.broadcast_to(np.arange(3.0), (2, 3))):
        host, own = comm._host(strange)  # not C-contiguous, not writable: one contiguous copy
        assert not own and host.flags.c_contiguous and host.flags.writeable
        assert not np.shares_memory(host, strange) and np.array_equal(host, strange)
    torch = pytest.importorskip("torch")
    t = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    host, own = comm._host(t)
    assert not own and host.ctypes.data == t.data_ptr()  # the tensor's memory, not a copy of it
    got = comm.allreduce(torch.arange(6.0, dtype=torch.float64).reshape(2, 3))
    assert isinstance(got, torch.Tensor) and got.tolist() == [[0, 2, 4], [6, 8, 10]]
    got = comm.allreduce(torch.arange(6.0, dtype=torch.float64).reshape(2, 3).T)  # a strided view
    assert isinstance(got, torch.Tensor) and got.tolist() == [[0, 6], [2, 8], [4, 10]]
    # bfloat16 travels as float32 (NumPy has none), and came back float32
    got = comm.allreduce(torch.arange(6.0, dtype=torch.bfloat16))
    assert got.dtype == torch.bfloat16 and got.tolist() == [0, 2, 4, 6, 8, 10]
    got = comm.broadcast(torch.arange(6.0, dtype=torch.bfloat16))
    assert got.dtype == torch.bfloat16 and got.tolist() == [0, 1, 2, 3, 4, 5]


def test_an_interrupted_fit_leaves_no_stop_request_for_the_next_one():
    """A DataParallel given to two fits: the first one's Ctrl-C was still counted in the second, which
    stopped with no signal sent (and took a single Ctrl-C there as a second one)."""
    X, Y = data()
    parallel = DataParallel(SingleProcess())
    net = Network([2, 4, 1], "tanh", backend="numpy", seed=3)

    def interrupt(i, J):
        if i == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, 0.5, iterations=20, cost_every=1, callback=interrupt, comm=parallel)
    history = net.fit(X, Y, 0.5, iterations=20, cost_every=1, comm=parallel)
    assert history.updates == 20


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_last_update_stops_the_fit_as_one_process_does(signum):
    """A Ctrl-C or SIGTERM during the final cost (after the last gradients' allreduce) was counted and
    then forgotten: the fit returned as if none came, where one process raises it at the block's end."""
    X, Y = data()

    def at_the_end(i, J):
        if i == 20:  # the final cost's record
            os.kill(os.getpid(), signum)

    stop = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    previous = signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(Terminated("SIGTERM")))
    try:
        for comm in (None, DataParallel(SingleProcess(), terminate_error=Terminated)):
            net = Network([2, 4, 1], "tanh", backend="numpy", seed=3)
            with pytest.raises(stop):
                net.fit(X, Y, 0.5, iterations=20, cost_every=10, callback=at_the_end, comm=comm)
            assert net.fit(X, Y, 0.5, iterations=20, cost_every=10, comm=comm).updates == 20
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_check_that_fails_on_one_rank_fails_on_every_rank_before_any_collective(monkeypatch):
    """Each rank checks its own data, options and memory; a rank whose check failed once raised alone
    while the others waited in the next collective (mpiexec -n 2: a hang). Now every rank says how its
    checks went (one allgather) and all raise: here the other rank failed, then this one."""
    X, Y = data()
    failed = _TwoRanks(lambda obj: "Y holds the label 2; binary labels must be 0 or 1")
    net = Network([2, 4, 1], "tanh", backend="numpy", seed=3)
    with pytest.raises(ValueError, match=r"^on rank 1: Y holds the label 2"):
        net.fit(X, Y, 0.5, iterations=5, comm=failed)
    assert failed.gathered == [None]  # this rank's checks passed; nothing else was exchanged

    def too_big(*args):
        raise ValueError("training needs 9 GiB; this machine has 2 GiB available")

    alike = _TwoRanks(lambda obj: obj)  # rank 1 as this one: the same data, the same failure
    monkeypatch.setattr("dlcore.model.check_training_fits", too_big)  # after the collectives, on this rank
    with pytest.raises(ValueError, match="^training needs 9 GiB"):
        net.fit(X, Y, 0.5, iterations=5, comm=alike)
    assert (
        alike.gathered[0] is None
        and alike.gathered[-1] == "training needs 9 GiB; this machine has 2 GiB available"
    )


def test_ranks_holding_different_validation_data_are_refused():
    """validation_data joins X and Y in the ranks' data check (ranks with different validation sets
    once summed costs of different examples, silently)."""
    X, Y = data()

    other = _TwoRanks(
        lambda obj: {**obj, "X_val": "another"} if isinstance(obj, dict) and "X_val" in obj else obj
    )
    net = Network([2, 4, 1], "tanh", backend="numpy", seed=3)
    with pytest.raises(ValueError, match=r"rank\(s\) 1 hold different training data \(X_val\) than rank 0"):
        net.fit(X, Y, 0.5, iterations=5, validation_data=(X[:, :50], Y[:, :50]), comm=other)
