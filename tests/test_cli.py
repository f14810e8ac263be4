"""The command line through its real entry points: ``dlcore.cli.main([...])`` and ``python -m dlcore``."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from dlcore.backends import available_backends, cupy_status, get_backend

from dlcore import Network
from dlcore.cli import main
from dlcore.data import Normalization, load_dataset, train_test_split

CLI_BACKENDS = [
    "numpy",
    "array_api_strict",
    "array_api_strict:device1",
    pytest.param("torch", marks=pytest.mark.skipif(bool(available_backends()["torch"]), reason="no PyTorch")),
]
ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


def percent(out: str, which: str) -> float:
    return float(re.search(rf"^{which} accuracy: (\d+\.\d)%$", out, re.M).group(1))


# -- train -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend_name", CLI_BACKENDS)
def test_train_reports_what_the_python_api_computes(capsys, backend_name):
    code, out, err = run(
        capsys, "train", "--backend", backend_name, "--iterations", "300", "--cost-every", "100"
    )
    assert code == 0, err
    costs = [float(c) for c in re.findall(r"^iteration +\d+: cost (\d\.\d+)$", out, re.M)]
    assert re.findall(r"^iteration +(\d+):", out, re.M) == ["0", "100", "200", "300"]
    assert costs[-1] < costs[0]
    be = get_backend(backend_name)
    assert f"backend: {be.name} on {be.device_name()}, float64; wall time" in out
    # the same pipeline by hand: data, seeded split, normalization fitted on the training part, network
    X, Y = load_dataset("planar", be, seed=1)
    Xtr, Ytr, Xte, Yte = train_test_split(X, Y, 0.2, be, seed=1)
    norm = Normalization.fit(Xtr, be)
    net = Network([2, 4, 1], "tanh", init="small", backend=be, seed=1)
    history = net.fit(norm.apply(Xtr, be), Ytr, 1.2, 300, cost_every=100)
    np.testing.assert_allclose(costs, history.costs, atol=1e-6)
    assert percent(out, "train") == round(100 * net.accuracy(norm.apply(Xtr, be), Ytr), 1)
    assert percent(out, "test") == round(100 * net.accuracy(norm.apply(Xte, be), Yte), 1)


def test_the_default_run_reaches_85_percent(capsys):
    code, out, err = run(capsys, "train", "--backend", "numpy", "--quiet")
    assert code == 0, err
    assert percent(out, "train") >= 85 and percent(out, "test") >= 85
    assert "iteration" not in out  # --quiet


@pytest.mark.parametrize("dataset", ["moons", "circles", "xor"])
def test_train_on_the_other_builtin_datasets(capsys, dataset):
    argv = ["train", "--dataset", dataset, "--backend", "numpy", "--layers", "2,8,1", "--quiet"]
    code, out, err = run(
        capsys, *argv, "--hidden-activation", "relu", "--init", "he", "--lr", "0.5", "--iterations", "1500"
    )
    assert code == 0, err
    assert percent(out, "test") >= 90


def test_auto_says_which_backend_it_chose(capsys):
    code, out, _ = run(capsys, "train", "--backend", "auto", "--iterations", "5")
    assert code == 0
    reason = cupy_status()[1]
    expected = "auto: chose numpy on CPU because" if reason else "auto: chose cupy on"
    assert expected in out
    code, out, err = run(capsys, "train", "--backend", "auto", "--iterations", "5", "--quiet")
    assert code == 0 and "auto:" not in out + err  # --quiet: errors and the final report only


@pytest.mark.skipif(not cupy_status()[1], reason="a GPU answers here")
def test_cupy_without_a_gpu_is_one_sentence_and_exit_2(capsys):
    code, out, err = run(capsys, "train", "--backend", "cupy", "--iterations", "5")
    assert_one_line_error(code, err, r"dlcore: error: cannot use the cupy backend: .*numpy backend")
    assert "accuracy" not in out


def test_a_progress_bar_on_a_terminal_and_lines_still_on_stdout(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, "train", "--backend", "numpy", "--iterations", "400", "--cost-every", "200")
    assert code == 0
    assert re.findall(r"^iteration +(\d+):", out, re.M) == ["0", "200", "400"]
    assert "it/s" in err or "s/it" in err  # tqdm's bar went to stderr


def test_train_on_a_csv_file_with_a_picture(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)) * [1.0, 100.0, 0.01] + [0, 500, 3]  # badly scaled columns
    y = (X[:, 0] + (X[:, 1] - 500) / 100 > 0).astype(int)
    with open(tmp_path / "d.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "label"])
        w.writerows([[*row, label] for row, label in zip(X, y, strict=True)])
    code, out, err = run(
        capsys, "train", "--dataset", str(tmp_path / "d.csv"), "--backend", "numpy", "--lr", "0.5",
        "--iterations", "300", "--plot", str(tmp_path / "p.png"), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert percent(out, "train") >= 90
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_2d_data(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code, _, err = run(
        capsys, "train", "--backend", "numpy", "--iterations", "50", "--plot", str(tmp_path / "p.png")
    )
    assert code == 0, err
    png = (tmp_path / "p.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width > 1000  # two panels side by side: cost curve and decision boundary


def test_the_plot_grid_reaches_a_float32_network_as_float64_to_be_standardized(capsys, tmp_path, monkeypatch):
    """The grid was cast to float32 before the network standardized it: features at 1e8 + N(0, 1)
    collapsed onto a few values, and the picture showed bands, not the boundary."""
    pytest.importorskip("matplotlib")
    from dlcore.backends import plotting

    seen = []
    monkeypatch.setattr(plotting, "plot_training", lambda *args, **kw: seen.append(args[5](np.zeros((2, 3)))))
    original = Network.predict_proba
    dtypes = []
    monkeypatch.setattr(Network, "predict_proba", lambda net, X: dtypes.append(X.dtype) or original(net, X))
    argv = [
        "--backend",
        "numpy",
        "--iterations",
        "5",
        "--dtype",
        "float32",
        "--plot",
        str(tmp_path / "p.png"),
    ]
    code, _, err = run(capsys, "train", *argv)
    assert code == 0 and len(seen) == 1, err
    assert dtypes[-1] == np.float64  # the grid's, as train read X


def test_plot_without_matplotlib_says_how_to_get_it_before_training(capsys, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real(n, *a))
    code, out, err = run(capsys, "train", "--backend", "numpy", "--plot", str(tmp_path / "p.png"))
    assert_one_line_error(code, err, r'pip install "dlcore\[plot\]"')
    assert "accuracy" not in out and not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--lr", "-1"], r"argument --lr: wants a finite number > 0"),
        (["--iterations", "0"], r"argument --iterations: wants an integer >= 1"),
        (["--layers", "2,x,1"], r"comma-separated integers"),
        (
            ["--layers", "3,4,1"],
            r"layers start with 3 but the data has n_x = 2 features; use 2,4,1",
        ),
        (["--layers", "2,4,2"], r"layers must end with 1 \(one sigmoid output for binary labels\)"),
        (["--test-fraction", "1"], r"wants a number in \[0, 1\)"),
        (["--hidden-activation", "swish"], r"--hidden-activation: wants one of .*; got 'swish'"),
        (["--backend", "mxnet"], r"unknown backend 'mxnet'"),
        (["--dataset", "spiral"], r"unknown dataset 'spiral'"),
        (["--dataset", "/no/such/file.csv"], r"no such data file: /no/such/file\.csv"),
        (["--out", "/no/such/dir/m.npz"], r"the directory /no/such/dir does not exist"),
        (
            ["--lr", "1e9", "--hidden-activation", "leaky_relu", "--init", "he", "--layers", "2,50,50,50,1"]
            + ["--no-normalize"],
            r"training diverged: .*Lower the learning rate",
        ),
    ],
)
def test_bad_train_arguments_are_one_line_and_exit_2(capsys, argv, pattern):
    code, _, err = run(capsys, "train", "--backend", "numpy", "--iterations", "200", *argv)
    assert_one_line_error(code, err, pattern)


def test_an_out_link_into_a_missing_directory_is_refused_before_training(capsys, tmp_path):
    """Saves write through a link to its target, so the check before training looks there too."""
    link = tmp_path / "latest.npz"
    link.symlink_to(tmp_path / "gone" / "m.npz")
    code, out, err = run(capsys, "train", "--backend", "numpy", "--out", str(link))
    assert_one_line_error(code, err, r"latest\.npz: the directory .*gone does not exist")
    assert "iteration" not in out


def test_out_paths_that_name_no_writable_file_are_refused_before_training(capsys, tmp_path, monkeypatch):
    """'--out newdir/' (a directory that does not exist) was written as a file 'newdir'; '--out=~/m.npz'
    (no shell expands that ~) was told to create a directory '~'; a file made read-only was replaced.
    The check before training says so, and so does the save (a read-only file: an OSError, after which
    the CLI rescues the model elsewhere)."""
    monkeypatch.chdir(tmp_path)
    for out, pattern in [
        ("newdir/", r"--out newdir/: it ends in a separator, as a directory would; give a file name"),
        ("~/m.npz", r"--out ~/m\.npz: the directory ~ does not exist \(nothing expanded that ~: write the"),
    ]:
        code, out_text, err = run(capsys, "train", "--backend", "numpy", "--out", out)
        assert_one_line_error(code, err, pattern)
        assert "iteration" not in out_text
    assert os.listdir(tmp_path) == []
    kept = tmp_path / "kept.npz"
    kept.write_bytes(b"kept")
    real_access = os.access
    # as a user who may not write it (root may write any file, so its mode alone cannot test this)
    monkeypatch.setattr(os, "access", lambda p, mode: real_access(p, mode) and Path(p) != kept)
    code, _, err = run(capsys, "train", "--backend", "numpy", "--out", str(kept))
    assert_one_line_error(code, err, r"kept\.npz: the file is read-only; make it writable \(chmod u\+w\)")
    net = Network([2, 3, 1], backend="numpy")
    with pytest.raises(OSError, match=r"^cannot write .*kept\.npz: the file is read-only"):
        net.save(kept)
    with pytest.raises(ValueError, match=r"^cannot write newdir/: it ends in a separator"):
        net.save("newdir/")
    assert kept.read_bytes() == b"kept" and sorted(os.listdir(tmp_path)) == ["kept.npz"]


def test_malformed_csv_names_file_line_and_column(capsys, tmp_path):
    (tmp_path / "bad.csv").write_text("x1,x2,y\n1,2,0\n3,oops,1\n")
    code, _, err = run(
        capsys, "train", "--dataset", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "m.npz")
    )
    assert_one_line_error(code, err, r"bad\.csv, line 3, column 2: 'oops' is not a number")
    assert not (tmp_path / "m.npz").exists()


def test_mini_batch_lines_name_the_epoch(capsys):
    code, out, _ = run(capsys, "train", "--backend", "numpy", "--batch-size", "64", "--epochs", "6",
                       "--cost-every", "2")  # fmt: skip
    assert code == 0
    # 320 training examples, batches of 64: 5 updates per epoch; the costs measured from the start of
    # epochs 0, 2, 4 (after 0, 10, 20 updates), then the cost after the last update (6 epochs, 30 updates)
    lines = re.findall(r"^epoch +(\d+), iteration +(\d+): cost \d\.\d+$", out, re.M)
    assert lines == [("0", "0"), ("2", "10"), ("4", "20"), ("6", "30")]


def test_ctrl_c_during_the_report_keeps_the_trained_model(tmp_path, capsys, monkeypatch):
    """The model is saved as soon as training ends: a Ctrl-C while the accuracies print loses nothing."""

    def interrupted(self, X, Y):
        raise KeyboardInterrupt

    monkeypatch.setattr(Network, "score", interrupted)  # the report's accuracies
    path = tmp_path / "m.npz"
    code, _, _ = run(capsys, "train", "--backend", "numpy", "--iterations", "120", "--out", str(path))
    assert code == 130
    monkeypatch.undo()
    whole = tmp_path / "whole.npz"  # the same run, not interrupted
    assert run(capsys, "train", "--backend", "numpy", "--iterations", "120", "--out", str(whole))[0] == 0
    saved, expected = Network.load(path, backend="numpy"), Network.load(whole, backend="numpy")
    for k, v in expected.params.items():
        np.testing.assert_array_equal(saved.params[k], v)


# -- save, predict ---------------------------------------------------------------------------------
@pytest.fixture
def saved_model(tmp_path, capsys) -> Path:
    path = tmp_path / "model.npz"
    code, out, err = run(
        capsys, "train", "--backend", "numpy", "--iterations", "300", "--out", str(path), "--quiet"
    )
    assert code == 0, err
    assert f"model saved to {path}" in out
    return path


def read_predictions(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("backend_name", CLI_BACKENDS)
def test_predict_after_save_equals_the_model_before(capsys, tmp_path, saved_model, backend_name):
    out_csv = tmp_path / "pred.csv"
    code, out, err = run(
        capsys, "predict", "--model", str(saved_model), "--data", "planar", "--backend", backend_name,
        "--out", str(out_csv),
    )  # fmt: skip
    assert code == 0, err
    assert re.search(r"wrote 400 predictions to .*pred\.csv; accuracy: \d+\.\d%", out)
    rows = read_predictions(out_csv)
    assert list(rows[0]) == ["index", "probability", "label", "true_label"] and len(rows) == 400
    # oracle: the network in memory, trained the same way, on NumPy
    be = get_backend("numpy")
    X, Y = load_dataset("planar", be)
    Xtr, Ytr, _, _ = train_test_split(X, Y, 0.2, be, seed=1)
    norm = Normalization.fit(Xtr, be)
    net = Network([2, 4, 1], "tanh", init="small", backend=be, seed=1)
    net.fit(norm.apply(Xtr, be), Ytr, 1.2, 300)
    expected = net.predict_proba(norm.apply(X, be))[0]
    got = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_array_equal([int(r["label"]) for r in rows], (expected > 0.5).astype(int))
    np.testing.assert_array_equal([int(float(r["true_label"])) for r in rows], Y[0].astype(int))


def test_predict_new_unlabelled_csv_to_stdout(capsys, tmp_path, saved_model):
    (tmp_path / "new.csv").write_text("x1,x2\n0.5,3.0\n-2,-2\n")
    code, out, err = run(capsys, "predict", "--model", str(saved_model), "--data", str(tmp_path / "new.csv"))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "index,probability,label" and len(lines) == 3
    net = Network.load(saved_model)
    be = net.backend
    X = net.normalization.apply(be.asarray([[0.5, -2.0], [3.0, -2.0]]), be)
    net.normalization = None  # the oracle: normalize by hand, then the bare network
    expected = be.to_numpy(net.predict_proba(X))[0]
    np.testing.assert_allclose([float(line.split(",")[1]) for line in lines[1:]], expected, rtol=1e-12)
    assert "2 predictions" in err


def test_predict_out_dev_stdout_is_stdout(capsys, tmp_path, saved_model):
    """--out /dev/stdout wrote the CSV by reopening the file behind stdout: a log it was appended to
    (``>> log``) was replaced, what the shell had written there lost; the notes went into the CSV too."""
    (tmp_path / "new.csv").write_text("x1,x2\n0.5,3.0\n-2,-2\n")
    data = ("--model", str(saved_model), "--data", str(tmp_path / "new.csv"))
    code, plain, _ = run(capsys, "predict", *data)
    assert code == 0
    for name in ("/dev/stdout", "/dev/fd/1"):
        code, out, err = run(capsys, "predict", *data, "--out", name)
        assert code == 0, err
        assert out == plain and "2 predictions" in err


@pytest.mark.parametrize(
    ("setup", "pattern"),
    [
        (lambda p: (p / "m.npz").write_text("not a model"), r"m\.npz is not a model file in \.npz format"),
        (lambda p: np.savez(p / "m.npz", W1=np.ones((2, 2))), r"m\.npz is not a dlcore model file"),
        (lambda p: (p / "m.npz").write_bytes(b""), r"m\.npz is not a model file"),
        (lambda p: None, r"no such model file: .*m\.npz"),
    ],
)
def test_predict_refuses_bad_model_files_and_overwrites_nothing(capsys, tmp_path, setup, pattern):
    setup(tmp_path)
    (tmp_path / "pred.csv").write_text("keep me")
    code, out, err = run(
        capsys,
        "predict",
        "--model",
        str(tmp_path / "m.npz"),
        "--data",
        "planar",
        "--out",
        str(tmp_path / "pred.csv"),
    )
    assert_one_line_error(code, err, pattern)
    assert (tmp_path / "pred.csv").read_text() == "keep me"


def test_predict_checks_y_before_naming_its_labels(capsys, tmp_path):
    """A label beyond the model's class names (an .npz Y holding 2 for a no/yes model) was a traceback,
    IndexError, exit 1: the names were looked up before Y was checked."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    (tmp_path / "d.csv").write_text(
        "x1,x2,label\n" + "".join(f"{a},{b},{'yes' if a > 0 else 'no'}\n" for a, b in X)
    )
    code, _, _ = run(capsys, "train", "--backend", "numpy", "--dataset", str(tmp_path / "d.csv"), "--quiet",
                     "--out", str(tmp_path / "m.npz"))  # fmt: skip
    assert code == 0
    np.savez(tmp_path / "b.npz", X=rng.standard_normal((2, 5)), Y=np.array([0, 1, 2, 1, 0]))
    model, data = str(tmp_path / "m.npz"), str(tmp_path / "b.npz")
    code, out, err = run(capsys, "predict", "--backend", "numpy", "--model", model, "--data", data)
    assert_one_line_error(code, err, r"^dlcore: error: Y must hold binary labels 0 or 1 \(found 2\)")
    assert out == ""


def test_an_empty_path_says_so(capsys):
    """Path("") is ".": it said ". is a directory, not a model file" (and "not a data file", "not a CSV
    file" from the data readers)."""
    from dlcore.data import load_csv, load_npz

    code, _, err = run(capsys, "predict", "--model", "", "--data", "planar")
    assert_one_line_error(code, err, r"^dlcore: error: the model file's path is empty; give the path of one$")
    for read, what in ((Network.load, "model file"), (lambda p: load_npz(p, "numpy"), "data file"),
                       (lambda p: load_csv(p, "numpy"), "CSV file")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"^the {what}'s path is empty; give the path of one$"):
            read("")


def test_an_empty_output_file_name_is_refused_by_every_command(capsys, saved_model):
    """train --out "" said "--out : it is a directory"; predict --out "" wrote to stdout and train --plot ""
    drew nothing, each without a word."""
    for argv in (["train", "--out", ""], ["train", "--plot", ""],
                 ["predict", "--model", str(saved_model), "--data", "planar", "--out", ""]):  # fmt: skip
        code, out, err = run(capsys, *argv)
        flag = argv[-2]
        assert_one_line_error(
            code, err, rf"argument {flag}: wants a file name \(or leave the option out\); got ''"
        )
        assert out == ""


def test_predict_refuses_a_truncated_model_and_wrong_data(capsys, tmp_path, saved_model):
    data = saved_model.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "predict", "--model", str(tmp_path / "cut.npz"), "--data", "planar")
    assert_one_line_error(code, err, r"cut\.npz is not a model file .*truncated")
    (tmp_path / "wide.csv").write_text("1,2,3,4,1\n")
    code, _, err = run(capsys, "predict", "--model", str(saved_model), "--data", str(tmp_path / "wide.csv"))
    assert_one_line_error(code, err, r"has 5 columns but the model expects 2 features")
    code, _, err = run(
        capsys, "predict", "--model", str(saved_model), "--data", "planar", "--out", str(saved_model)
    )
    assert_one_line_error(code, err, r"same file as --model")
    assert saved_model.read_bytes() == data


# -- info, bench -----------------------------------------------------------------------------------
def test_info(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert re.search(r"^  numpy +available$", out, re.M)
    assert re.search(r"^  array_api_strict +available$", out, re.M)
    reason = cupy_status()[1]
    assert ("  cupy              not available: " + reason) in out if reason else "GPU: " in out
    assert re.search(r"^libraries: dlcore \S+, numpy \S+", out, re.M)
    assert re.search(r"^NumPy BLAS: \S+", out, re.M)


def test_info_names_every_extras_library_and_the_fused_kernels(capsys, monkeypatch):
    """numba, scikit-learn and mpi4py (extras) were in neither 'libraries' nor 'not installed', and nothing
    said whether numba's fused kernels serve."""
    import importlib.metadata

    code, out, _ = run(capsys, "info")
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    for name in ("numba", "scikit-learn", "mpi4py"):
        assert re.search(rf"\b{name} ", lines["libraries"]) or name in lines.get("not installed", "")
    try:
        importlib.metadata.version("numba")
        assert lines["numba fused kernels"].startswith(
            "numba fused kernels: on (numpy backend, ReLU and tanh"
        )
    except importlib.metadata.PackageNotFoundError:
        assert 'numba is not installed: pip install "dlcore[numba]"' in lines["numba fused kernels"]
    monkeypatch.setenv("DLCORE_NUMBA", "0")
    assert "numba fused kernels: off (DLCORE_NUMBA=0)" in run(capsys, "info")[1]
    monkeypatch.setenv("DLCORE_NUMBA", "off")  # as set, not as "0"
    assert "numba fused kernels: off (DLCORE_NUMBA=off)" in run(capsys, "info")[1]


def test_info_says_the_fused_kernels_are_off_when_numba_fails_to_import(capsys, monkeypatch):
    """numba installed but failing to import (it refuses a NumPy newer than it supports) was reported
    'on' from its package metadata alone, while the numpy backend ran without the kernels."""
    from dlcore.backends import info

    monkeypatch.delenv("DLCORE_NUMBA", raising=False)
    monkeypatch.setitem(sys.modules, "numba", None)  # its import fails
    status = info.fused_kernels_status({"numba": "0.61.0"})
    assert (
        status
        == "off (numba 0.61.0 is installed but fails to import: import of numba halted; None in sys.modules)"
    )


def test_info_lists_the_gpus_pytorch_reaches_when_cupy_is_missing(capsys, monkeypatch):
    """auto trains on torch:cuda without CuPy, while info printed "GPU: none usable" (it asked CuPy only).
    A machine of two GPUs that PyTorch sees, CuPy not installed (the backends are stand-ins)."""
    from dlcore.backends import info

    real = info.get_backend
    cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 2)
    lib = types.SimpleNamespace(cuda=cuda, version=types.SimpleNamespace(cuda="12.8"))

    def get_backend(name, device=None):
        if name != "torch":
            return real(name, device)
        index = int((device or "cuda:0").split(":")[1])
        return types.SimpleNamespace(
            name="torch",
            lib=lib,
            device_name=lambda: f"NVIDIA H200 (GPU {index}, torch)",
            memory_info=lambda: {"free": 100 * 2**30, "total": 140 * 2**30},
        )

    statuses = {**info.available_backends(), "cupy": "CuPy is not installed", "torch": ""}
    monkeypatch.setattr(info, "available_backends", lambda: statuses)
    monkeypatch.setattr(info, "get_backend", get_backend)
    code, out, _ = run(capsys, "info")
    assert code == 0 and "GPU: none usable" not in out
    for i in (0, 1):
        line = (
            f"GPU: NVIDIA H200 (GPU {i}, torch), 140.0 GiB total, 100.0 GiB free; CUDA runtime 12.8 (torch)"
        )
        assert line in out


def test_info_says_what_dlcore_backend_chooses(capsys, monkeypatch):
    """train and predict use $DLCORE_BACKEND without --backend; info showed only what auto chooses."""
    monkeypatch.setenv("DLCORE_BACKEND", "array_api_strict")
    code, out, _ = run(capsys, "info")
    assert code == 0 and "  $DLCORE_BACKEND=array_api_strict -> array_api_strict on " in out
    monkeypatch.setenv("DLCORE_BACKEND", "nonsense")
    code, out, _ = run(capsys, "info")
    assert code == 0 and "  $DLCORE_BACKEND=nonsense: not available: " in out


def test_bench_delegates_to_the_benchmark_report(capsys, monkeypatch):
    seen = []
    fake = types.ModuleType("dlcore.benchmarks.report")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "dlcore.benchmarks.report", fake)
    assert main(["bench", "--quick", "--json", "x.json"]) == 0
    assert seen == [["--quick", "--json", "x.json"]]


def test_bench_without_its_module_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dlcore.benchmarks.report", None)  # import fails
    code = main(["bench", "--quick"])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, r"cannot import the benchmark report .*reinstall dlcore")


def test_help_and_version(capsys):
    assert main(["--version"]) == 0
    assert "dlcore" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    flags = "--backend --dataset --layers --hidden-activation --init --lr --iterations --seed --dtype"
    for flag in (flags + " --test-fraction --out --plot --quiet --cost-every").split():
        assert flag in out
    assert main([]) == 0  # bare `dlcore` prints the help
    assert "usage: dlcore" in capsys.readouterr().out


# -- the real executable ---------------------------------------------------------------------------
def test_python_dash_m_dlcore_in_a_subprocess(tmp_path):
    model = tmp_path / "m.npz"
    cmd = [
        sys.executable,
        "-m",
        "dlcore",
        "train",
        "--backend",
        "numpy",
        "--iterations",
        "200",
        "--out",
        str(model),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^train accuracy: \d+\.\d%$", done.stdout, re.M)
    assert re.search(r"^iteration +200: cost", done.stdout, re.M)  # plain lines: stderr is not a terminal
    assert "it/s" not in done.stderr
    bad = [
        sys.executable,
        "-m",
        "dlcore",
        "predict",
        "--model",
        str(tmp_path / "nope.npz"),
        "--data",
        "planar",
    ]
    done = subprocess.run(bad, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"dlcore: error: no such model file: {tmp_path / 'nope.npz'}"


def test_one_import_namespace_ignores_folders_named_like_ours(tmp_path):
    """Everything installs under dlcore: a user's own backends/ and benchmarks/ folders change nothing."""
    for name in ("backends", "benchmarks"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('the user folder was imported')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import dlcore, dlcore.backends, dlcore.benchmarks.report; print(dlcore.get_backend('numpy').name)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert (done.returncode, done.stdout.strip()) == (0, "numpy"), done.stderr
    train = [sys.executable, "-m", "dlcore", "train", "--iterations", "10", "--backend", "numpy", "--quiet"]
    done = subprocess.run(train, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "train accuracy:" in done.stdout
