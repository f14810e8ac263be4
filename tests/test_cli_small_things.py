"""Issue 15, "The small things a careful user trips on", through dlcore.cli.main."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from dlcore import Network, get_backend
from dlcore.cli import main

BASE = ["train", "--backend", "numpy", "--samples", "120"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_epochs_with_iterations_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, *BASE, "--epochs", "2", "--iterations", "5", "--out", tmp_path / "m.npz")
    assert code == 2 and "give --epochs or --iterations, not both" in err
    assert not (tmp_path / "m.npz").exists()


def test_a_validation_split_leaving_no_training_example_is_refused_before_training(capsys, tmp_path):
    """96 train examples: 0.99 holds out ceil(95.04) = 96 of them (the count Network.fit would use)."""
    code, out, err = run(capsys, *BASE, "--validation-split", "0.99", "--out", tmp_path / "m.npz")
    assert code == 2 and "dlcore: error: --validation-split 0.99 leaves no training examples" in err
    assert "out of m=96" in err and "accuracy" not in out and not (tmp_path / "m.npz").exists()
    assert run(capsys, *BASE, "--validation-split", "0.98", "--epochs", "2", "--quiet")[0] == 0  # 95 held


def test_dropout_without_a_hidden_layer_is_refused_in_the_flags_words(capsys):
    """The message named the Python arguments: 'pass keep_prob=1', '(layer_dims [n_x, n_h, 1])'."""
    code, _, err = run(capsys, *BASE, "--keep-prob", "0.5", "--layers", "2,1")
    assert code == 2 and err.strip() == (
        "dlcore: error: --keep-prob 0.5 drops hidden units, and this network has no hidden layer: add one "
        "(--layers n_x,n_h,1) or leave out --keep-prob (--l2 regularizes any network)"
    )


def test_the_metadata_records_the_updates_made(capsys, tmp_path):
    model = tmp_path / "m.npz"
    assert run(capsys, *BASE, "--epochs", "3", "--batch-size", "32", "--out", model, "--quiet")[0] == 0
    info = Network.load(model).info
    assert info["epochs"] == 3 and info["iterations"] == 3 * 3  # 96 train examples, 3 batches per epoch
    assert run(capsys, *BASE, "--iterations", "7", "--out", model, "--quiet")[0] == 0
    assert Network.load(model).info["iterations"] == 7 and Network.load(model).info["epochs"] is None


@pytest.mark.parametrize(
    ("backend", "message"),
    [("numpy:gpu", "runs on the CPU only"), ("array_api_strict:gpu", "has the devices CPU_DEVICE, device1")],
)
def test_unknown_devices_are_refused(capsys, backend, message):
    code, _, err = run(capsys, "train", "--backend", backend, "--iterations", "2", "--quiet")
    assert code == 2 and message in err and "'gpu'" in err and len(err.strip().splitlines()) == 1


def test_torch_unknown_device_is_refused(capsys):
    pytest.importorskip("torch")
    code, _, err = run(capsys, "train", "--backend", "torch:gpu", "--iterations", "2", "--quiet")
    assert code == 2 and "torch device is cpu, cuda or cuda:N" in err


def test_help_shows_defaults_and_the_description(capsys):
    assert main(["train", "--help"]) == 0
    out = re.sub(r"\s+", " ", capsys.readouterr().out)
    for text in (
        "(default: tanh)",
        "(default: small)",
        "(default 1.2, 0.1 for regression; 0.01 with --optimizer adam or rmsprop)",
        "10000 unless --epochs",
        "(default: gd)",
        "(default: float64)",
        "(default: 0.2)",
        "(default: 1)",
        "(default: 400)",
        "lambda (default: 0.0)",
        "n_x,64,C for C classes",
        "--validation-split",
        "--patience",
        "--decay-rate",
    ):
        assert text in out, text
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: dlcore" in out and "binary classifiers" not in out and "multi-class" in out


def test_bare_dlcore_prints_the_help_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "dlcore"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: dlcore" in proc.stdout and not proc.stderr


def test_leaky_relu_with_a_slope_is_accepted(capsys, tmp_path):
    model = tmp_path / "m.npz"
    argv = [*BASE, "--hidden-activation", "leaky_relu:0.2", "--iterations", "20", "--out", model, "--quiet"]
    assert run(capsys, *argv)[0] == 0
    assert Network.load(model).activations[0].spec == "leaky_relu:0.2"


def test_validation_split_patience_and_decay(capsys, tmp_path):
    model = tmp_path / "m.npz"
    # lr 0.1: these draws stop early (at 0.05 the validation cost still fell at epoch 200 once the CLI
    # split the validation columns off itself and fit's random stream began at the shuffles)
    argv = [*BASE, "--epochs", "200", "--batch-size", "16", "--optimizer", "adam", "--lr", "0.1"]
    argv += ["--validation-split", "0.25", "--patience", "2", "--decay-rate", "0.1", "--out", model]
    code, out, _ = run(capsys, *argv, "--quiet")
    assert code == 0 and "test accuracy" in out
    info = Network.load(model).info
    assert info["validation_split"] == 0.25 and info["patience"] == 2 and info["decay_rate"] == 0.1
    assert info["stopped_early"] and info["iterations"] < 200 * 6
    code, _, err = run(capsys, *BASE, "--patience", "3")
    assert code == 2 and "--patience needs --validation-split" in err


def test_a_validation_run_says_what_it_held_out_and_which_parameters_it_kept(capsys):
    """120 examples: 24 test, ceil(0.25 * 96) = 24 validation, 72 train. Early stopping names the epoch
    whose parameters it restored: one of the checked epochs, before the stop; without --patience the
    last validation cost is reported instead."""
    argv = [*BASE, "--epochs", "200", "--batch-size", "16", "--optimizer", "adam", "--lr", "0.05"]
    argv += ["--validation-split", "0.25", "--cost-every", "5"]
    code, out, _ = run(capsys, *argv, "--patience", "2")
    assert code == 0 and "(72 train, 24 validation, 24 test)" in out
    kept = re.search(
        r"^early stopping: the validation cost did not improve for 2 checks; "
        r"kept the parameters of epoch (\d+) \(validation cost [\d.]+\)$",
        out,
        re.M,
    )
    assert kept, out
    checked = [int(e) for e in re.findall(r"^epoch +(\d+),", out, re.M)]
    assert int(kept.group(1)) - 1 in checked[:-1]  # the parameters at the end of a checked epoch
    code, out, _ = run(capsys, *argv)
    assert code == 0 and re.search(r"^validation cost: [\d.]+ at the end \(best [\d.]+\)$", out, re.M), out


def test_the_validation_columns_are_held_out_of_the_normalization_and_the_train_accuracy(capsys, tmp_path):
    """The held-out columns took part in the feature (and target) means and stds the model saves, and in
    the printed train accuracy; now they are split off first and reported apart."""
    from dlcore.data import load_dataset, train_test_split
    from dlcore.minibatch import train_validation_split

    model = tmp_path / "m.npz"
    code, out, _ = run(capsys, *BASE, "--iterations", "50", "--validation-split", "0.3", "--out", model)
    assert code == 0 and re.search(r"^validation accuracy: [\d.]+%$", out, re.M), out
    backend = get_backend("numpy")
    X, Y = load_dataset("planar", backend, seed=1, m=120)
    X_train, Y_train, _, _ = train_test_split(X, Y, 0.2, backend, seed=1)
    X_fit, _, X_val, _ = train_validation_split(X_train, Y_train, 0.3, backend.rng(1))
    assert (X_fit.shape[1], X_val.shape[1]) == (67, 29) and "(67 train, 29 validation, 24 test)" in out
    saved = Network.load(model).normalization
    np.testing.assert_allclose(saved.mean, X_fit.mean(axis=1), rtol=1e-12)
    assert not np.allclose(saved.mean, X_train.mean(axis=1), rtol=1e-6)


def test_predict_accepts_a_built_in_dataset(capsys, tmp_path):
    model = tmp_path / "m.npz"
    assert run(capsys, *BASE, "--iterations", "20", "--out", model, "--quiet")[0] == 0
    code, out, err = run(capsys, "predict", "--model", model, "--data", "planar", "--backend", "numpy")
    assert code == 0 and out.startswith("index,probability,label,true_label") and "accuracy" in err


def test_a_bad_plot_extension_is_refused_before_training(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, *BASE, "--iterations", "20", "--plot", tmp_path / "p.xyz")
    assert code == 2 and ".xyz is not an image format" in err and "accuracy" not in out


def test_a_pgf_picture_without_tex_is_refused_before_training(capsys, tmp_path, monkeypatch):
    """matplotlib lists .pgf, which it draws with a TeX system: without one, savefig failed after the
    training (RuntimeError: 'xelatex' not found, a 60-line traceback, exit 1)."""
    pytest.importorskip("matplotlib")
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out, err = run(capsys, *BASE, "--iterations", "20", "--plot", tmp_path / "p.pgf")
    assert code == 2 and "accuracy" not in out and len(err.splitlines()) == 1
    assert err.endswith(".pgf needs xelatex (a TeX system), which is not installed here; use .pdf or .svg\n")


def test_quiet_prints_only_the_final_report(capsys):
    code, out, err = run(capsys, "train", "--backend", "auto", "--iterations", "50", "--quiet")
    assert code == 0 and not err
    assert [line.split(":")[0] for line in out.splitlines()] == ["train accuracy", "test accuracy", "backend"]
    # early stopping's line is part of the result (whose parameters were kept): --quiet hid it
    argv = "train --backend numpy --dataset moons --samples 200 --layers 2,32,1 --optimizer adam --lr 0.05 "
    argv += "--epochs 300 --batch-size 16 --validation-split 0.3 --patience 3 --cost-every 1 --quiet"
    code, out, err = run(capsys, *argv.split())
    assert code == 0 and not err and out.startswith("early stopping: the validation cost did not improve")


def test_not_a_model_file_names_the_cli_fix_only_in_the_cli(capsys, tmp_path):
    import numpy as np

    bad = tmp_path / "m.npz"
    np.savez(bad, W1=np.ones((2, 2)))
    code, _, err = run(capsys, "predict", "--model", bad, "--data", "planar")
    assert code == 2 and "save one with dlcore train --out" in err
    with pytest.raises(ValueError, match="not a dlcore model file") as info:
        Network.load(bad)
    assert "--" not in str(info.value)


def test_plain_progress_lines_do_not_depend_on_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    argv = [*BASE, "--iterations", "1000"]
    _, without, _ = run(capsys, *argv)
    _, with_plot, _ = run(capsys, *argv, "--plot", tmp_path / "p.png")
    cost_lines = [line for line in without.splitlines() if line.startswith("iteration")]
    assert len(cost_lines) == 11
    assert [line for line in with_plot.splitlines() if line.startswith("iteration")] == cost_lines


def test_what_matplotlib_logs_while_saving_is_one_dlcore_warning(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, *BASE, "--iterations", "20", "--quiet", "--plot", tmp_path / "p.eps")
    assert code == 0 and "picture saved" in out and (tmp_path / "p.eps").stat().st_size > 0
    # was matplotlib's raw "The PostScript backend does not support transparency; ..." on stderr
    (line,) = err.splitlines()
    assert line.startswith(f"dlcore: warning: {tmp_path / 'p.eps'}: ") and "transparency" in line, line


def test_python_messages_name_no_cli_flags(tmp_path):
    pytest.importorskip("matplotlib")
    from dlcore.backends.plotting import check_available

    from dlcore.data import load_csv

    with pytest.raises(ValueError, match="not an image format") as plot:
        check_available(tmp_path / "p.xyz")
    data = tmp_path / "d.csv"
    data.write_text("1,1e39,0\n2,3,1\n")
    with pytest.raises(ValueError, match=r"dtype='float64'") as dtype:
        load_csv(data, get_backend("numpy"), "float32")
    assert "--" not in str(plot.value) + str(dtype.value)


def test_warnings_speak_the_command_line(capsys, tmp_path):
    """Warnings pass through the command's words, as errors do: --task regression, not task='regression'."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    data = tmp_path / "pm.csv"
    np.savetxt(data, np.column_stack([X, np.where(X[:, 0] > 0, 1, -1)]), delimiter=",")
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--lr", "0.1", "--quiet")
    assert code == 0 and "dlcore: warning: the labels are -1 and +1" in err
    assert "pass --task regression to say so" in err and "task='regression'" not in err


def test_mixed_precision_errors_name_the_command_lines_fix(capsys):
    code, _, err = run(capsys, "train", "--dtype", "float32", "--precision", "float16", "--l2", "0.1")
    assert code == 2 and err.endswith("use --precision bfloat16 (the torch backend), or leave out --l2\n")
    code, _, err = run(
        capsys, "train", "--backend", "array_api_strict", "--dtype", "float32", "--precision", "mixed"
    )
    assert code == 2 and "the array_api_strict backend has no low-precision dtype; use the torch" in err


def test_whole_number_targets_warn_and_many_classes_print_no_confusion_matrix(capsys, tmp_path):
    """Scores 0..99 of 60 examples: taken as 100 classes, with a warning in the command's words, and the
    100 x 100 confusion matrix is not printed (it was, 100 columns wide)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    data = tmp_path / "scores.csv"
    np.savetxt(data, np.column_stack([X, np.arange(60) * 99 // 59]), delimiter=",", fmt="%g")
    code, out, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--iterations", "5")
    assert code == 0, err
    assert "dlcore: warning: the labels are integers up to 99, taken as 100 classes for 60 examples" in err
    assert "pass --task regression (--task multiclass says they are classes)" in err
    assert "test confusion matrix: not printed for 100 classes" in out and "rows: true class" not in out
    # class names (12 for 20 rows) are classes, never whole-number targets: no warning
    names = tmp_path / "names.csv"
    names.write_text("".join(f"{a},{b},species_{i % 12}\n" for i, (a, b) in enumerate(X[:20])))
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", names, "--iterations", "5")
    assert code == 0 and err == "", err


def test_header_says_whether_a_csvs_first_line_names_the_columns(capsys, tmp_path):
    """pandas' column numbers (0,1,2) are read as data, with a warning that names --header yes; with it
    the line is skipped, for train and predict alike. A header with a number in it: the error names it."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    rows = "\n".join(f"{a:.6f},{b:.6f},{int(a > 0)}" for a, b in X)
    data = tmp_path / "d.csv"
    data.write_text("0,1,2\n" + rows + "\n")
    model = tmp_path / "m.npz"
    train = ("train", "--backend", "numpy", "--dataset", data)
    code, out, err = run(capsys, *train)
    assert code == 0 and "dlcore: warning:" in err and "pass --header yes if it names" in err
    assert "m = 61 examples" in out and "multiclass" in out  # the line's 2 made a third class
    code, out, err = run(capsys, *train, "--header", "yes", "--out", model)
    assert code == 0 and err == "" and "m = 60 examples" in out and "binary" in out
    predict = ("predict", "--backend", "numpy", "--model", model, "--data", data)
    code, out, err = run(capsys, *predict, "--header", "yes")
    assert code == 0 and "60 predictions" in err and len(out.splitlines()) == 61  # a header, 60 rows
    data.write_text("x1,2020,y\n" + rows + "\n")
    code, _, err = run(capsys, *train, "--quiet")
    assert code == 2 and "'x1' is not a number" in err and "or pass --header yes" in err


def test_out_and_plot_naming_one_file_are_refused_before_training(capsys, tmp_path):
    """The picture was saved over the model, and both 'saved' lines printed."""
    same = tmp_path / "same.png"
    code, out, err = run(capsys, *BASE, "--out", same, "--plot", tmp_path / "." / "same.png")
    assert code == 2 and "--out and --plot both name" in err and out == "" and not same.exists()


def test_running_out_of_memory_is_one_line(capsys, monkeypatch):
    """An allocation the estimates did not foresee (--samples 10^12 is refused by one before it allocates:
    tests/test_trust.py)."""

    def fit(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.64 TiB for an array with shape (2, 250000000000)")

    monkeypatch.setattr(Network, "fit", fit)
    code, _, err = run(capsys, *BASE)
    assert code == 2 and err.startswith("dlcore: error: out of memory (Unable to allocate 3.64 TiB")
    assert len(err.splitlines()) == 1 and "fewer examples" in err


def test_a_picture_is_written_atomically(tmp_path):
    """A save that fails half-way (Ctrl-C, a full disk) leaves the previous picture whole."""
    from dlcore.backends.plotting import save_figure

    class Failing:
        def savefig(self, f, format, dpi):
            f.write(b"half a picture")
            raise KeyboardInterrupt

    class Fine:
        def savefig(self, f, format, dpi):
            f.write(f"a {format} picture".encode())

    path = tmp_path / "p.svg"
    save_figure(Fine(), path, dpi=110)
    with pytest.raises(KeyboardInterrupt):
        save_figure(Failing(), path, dpi=110)
    assert path.read_bytes() == b"a svg picture" and [p.name for p in tmp_path.iterdir()] == ["p.svg"]


def test_float16_data_fits_every_wider_dtype_without_a_warning(tmp_path):
    """check_range compared float16 data with float64's limit cast to float16: 'overflow in cast'."""
    from dlcore.data import load_dataset

    np.savez(tmp_path / "h.npz", X=np.ones((2, 5), np.float16), Y=np.array([[0, 1, 0, 1, 1]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, _ = load_dataset(str(tmp_path / "h.npz"), get_backend("numpy"), dtype="float32")
    assert X.dtype == np.float32


def test_labels_counted_from_1_warn_that_class_0_is_empty(capsys, tmp_path):
    """Labels 1/2 became a 3-class model with an empty class 0 (a zero row in the confusion matrix, a
    probability_0 column from predict), without a word."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    data = tmp_path / "r.csv"
    np.savetxt(data, np.column_stack([X, np.where(X[:, 0] > 0, 2, 1)]), delimiter=",")
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--epochs", "2", "--quiet")
    assert code == 0 and err.strip() == (
        "dlcore: warning: the labels start at 1, so class 0 has no example and the model gets 3 outputs; "
        "labels counted from 1? relabel them from 0 (Y - 1), or use class names"
    )
    np.savetxt(data, np.column_stack([X, np.where(X[:, 0] > 0, 2, 0)]), delimiter=",")  # 0..2, 1 unused
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--epochs", "2", "--quiet")
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize("l2", ["0", "0.1"])
def test_after_early_stopping_the_saved_final_cost_is_the_kept_parameters(tmp_path, monkeypatch, capsys, l2):
    """It was the last recorded cost, of parameters early stopping then threw away (0.2529 where the kept
    ones cost 0.3949); the file now also says whose parameters it holds."""
    from dlcore.regularization import l2_cost

    seen = {}
    fit = Network.fit

    def spy(self, X, Y, *args, **kwargs):
        seen["X"], seen["Y"] = X, Y
        return fit(self, X, Y, *args, **kwargs)

    monkeypatch.setattr(Network, "fit", spy)
    out = tmp_path / "es.npz"
    argv = "train --backend numpy --dataset moons --samples 200 --layers 2,32,1 --optimizer adam --lr 0.05 "
    argv += "--epochs 300 --batch-size 16 --validation-split 0.3 --patience 3 --cost-every 1 "
    argv += f"--l2 {l2} --out {out}"
    code, _, _ = run(capsys, *argv.split())
    assert code == 0
    net = Network.load(out, "numpy")
    assert net.info["stopped_early"] and net.info["best_epoch"] is not None
    m = seen["X"].shape[1]  # in batches of 16: an epoch's records carry T lambda / (2 m) ||W||^2
    J = net.cost(seen["X"], seen["Y"]) + float(l2_cost(net.params, float(l2) * -(-m // 16), m))
    assert net.info["final_cost"] == pytest.approx(J, rel=1e-12)


def test_a_score_is_never_rounded_to_a_perfect_or_null_one():
    """3,999 right of 4,000 printed "accuracy: 100.0%" (predict's CSV had the wrong row)."""
    from dlcore.cli import _percent

    assert [_percent(f) for f in (1.0, 3999 / 4000, 0.9995, 0.999, 0.95, 0.0004, 0.0005, 0.0)] == [
        "100.0%", ">99.9%", ">99.9%", "99.9%", "95.0%", "<0.1%", "0.1%", "0.0%"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("optimizer", "lr"), [("gd", 1.2), ("momentum", 1.2), ("adam", 0.01), ("rmsprop", 0.01)]
)
def test_the_default_learning_rate_suits_the_optimizer(capsys, tmp_path, optimizer, lr):
    """--optimizer adam and rmsprop ran at gradient descent's 1.2 (planar: 78.8% and 60.0% test accuracy,
    93.8% at 0.01): they scale each step to about alpha."""
    out = tmp_path / "m.npz"
    assert run(capsys, *BASE, "--optimizer", optimizer, "--iterations", "3", "--quiet", "--out", out)[0] == 0
    assert Network.load(out).info["learning_rate"] == lr


def test_test_examples_beyond_float32_once_standardized_are_refused_before_training(capsys, tmp_path):
    """The test split was checked only by the report, after training: the run printed its train accuracy,
    then failed, and the model it had not saved yet was lost."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    X[3, 1] = 1e39  # row 4 lands in the test split
    data = tmp_path / "e39.csv"
    np.savetxt(data, np.c_[X, X[:, 0] > 0], delimiter=",")
    code, out, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--dtype", "float32")
    assert code == 2 and "accuracy" not in out and "iteration" not in out
    message = "X holds standardized values beyond float32's range: use --dtype float64 or rescale X"
    assert err == f"dlcore: error: {message}\n"
    float64 = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--iterations", "3")
    assert float64[0] == 0


@pytest.mark.parametrize("dataset", ["digits", "file"])
def test_samples_for_a_set_with_its_own_examples_is_refused(capsys, tmp_path, dataset):
    """--samples 50 with digits or a data file trained on all the examples without a word."""
    if dataset == "file":
        dataset = tmp_path / "d.csv"
        dataset.write_text("".join(f"{i % 7},{i % 2}\n" for i in range(30)))
    code, out, err = run(capsys, "train", "--backend", "numpy", "--dataset", dataset, "--samples", "50")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"--samples sets the size of a generated set (planar, moons, circles, xor); {dataset} holds" in err


@pytest.mark.parametrize(
    ("dataset", "said"), [("PLANAR", "unknown dataset 'PLANAR'"), ("gone.csv", "gone.csv")]
)
def test_samples_with_a_dataset_that_is_not_there_leaves_the_error_to_the_dataset(capsys, dataset, said):
    """A mistyped name or a missing file was told that it "holds its own examples: drop --samples"."""
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", dataset, "--samples", "50")
    assert code == 2 and said in err and "--samples" not in err


def test_predict_of_one_labelled_example_gives_no_r2(capsys, tmp_path):
    """One example's R^2 is 0 by convention (scikit-learn's too), not a score: train printed "n/a (1
    example)", predict "1 predictions; R^2: 0.0000"."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    data = tmp_path / "r.csv"
    data.write_text("".join(f"{a},{b},{a + 0.5 * b}\n" for a, b in X))
    model = tmp_path / "r.npz"
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--iterations", "20",
                       "--quiet", "--out", model)  # fmt: skip
    assert code == 0, err
    one = tmp_path / "one.csv"
    one.write_text("1,2,0.5\n")
    code, out, err = run(capsys, "predict", "--backend", "numpy", "--model", model, "--data", one)
    assert code == 0 and err.strip() == "1 prediction; R^2: n/a (1 example)"
    code, out, err = run(capsys, "predict", "--backend", "numpy", "--model", model, "--data", data)
    assert code == 0 and re.fullmatch(r"40 predictions; R\^2: 0\.\d{4}\n", err), err


def test_predict_with_a_model_of_several_targets_names_the_feature_columns(capsys, tmp_path):
    """A [3, 6, 2] regression model (made in Python) given a data file with a target column: refused as
    "Y must have shape (n_y, m) = (2, 40) ... got (1, 40)", which no CLI data file can give."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 40))
    net = Network([3, 6, 2], "tanh", "linear", backend="numpy", seed=0)
    net.fit(X, np.stack([X[0], X[1] - X[2]]), 0.1, iterations=5)
    model = tmp_path / "two.npz"
    net.save(model)
    data = tmp_path / "x.csv"
    data.write_text("".join(f"{a},{b},{c},0.5\n" for a, b, c in X.T))
    code, _, err = run(capsys, "predict", "--backend", "numpy", "--model", model, "--data", data)
    assert code == 2 and err.strip().endswith(
        "x.csv's last column was read as a target, but the model predicts 2 targets per example: give its "
        "3 feature columns only"
    ), err
    data.write_text("".join(f"{a},{b},{c},0.5,1\n" for a, b, c in X.T))  # the width's hint: one target
    code, _, err = run(capsys, "predict", "--backend", "numpy", "--model", model, "--data", data)
    assert code == 2 and "expects 3 features (or 4 columns with the label, or a single target, last)" in err
    data.write_text("".join(f"{a},{b},{c}\n" for a, b, c in X.T))
    code, out, err = run(capsys, "predict", "--backend", "numpy", "--model", model, "--data", data)
    assert code == 0 and out.splitlines()[0] == "index,prediction0,prediction1" and "40 predictions" in err


def test_predictions_that_stdout_cannot_take_are_named(capsys, tmp_path, monkeypatch):
    """dlcore predict ... > /dev/full ended with the bare "dlcore: error: [Errno 28] No space left on
    device"."""
    import errno
    import io

    rng = np.random.default_rng(0)
    data = tmp_path / "d.csv"
    data.write_text("".join(f"{a},{b},{int(a > 0)}\n" for a, b in rng.standard_normal((30, 2))))
    model = tmp_path / "m.npz"
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--iterations", "5",
                       "--quiet", "--out", model)  # fmt: skip
    assert code == 0, err

    class Full(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", Full())
    code = main(["predict", "--backend", "numpy", "--model", str(model), "--data", str(data)])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err == "dlcore: error: cannot write the predictions to stdout: No space left on device\n"
    )


def test_the_kept_parameters_of_a_full_batch_run_are_named_by_their_update(capsys):
    """A full batch's best validation check came after the update that followed a printed cost line:
    "best ... at iteration 2001", which no line showed (the lines are 0, 1000, 2000, 3000)."""
    argv = "train --backend numpy --validation-split 0.2 --patience 2 --iterations 3000 --cost-every 1000"
    code, out, err = run(capsys, *argv.split())
    assert code == 0, err
    assert re.search(
        r"^validation cost: best \d\.\d+ after update \d+01, whose parameters were kept$", out, re.M
    )


def test_the_validation_summary_skips_nan_checks():
    """A NaN check first (before any finite one) made min() nan: 'kept the parameters of update 11
    (validation cost nan)', where the kept check's cost was 0.22."""
    from dlcore.cli import _validation_summary
    from dlcore.training import History

    history = History()
    history.val_costs, history.stopped_early, history.best_epoch = [float("nan"), 0.22, 0.25, 0.3], True, 11
    assert _validation_summary(history, 2, "iteration").endswith("of update 11 (validation cost 0.220000)")
    history.stopped_early = False
    assert _validation_summary(history, 2, "epoch") == (
        "validation cost: best 0.220000 at epoch 11, whose parameters were kept"
    )
