"""Issue 15, "Multi-class and regression, end to end", through dlcore.cli.main."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from dlcore.backends import storage

from dlcore import Network, persistence
from dlcore.cli import main

NAMES = ["cat", "dog", "emu"]


def _blobs(tmp_path, labels="names", header=True, m=150):
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [4, 0], [0, 4]])
    k = np.arange(m) % 3
    X = rng.normal(size=(m, 2)) * 0.6 + centres[k]
    path = tmp_path / f"three_{labels}.csv"
    with open(path, "w") as f:
        if header:
            f.write("x1,x2,animal\n")
        for x, c in zip(X, k, strict=True):
            f.write(f"{x[0]},{x[1]},{NAMES[c] if labels == 'names' else c}\n")
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


TRAIN = ["train", "--backend", "numpy", "--epochs", "30", "--batch-size", "32", "--optimizer", "adam"]
TRAIN += ["--lr", "0.01", "--quiet"]


@pytest.mark.parametrize("labels", ["names", "integers"])
def test_a_three_class_csv_trains_saves_and_predicts(capsys, tmp_path, labels):
    data, model = _blobs(tmp_path, labels), tmp_path / "m.npz"
    code, out, err = run(capsys, *TRAIN, "--dataset", data, "--out", model)
    assert code == 0, err
    assert "test confusion matrix" in out and float(out.split("test accuracy: ")[1].split("%")[0]) > 90
    net = Network.load(model)
    assert net.task == "multiclass" and net.layer_dims[-1] == 3
    assert net.info.get("classes") == (NAMES if labels == "names" else None)
    code, out, err = run(capsys, "predict", "--model", model, "--data", data, "--backend", "numpy")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    columns = NAMES if labels == "names" else ["0", "1", "2"]
    assert rows[0] == ["index", *[f"probability_{c}" for c in columns], "label", "true_label"]
    probabilities = np.array([[float(v) for v in row[1:4]] for row in rows[1:]])
    assert np.allclose(probabilities.sum(axis=1), 1)
    predicted = [row[4] for row in rows[1:]]
    assert set(predicted) <= set(columns) and [row[5] for row in rows[1:4]] == columns
    assert columns[0] in predicted and float(err.split("accuracy: ")[1].split("%")[0]) > 90


def test_a_binary_model_with_class_names_says_whose_probability_it_writes(capsys, tmp_path):
    """The column was 'probability': P(dog) for cat/dog labels, and nothing said so."""
    data = tmp_path / "pets.csv"
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    data.write_text("x1,x2,pet\n" + "".join(f"{a},{b},{'dog' if a > 0 else 'cat'}\n" for a, b in X))
    model = tmp_path / "m.npz"
    assert run(capsys, *TRAIN, "--dataset", data, "--out", model)[0] == 0
    code, out, err = run(capsys, "predict", "--model", model, "--data", data, "--backend", "numpy")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["index", "probability_dog", "label", "true_label"], err
    assert all((float(row[1]) > 0.5) == (row[2] == "dog") for row in rows[1:])


def test_predict_refuses_an_unknown_class_name(capsys, tmp_path):
    data, model = _blobs(tmp_path), tmp_path / "m.npz"
    assert run(capsys, *TRAIN, "--dataset", data, "--out", model)[0] == 0
    other = tmp_path / "other.csv"
    other.write_text("x1,x2,animal\n0.1,0.2,cat\n1.0,2.0,yak\n")
    code, _, err = run(capsys, "predict", "--model", model, "--data", other)
    assert code == 2 and "'yak', which is not one of the model's classes (cat, dog, emu)" in err


def test_two_class_names_make_a_binary_model_that_predicts_names(capsys, tmp_path):
    data, model = tmp_path / "two.csv", tmp_path / "m.npz"
    rng = np.random.default_rng(1)
    lines = [f"{x},{-x},{'yes' if x > 0 else 'no'}" for x in rng.normal(size=80)]
    data.write_text("\n".join(lines) + "\n")
    assert run(capsys, *TRAIN, "--dataset", data, "--out", model)[0] == 0
    net = Network.load(model)
    assert net.task == "binary" and net.info["classes"] == ["no", "yes"]
    code, out, _ = run(capsys, "predict", "--model", model, "--data", data)
    assert code == 0 and {row.split(",")[2] for row in out.splitlines()[1:]} == {"no", "yes"}


def test_one_class_name_is_refused_before_training(capsys, tmp_path):
    """A model file names two classes or more: one name made a file that predict called corrupt, after
    overwriting the --out file that was there."""
    data, model = tmp_path / "one.csv", tmp_path / "m.npz"
    data.write_text("".join(f"{i},{-i},cat\n" for i in range(10)))
    model.write_bytes(b"an old model")
    code, _, err = run(capsys, *TRAIN, "--dataset", data, "--out", model)
    assert code == 2 and "every label is 'cat'; a classifier needs examples of two classes or more" in err
    assert model.read_bytes() == b"an old model"


@pytest.mark.parametrize("classes", [["a", "b"], [0, 1, 2], ["a", "a", "b"]], ids=["two", "ints", "twice"])
def test_class_names_in_a_model_file_are_checked(tmp_path, classes):
    """On load, and on save: a file save wrote was then refused by load as corrupt (the model was lost)."""
    net = Network([2, 4, 3], output_activation="softmax", backend="numpy")
    path = tmp_path / "m.npz"
    net.save(path, info={})  # a file without names (as every format-1 file before): integer classes
    assert Network.load(path).info == {}
    before = path.read_bytes()
    pattern = r"info\.classes must be 3 distinct names \(strings\); got"  # one per output unit
    with pytest.raises(ValueError, match=rf"m\.npz not written: {pattern}"):
        net.save(path, info={"classes": classes})
    assert path.read_bytes() == before
    config = persistence.model_config([2, 4, 3], ["relu", "softmax"], "float64", info={"classes": classes})
    storage.save_npz(path, net.parameters_numpy(), config)  # as another writer could
    with pytest.raises(ValueError, match=rf"m\.npz is corrupt: {pattern}"):
        Network.load(path)


def test_plot_draws_per_class_regions_with_the_heads_loss(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from dlcore.backends import plotting

    seen = {}
    real = plotting.plot_training

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(plotting, "plot_training", spy)
    data, picture = _blobs(tmp_path), tmp_path / "p.png"
    code, out, err = run(capsys, *TRAIN, "--dataset", data, "--plot", picture)
    assert code == 0, err
    assert picture.stat().st_size > 10_000
    assert seen["loss"] == "categorical cross-entropy" and seen["classes"] == NAMES
    assert "adam" in seen["title"] and "batch 32" in seen["title"]


def test_regression_reports_r2_and_rmse_and_predicts_values(capsys, tmp_path):
    data, model = tmp_path / "r.csv", tmp_path / "m.npz"
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2))
    data.write_text("\n".join(f"{a},{b},{2 * a - b + 0.5}" for a, b in X) + "\n")
    argv = ["train", "--backend", "numpy", "--dataset", data, "--task", "regression", "--hidden-activation"]
    code, out, _ = run(
        capsys, *argv, "relu", "--lr", "0.05", "--iterations", "2000", "--out", model, "--quiet"
    )
    assert code == 0 and "test R^2: 0.9" in out and "RMSE" in out
    code, out, _ = run(capsys, "predict", "--model", model, "--data", data)
    assert code == 0 and out.splitlines()[0] == "index,prediction,true_label"


def test_r2_of_a_one_example_split_is_not_a_number_it_cannot_be(capsys, tmp_path):
    """R^2 of one example (1 - SS_res / 0) printed 0.0000, read as "no better than the mean"."""
    data = tmp_path / "r.csv"
    X = np.random.default_rng(2).normal(size=(60, 2))
    data.write_text("\n".join(f"{a},{b},{2 * a - b + 0.5}" for a, b in X) + "\n")
    argv = ["train", "--backend", "numpy", "--dataset", data, "--task", "regression", "--iterations", "50"]
    code, out, err = run(capsys, *argv, "--test-fraction", "0.01", "--quiet")
    assert code == 0, err
    assert re.search(r"^test R\^2: n/a \(1 example\), RMSE \d", out, re.M) and "train R^2: 0." in out


def test_regression_with_the_defaults_standardizes_large_targets(capsys, tmp_path):
    """Targets around 50,000 (std ~1,000) with no --lr: they are standardized for training (saved with the
    model) and the learning rate is regression's; R^2, RMSE and predictions are in the targets' units.
    Before: the course's lr 1.2 on the raw targets diverged at the first checks."""
    data, model, raw = tmp_path / "r.csv", tmp_path / "m.npz", tmp_path / "raw.npz"
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 3))
    y = 5e4 + 800 * X[:, 0] - 500 * X[:, 1] * X[:, 2]
    data.write_text("\n".join(f"{a},{b},{c},{t}" for (a, b, c), t in zip(X, y, strict=True)) + "\n")
    code, out, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--out", model)
    assert code == 0, err
    assert "regression, targets standardized" in out
    r2 = float(out.split("test R^2: ")[1].split(",")[0])
    assert r2 > 0.95, out
    net = Network.load(model)
    assert net.target_normalization is not None and net.info["learning_rate"] == 0.1
    code, out, _ = run(capsys, "predict", "--model", model, "--data", data)
    predicted = np.array([float(line.split(",")[1]) for line in out.splitlines()[1:]])
    assert np.sqrt(np.mean((predicted - y) ** 2)) < 0.3 * y.std()  # in the targets' units
    argv = [
        "train",
        "--backend",
        "numpy",
        "--dataset",
        data,
        "--no-normalize",
        "--iterations",
        "10",
        "--out",
        raw,
    ]
    assert run(capsys, *argv)[0] == 0 and Network.load(raw).target_normalization is None


def test_a_regression_plot_says_its_cost_is_in_standardized_units(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from dlcore.backends import plotting

    seen = {}
    real = plotting.plot_training
    monkeypatch.setattr(plotting, "plot_training", lambda *a, **k: seen.update(k) or real(*a, **k))
    data, picture = tmp_path / "r.csv", tmp_path / "p.png"
    X = np.random.default_rng(1).normal(size=(80, 2))
    data.write_text("".join(f"{a},{b},{300 * a + 1000}\n" for a, b in X))
    code, _, err = run(capsys, "train", "--backend", "numpy", "--dataset", data, "--plot", picture, "--quiet")
    assert code == 0, err
    assert seen["loss"] == "mean squared error / 2 (standardized targets)"


def test_the_picture_colours_match_their_keys(recwarn):
    """Regression dots were coloured on their own range, not the colour bar's; classes k and k + 10 had
    one colour and one marker (C0..C9)."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dlcore.backends.plotting import _regions

    X = np.random.default_rng(0).standard_normal((2, 600))
    fig, ax = plt.subplots()
    _regions(ax, X, (X[0] * 1000)[None], lambda g: (g[0] * 800)[None], "regression", None)
    dots = next(c for c in ax.collections if type(c).__name__ == "PathCollection")
    bar = ax.collections[0]  # the contour's
    assert (dots.norm.vmin, dots.norm.vmax) == (bar.norm.vmin, bar.norm.vmax)
    plt.close(fig)
    fig, ax = plt.subplots()

    def sector(P):  # 12 classes by angle
        return ((np.arctan2(P[1], P[0]) + np.pi) / (2 * np.pi) * 12).astype(int).clip(0, 11)

    def one_hot(grid):
        return np.eye(12)[sector(grid)].T

    k = sector(X)
    _regions(ax, X, k, one_hot, "multiclass", None)
    colours = [tuple(c.get_facecolor()[0]) for c in ax.collections if type(c).__name__ == "PathCollection"]
    assert len(colours) == 12 and len(set(colours)) == 12
    plt.close(fig)
    assert not [w for w in recwarn if "single numeric RGB" in str(w.message)]
