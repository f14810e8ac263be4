"""Issue 14, "Trust, round two" (items 1-15): divergence with a finite cost, SIGTERM and an early Ctrl-C,
stale temporaries, file modes, float32 statistics, single-class labels, hostile model and data files,
CSV speed and delimiters, predict's column count and a closed stdout, memory estimates, seeds.

Each failure is one sentence: exit code 2 (or the signal's code) on the CLI, a ValueError in Python,
no traceback, and a file the user already had is never changed."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dlcore.backends import base, get_backend, storage
from dlcore.backends.csv_reader import read_csv

from dlcore import Network, TrainingDiverged
from dlcore import cli as cli_module
from dlcore.cli import main
from dlcore.data import Normalization, load_dataset
from dlcore.datasets import planar

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, pattern):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "model.npz"
    Network([2, 4, 1], "tanh", backend="numpy", seed=3).save(path)
    return path


def _planar_csv(path: Path, m: int = 200, extra: int = 0) -> Path:
    X, Y = planar(get_backend("numpy"), m=m)
    cols = [X.T] + [np.random.default_rng(2).standard_normal((m, extra))] * bool(extra) + [Y.T]
    np.savetxt(path, np.hstack(cols), delimiter=",", fmt="%.6g")
    return path


# 1. divergence with a finite cost -------------------------------------------------------------------
def test_a_cost_far_above_its_start_is_divergence_through_the_api():
    X, Y = planar(get_backend("numpy"))
    net = Network([2, 4, 1], "tanh", init="small", backend="numpy", seed=1)
    with pytest.raises(TrainingDiverged, match=r"more than 1000 times its first value 0\.69") as info:
        net.fit(X, Y, learning_rate=1e4, iterations=2000, cost_every=100)
    exc = info.value
    assert np.isfinite(exc.cost) and exc.cost > 1000 * exc.history.costs[0]
    assert exc.iteration % 100 == 0 and exc.learning_rate == 1e4 and "(e.g. 1000)" in str(exc)
    assert net.cost(X, Y) <= 1000 * exc.history.costs[0]  # rolled back to the last check that passed
    # off with 0: the same run is not stopped for a finite cost (it may still end in NaN)
    net = Network([2, 4, 1], "tanh", init="small", backend="numpy", seed=1)
    try:
        history = net.fit(X, Y, learning_rate=1e4, iterations=300, cost_every=100, divergence_factor=0)
        assert history.costs[-1] > 1000 * history.costs[0]
    except TrainingDiverged as again:
        assert not np.isfinite(again.cost)
    with pytest.raises(ValueError, match=r"divergence_factor must be 0 \(off\) or a finite number > 1"):
        net.fit(X, Y, learning_rate=0.1, iterations=5, divergence_factor=0.5)


def test_a_cost_far_above_its_start_fails_the_cli_and_keeps_the_model(capsys, saved):
    before = saved.read_bytes()
    code, out, err = run(
        capsys, "train", "--backend", "numpy", "--lr", "1e4", "--iterations", "2000", "--out", saved
    )
    one_line_error(code, err, r"training diverged: the cost became [\d.e+]+, more than 1000 times its first")
    assert "learning_rate=10000" in err and "(e.g. 1000)" in err and f"Nothing was saved to {saved}." in err
    assert re.search(r"at iteration \d+", err) and saved.read_bytes() == before
    assert "model saved" not in out
    code, _, err = run(capsys, "train", "--divergence-factor", "0.5", "--out", saved)
    one_line_error(code, err, r"--divergence-factor: wants 0 \(off\) or a finite number > 1")


def test_huge_costs_are_printed_readably(capsys):
    progress = cli_module.ConsoleProgress(10, 1, quiet=False)
    progress(5, 2.6e211)
    progress(6, 0.6931471)
    out = capsys.readouterr().out
    assert "cost 2.6e+211" in out and "cost 0.693147" in out


# 2. SIGTERM and an early Ctrl-C -------------------------------------------------------------------
def test_sigterm_saves_like_ctrl_c_and_exits_143(tmp_path):
    model = tmp_path / "m.npz"
    model.write_bytes(b"an old model")
    argv = ["train", "--backend", "numpy", "--iterations", "50000000", "--cost-every", "200", "--out", model]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcore", *map(str, argv)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith("iteration"):
                break
        proc.terminate()  # SIGTERM, as timeout, docker stop and batch schedulers send
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert re.fullmatch(
        rf"dlcore: terminated \(SIGTERM\) after iteration \d+; "
        rf"the current parameters were saved to {re.escape(str(model))}\n",
        err,
    ), err
    assert Network.load(model).info["interrupted"] is True and os.listdir(tmp_path) == ["m.npz"]


def test_terminated_in_process_is_code_143_and_saves(capsys, saved, monkeypatch):
    def terminate(self, i, J):
        if i == 100:
            raise cli_module.Terminated

    monkeypatch.setattr(cli_module.ConsoleProgress, "__call__", terminate)
    code, _, err = run(capsys, "train", "--backend", "numpy", "--cost-every", "100", "--out", saved)
    assert code == 143 and "terminated (SIGTERM)" in err and Network.load(saved).info["interrupted"]


EARLY_CTRL_C = """
import os, signal, sys
class Interrupt:  # Ctrl-C arrives while dlcore is still importing (NumPy, its first ~0.1 s)
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "numpy":
            sys.meta_path.remove(cls)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt)
"""
SCRIPT = Path(sys.executable).with_name("dlcore")


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "dlcore", "info"],
        pytest.param(
            [str(SCRIPT), "info"],
            marks=pytest.mark.skipif(not SCRIPT.exists(), reason="no dlcore console script next to python"),
        ),
    ],
    ids=["python -m dlcore", "dlcore"],
)
def test_ctrl_c_while_the_cli_imports_exits_130_quietly(tmp_path, command):
    (tmp_path / "sitecustomize.py").write_text(EARLY_CTRL_C)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr  # a traceback, -2 before
    assert proc.stderr == "dlcore: interrupted\n" and proc.stdout == ""


# 3. stale temporaries --------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_save_removes_stale_temporaries_but_not_a_live_one(saved):
    directory = saved.parent
    killed = directory / f".model.npz.{_dead_pid()}.x1y2_3z4.tmp"  # a save killed half-way
    killed.write_bytes(b"\0" * 1000)
    old_killed = directory / f".model.npz.{os.getpid()}.abc123de.tmp"  # a live pid's, an hour old, unlocked
    old_killed.write_bytes(b"\0" * 1000)
    os.utime(old_killed, (time.time() - 3600, time.time() - 3600))
    live = directory / f".model.npz.{os.getpid()}.live0000.tmp"  # a save another process is writing now
    live.write_bytes(b"\0" * 10)
    other = directory / f".other.npz.{_dead_pid()}.zzzzzzzz.tmp"  # another target's: not ours to judge
    other.write_bytes(b"x")
    mine = [directory / f".model.npz.{name}.tmp" for name in ("old", f"{_dead_pid()}.notes", "20240101")]
    for path in mine:  # a user's files, named alike but not as dlcore names its temporaries: once deleted
        path.write_bytes(b"notes")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    with open(live, "rb+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        os.utime(live, (time.time() - 3600, time.time() - 3600))  # even old, it is locked: kept
        Network([2, 3, 1], backend="numpy", seed=5).save(saved)
        kept = ["model.npz", live.name, other.name, *(path.name for path in mine)]
        assert sorted(p.name for p in directory.iterdir()) == sorted(kept)
    assert Network.load(saved).layer_dims == [2, 3, 1]


# 4. file modes ---------------------------------------------------------------------------------
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_files_follow_the_umask_and_overwritten_files_keep_their_mode(tmp_path, umask_022, capsys):
    new = tmp_path / "new.npz"
    Network([2, 4, 1], backend="numpy").save(new)
    assert new.stat().st_mode & 0o777 == 0o644  # mkstemp's 0600 before
    shared = tmp_path / "shared.npz"
    Network([2, 4, 1], backend="numpy").save(shared)
    shared.chmod(0o664)
    Network([2, 5, 1], backend="numpy").save(shared)
    assert shared.stat().st_mode & 0o777 == 0o664
    # the CLI's prediction CSV too
    data = _planar_csv(tmp_path / "d.csv", m=20)
    code, _, err = run(capsys, "predict", "--model", new, "--data", data, "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o644


def test_a_save_landing_during_a_load_is_not_mixed_into_it(tmp_path):
    """A load opened the file three times (headers, metadata, arrays): a save renamed onto it in between
    gave model A's metadata (normalization, class names) with model B's weights, silently."""
    path, other = tmp_path / "m.npz", tmp_path / "other.npz"
    Network([2, 4, 1], backend="numpy", seed=1).save(path, info={"which": "A"})
    Network([2, 4, 1], backend="numpy", seed=2).save(other, info={"which": "B"})
    expected = Network.load(path).parameters_numpy()
    replace = lambda meta, members: os.replace(other, path)  # noqa: E731 - a save lands after the checks
    arrays, meta = storage.load_npz_with_meta(path, "model file", replace)
    assert meta["info"] == {"which": "A"} and Network.load(path).info == {"which": "B"}
    for name, value in expected.items():
        np.testing.assert_array_equal(arrays[name], value, err_msg=name)


ROOT_ONLY = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")


@ROOT_ONLY
def test_an_overwritten_file_keeps_its_owner_and_group(tmp_path):
    """Only the mode was kept: a model of group 5678 became root's own, and the group lost it."""
    shared = tmp_path / "shared.npz"
    Network([2, 4, 1], backend="numpy").save(shared)
    os.chown(shared, 1234, 5678)
    Network([2, 5, 1], backend="numpy").save(shared)
    assert (shared.stat().st_uid, shared.stat().st_gid) == (1234, 5678)
    assert Network.load(shared).layer_dims == [2, 5, 1]


def test_a_file_without_write_permission_is_not_replaced_even_by_root(tmp_path, capsys):
    kept = tmp_path / "kept.npz"
    kept.write_bytes(b"kept")
    kept.chmod(0o444)  # root may write any file: os.access alone let its save replace it
    with pytest.raises(OSError, match=r"kept\.npz: the file is read-only; make it writable \(chmod u\+w\)"):
        Network([2, 4, 1], backend="numpy").save(kept)
    code, _, err = run(capsys, "train", "--backend", "numpy", "--out", kept)
    one_line_error(code, err, r"--out .*kept\.npz: the file is read-only")
    assert kept.read_bytes() == b"kept" and os.listdir(tmp_path) == ["kept.npz"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_written_into_not_replaced_by_a_file(tmp_path, capsys):
    """--out /dev/null (a device) or a FIFO: the save renamed a regular file onto it (as root, the system's
    /dev/null became a model); now they are written into, as any program writes them."""
    import threading

    fifo = tmp_path / "fifo"
    got = []
    for save in (
        lambda: Network([2, 4, 1], backend="numpy", seed=2).save(fifo),
        lambda: run(capsys, "train", "--backend", "numpy", "--iterations", "30", "--quiet", "--out", fifo),
    ):
        os.mkfifo(fifo)
        reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
        reader.start()
        save()
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        reader.join(timeout=30)
        fifo.unlink()
        (tmp_path / "m.npz").write_bytes(got[-1])
        assert Network.load(tmp_path / "m.npz").layer_dims == [2, 4, 1]
    assert capsys.readouterr().err == ""


# 5. float32 statistics -------------------------------------------------------------------------
def _huge_feature_csv(path: Path, scale: float) -> Path:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 300))
    Y = (X[0] > 0).astype(float)
    X[1] *= scale
    np.savetxt(path, np.column_stack([X.T, Y]), delimiter=",")
    return path


def test_statistics_in_float64_for_float32_data():
    be = get_backend("numpy")
    X = be.asarray(np.array([[1e20, -1e20, 3e20, 0.0], [1.0, 2.0, 3.0, 4.0]]), dtype="float32")
    norm = Normalization.fit(X, be)  # float32 squares overflowed: std inf before
    assert all(np.isfinite(norm.std)) and norm.std[0] == pytest.approx(
        np.std([1e20, -1e20, 3e20, 0.0]), rel=1e-6
    )
    assert np.all(np.isfinite(norm.apply(X, be)))


def test_a_float32_run_on_huge_features_saves_a_model_predict_accepts(capsys, tmp_path):
    data = _huge_feature_csv(tmp_path / "d.csv", 1e20)
    model = tmp_path / "m.npz"
    code, _, err = run(
        capsys,
        "train",
        "--backend",
        "numpy",
        "--dataset",
        data,
        "--dtype",
        "float32",
        "--iterations",
        "200",
        "--out",
        model,
    )
    assert code == 0, err
    code, _, err = run(capsys, "predict", "--model", model, "--data", data)
    assert code == 0 and "accuracy" in err, err


def test_values_beyond_float32_are_refused_before_training(capsys, tmp_path, saved):
    before = saved.read_bytes()
    data = _huge_feature_csv(tmp_path / "d.csv", 1e39)
    code, _, err = run(
        capsys, "train", "--backend", "numpy", "--dataset", data, "--dtype", "float32", "--out", saved
    )
    one_line_error(  # read in float64, then standardized; the statistics of column 2 fit no float32
        code,
        err,
        r"the normalization holds values float32 cannot represent \(feature 2: mean .*e\+3\d, std .*e\+38\):"
        r" use --dtype float64 or rescale that feature$",
    )
    assert saved.read_bytes() == before
    with pytest.raises(ValueError, match=r"beyond float32's range"):
        load_dataset(str(data), get_backend("numpy"), dtype="float32")
    small = _huge_feature_csv(tmp_path / "small.csv", 1.0)
    argv = (
        "train",
        "--backend",
        "numpy",
        "--dataset",
        small,
        "--dtype",
        "float32",
        "--quiet",
        "--out",
        saved,
    )
    assert run(capsys, *argv)[0] == 0
    code, _, err = run(
        capsys, "predict", "--backend", "numpy", "--model", saved, "--data", data
    )  # no --dtype
    one_line_error(  # read in float64 as well, then standardized: beyond float32's range
        code,
        err,
        r"X holds standardized values beyond float32's range: train the model with --dtype float64 or",
    )


def test_a_command_line_error_names_the_flag_not_the_python_argument(capsys, tmp_path):
    data = tmp_path / "reg.csv"
    data.write_text("".join(f"{i},{i * 0.37 + 0.5}\n" for i in range(20)))
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--task", "multiclass")
    one_line_error(code, err, r"use --task regression for real values")


# 6. one class ----------------------------------------------------------------------------------
def test_single_class_labels_warn_in_one_line(capsys, tmp_path):
    X = np.random.default_rng(0).standard_normal((2, 40))
    net = Network([2, 4, 1], "tanh", backend="numpy")
    with pytest.warns(UserWarning, match=r"only one class \(label 0\) is present"):
        net.fit(X, np.zeros((1, 40)), learning_rate=0.1, iterations=5)
    soft = Network([2, 4, 3], "tanh", "softmax", backend="numpy")
    with pytest.warns(UserWarning, match=r"only one class \(class 2\)"):
        soft.fit(X, np.full((1, 40), 2), learning_rate=0.1, iterations=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.fit(X, (X[:1] > 0).astype(float), learning_rate=0.1, iterations=5)  # two classes: silent
    path = tmp_path / "ones.csv"
    np.savetxt(path, np.column_stack([X.T, np.ones(40)]), delimiter=",")
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", path, "--iterations", "10")
    assert code == 0
    assert err.splitlines() == [
        "dlcore: warning: only one class (label 1) is present in the training labels: the network will learn "
        "to predict it always, and its accuracy says nothing; check the labels"
    ]


# 7-9. hostile model files ----------------------------------------------------------------------
def _model_file(path: Path, meta_changes=None, arrays=None, meta=None) -> Path:
    net = Network([2, 4, 1], "tanh", backend="numpy", seed=1)
    params = net.parameters_numpy() if arrays is None else arrays
    if meta is None:
        meta = {
            "format": "dlcore-model",
            "format_version": 1,
            "layer_dims": [2, 4, 1],
            "dtype": "float64",
            "activations": ["tanh", "sigmoid"],
            "normalization": None,
            "info": {},
        }
        meta.update(meta_changes or {})
    storage.save_npz(path, params, meta) if not isinstance(meta, bytes) else _raw_meta(path, params, meta)
    return path


def _raw_meta(path: Path, params: dict, raw: bytes) -> None:
    np.savez_compressed(path, **params, __meta__=np.frombuffer(raw, dtype=np.uint8))


def _refused(capsys, tmp_path, model: Path, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        Network.load(model)
    out = tmp_path / "p.csv"
    out.write_text("old predictions\n")
    code, _, err = run(capsys, "predict", "--model", model, "--data", "planar", "--out", out)
    one_line_error(code, err, pattern)
    assert out.read_text() == "old predictions\n"


def test_metadata_shapes_are_checked_against_the_arrays_before_allocating(capsys, tmp_path):
    model = _model_file(
        tmp_path / "m.npz", {"layer_dims": [2, 100000, 100000, 1], "activations": ["tanh", "tanh", "sigmoid"]}
    )
    assert model.stat().st_size < 4000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"is corrupt: W1 must have shape \(100000, 2\)"):
            Network.load(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # 75 GiB was asked for before
    _refused(capsys, tmp_path, model, r"W1 must have shape \(100000, 2\)")


@pytest.mark.parametrize(
    ("meta", "pattern"),
    [
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", r"metadata JSON is nested too deeply"),
        (json.dumps({"format": "dlcore-model", "pad": " " * 30_000_000}).encode(), r"metadata inflates to"),
    ],
    ids=["nested 100,000 deep", "inflates to 30 MB"],
)
def test_metadata_bombs_are_refused(capsys, tmp_path, meta, pattern):
    model = _model_file(tmp_path / "m.npz", meta=meta)
    assert model.stat().st_size < 200_000
    _refused(capsys, tmp_path, model, pattern)


def test_an_empty_array_buys_a_file_no_metadata_allowance(capsys, tmp_path):
    """The allowance was 64 bytes per dimension of every array: an empty (0, 10**13) one let 2 MB of
    metadata be parsed (a 147 KB file took 1 GB) before "unexpected arrays ['Z']"."""
    model = tmp_path / "m.npz"
    params = {**Network([2, 4, 1], "tanh", backend="numpy", seed=1).parameters_numpy()}
    meta = {"format": "dlcore-model", "pad": " " * (2 << 20)}
    _raw_meta(model, {**params, "Z": np.zeros((0, 10**13))}, json.dumps(meta).encode())
    _refused(capsys, tmp_path, model, r"metadata inflates to 2\.0 MiB, far more .* \(at most 1\.0 MiB\)")


def test_a_save_whose_metadata_load_would_refuse_is_refused_and_keeps_the_file(saved):
    """A cost history of 60,000 entries in info was saved, replacing the good file, and never loaded."""
    before = saved.read_bytes()
    net = Network([2, 4, 1], "tanh", backend="numpy", seed=1)
    pattern = r"model\.npz not written: its metadata takes 1\.\d MiB, more than .* \(1\.0 MiB\); keep large"
    with pytest.raises(ValueError, match=pattern + r" records \(a cost history\) in a file of their own"):
        net.save(saved, info={"costs": [0.123456789012345] * 60_000})
    assert saved.read_bytes() == before
    net.save(saved, info={"costs": [0.123456789012345] * 50_000})  # just under the bound: loads
    assert len(Network.load(saved).info["costs"]) == 50_000


def test_an_archive_that_inflates_beyond_memory_is_refused(capsys, tmp_path, saved, monkeypatch):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, X=np.zeros((2, 5_000_000)), Y=np.zeros((1, 5_000_000)))  # 120 MB in 0.1 MB
    assert path.stat().st_size < 1_000_000
    monkeypatch.setattr(base, "available_host_memory", lambda: 100 * 2**20)
    pattern = r"bomb\.npz inflates to 114\.4 MiB of arrays .* more than the 100\.0 MiB of memory available"
    with pytest.raises(ValueError, match=pattern):
        load_dataset(str(path), get_backend("numpy"))
    before = saved.read_bytes()
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", path, "--out", saved)
    one_line_error(code, err, pattern)
    assert saved.read_bytes() == before


def test_an_array_header_larger_than_its_data_is_refused(tmp_path):
    path = tmp_path / "liar.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X.npy", header.getvalue() + b"\0" * 800)
    with pytest.raises(
        ValueError, match=r"liar\.npz is corrupt: its array 'X' declares shape \(100000, 100000\)"
    ):
        load_dataset(str(path), get_backend("numpy"))


@pytest.mark.parametrize("first", ["W1", "W1.npy"])
def test_two_entries_for_one_array_are_refused_before_reading(capsys, tmp_path, monkeypatch, first):
    """A model whose members are "W1" (large) and "W1.npy" (small, matching the metadata): the checks saw
    the small one while NumPy's ``archive["W1"]`` reads the exact name, the large one, uncounted."""
    params = Network([2, 4, 1], "tanh", backend="numpy", seed=1).parameters_numpy()  # _model_file's
    path = _model_file(tmp_path / "shadow.npz", arrays={k: v for k, v in params.items() if k != "W1"})
    entries = {first: np.zeros((2000, 2000)), ("W1.npy" if first == "W1" else "W1"): params["W1"]}
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        for name, array in entries.items():  # the last one is what the checks saw
            raw = io.BytesIO()
            np.lib.format.write_array(raw, array)
            z.writestr(name, raw.getvalue())
    monkeypatch.setattr(base, "available_host_memory", lambda: 60 * 2**20)
    _refused(capsys, tmp_path, path, r"shadow\.npz is corrupt: it holds two entries for the array 'W1'")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused_on_load(capsys, tmp_path, bad):
    params = Network([2, 4, 1], "tanh", backend="numpy").parameters_numpy()
    params["W2"][0, 1] = bad
    _refused(capsys, tmp_path, _model_file(tmp_path / "m.npz", arrays=params), r"W2 holds NaN or inf weights")


# 10. data files of the wrong kind ---------------------------------------------------------------
@pytest.mark.parametrize(
    "X",
    [
        np.ones((2, 20)) + 1j,
        np.full((2, 20), "1.5"),
        np.full((2, 20), np.datetime64("2026-01-01")),
    ],
    ids=["complex", "numeric strings", "datetime"],
)
def test_npz_data_must_hold_real_numbers_everywhere(capsys, tmp_path, saved, X):
    path = tmp_path / "d.npz"
    np.savez(path, X=X, Y=np.zeros((1, 20)))
    kind = re.escape(str(X.dtype))
    pattern = rf"X in .*d\.npz must hold numbers \(real: not complex, text or dates\); it holds {kind}"
    with pytest.raises(ValueError, match=pattern):
        load_dataset(str(path), get_backend("numpy"))
    with pytest.raises(ValueError, match=r"X must (hold real numbers|be a numeric array)"):  # the Python API
        Network([2, 4, 1], backend="numpy").fit(X, np.zeros((1, 20)), iterations=1)
    before = saved.read_bytes()
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", path, "--out", saved)
    one_line_error(code, err, pattern)
    assert saved.read_bytes() == before


# 11-12. CSV: vectorised, delimiters -----------------------------------------------------------------
def test_csv_parsing_holds_the_numbers_not_python_lists(tmp_path):
    path = tmp_path / "big.csv"
    data = np.random.default_rng(0).standard_normal((40_000, 6))
    np.savetxt(path, data, delimiter=",", header="a,b,c,d,e,label", comments="")
    tracemalloc.start()
    try:
        parsed, header = read_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert header == ["a", "b", "c", "d", "e", "label"]
    np.testing.assert_allclose(parsed, data, rtol=1e-15)
    assert peak / data.size < 40  # bytes per value; ~115 with lists of Python floats


def test_a_bad_cell_deep_in_a_big_csv_still_names_line_and_column(capsys, tmp_path):
    path = tmp_path / "big.csv"
    lines = ["x1,x2,y"] + [f"{i * 0.001},{-i * 0.002},{i % 2}" for i in range(5000)]
    lines[4321] = "0.5,oops,1"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", path)
    one_line_error(code, err, r"big\.csv, line 4322, column 2: 'oops' is not a number")


@pytest.mark.parametrize("header", [None, "no"])
def test_a_csv_separated_by_spaces_says_so(capsys, tmp_path, header):
    """np.savetxt's default: line 1 was taken for a header, then "line 2, column 1: '6.40e-01 1.04e-01
    1.00e+00' is not a number (... or pass --header yes ...)", the opposite of what --header no said."""
    path = tmp_path / "s.csv"
    np.savetxt(path, np.column_stack([np.random.default_rng(0).standard_normal((5, 2)), np.arange(5) % 2]))
    argv = ["train", "--backend", "numpy", "--dataset", path] + (["--header", header] if header else [])
    code, _, err = run(capsys, *argv)
    one_line_error(
        code, err, r"s\.csv, line 1: the cells are separated by spaces not commas \('.*'\); dlcore"
    )


def test_csv_cells_after_a_comma_and_a_space_are_read_as_csv_reads_them(capsys, tmp_path):
    """'0.1, -0.2, "yes"' kept the quotes in the class names ('"no"', '"yes"'), so predict refused the
    same labels written without them; '"0.1", "0.2", "1"' was "'\"-0.2\"' is not a number"."""
    spaced, plain, numbers = tmp_path / "spaced.csv", tmp_path / "plain.csv", tmp_path / "numbers.csv"
    X = np.random.default_rng(0).standard_normal((2, 40))
    rows = [(f"{a:.4f}", f"{b:.4f}", "yes" if a > 0 else "no") for a, b in X.T]
    spaced.write_text("".join(f'{a}, {b}, "{t}"\n' for a, b, t in rows))
    plain.write_text("".join(f"{a},{b},{t}\n" for a, b, t in rows))
    numbers.write_text("".join(f'"{a}", "{b}", "{int(t == "yes")}"\n' for a, b, t in rows))
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--backend", "numpy", "--dataset", spaced, "--out", model)
    assert code == 0 and "classes no, yes" in out, err
    code, _, err = run(capsys, "predict", "--model", model, "--data", plain)
    assert code == 0 and "accuracy" in err, err
    X_read, Y_read = load_dataset(str(numbers), get_backend("numpy"))
    np.testing.assert_array_equal(Y_read[0], (X[0].round(4) > 0).astype(float))


@pytest.mark.parametrize("header", ["x1,x2,label\n", ""], ids=["header", "no header"])
def test_rows_ending_in_a_comma_are_told_to_lose_it(capsys, tmp_path, header):
    """The advice was "pass --header yes" (no header), or "name every column (the label's too)", which led
    to the first advice."""
    path = tmp_path / "t.csv"
    path.write_text(
        header
        + "".join(f"{a},{b},{int(a > 0)},\n" for a, b in np.random.default_rng(0).standard_normal((6, 2)))
    )
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", path)
    line = 2 if header else 1
    one_line_error(
        code, err, rf"t\.csv, line {line}: the row ends with an empty cell; remove the trailing commas"
    )


@pytest.mark.parametrize(("first_line", "start"), [(",x1,x2,label", 0), ('"","x1","x2","label"', 1)])
def test_a_row_index_column_is_refused_not_trained_on(capsys, tmp_path, first_line, start):
    """pandas' to_csv() and R's write.csv write the row index first: it was a feature, and planar's row
    order gave 100% test accuracy away."""
    path = tmp_path / "i.csv"
    X, Y = planar(get_backend("numpy"), m=60)
    path.write_text(
        first_line
        + "\n"
        + "".join(f"{i + start},{a},{b},{int(y)}\n" for i, (a, b, y) in enumerate(zip(*X, Y[0], strict=True)))
    )
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", path)
    one_line_error(
        code,
        err,
        rf"i\.csv: the first column, unnamed and counting {start}, {start + 1}, \.\.\., is a row index",
    )


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolons"), ("\t", "tabs")])
@pytest.mark.parametrize("header", [True, False], ids=["header", "no header"])
@pytest.mark.parametrize("decimal", [".", ","])  # decimal commas hid the delimiter: "'1257;-0' not a number"
def test_a_csv_separated_by_something_else_says_so(capsys, tmp_path, saved, sep, name, header, decimal):
    path = tmp_path / "d.csv"
    path.write_text(
        ("a;b;label\n".replace(";", sep) if header else "")
        + "0.1257;-0.1321;0\n".replace(".", decimal).replace(";", sep)
    )
    before = saved.read_bytes()
    how = "not commas" if decimal == "." or header else "and the decimals by commas"
    pattern = rf"d\.csv, line 1: the cells are separated by {name} {how} \(.*\); dlcore reads comma-separated"
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", path, "--out", saved)
    one_line_error(code, err, pattern)
    assert saved.read_bytes() == before
    with pytest.raises(ValueError, match=pattern):
        load_dataset(str(path), get_backend("numpy"))


# 13. predict: one column too many; a closed stdout ----------------------------------------------
def test_predict_with_one_feature_column_too_many_names_the_counts(capsys, tmp_path, saved):
    path = tmp_path / "three.csv"
    np.savetxt(path, np.random.default_rng(3).uniform(0.1, 0.9, (10, 3)), delimiter=",")
    code, _, err = run(capsys, "predict", "--model", saved, "--data", path)
    one_line_error(
        code, err, r"three\.csv has 3 columns: the model expects 2 features, .* give 2 feature columns"
    )
    with pytest.raises(ValueError, match=r"the model expects 2 features"):
        load_dataset(str(path), get_backend("numpy"), n_features=2, task="binary")


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_ends_quietly_in_process(capsys, saved, monkeypatch):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["predict", "--model", str(saved), "--data", "planar", "--backend", "numpy"])
    assert code == 141 and capsys.readouterr().err == ""


def test_predict_into_a_pipe_closed_early_ends_quietly(tmp_path, saved):
    data = _planar_csv(tmp_path / "d.csv", m=20_000)  # ~700 KB of predictions: far more than a pipe holds
    argv = ["predict", "--model", saved, "--data", data, "--backend", "numpy"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcore", *map(str, argv)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline() == b"index,probability,label,true_label\n"  # like | head -1
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 141 and err == "", err  # was "[Errno 32] Broken pipe", exit 2


def test_train_whose_stdout_closes_trains_to_the_end_and_saves(capsys, tmp_path, monkeypatch):
    model = tmp_path / "m.npz"
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["train", "--backend", "numpy", "--iterations", "60", "--out", str(model)])
    assert code == 0 and capsys.readouterr().err == ""
    info = Network.load(model).info  # was exit 141 at the first line, nothing saved
    assert info["iterations"] == 60 and info["interrupted"] is False


def test_train_into_a_pipe_closed_early_still_saves_its_model(tmp_path):
    model = tmp_path / "m.npz"
    argv = ["train", "--backend", "numpy", "--iterations", "2000", "--out", str(model)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcore", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.readline().startswith(b"data: planar")  # like | head -1
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 0 and err == "", err
    assert Network.load(model).info["iterations"] == 2000


# 14. memory estimates --------------------------------------------------------------------------
def test_a_network_too_large_for_memory_is_refused_with_the_estimate(capsys, saved, monkeypatch):
    monkeypatch.setattr(base, "available_host_memory", lambda: 2**30)
    before = saved.read_bytes()
    code, _, err = run(capsys, "train", "--backend", "numpy", "--layers", "2,100000000,1", "--out", saved)
    one_line_error(
        code,
        err,
        r"the network \[2, 100000000, 1\] needs about 6\.0 GiB, more than the 1\.0 GiB of "
        r"memory available on numpy \(CPU\)",
    )
    assert saved.read_bytes() == before
    net = Network([2, 1_000_000, 1], backend="numpy")  # 40 MB of parameters: fine
    X = np.ones((2, 1000))
    with pytest.raises(
        ValueError,
        match=r"training the network \[2, 1000000, 1\] on m = 1000 examples needs about "
        r"29\.9 GiB, more than the 1\.0 GiB",
    ):
        net.fit(X, (X[:1] > 0).astype(float), iterations=1)
    with pytest.raises(ValueError, match=r"needs about .* TiB|needs about \d+\.\d GiB"):
        Network([2, 10**12, 1], backend="numpy")


@pytest.mark.parametrize("name", ["planar", "moons", "circles", "xor"])
def test_a_generated_set_too_large_for_memory_is_refused_before_it_is_drawn(capsys, saved, monkeypatch, name):
    """--samples 10^12 relied on NumPy's MemoryError: where the kernel overcommits (the GPU machine), the
    allocation succeeded and the process was killed while drawing. The estimate is checked first."""
    from dlcore.datasets import DATASETS, HOST_BYTES_PER_EXAMPLE

    monkeypatch.setattr(base, "available_host_memory", lambda: 2**30)
    m = 2**30 // HOST_BYTES_PER_EXAMPLE + 1
    pattern = (
        rf"^generating {m:,} examples of {name} needs about 1\.0 GiB, more than the 1\.0 GiB of memory "
        r"available on the host \(the sets are drawn there\); use fewer examples$"
    )
    with pytest.raises(ValueError, match=pattern):
        DATASETS[name]("numpy", m=m)
    DATASETS[name]("numpy", m=m // 100)  # fits
    before = saved.read_bytes()
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", name, "--samples", str(10**12),
                       "--out", saved)  # fmt: skip
    one_line_error(code, err, rf"generating 1,000,000,000,000 examples of {name} needs about 59604\.6 GiB")
    assert saved.read_bytes() == before


def _cgroup_tree(tmp_path, proc_line: str, where: str, files: dict[str, str]) -> tuple[str, str]:
    tmp_path.mkdir()
    proc = tmp_path / "cgroup"
    proc.write_text(proc_line + "\n")
    directory = tmp_path / "fs" / where
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return str(proc), str(tmp_path / "fs")


def test_a_containers_memory_limit_bounds_the_memory_available(tmp_path, monkeypatch):
    """MemAvailable shows the whole host inside a container: a file or a generated set that fit it but not
    the container's limit was an OOM kill, not the one-sentence refusal."""
    MiB = 2**20
    v2 = {"memory.max": f"{1024 * MiB}\n", "memory.current": f"{600 * MiB}\n",
          "memory.stat": f"anon 1\ninactive_file {100 * MiB}\nactive_file 5\n"}  # fmt: skip
    assert base.cgroup_room(*_cgroup_tree(tmp_path / "a", "0::/", "", v2)) == 524 * MiB  # 1024 - (600 - 100)
    v1 = {"memory.limit_in_bytes": f"{512 * MiB}", "memory.usage_in_bytes": f"{64 * MiB}"}
    line = "4:memory:/docker/abc"  # cgroup v1, the process's own group by its path
    assert base.cgroup_room(*_cgroup_tree(tmp_path / "b", line, "memory/docker/abc", v1)) == 448 * MiB
    unlimited = {"memory.max": "max\n", "memory.current": "1\n"}
    assert base.cgroup_room(*_cgroup_tree(tmp_path / "c", "0::/user.slice", "user.slice", unlimited)) is None
    assert base.cgroup_room(str(tmp_path / "missing"), str(tmp_path)) is None
    monkeypatch.setattr(base, "cgroup_room", lambda: 3 * MiB)
    assert base.available_host_memory() == 3 * MiB  # the smaller of the host's and the container's


# 15. seeds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1.5, "a", -1, True, [1]])
def test_a_bad_seed_is_a_value_error_naming_the_accepted_values(seed):
    with pytest.raises(ValueError, match=r"seed must be None or an integer >= 0 \(e\.g\. seed=1\); got "):
        Network([2, 4, 1], backend="numpy", seed=seed)
    net = Network([2, 4, 1], backend="numpy", seed=np.int64(3))  # NumPy integers are integers
    with pytest.raises(ValueError, match=r"seed must be None or an integer >= 0"):
        net.fit(np.ones((2, 4)), np.zeros((1, 4)), iterations=1, seed=seed)
