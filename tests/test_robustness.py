"""Every failure mode as tested behaviour: bad input (API and CLI), divergence, Ctrl-C, bad and unwritable
files, and normalization carried by a loaded model. Nothing a user already has on disk is ever lost."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dlcore.backends import get_backend, storage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlcore import Adam, MixedPrecision, Network, TrainingDiverged
from dlcore import cli as cli_module
from dlcore.cli import main
from dlcore.data import Normalization, load_dataset, train_test_split
from dlcore.datasets import planar
from tests.conftest import to_host

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)
X_OK = RNG.standard_normal((2, 50))
Y_OK = (X_OK[0:1] > 0).astype(float)


def with_nan(A: np.ndarray, value: float = np.nan) -> np.ndarray:
    A = A.copy()
    A[0, 3] = value
    return A


# -- the Python API --------------------------------------------------------------------------------
# (name, X, Y, pattern): Network([2, 4, 1]).fit(X, Y) must raise ValueError matching pattern
FIT_CASES = [
    ("X 3-D", np.ones((2, 50, 1)), Y_OK, r"X must be 2-D with shape \(n_x, m\)"),
    ("X rank-1", np.ones(50), Y_OK, r"rank-1 array of shape \(50,\): use X\.reshape\(2, -1\)"),
    ("X (m, n_x)", X_OK.T, Y_OK, r"X has shape \(50, 2\) but the network expects \(n_x=2, m\).*pass X\.T"),
    ("X wrong n_x", np.ones((3, 50)), Y_OK, r"expects n_x=2"),
    ("m = 0", np.ones((2, 0)), np.ones((1, 0)), r"X has no examples .*m = 0"),
    (
        "X and Y different m",
        X_OK,
        Y_OK[:, :40],
        r"Y must have shape \(1, m\) = \(1, 50\) to match X; got \(1, 40\)",
    ),
    ("Y rank-1", X_OK, Y_OK[0], r"Y must have shape \(1, m\).*Y\.reshape\(1, -1\)"),
    ("Y (m, 1)", X_OK, Y_OK.T, r"Y must have shape \(1, m\).*pass Y\.T"),
    ("Y (2, m)", X_OK, np.vstack([Y_OK, Y_OK]), r"Y must have shape \(1, m\) = \(1, 50\).*got \(2, 50\)"),
    ("label 2", X_OK, Y_OK * 2, r"binary labels 0 or 1 \(found 2\)"),
    ("label 0.5", X_OK, Y_OK * 0.5, r"binary labels 0 or 1 \(found 0\.5\)"),
    ("label -1", X_OK, Y_OK - 1, r"binary labels 0 or 1 \(found -1\)"),
    ("NaN in X", with_nan(X_OK), Y_OK, r"X contains NaN or inf \(1 entries\)"),
    ("inf in X", with_nan(X_OK, -np.inf), Y_OK, r"X contains NaN or inf"),
    ("NaN in Y", X_OK, with_nan(Y_OK), r"Y contains NaN or inf"),
    ("inf in Y", X_OK, with_nan(Y_OK, np.inf), r"Y contains NaN or inf"),
    ("X text", "1,2,3", Y_OK, r"X must be a numeric array; got str"),
    ("X strings", np.full((2, 50), "a"), Y_OK, r"X must (be a numeric array|hold real numbers)"),
    ("X None", None, Y_OK, r"X must be a numeric array; got NoneType"),
    ("Y complex", X_OK, Y_OK + 0j, r"Y must hold real numbers"),
]
# (name, fit keyword arguments, pattern)
ARGUMENT_CASES = [
    ("lr 0", {"learning_rate": 0}, r"learning_rate must be a finite number > 0; got 0"),
    ("lr < 0", {"learning_rate": -0.1}, r"learning_rate must be a finite number > 0"),
    ("lr NaN", {"learning_rate": float("nan")}, r"learning_rate must be a finite number > 0; got nan"),
    ("lr inf", {"learning_rate": float("inf")}, r"learning_rate must be a finite number > 0; got inf"),
    ("lr text", {"learning_rate": "fast"}, r"learning_rate must be a number; got 'fast'"),
    ("iterations 0", {"iterations": 0}, r"iterations must be an integer >= 1; got 0"),
    ("iterations < 0", {"iterations": -5}, r"iterations must be an integer >= 1; got -5"),
    ("iterations float", {"iterations": 2.5}, r"iterations must be an integer >= 1; got 2\.5"),
    ("epochs 0", {"epochs": 0}, r"epochs must be an integer >= 1"),
    ("cost_every 0", {"iterations": 5, "cost_every": 0}, r"cost_every must be an integer >= 1"),
    ("batch_size 0", {"batch_size": 0}, r"batch_size must be an integer >= 1"),
]
# (name, Network keyword arguments, pattern)
CONSTRUCTOR_CASES = [
    ("layer size 0", {"layer_dims": [2, 0, 1]}, r"positive integers"),
    ("layer size < 0", {"layer_dims": [2, -3, 1]}, r"positive integers"),
    ("no layers", {"layer_dims": [2]}, r"at least an input and an output"),
    (
        "layers an int",
        {"layer_dims": 3},
        r"layer_dims must be a list of layer sizes, e.g. \[n_x, 4, 1\]; got 3$",
    ),
    ("layers a string", {"layer_dims": "2,4,1"}, r"layer_dims must be a list of layer sizes.*; got '2,4,1'$"),
    ("unknown activation", {"hidden_activation": "swish"}, r"unknown activation 'swish'; choose one of"),
    ("bad leaky slope", {"hidden_activation": "leaky_relu:abc"}, r"bad activation 'leaky_relu:abc'"),
    ("unknown initializer", {"init": "ones"}, r"unknown initializer 'ones'"),
    ("unknown backend", {"backend": "mxnet"}, r"unknown backend 'mxnet'; choose one of"),
    ("dtype float16", {"dtype": "float16"}, r"unsupported dtype 'float16'; use one of float32, float64"),
    ("dtype int32", {"dtype": "int32"}, r"unsupported dtype 'int32'"),
]


@pytest.fixture
def saved(tmp_path) -> Path:
    """An existing model file that a failing call must leave byte-for-byte as it was."""
    path = tmp_path / "model.npz"
    Network([2, 4, 1], "tanh", backend="numpy", seed=3).save(path)
    return path


@pytest.mark.parametrize(("X", "Y", "pattern"), [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_bad_data_through_the_api(backend, saved, X, Y, pattern):
    before = saved.read_bytes()
    net = Network([2, 4, 1], backend=backend)
    params = net.parameters_numpy()
    with pytest.raises(ValueError, match=pattern):
        net.fit(X, Y, learning_rate=0.1, iterations=5)
    if isinstance(X, np.ndarray) and X.dtype.kind == "f" and Y.dtype.kind == "f" and "Y" not in pattern[:2]:
        with pytest.raises(ValueError, match=pattern):  # the same checks guard inference
            net.cost(X, Y)
    for k, v in net.parameters_numpy().items():
        np.testing.assert_array_equal(v, params[k])  # nothing was trained
    assert saved.read_bytes() == before


@pytest.mark.parametrize(
    ("kwargs", "pattern"), [c[1:] for c in ARGUMENT_CASES], ids=[c[0] for c in ARGUMENT_CASES]
)
def test_bad_training_arguments_through_the_api(backend, saved, kwargs, pattern):
    before = saved.read_bytes()
    net = Network([2, 4, 1], backend=backend)
    with pytest.raises(ValueError, match=pattern):
        net.fit(X_OK, Y_OK, **{"learning_rate": 0.1, **kwargs})
    assert saved.read_bytes() == before


@pytest.mark.parametrize(
    ("kwargs", "pattern"), [c[1:] for c in CONSTRUCTOR_CASES], ids=[c[0] for c in CONSTRUCTOR_CASES]
)
def test_bad_network_arguments_through_the_api(saved, kwargs, pattern):
    before = saved.read_bytes()
    with pytest.raises(ValueError, match=pattern):
        Network(**{"layer_dims": [2, 4, 1], "backend": "numpy", **kwargs})
    assert saved.read_bytes() == before


def test_predict_checks_its_input_too(backend):
    net = Network([2, 4, 1], backend=backend)
    for X, pattern in [(X_OK.T, r"pass X\.T"), (with_nan(X_OK), r"NaN or inf"), (np.ones(2), r"rank-1")]:
        for method in (net.predict, net.predict_proba):
            with pytest.raises(ValueError, match=pattern):
                method(X)


SOURCES = ["numpy", "list", "array_api_strict", "array_api_strict:device1"]


@pytest.mark.parametrize("source", SOURCES)
def test_arrays_from_another_backend_are_converted_onto_the_network(backend, source):
    """A NumPy (or other-device) X into a network on another backend: copied over, same result."""
    ref = Network([2, 5, 1], "tanh", init="xavier", backend="numpy", seed=4)
    ref.fit(X_OK, Y_OK, 0.5, 20)
    if source == "list":
        X, Y = X_OK.tolist(), Y_OK.tolist()
    else:
        be = get_backend(source)
        X, Y = be.asarray(X_OK), be.asarray(Y_OK)
    net = Network([2, 5, 1], "tanh", init="xavier", backend=backend, seed=4)
    net.fit(X, Y, 0.5, 20)
    P = net.predict_proba(X)
    assert P.device == backend.device and net.predict(X).device == backend.device
    np.testing.assert_allclose(to_host(backend, P), ref.predict_proba(X_OK), rtol=1e-12)
    assert net.accuracy(X, Y) == ref.accuracy(X_OK, Y_OK)
    assert net.cost(X, Y) == pytest.approx(ref.cost(X_OK, Y_OK), rel=1e-12)


# -- the command line ------------------------------------------------------------------------------
def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BINARY = ["--task", "binary"]
# (name, files to create {name: maker(path)}, extra argv, pattern); the data file is always "d.*"
TRAIN_CASES = [
    (
        "X 3-D",
        {"d.npz": lambda p: write_npz(p, X=np.ones((2, 50, 1)), Y=Y_OK)},
        [],
        r"X in .*d\.npz must be 2-D",
    ),
    (
        "X rank-1",
        {"d.npz": lambda p: write_npz(p, X=np.ones(50), Y=Y_OK)},
        [],
        r"must be 2-D .*got shape \(50,\)",
    ),
    (
        "X (m, n_x)",
        {"d.npz": lambda p: write_npz(p, X=X_OK.T, Y=Y_OK)},
        [],
        r"store X as \(n_x, m\), one example per column: X\.T",
    ),
    (
        "m = 0 npz",
        {"d.npz": lambda p: write_npz(p, X=np.ones((2, 0)), Y=np.ones((1, 0)))},
        [],
        r"no examples",
    ),
    ("m = 0 csv", {"d.csv": lambda p: write_text(p, "a,b,y\n")}, [], r"d\.csv holds no data rows"),
    (
        "X and Y different m",
        {"d.npz": lambda p: write_npz(p, X=X_OK, Y=Y_OK[:, :40])},
        [],
        r"Y in .*d\.npz must have shape \(1, m\) = \(1, 50\); got \(1, 40\)",
    ),
    (
        "Y not (1, m)",
        {"d.npz": lambda p: write_npz(p, X=X_OK, Y=Y_OK.T)},
        [],
        r"Y in .*d\.npz must have shape \(1, m\) = \(1, 50\); got \(50, 1\)",
    ),
    # without --task, real-valued labels mean regression (tested in test_cli.py); --task binary refuses them
    (
        "label 0.5 npz",
        {"d.npz": lambda p: write_npz(p, X=X_OK, Y=Y_OK * 0.5)},
        BINARY,
        r"binary labels 0 or 1",
    ),
    ("label -1 npz", {"d.npz": lambda p: write_npz(p, X=X_OK, Y=Y_OK - 1)}, BINARY, r"binary labels 0 or 1"),
    (
        "label 0.5 csv",
        {"d.csv": lambda p: write_text(p, "a,b,y\n1,2,0\n3,4,0.5\n")},
        BINARY,
        r"d\.csv: data row 2, column 3 \(the label\) is 0\.5; labels must be 0 or 1",
    ),
    (
        "NaN in X npz",
        {"d.npz": lambda p: write_npz(p, X=with_nan(X_OK), Y=Y_OK)},
        [],
        r"X in .*d\.npz contains NaN",
    ),
    (
        "inf in Y npz",
        {"d.npz": lambda p: write_npz(p, X=X_OK, Y=with_nan(Y_OK, np.inf))},
        [],
        r"Y in .*contains NaN",
    ),
    (
        "NaN in csv",
        {"d.csv": lambda p: write_text(p, "a,b,y\n1,2,0\n3,nan,1\n")},
        [],
        r"d\.csv, line 3, column 2: 'nan' is not finite",
    ),
    (
        "inf in csv label",
        {"d.csv": lambda p: write_text(p, "1,2,0\n3,4,-inf\n")},
        [],
        r"d\.csv, line 2, column 3: '-inf' is not finite",
    ),
    (
        "non-numeric csv cell",
        {"d.csv": lambda p: write_text(p, "x1,x2,y\n1,2,0\n3,4,1\n5,six,0\n")},
        [],
        r"d\.csv, line 4, column 2: 'six' is not a number",
    ),
    (
        "ragged csv",
        {"d.csv": lambda p: write_text(p, "1,2,0\n3,4\n")},
        [],
        r"d\.csv, line 2: expected 3 columns",
    ),
    (
        "strings in npz",
        {"d.npz": lambda p: write_npz(p, X=np.full((2, 50), "a"), Y=Y_OK)},
        [],
        r"must hold numbers",
    ),
    ("not a data file", {"d.npz": lambda p: write_text(p, "hello")}, [], r"not a data file in \.npz format"),
    ("layer size 0", {}, ["--layers", "2,0,1"], r"--layers wants at least two positive sizes"),
    ("layer size < 0", {}, ["--layers", "2,-4,1"], r"--layers wants at least two positive sizes"),
    ("unknown activation", {}, ["--hidden-activation", "swish"], r"wants one of .*; got 'swish'"),
    ("unknown initializer", {}, ["--init", "ones"], r"argument --init: invalid choice: 'ones'"),
    ("unknown backend", {}, ["--backend", "mxnet"], r"unknown backend 'mxnet'"),
    ("lr 0", {}, ["--lr", "0"], r"argument --lr: wants a finite number > 0; got '0'"),
    ("lr < 0", {}, ["--lr", "-1"], r"argument --lr: wants a finite number > 0"),
    ("lr NaN", {}, ["--lr", "nan"], r"argument --lr: wants a finite number > 0; got 'nan'"),
    ("lr inf", {}, ["--lr", "inf"], r"argument --lr: wants a finite number > 0; got 'inf'"),
    ("iterations 0", {}, ["--iterations", "0"], r"argument --iterations: wants an integer >= 1"),
    ("iterations < 0", {}, ["--iterations", "-3"], r"argument --iterations: wants an integer >= 1"),
    ("epochs 0", {}, ["--epochs", "0"], r"argument --epochs: wants an integer >= 1"),
    ("cost-every 0", {}, ["--cost-every", "0"], r"argument --cost-every: wants an integer >= 1"),
    ("dtype float8", {}, ["--dtype", "float8"], r"argument --dtype: invalid choice: 'float8'"),
    # the slope's reason was swallowed into "wants one of ... leaky_relu:SLOPE"
    (
        "leaky slope 1",
        {},
        ["--hidden-activation", "leaky_relu:1"],
        r"--hidden-activation: bad activation 'leaky_relu:1': leaky_relu slope must be in \[0, 1\); got 1\.0",
    ),
    # a decay that rounds the rate to 0 escaped as a ZeroDivisionError traceback (exit 1)
    (
        "decay to 0",
        {},
        ["--decay-rate", "1e308"],
        r"learning_rate=1\.2 with decay_rate=1e\+308 rounds to 0 at epoch 2; use a smaller decay_rate",
    ),
    # "the directory f.csv does not exist; create it first": no directory can take a file's name
    (
        "out under a file",
        {"f.csv": lambda p: write_text(p, "1,2,0\n")},
        ["--out-under-data"],
        r"f\.csv is a file, not a directory; choose another place",
    ),
]


@pytest.mark.parametrize(
    ("files", "argv", "pattern"), [c[1:] for c in TRAIN_CASES], ids=[c[0] for c in TRAIN_CASES]
)
def test_bad_train_input_is_one_line_exit_2_and_keeps_the_old_model(
    capsys, tmp_path, saved, files, argv, pattern
):
    before = saved.read_bytes()
    data = [make(tmp_path / name) for name, make in files.items()]
    dataset = ["--dataset", data[0]] if data else []
    out_flag = ["--out", saved]
    if argv == ["--out-under-data"]:  # --out inside the data file, as if it were a directory
        dataset, argv, out_flag = [], [], ["--out", str(data[0] / "m.npz")]
    code, out, err = run(
        capsys, "train", "--backend", "numpy", *dataset, "--iterations", "5", *argv, *out_flag
    )
    assert_one_line_error(code, err, pattern)
    assert "accuracy" not in out
    assert saved.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted(["model.npz", *files])  # no temporary file left


def _newer_model(p: Path) -> Path:
    Network([2, 4, 1], backend="numpy").save(p)
    arrays, meta = storage.load_npz_with_meta(p)
    storage.save_npz(p, arrays, {**meta, "format_version": 99})
    return p


# (name, files {name: maker}, extra argv, pattern); --model m.npz (a good model unless made here), --data d.*
PREDICT_CASES = [
    (
        "X (m, n_x) npz",
        {"d.npz": lambda p: write_npz(p, X=X_OK.T)},
        r"has 50 features.*expects 2.*store X\.T",
    ),
    (
        "wrong features csv",
        {"d.csv": lambda p: write_text(p, "1,2,3,4,1\n")},
        r"has 5 columns but the model expects 2",
    ),
    ("NaN in X", {"d.npz": lambda p: write_npz(p, X=with_nan(X_OK))}, r"X in .*d\.npz contains NaN or inf"),
    ("inf in Y", {"d.npz": lambda p: write_npz(p, X=X_OK, Y=with_nan(Y_OK, np.inf))}, r"Y in .*contains NaN"),
    (
        "non-numeric csv",
        {"d.csv": lambda p: write_text(p, "1,2\nx,3\n")},
        r"d\.csv, line 2, column 1: 'x' is not a number",
    ),
    ("m = 0", {"d.npz": lambda p: write_npz(p, X=np.ones((2, 0)))}, r"no examples"),
    (
        "foreign model",
        {"m.npz": lambda p: write_npz(p, W1=np.ones((2, 2)))},
        r"m\.npz is not a dlcore model file",
    ),
    (
        "newer model",
        {"m.npz": _newer_model},
        r"model format 99; this dlcore .* reads up to format 2: upgrade",
    ),
    (
        "text model",
        {"m.npz": lambda p: write_text(p, "weights")},
        r"m\.npz is not a model file in \.npz format",
    ),
]


@pytest.mark.parametrize(
    ("files", "pattern"), [c[1:] for c in PREDICT_CASES], ids=[c[0] for c in PREDICT_CASES]
)
def test_bad_predict_input_is_one_line_exit_2_and_keeps_the_old_predictions(capsys, tmp_path, files, pattern):
    Network([2, 4, 1], backend="numpy").save(tmp_path / "m.npz")
    write_npz(tmp_path / "d.npz", X=X_OK)
    made = {name: make(tmp_path / name) for name, make in files.items()}
    data = next((p for n, p in made.items() if n.startswith("d.")), tmp_path / "d.npz")
    old = write_text(tmp_path / "pred.csv", "index,probability,label\n0,0.25,0\n")
    code, out, err = run(
        capsys, "predict", "--model", tmp_path / "m.npz", "--data", data, "--backend", "numpy", "--out", old
    )
    assert_one_line_error(code, err, pattern)
    assert old.read_text() == "index,probability,label\n0,0.25,0\n" and out == ""


# -- divergence ------------------------------------------------------------------------------------
DIVERGING = [
    "--hidden-activation",
    "leaky_relu",
    "--init",
    "he",
    "--layers",
    "2,8,8,1",
    "--iterations",
    "2000",
]


@pytest.mark.parametrize(
    "extra", [[], ["--batch-size", "32"], ["--optimizer", "momentum"], ["--l2", "0.1"]], ids=str
)
def test_divergence_on_the_cli_names_iteration_and_rate_and_saves_nothing(capsys, saved, extra):
    before = saved.read_bytes()
    code, out, err = run(
        capsys,
        "train",
        "--backend",
        "numpy",
        "--lr",
        "1e6",
        *DIVERGING,
        "--cost-every",
        "7",
        *extra,
        "--out",
        saved,
    )
    assert_one_line_error(code, err, r"training diverged: the cost became (nan|inf)")
    assert re.search(r"iteration \d+", err) and re.search(r"learning_rate=(1e\+06|1000000\.0)", err)
    assert f"Nothing was saved to {saved}." in err
    assert saved.read_bytes() == before  # decided: a diverged run never replaces the previous model
    if not extra:  # plain gradient descent checks every --cost-every iterations: it stopped at the next check
        i = int(re.search(r"at iteration (\d+)", err).group(1))
        assert i % 7 == 0 and i < 2000
        assert re.findall(r"^iteration +(\d+):", out, re.M)[-1] == str(i - 7)


FIT_PATHS = [
    ({}, 1e6),
    ({"batch_size": 16}, 1e6),
    ({"optimizer": "momentum", "batch_size": 32}, 1e6),
    ({"optimizer": "rmsprop"}, 1e200),
    ({"optimizer": "adam", "batch_size": 32}, 1e200),
    ({"l2": 0.1}, 1e6),
    ({"keep_prob": 0.8}, 1e6),
    ({"decay_rate": 0.1}, 1e6),
    ({"validation_split": 0.2, "patience": 3}, 1e6),
    ({"epochs": 50, "batch_size": 100}, 1e6),
    ({"batch_size": 10, "cost_every": 1000}, 1e6),  # diverges inside the first recorded epoch
]


@pytest.mark.parametrize("precision", [None, "float16"])
def test_a_cost_that_overflows_before_any_update_does_not_blame_the_learning_rate(backend, precision):
    """Targets of 1e20 in float32 (or X of 1e5 in float16) overflow the first cost, before any update; the
    message said "Lower the learning rate (e.g. 1e-10)", which can never help."""
    if precision and backend.name == "array_api_strict":
        pytest.skip("array_api_strict has no float16")
    X = backend.asarray(np.random.default_rng(0).standard_normal((3, 40)) * (1e5 if precision else 1.0))
    net = Network(
        [3, 8, 1], output_activation="sigmoid" if precision else "linear", backend=backend, dtype="float32"
    )
    Y = backend.asarray((X_OK[:1, :40] > 0) * 1.0 if precision else np.full((1, 40), 1e20))
    if precision:  # X itself beyond float16: said of X, before the loop
        with pytest.raises(ValueError, match=r"^X holds values beyond float16's range: standardize X or"):
            net.fit(X, Y, learning_rate=1e-9, iterations=5, precision=precision)
        return
    with pytest.raises(TrainingDiverged) as info:
        net.fit(X, Y, learning_rate=1e-9, iterations=5, precision=precision)
    assert re.fullmatch(
        r"training cannot start: the cost is (inf|nan) before any update, with the initial parameters: X, Y "
        r"or the network's values overflow the compute dtype; standardize X \(and regression targets\) or "
        r"compute in a wider dtype",
        str(info.value),
    )
    assert "learning" not in str(info.value) and info.value.iteration == 0


def test_a_divergence_with_decay_names_the_rate_given_and_advises_a_tenth_of_it(backend):
    """It named the next epoch's decayed rate ("learning_rate=50 ... e.g. 5" for a fit at 100 whose
    diverging update used 100) and advised a twentieth of what the user passed."""
    X, Y = planar(backend, m=100)
    net = Network([2, 8, 8, 1], "relu", backend=backend, seed=3)
    with pytest.raises(TrainingDiverged) as info:
        net.fit(X, Y, learning_rate=100, decay_rate=1.0, iterations=50, cost_every=1)
    assert re.search(
        r" at iteration \d+ with learning_rate=100 \(decay_rate=1\); the parameters from iteration \d+ were "
        r"kept\. Lower the learning rate \(e\.g\. 10\)\.$",
        str(info.value),
    ), str(info.value)
    assert info.value.learning_rate == 100


def test_a_static_loss_scale_that_overflows_is_named_beside_the_learning_rate():
    """A loss scale of 2**20 overflows float16 at any learning rate: the advice named the rate only."""
    X, Y = planar(get_backend("numpy"), m=200, dtype="float32")
    net = Network([2, 8, 1], "tanh", backend="numpy", dtype="float32", seed=1)
    with pytest.raises(TrainingDiverged) as info:
        net.fit(X, Y, iterations=20, precision=MixedPrecision(Adam(1e-6), "float16", loss_scale=2.0**20))
    assert str(info.value).endswith(
        "Lower the learning rate (e.g. 1e-07), or the loss scale (loss_scale=1.04858e+06: scaled gradients "
        "beyond float16's range become inf), or pass loss_scale='dynamic'."
    )


@pytest.mark.parametrize(("kwargs", "lr"), FIT_PATHS, ids=[str(k) for k, _ in FIT_PATHS])
def test_divergence_rolls_back_on_every_path_of_fit(kwargs, lr):
    X, Y = planar(get_backend("numpy"), m=100)
    net = Network([2, 8, 8, 1], "linear", init="he", backend="numpy", seed=0)
    initial = net.parameters_numpy()
    options = {"iterations": 300, **kwargs} if "epochs" not in kwargs else kwargs
    with pytest.raises(TrainingDiverged, match=r"iteration \d+") as info:
        net.fit(X, Y, learning_rate=lr, cost_every=options.pop("cost_every", 5), **options)
    assert info.value.iteration > 0 and info.value.learning_rate <= lr
    for v in net.parameters_numpy().values():
        assert np.all(np.isfinite(v))
    assert np.isfinite(net.cost(X, Y))
    if not info.value.history.costs:  # no check passed: back to the initial parameters
        for k, v in initial.items():
            np.testing.assert_array_equal(net.parameters_numpy()[k], v)
    assert info.value.history.updates == info.value.iteration  # the updates made (it stayed 0)


@pytest.mark.parametrize("name", ["callback", "progress"])
def test_a_callback_that_is_no_function_is_refused_before_training(name):
    """callback="log.txt" failed with "'str' object is not callable" after an epoch of updates, the fit
    counted (the next one drew other shuffles)."""
    X, Y = planar(get_backend("numpy"), m=100)
    net, fresh = (Network([2, 4, 1], backend="numpy", seed=1) for _ in range(2))
    before = net.parameters_numpy()
    with pytest.raises(ValueError, match=rf"^{name} must be a function \(or None\); got 'log\.txt'$"):
        net.fit(X, Y, 0.5, epochs=3, batch_size=50, **{name: "log.txt"})
    for k, v in before.items():
        np.testing.assert_array_equal(net.parameters_numpy()[k], v)
    options = dict(epochs=2, batch_size=50, keep_prob=0.8)
    assert net.fit(X, Y, 0.5, **options).costs == fresh.fit(X, Y, 0.5, **options).costs
    # and train's own check, made before the callables are wrapped (after, it saw a wrapper: callable)
    from dlcore.optimizers import GradientDescent
    from dlcore.training import Plan, train

    before = net.parameters_numpy()
    for verbose in (False, True):
        with pytest.raises(ValueError, match=rf"^{name} must be a function \(or None\); got 'log\.txt'$"):
            train(net.params, net.activations, X, Y, optimizer=GradientDescent(0.5),
                  plan=Plan.of(100, None, 3, None), verbose=verbose, **{name: "log.txt"})  # fmt: skip
    for k, v in before.items():  # refused before any update
        np.testing.assert_array_equal(net.parameters_numpy()[k], v)


@pytest.mark.parametrize(("batch_size", "at", "epochs_done"), [(50, 4, 2), (50, 5, 2), (None, 5, 5)])
def test_an_interrupted_fit_carries_the_decay_on_from_the_epochs_it_completed(batch_size, at, epochs_done):
    """A Ctrl-C right after an epoch's last update left the schedule one epoch behind (with a full
    batch, every time): a fit stopped after 2 whole epochs went on at epoch 1's learning rate."""
    from dlcore.optimizers import GradientDescent

    X, Y = planar(get_backend("numpy"), m=100)
    opt = GradientDescent(0.5, decay_rate=1.0)

    def press(i):
        if i == at:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        Network([2, 4, 1], backend="numpy", seed=1).fit(
            X, Y, epochs=10, batch_size=batch_size, optimizer=opt, progress=press
        )
    assert opt.first_epoch == epochs_done


# -- Ctrl-C ----------------------------------------------------------------------------------------
def test_ctrl_c_in_process_saves_the_current_parameters(capsys, tmp_path, saved, monkeypatch):
    """A callback raising KeyboardInterrupt at the check of iteration 200: exactly 200 steps are saved."""
    real_call = cli_module.ConsoleProgress.__call__

    def interrupt(self, i, J):
        real_call(self, i, J)
        if i == 200:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.ConsoleProgress, "__call__", interrupt)
    code, out, err = run(
        capsys, "train", "--backend", "numpy", "--iterations", "100000", "--cost-every", "100", "--out", saved
    )
    assert code == 130
    assert err.strip() == (
        f"dlcore: interrupted after iteration 200; the current parameters were saved to {saved}"
    )
    assert "accuracy" not in out and os.listdir(tmp_path) == ["model.npz"]
    loaded = Network.load(saved, backend="numpy")
    assert loaded.info["interrupted"] is True
    # oracle: the same pipeline by hand, trained for exactly 200 iterations
    be = get_backend("numpy")
    X, Y = load_dataset("planar", be, seed=1)
    Xtr, Ytr, _, _ = train_test_split(X, Y, 0.2, be, seed=1)
    ref = Network([2, 4, 1], "tanh", init="small", backend=be, seed=1)
    ref.fit(Normalization.fit(Xtr, be).apply(Xtr, be), Ytr, 1.2, 200)
    for k, v in ref.parameters_numpy().items():
        np.testing.assert_array_equal(loaded.parameters_numpy()[k], v)
    np.testing.assert_allclose(
        loaded.predict_proba(X), ref.predict_proba(Normalization.fit(Xtr, be).apply(X, be))
    )


def test_ctrl_c_without_out_saves_nothing(capsys, monkeypatch):
    def interrupt(self, i, J):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.ConsoleProgress, "__call__", interrupt)
    code, _, err = run(capsys, "train", "--backend", "numpy", "--iterations", "50")
    assert code == 130 and "nothing was saved (give --out FILE" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_middle_of_an_update_saves_whole_updates(capsys, tmp_path, monkeypatch, signum):
    """The signal lands between W1's and b1's Adam updates of update 300: the run stops once update 300
    is done (it once stopped there, saving W1 of update 300 beside b1, W2, b2 of update 299). Oracle: the
    same command for exactly 300 iterations, bit for bit."""
    from dlcore.backends.numpy_backend import NumpyOps

    real, calls = NumpyOps.adam_update, []

    def adam_update(self, *args, **kwargs):
        real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 4 * 299 + 1:  # four parameters an update: the first of update 300
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(NumpyOps, "adam_update", adam_update)
    argv = ["train", "--backend", "numpy", "--optimizer", "adam", "--lr", "0.01", "--cost-every", "100"]
    stopped, whole = tmp_path / "stopped.npz", tmp_path / "whole.npz"
    code, _, err = run(capsys, *argv, "--iterations", "100000", "--out", stopped)
    assert code == (130 if signum == signal.SIGINT else 143), err
    assert "after iteration 300;" in err
    monkeypatch.setattr(NumpyOps, "adam_update", real)
    assert run(capsys, *argv, "--iterations", "300", "--out", whole)[0] == 0
    got, want = Network.load(stopped).parameters_numpy(), Network.load(whole).parameters_numpy()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_a_second_signal_in_the_middle_of_an_update_saves_nothing(capsys, tmp_path, monkeypatch):
    """Two Ctrl-C within update 300 (the second acts at once, between W1's and b1's Adam updates): the
    parameters are part-updated, and the old --out file is kept. It was replaced by W1 of update 300
    beside b1, W2, b2 of update 299, said to be "after iteration 299"."""
    from dlcore.backends.numpy_backend import NumpyOps

    real, calls = NumpyOps.adam_update, []

    def adam_update(self, *args, **kwargs):
        real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) in (4 * 299 + 1, 4 * 299 + 2):  # twice within update 300
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(NumpyOps, "adam_update", adam_update)
    out = tmp_path / "m.npz"
    out.write_bytes(b"an old model")
    argv = ["train", "--backend", "numpy", "--optimizer", "adam", "--iterations", "1000", "--out", out]
    code, _, err = run(capsys, *argv)
    assert code == 130 and len(calls) == 4 * 299 + 2
    assert err.strip() == (
        f"dlcore: interrupted twice, during update 300: its parameters are part-updated, so nothing was "
        f"saved to {out} (one Ctrl-C stops after the update under way and saves)"
    )
    assert out.read_bytes() == b"an old model" and os.listdir(tmp_path) == ["m.npz"]


def test_ctrl_c_before_the_first_update_keeps_the_old_file(capsys, tmp_path, monkeypatch):
    """The initial parameters used to replace the --out file (a trained model) as 'iteration 0'."""

    def interrupt(self, i, J):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.ConsoleProgress, "__call__", interrupt)
    out = tmp_path / "m.npz"
    out.write_bytes(b"an old model")
    code, _, err = run(capsys, "train", "--backend", "numpy", "--iterations", "50", "--out", out)
    assert code == 130
    assert err.strip() == f"dlcore: interrupted before the first update; nothing was saved to {out}"
    assert out.read_bytes() == b"an old model"


@pytest.mark.parametrize("presses", [1, 2])
def test_a_fit_stopped_after_its_last_update_says_how_many_it_made(backend, monkeypatch, presses):
    """Ctrl-C at the final cost check, after the last update: the exception carries the history (the
    held signal acted as the block ended, and carried none), and a second press there cut no update
    short. Within an update, a second press is marked."""

    def press(i, J):
        if i == 20:  # the final check: all 20 updates are done
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)

    net = Network([2, 3, 1], backend=backend, seed=3)
    X, Y = backend.asarray(X_OK), backend.asarray(Y_OK)
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, Y, 0.1, iterations=20, cost_every=10, callback=press)
    assert info.value.history.updates == 20 and info.value.history.iterations == [0, 10, 20]
    assert info.value.mid_update is False if presses == 2 else not hasattr(info.value, "mid_update")

    real, calls = backend.ops.adam_update, []

    def adam_update(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) in (4 * 5 + 1, 4 * 5 + 2):  # twice within update 6: the second acts at once
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(backend.ops, "adam_update", adam_update)
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, Y, 0.01, iterations=20, optimizer="adam")
    assert info.value.mid_update is True and info.value.history.updates == 5 and len(calls) == 22
    monkeypatch.undo()

    # twice in update 6's forward pass: nothing written yet, the parameters are update 5's (it was marked)
    from dlcore import propagation as prop

    real_forward, forwards = prop._forward, []

    def forward(*args, **kwargs):
        forwards.append(1)
        if len(forwards) == 6:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real_forward(*args, **kwargs)

    whole = Network([2, 3, 1], backend=backend, seed=3)
    whole.set_parameters(net.parameters_numpy())
    whole.fit(X, Y, 0.1, iterations=5, cost_every=100, optimizer="momentum")
    monkeypatch.setattr(prop, "_forward", forward)
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, Y, 0.1, iterations=20, cost_every=100, optimizer="momentum")
    assert info.value.mid_update is False and info.value.history.updates == 5
    for name, value in whole.parameters_numpy().items():
        np.testing.assert_array_equal(net.parameters_numpy()[name], value, err_msg=name)


class _UserStop(Exception):
    """What a user's own SIGTERM handler raises."""


def _raise_user_stop(signum, frame):
    raise _UserStop


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_in_the_middle_of_a_fit_update_stops_after_it(backend, monkeypatch, signum):
    """The Python API (no CLI): the signal lands between W1's and b1's Adam updates of update 30;
    ``Network.fit`` raises what the handler raises once update 30 is done (it once raised right there,
    leaving W1 of update 30 beside b1, W2, b2 of update 29). Oracle: a fit of exactly 30 updates, bit for
    bit. SIGTERM goes through the user's own Python handler."""
    previous = signal.signal(signal.SIGTERM, _raise_user_stop)
    try:
        ops, calls = backend.ops, []
        real = ops.adam_update

        def adam_update(*args, **kwargs):
            real(*args, **kwargs)
            calls.append(1)
            if len(calls) == 4 * 29 + 1:  # four parameters an update: the first of update 30
                os.kill(os.getpid(), signum)

        kwargs = {"optimizer": "adam", "cost_every": 10}
        X, Y = backend.asarray(X_OK), backend.asarray(Y_OK)
        stopped = Network([2, 3, 1], backend=backend, seed=3)
        monkeypatch.setattr(ops, "adam_update", adam_update)
        with pytest.raises(KeyboardInterrupt if signum == signal.SIGINT else _UserStop):
            stopped.fit(X, Y, 0.01, iterations=1000, **kwargs)
        monkeypatch.setattr(ops, "adam_update", real)
        assert len(calls) == 4 * 30  # the update under way was finished, and no other began
        whole = Network([2, 3, 1], backend=backend, seed=3)
        whole.fit(X, Y, 0.01, iterations=30, **kwargs)
    finally:
        signal.signal(signal.SIGTERM, previous)
    got, want = stopped.parameters_numpy(), whole.parameters_numpy()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers came back


def test_a_users_handler_that_returns_is_called_once_per_signal(monkeypatch):
    """A script's own SIGINT handler that only takes note ("stop after this run") is called once for one
    Ctrl-C, and the fit goes on to its end (it was called again after every remaining update: 197 times
    for one press, and a "press twice to force" handler forced on the first)."""
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:

        def press(i):
            if i == 5:
                os.kill(os.getpid(), signal.SIGINT)

        history = Network([2, 3, 1], backend="numpy", seed=3).fit(X_OK, Y_OK, 0.1, 200, progress=press)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls == [signal.SIGINT] and history.updates == 200


def test_sigint_to_a_real_training_process_saves_and_exits_130(tmp_path):
    model = tmp_path / "m.npz"
    model.write_bytes(b"an old model")
    # the default SIGINT handler, in case this test runs under a shell that ignores SIGINT in the background
    code = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    code += "from dlcore.cli import main; sys.exit(main())"
    argv = [
        "train",
        "--backend",
        "numpy",
        "--iterations",
        "50000000",
        "--cost-every",
        "200",
        "--out",
        str(model),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:  # wait until training has started
            if line.startswith("iteration"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    said = re.fullmatch(
        rf"dlcore: interrupted after iteration (\d+); "
        rf"the current parameters were saved to {re.escape(str(model))}\n",
        err,
    )
    assert said, err
    loaded = Network.load(model)  # a whole, loadable model, not the old bytes
    assert loaded.layer_dims == [2, 4, 1] and loaded.info["interrupted"] is True
    assert loaded.info["iterations"] == int(said.group(1))  # the updates made, not the last cost check
    assert all(np.all(np.isfinite(v)) for v in loaded.parameters_numpy().values())
    assert os.listdir(tmp_path) == ["m.npz"]


# -- files: atomic saves, unwritable places, damaged models ----------------------------------------
class _DyingFile:
    """Wraps a file object: write() puts down half of the bytes, then raises ``exc``."""

    def __init__(self, f, exc: BaseException):
        self._f, self._exc = f, exc

    def write(self, data) -> int:
        data = bytes(data)
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise self._exc

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


@pytest.mark.parametrize(
    ("exc", "expected", "pattern"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device"),
            OSError,
            r"the disk is full .*previous file is unchanged",
        ),
        (KeyboardInterrupt(), KeyboardInterrupt, None),
        (
            OSError(errno.EIO, "Input/output error"),
            OSError,
            r"Input/output error; the previous file is unchanged",
        ),
    ],
    ids=["disk full", "killed", "I/O error"],
)
def test_a_save_killed_half_way_leaves_the_old_file_and_no_temp_file(
    saved, monkeypatch, exc, expected, pattern
):
    before = saved.read_bytes()
    real_fdopen = storage.os.fdopen
    monkeypatch.setattr(storage.os, "fdopen", lambda *a, **k: _DyingFile(real_fdopen(*a, **k), exc))
    net = Network([2, 7, 1], backend="numpy", seed=9)
    with pytest.raises(expected, match=pattern):
        net.save(saved)
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == ["model.npz"]


@pytest.mark.parametrize(
    ("target", "err", "pattern"),
    [
        ("replace", PermissionError(errno.EACCES, "Permission denied"), r"read-only or not yours"),
        ("mkstemp", PermissionError(errno.EACCES, "Permission denied"), r"read-only or not yours"),
        ("mkstemp", OSError(errno.EROFS, "Read-only file system"), r"read-only or not yours"),
        ("replace", OSError(errno.ENOSPC, "No space left on device"), r"the disk is full"),
    ],
)
def test_unwritable_or_full_directory_is_a_clear_error_and_the_old_file_stays(
    saved, monkeypatch, target, err, pattern
):
    before = saved.read_bytes()

    def fail(*args, **kwargs):
        raise err

    if target == "replace":
        monkeypatch.setattr(storage.os, "replace", fail)
    else:
        monkeypatch.setattr(storage.tempfile, "mkstemp", fail)
    with pytest.raises(
        OSError, match=rf"cannot write .*model\.npz: .*{pattern}.*; the previous file is unchanged"
    ) as info:
        Network([2, 3, 1], backend="numpy").save(saved)
    assert info.value.errno == err.errno
    assert saved.read_bytes() == before and os.listdir(saved.parent) == ["model.npz"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only dirs")
def test_a_really_read_only_directory(tmp_path, saved):
    before = saved.read_bytes()
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(OSError, match=r"read-only or not yours"):
            Network([2, 3, 1], backend="numpy").save(saved)
    finally:
        os.chmod(tmp_path, 0o755)
    assert saved.read_bytes() == before


def test_cli_refuses_an_unwritable_out_directory_before_training(capsys, saved, monkeypatch):
    before = saved.read_bytes()
    monkeypatch.setattr(cli_module.os, "access", lambda path, mode: False)
    code, out, err = run(capsys, "train", "--backend", "numpy", "--iterations", "5", "--out", saved)
    assert_one_line_error(code, err, r"--out .*model\.npz: the directory .* is not writable")
    assert "iteration" not in out and saved.read_bytes() == before


def test_cli_rescues_the_trained_model_when_saving_fails(capsys, tmp_path, saved, monkeypatch):
    """The disk fills up after training: the old file stays, and the new model goes to the temp directory."""
    before = saved.read_bytes()
    rescue_dir = tmp_path / "tmp"
    rescue_dir.mkdir()
    monkeypatch.setattr(cli_module.tempfile, "gettempdir", lambda: str(rescue_dir))
    real_replace = storage.os.replace

    def replace(src, dst):
        if Path(dst) == saved:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace)
    code, out, err = run(capsys, "train", "--backend", "numpy", "--iterations", "30", "--out", saved)
    assert_one_line_error(code, err, r"the disk is full .*; the trained model was saved to .*dlcore-rescued-")
    assert "train accuracy" in out and saved.read_bytes() == before
    (rescued,) = rescue_dir.iterdir()
    assert str(rescued) in err and Network.load(rescued).info["iterations"] == 30


def test_cli_rescues_the_model_when_the_out_directory_went_away(capsys, tmp_path, monkeypatch):
    """The --out directory, checked before training, removed (or replaced by a file) while training ran:
    the save's ValueError lost the trained model (only an OSError was rescued)."""
    rescue_dir = tmp_path / "tmp"
    rescue_dir.mkdir()
    monkeypatch.setattr(cli_module.tempfile, "gettempdir", lambda: str(rescue_dir))
    monkeypatch.setattr(cli_module.storage, "check_writable", lambda path, flag: None)  # it was there then
    out_path = tmp_path / "gone" / "m.npz"
    code, out, err = run(capsys, "train", "--backend", "numpy", "--iterations", "30", "--out", str(out_path))
    pattern = r"the directory .*gone does not exist; create it first; the trained model was saved to "
    assert_one_line_error(code, err, pattern + r".*dlcore-rescued-\d+-m\.npz instead")
    (rescued,) = rescue_dir.iterdir()
    assert Network.load(rescued).info["iterations"] == 30


def test_a_long_file_name_saves_and_its_stale_temporaries_are_found(tmp_path, capsys, monkeypatch):
    """A legal name of 240 bytes: the temporary's name (~20 bytes longer) was too long, so the save failed
    after training, and the rescue's longer name too."""
    name = "m" * 236 + ".npz"
    path = tmp_path / name
    path.touch()  # the name itself is legal here
    code, out, err = run(capsys, "train", "--backend", "numpy", "--iterations", "5", "--out", str(path))
    assert code == 0, err
    assert Network.load(path).info["iterations"] == 5
    stale = tmp_path / f".{storage._temporary_stem(name)}.999999999.abcdefgh.tmp"  # of a dead writer
    stale.write_bytes(b"partial")
    assert storage.remove_stale_temporaries(path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_path_naming_an_open_descriptor_is_written_into_it(tmp_path):
    """/dev/fd/N (or /dev/stdout) of a log opened to append: the save reopened the file, truncating it or
    renaming a new one over it, and the log's earlier lines were lost."""
    if not Path("/dev/fd").is_dir():
        pytest.skip("no /dev/fd on this system")
    log = tmp_path / "log"
    log.write_text("line A\n")
    inode = log.stat().st_ino
    with open(log, "a") as f:
        f.write("before\n")
        f.flush()
        storage.write_text_atomic(f"/dev/fd/{f.fileno()}", lambda out: out.write("written\n"))
        f.write("after\n")
    assert log.read_text() == "line A\nbefore\nwritten\nafter\n" and log.stat().st_ino == inode
    read_only = os.open(log, os.O_RDONLY)
    try:
        refused = rf"^--out /dev/fd/{read_only}: descriptor {read_only} is not open for writing"
        with pytest.raises(ValueError, match=refused):
            storage.check_writable(f"/dev/fd/{read_only}", "--out")
    finally:
        os.close(read_only)
    huge = "/dev/fd/99999999999999999999"  # was OverflowError: Python int too large to convert to C int
    with pytest.raises(ValueError, match=rf"^--out {huge}: descriptor \d+ is not open for writing"):
        storage.check_writable(huge, "--out")
    with pytest.raises(OSError, match=rf"^cannot write {huge}: Bad file descriptor$"):
        storage.write_text_atomic(huge, lambda out: out.write("x"))


def test_train_refuses_to_write_its_model_amid_its_progress_on_stdout(capsys):
    """train --out /dev/stdout > m.npz wrote the progress lines, the model and "model saved" into one file
    that loaded as "holds Python objects"."""
    for name in ("/dev/stdout", "/dev/fd/1"):
        code, out, err = run(capsys, "train", "--backend", "numpy", "--iterations", "5", "--out", name)
        assert_one_line_error(
            code, err, rf"--out {name}: train prints its progress on stdout; give the model"
        )
        assert "iteration" not in out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_model_files_are_refused_or_read_exactly(tmp_path_factory, data):
    """Any flipped byte or cut: a ValueError naming the file, or (a flip in an unchecked field such as a
    timestamp) the very same parameters. Never another exception, never different weights."""
    tmp = tmp_path_factory.mktemp("flip")
    net = Network([3, 4, 1], "leaky_relu:0.1", backend="numpy", seed=5)
    net.save(tmp / "good.npz")
    good = (tmp / "good.npz").read_bytes()
    raw = bytearray(good)
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            at = data.draw(st.integers(0, len(raw) - 1), label="offset")
            raw[at] ^= data.draw(st.integers(1, 255), label="mask")
    bad = tmp / "bad.npz"
    bad.write_bytes(bytes(raw))
    try:
        loaded = Network.load(bad, backend="numpy")
    except ValueError as exc:
        assert "bad.npz" in str(exc) and "\n" not in str(exc)
        return
    assert loaded.layer_dims == [3, 4, 1]
    for k, v in net.parameters_numpy().items():
        np.testing.assert_array_equal(loaded.parameters_numpy()[k], v)


@pytest.mark.parametrize("offset", [0, 30, 60, 200, -30, -5])
def test_fixed_byte_flips_in_a_model_are_refused(tmp_path, offset):
    net = Network([3, 4, 1], backend="numpy", seed=5)
    net.save(tmp_path / "m.npz")
    raw = bytearray((tmp_path / "m.npz").read_bytes())
    raw[offset] ^= 0xFF
    (tmp_path / "m.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"m\.npz"):
        Network.load(tmp_path / "m.npz")


# -- a loaded model normalizes its input itself ----------------------------------------------------
def test_a_cli_trained_model_predicts_from_raw_data(capsys, tmp_path, backend):
    path = tmp_path / "m.npz"
    code, _, err = run(
        capsys, "train", "--backend", "numpy", "--dataset", "moons", "--iterations", "200", "--out", path
    )
    assert code == 0, err
    net = Network.load(path, backend=backend)
    assert net.normalization is not None
    X, Y = load_dataset("moons", backend, seed=1)  # raw features, as in the data file
    got = to_host(backend, net.predict_proba(X))
    # oracle: the same weights without a normalization, fed normalized data by hand
    bare = Network.load(path, backend=backend)
    norm, bare.normalization = bare.normalization, None
    Xn = norm.apply(X, backend)
    np.testing.assert_allclose(got, to_host(backend, bare.predict_proba(Xn)), rtol=1e-12)
    np.testing.assert_array_equal(to_host(backend, net.predict(X)), to_host(backend, bare.predict(Xn)))
    assert net.accuracy(X, Y) == bare.accuracy(Xn, Y) > 0.8
    assert net.cost(X, Y) == pytest.approx(bare.cost(Xn, Y), rel=1e-12)
    # and what dlcore predict writes is the same
    code, _, err = run(capsys, "predict", "--model", path, "--data", "moons", "--out", tmp_path / "p.csv")
    assert code == 0, err
    column = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=1)
    np.testing.assert_allclose(column, got[0], rtol=1e-12)


def test_a_network_with_a_normalization_trains_on_raw_data(backend):
    be = backend
    X, Y = planar(be, m=80)
    norm = Normalization.fit(X, be)
    carrying = Network([2, 4, 1], "tanh", init="small", backend=be, seed=1)
    carrying.normalization = norm
    carrying.fit(X, Y, 1.2, 50)
    bare = Network([2, 4, 1], "tanh", init="small", backend=be, seed=1)
    bare.fit(norm.apply(X, be), Y, 1.2, 50)
    for k, v in bare.parameters_numpy().items():
        np.testing.assert_allclose(carrying.parameters_numpy()[k], v, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("data_parallel", [False, True], ids=["one process", "one rank"])
def test_an_error_in_a_threaded_fit_carries_no_signal_context(data_parallel):
    """Outside the main thread no handler is touched, and an error raised by the fit is not chained to
    the "signal only works in main thread" ValueError (tracebacks read "During handling of the above
    exception, another exception occurred"): one process's handlers and the data-parallel ones alike."""
    import threading

    from dlcore.backends.comm import SingleProcess

    caught = []
    comm = SingleProcess() if data_parallel else None

    def fit():
        try:
            Network([2, 3, 1], backend="numpy").fit(
                X_OK, Y_OK, 1e6, 50, divergence_factor=2.0, cost_every=1, comm=comm
            )
        except TrainingDiverged as exc:
            caught.append(exc)

    thread = threading.Thread(target=fit)
    thread.start()
    thread.join()
    assert len(caught) == 1 and caught[0].__context__ is None
