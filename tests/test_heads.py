"""Output heads (regression with identity + MSE especially), task inference, one meaning of History on
every path of the one training loop, and no import circles in dlcore/."""

from __future__ import annotations

import ast
import contextlib
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from array_api_compat import array_namespace

import dlcore
from dlcore import Network
from dlcore.activations import Activation
from dlcore.cli import main
from dlcore.heads import HEADS, BinaryCrossEntropy, Head, MeanSquaredError, head_for
from dlcore.metrics import rmse
from dlcore.model import infer_task
from tests.conftest import numeric_gradients, to_host


def _hard_sigmoid(order: int, Z, A=None):
    """clip(Z / 4 + 1/2, 0, 1) (order 0) and its derivative 1/4 inside, 0 outside (order 1)."""
    xp = array_namespace(Z)
    if order == 0:
        return xp.clip(Z / 4.0 + 0.5, 0.0, 1.0)
    return xp.astype(xp.abs(Z) < 2.0, Z.dtype) / 4.0


def _regression_data(backend, dtype, rng, m=200, n_y=1):
    Xh = rng.uniform(-2, 2, size=(2, m))
    Yh = np.vstack([np.sin(Xh[0]) + 0.5 * Xh[1] ** 2 + k for k in range(n_y)])  # (n_y, m)
    return Xh, Yh, backend.asarray(Xh, dtype=dtype), backend.asarray(Yh, dtype=dtype)


def test_mse_cost_and_gradient_against_closed_form_and_finite_differences(backend, host_rng):
    _, Yh, X, Y = _regression_data(backend, "float64", host_rng, m=12, n_y=2)
    net = Network([2, 5, 2], "tanh", "linear", init="xavier", backend=backend, seed=3)
    assert isinstance(net.head, MeanSquaredError) and net.task == "regression"
    AL = to_host(backend, net.predict_proba(X))
    assert net.cost(X, Y) == pytest.approx(np.sum((AL - Yh) ** 2) / (2 * 12), rel=1e-12)
    AL_d, caches = dlcore.forward(X, net.params, net.activations)
    grads = {k: to_host(backend, v) for k, v in dlcore.backward(AL_d, Y, caches, net.activations).items()}
    for k, g in _numeric(backend, X, Y, net.params, net.activations).items():
        np.testing.assert_allclose(grads[k], g, rtol=1e-6, atol=1e-9)


def _numeric(backend, X, Y, params, acts) -> dict:
    """Float64 finite differences of the functional API's cost (forward, then cost) at ``params``."""

    def cost_of(host_params):
        _, caches = dlcore.forward(X, {k: backend.asarray(v) for k, v in host_params.items()}, acts)
        return float(dlcore.cost(caches, Y, acts))

    return numeric_gradients(cost_of, backend, params)


def test_regression_network_fits_and_reports_r2(backend, dtype, host_rng):
    Xh, Yh, X, Y = _regression_data(backend, dtype, host_rng)
    net = Network.for_data(X, Y, [2, 16, 1], "tanh", init="xavier", backend=backend, seed=0, dtype=dtype)
    assert net.task == "regression" and net.activations[-1].name == "linear"
    before = net.score(X, Y)
    history = net.fit(X, Y, learning_rate=0.05, epochs=200, batch_size=50, optimizer="adam")
    r2 = net.score(X, Y)
    A = to_host(backend, net.predict(X))  # regression predictions are the values themselves
    expected = 1 - np.sum((Yh - A) ** 2) / np.sum((Yh - Yh.mean()) ** 2)
    assert r2 == pytest.approx(expected, rel=1e-3 if dtype == "float32" else 1e-9)
    assert r2 > 0.9 > before and history.costs[-1] < 0.2 * history.costs[0]
    with pytest.raises(ValueError, match="accuracy is for classifiers"):
        net.accuracy(X, Y)


@pytest.mark.parametrize(
    ("Y", "task", "n_out"),
    [
        ([[0, 1, 1, 0]], "binary", 1),
        ([[0, 2, 1, 2]], "multiclass", 3),
        ([[0.5, 1.5, -2.0, 0.0]], "regression", 1),
        ([[-1, 1, 1, -1]], "regression", 1),  # negative values are no class labels
        ([[1, 0, 0, 0], [0, 1, 1, 1]], "multiclass", 2),  # one-hot columns
        ([[1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.4]], "regression", 2),
    ],
)
def test_task_is_inferred_from_the_labels(Y, task, n_out):
    svm_style = Y == [[-1, 1, 1, -1]]  # taken as regression, with a warning saying how to mean labels
    with pytest.warns(UserWarning, match=r"-1 and \+1") if svm_style else contextlib.nullcontext():
        assert infer_task(np.asarray(Y, dtype=float), dlcore.get_backend("numpy")) == (task, n_out)


def test_for_data_checks_layer_sizes_against_the_data():
    X, Y = np.ones((3, 4)), np.asarray([[0, 2, 1, 2]])
    assert Network.for_data(X, Y, backend="numpy").layer_dims == [3, 64, 3]
    with pytest.raises(ValueError, match=r"layers start with 2 but the data has n_x = 3 features; use 3,8,3"):
        Network.for_data(X, Y, [2, 8, 3], backend="numpy")
    with pytest.raises(ValueError, match=r"layers must end with 3 \(one softmax output per class"):
        Network.for_data(X, Y, [3, 8, 1], backend="numpy")
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        Network.for_data(X, Y, task="ranking", backend="numpy")


def test_for_data_refuses_no_examples_and_infinite_labels_alike_on_every_backend(backend):
    """m = 0 failed in the library's max (numpy's 'zero-size array', torch's RuntimeError), an inf label
    as an OverflowError (int(inf) classes), on every backend."""
    X = backend.asarray(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"^X has no examples \(shape \(3, 0\), m = 0\); pass at least"):
        Network.for_data(X[:, :0], backend.asarray(np.zeros((1, 0))), backend=backend)
    for bad in (np.inf, np.nan):
        with pytest.raises(ValueError, match=r"^Y contains NaN or inf; clean or impute them first$"):
            Network.for_data(X, backend.asarray(np.asarray([[0.0, 1.0, 2.0, bad]])), backend=backend)


def test_regression_from_the_cli_reports_r2_and_predicts_values(tmp_path, capsys, host_rng):
    Xh = host_rng.uniform(-2, 2, size=(300, 2))
    y = np.sin(Xh[:, 0]) + Xh[:, 1]
    data = tmp_path / "r.csv"
    data.write_text(
        "a,b,y\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(Xh.tolist(), y.tolist(), strict=True))
    )
    model = tmp_path / "r.npz"
    argv = ["train", "--dataset", str(data), "--backend", "numpy", "--layers", "2,16,1", "--optimizer",
            "adam", "--lr", "0.02", "--epochs", "200", "--batch-size", "32", "--out", str(model)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "regression" in out and "accuracy" not in out
    r2 = float(re.search(r"^test R\^2: (-?\d\.\d+), RMSE", out, re.M).group(1))
    assert r2 > 0.9
    assert main(["predict", "--model", str(model), "--data", str(data)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "index,prediction,true_label" and len(lines) == 301
    predicted = np.array([float(line.split(",")[1]) for line in lines[1:]])
    assert 1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2) > 0.9
    assert "R^2: 0.9" in captured.err


def test_a_float32_model_predicts_in_float32_digits_and_echoes_the_labels_as_written(tmp_path, capsys):
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (40, 2))
    text = [f"{t:.6g}" for t in X @ [0.3, 0.7] + 0.1]
    data = tmp_path / "r.csv"
    data.write_text("".join(f"{a!r},{b!r},{t}\n" for (a, b), t in zip(X.tolist(), text, strict=True)))
    model = tmp_path / "r.npz"
    argv = ["train", "--dataset", str(data), "--backend", "numpy", "--task", "regression", "--dtype",
            "float32", "--no-normalize", "--iterations", "50", "--quiet", "--out", str(model)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--data", str(data), "--backend", "numpy"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()[1:]]
    # was 0.4799390137195587 for 0.479939: the float32 the file was read into, printed as a float64
    assert [true for _, _, true in rows] == text
    net = Network.load(model, "numpy")
    expected = net.predict_proba(np.asarray(X.T, dtype=np.float32))[0]
    assert [p for _, p, _ in rows] == [str(v) for v in expected]  # float32's shortest repr, exact
    assert all(np.float32(p) == v for (_, p, _), v in zip(rows, expected, strict=True))


#: an output activation of one's own with values in (0, 1): the course's general head
HARD_SIGMOID = Activation("hard_sigmoid", partial(_hard_sigmoid, 0), partial(_hard_sigmoid, 1))


def test_heads_are_found_by_the_output_activation():
    for name, head in HEADS.items():
        assert head_for(dlcore.get_activation(name)) is head
    assert head_for(HARD_SIGMOID).name == "probability"


@pytest.mark.parametrize("name", ["tanh", "relu", "leaky_relu:0.2"])
def test_an_output_that_is_no_probability_is_refused(backend, name):
    """tanh, ReLU and leaky ReLU outputs leave (0, 1): the cost was clipped into a finite number while the
    gradient was NaN (ReLU) or not the cost's (tanh), and training went to NaN."""
    X, Y = dlcore.datasets.planar(backend, m=20)
    params = dlcore.initialize_parameters([2, 3, 1], "xavier", backend, 0, "float64")
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation(name)]
    with pytest.raises(ValueError, match=rf"output activation '{name.split(':')[0]}' gives values outside"):
        dlcore.train_step(X, Y, params, acts, 0.1)


def test_the_general_head_matches_finite_differences_and_stays_finite_when_saturated(backend, host_rng):
    """The course's dA[L] = -(Y/A - (1-Y)/(1-A)) through g' of an activation of one's own: the gradient
    of its cost (float64 finite differences), and finite where A reaches exactly 0 or 1 (clipped as the
    cost clips it; a division by zero before)."""
    X = backend.asarray(host_rng.standard_normal((2, 12)) * 0.3)
    Y = backend.asarray((host_rng.random((1, 12)) > 0.5) * 1.0)
    params = dlcore.initialize_parameters([2, 3, 1], "xavier", backend, 4, "float64")
    acts = [dlcore.get_activation("tanh"), HARD_SIGMOID]
    AL, caches = dlcore.forward(X, params, acts)
    grads = dlcore.backward(AL, Y, caches, acts)
    for k, v in _numeric(backend, X, Y, params, acts).items():
        np.testing.assert_allclose(to_host(backend, grads[k]), v, rtol=1e-6, atol=1e-9)
    saturated = {k: v * 100.0 for k, v in params.items()}  # hard sigmoid outputs exactly 0 or 1
    AL, caches = dlcore.forward(X * 100.0, saturated, acts)
    assert set(np.unique(to_host(backend, AL))) <= {0.0, 1.0}
    grads = dlcore.backward(AL, Y, caches, acts)
    assert all(np.all(np.isfinite(to_host(backend, g))) for g in grads.values())


def test_r2_averages_the_outputs_as_scikit_learn_does(backend, host_rng):
    """One R^2 per output, averaged: pooled over outputs, a target on a large scale hid a poorly fitted
    small one (0.99 against scikit-learn's 0.75). A constant output scores 1 if matched exactly, else 0."""
    metrics = pytest.importorskip("sklearn.metrics")
    Yh = np.stack([host_rng.standard_normal(40), 100.0 * host_rng.standard_normal(40)])
    Ah = Yh + np.stack([0.7 * host_rng.standard_normal(40), host_rng.standard_normal(40)])
    got = dlcore.r2_score(backend.asarray(Ah), backend.asarray(Yh))
    assert got == pytest.approx(metrics.r2_score(Yh.T, Ah.T), rel=1e-12)
    assert got < 0.9 < metrics.r2_score(Yh.T, Ah.T, multioutput="variance_weighted")
    flat = np.stack([Yh[0], np.full(40, 3.0)])
    first = metrics.r2_score(Yh[0], Ah[0])
    for second, want in ((np.full(40, 3.0), 1.0), (np.full(40, 3.5), 0.0)):
        A = backend.asarray(np.stack([Ah[0], second]))
        assert dlcore.r2_score(A, backend.asarray(flat)) == pytest.approx((first + want) / 2, rel=1e-12)


def test_r2_of_integer_arrays_on_every_backend(backend):
    """Integer predictions or targets: numpy gave 0.7857, torch and array_api_strict raised from the mean."""
    A, Y = backend.asarray([[1, 2, 3]], dtype="int64"), backend.asarray([[1, 2, 4]], dtype="int64")
    closed_form = pytest.approx(1 - 1 / (14 / 3), rel=1e-15)  # residual 1, spread 14/3
    assert dlcore.r2_score(A, Y) == closed_form
    assert dlcore.r2_score(backend.asarray([[1.0, 2.0, 3.0]]), Y) == closed_form


@pytest.mark.parametrize(
    ("metric", "shapes", "message"),
    [
        # (3, m) against (1, m) broadcast into a score above 1; (m, 1) columns scored 3.0
        (dlcore.accuracy, [(3, 4), (1, 4)], r"both be \(1, m\); got \(3, 4\) and \(1, 4\): pass rows"),
        (dlcore.accuracy, [(4, 1), (4, 1)], r"both be \(1, m\); got \(4, 1\) and \(4, 1\): pass rows"),
        (dlcore.accuracy, [(4,), (4,)], r"both be \(1, m\); got \(4,\) and \(4,\): pass rows"),
        (dlcore.accuracy, [(1, 4), (1, 3)], r"both be \(1, m\); got \(1, 4\) and \(1, 3\)$"),
        # (1, m) against (m, 1) broadcast to (m, m): R^2 0.0 for a fit of 0.985
        (dlcore.r2_score, [(1, 4), (4, 1)], r"both be \(n_y, m\); got \(1, 4\) and \(4, 1\)"),
        (rmse, [(2, 4), (1, 4)], r"both be \(n_y, m\); got \(2, 4\) and \(1, 4\)"),
        (lambda a, b: dlcore.confusion_matrix(a, b, 2), [(1, 4), (1, 3)], r"\(1, 4\) and \(1, 3\)"),
        # no examples: a ZeroDivisionError (accuracy, RMSE), R^2 1.0
        (
            dlcore.accuracy,
            [(1, 0), (1, 0)],
            r"^accuracy of no examples \(m = 0\) is undefined; predictions and",
        ),
        (
            dlcore.r2_score,
            [(1, 0), (1, 0)],
            r"^R\^2 of no examples \(m = 0\) is undefined; predictions A and",
        ),
        (rmse, [(2, 0), (2, 0)], r"^RMSE of no examples \(m = 0\) is undefined; predictions A and targets Y"),
    ],
)
def test_metrics_refuse_arrays_of_other_shapes(backend, metric, shapes, message):
    a, b = (backend.asarray(np.zeros(shape), dtype="int64") for shape in shapes)
    with pytest.raises(ValueError, match=message):
        metric(a, b)


@pytest.mark.parametrize("label", [2, -1])
def test_the_confusion_matrix_refuses_labels_outside_the_classes(backend, label):
    """An example whose label or prediction is no class was left out of the counts."""
    labels = backend.asarray([[0, label, 1]], dtype="int64")
    right = backend.asarray([[0, 1, 1]], dtype="int64")
    for a, b in ((labels, right), (right, labels)):
        with pytest.raises(ValueError, match=r"class indices in 0 \.\. 1$"):
            dlcore.confusion_matrix(a, b, 2)
    assert backend.to_numpy(dlcore.confusion_matrix(right, right, 2)).tolist() == [[1, 0], [0, 2]]


def test_labels_that_are_no_whole_numbers_are_not_truncated_into_classes(backend):
    """Both cast the labels to integers first: labels 1.7, 2.9, -0.5 became classes 1, 2, 0, so a
    prediction of 1 for 1.7 scored as right and the confusion matrix came out a perfect diagonal."""
    predicted = backend.asarray([[0, 1, 2, 0]], dtype="int64")
    labels = backend.asarray([[0.0, 1.7, 2.9, -0.5]], dtype="float64")
    assert dlcore.accuracy(predicted, labels) == 0.25
    assert dlcore.accuracy(predicted, backend.asarray([[0.0, 1.0, 2.0, 1.0]], dtype="float64")) == 0.75
    with pytest.raises(ValueError, match=r"class indices in 0 \.\. 2$"):
        dlcore.confusion_matrix(labels, predicted, 3)
    # booleans are classes 0 and 1 (an arange in bool was [False, True, True]: torch counted class 2)
    flags = backend.asarray([[True, False, True]], dtype="bool")
    assert backend.to_numpy(dlcore.confusion_matrix(flags, flags, 3)).tolist() == [
        [1, 0, 0],
        [0, 2, 0],
        [0, 0, 0],
    ]


def test_the_one_hot_hint_trains_on_every_backend(backend, host_rng):
    """Integer labels for a softmax net in the functional API: the error's hint, followed as written,
    gives targets every backend trains on (a bool one-hot failed on torch and array_api_strict)."""
    X = backend.asarray(host_rng.standard_normal((2, 9)))
    labels = backend.asarray(host_rng.integers(0, 3, size=(1, 9)), dtype="int64")
    params = dlcore.initialize_parameters([2, 4, 3], "xavier", backend, 1, "float64")
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation("softmax")]
    AL, caches = dlcore.forward(X, params, acts)
    with pytest.raises(ValueError, match=r"dlcore\.one_hot\(Y, 3, W1\.dtype\)") as info:
        dlcore.backward(AL, labels, caches, acts)
    Y = eval(
        re.search(r"dlcore\.one_hot\(.*\)", str(info.value)).group(0),
        {"dlcore": dlcore, "Y": labels, "W1": params["W1"]},
    )
    J = dlcore.train_step(X, Y, params, acts, 0.1)
    assert np.isfinite(float(J))


# -- one loop, one History ------------------------------------------------------------------------
def test_history_means_the_same_on_the_full_batch_and_the_general_path(backend):
    """Plain gradient descent and the same run through mini-batch machinery (batch = m, L2 = 0, an
    Optimizer object) record the same iterations and costs, and the callback sees exactly those."""
    X, Y = dlcore.datasets.planar(backend, m=80)
    plain = Network([2, 4, 1], "tanh", backend=backend, seed=2)
    seen = []
    h1 = plain.fit(
        X, Y, learning_rate=0.5, iterations=10, cost_every=5, callback=lambda i, J: seen.append((i, J))
    )
    general = Network([2, 4, 1], "tanh", backend=backend, seed=2)
    h2 = general.fit(X, Y, learning_rate=0.5, iterations=10, cost_every=5, batch_size=80,
                     optimizer=dlcore.GradientDescent(0.5))  # fmt: skip
    assert h1.iterations == h2.iterations == [0, 5, 10]
    assert h1.costs == h2.costs and seen == list(zip(h1.iterations, h1.costs, strict=True))
    assert h1.costs[-1] == pytest.approx(general.cost(X, Y), rel=1e-12)  # J after the last update


# -- module structure -------------------------------------------------------------------------------
def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):  # function-level imports count too
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


class _Huber(Head):
    """A head of one's own (ARCHITECTURE.md): a linear output with the Huber loss (delta 1)."""

    name = "huber"
    task = "regression"
    activation = dlcore.get_activation("linear")

    def cost(self, Z, A, Y):
        xp = array_namespace(A)
        r = xp.abs(A - Y)
        return xp.sum(xp.where(r <= 1.0, 0.5 * r * r, r - 0.5)) / A.shape[1]

    def output_gradient(self, Z, A, Y, scale, ops):
        return array_namespace(A).clip(A - Y, -1.0, 1.0) * (scale / A.shape[1])


class _Weighted(BinaryCrossEntropy):
    """A built-in head's subclass with its own loss: positives weigh 5x."""

    def cost(self, Z, A, Y):
        xp = array_namespace(Z)
        loss = xp.maximum(Z, 0.0) - Y * Z + xp.log1p(xp.exp(-xp.abs(Z)))
        return xp.sum((1.0 + 4.0 * Y) * loss) / Z.shape[1]

    def output_gradient(self, Z, A, Y, scale, ops):
        return (1.0 + 4.0 * Y) * (A - Y) * (scale / A.shape[1])


@pytest.mark.parametrize("head", [_Huber(), _Weighted()], ids=["Head", "BinaryCrossEntropy"])
def test_a_heads_own_cost_and_gradient_are_used_by_every_backend(backend, head, host_rng):
    """numpy's and torch's ops put their fused binary cost and (A - Y)/m in place of a head's own methods
    (a flag inherited from Head, and the name "binary" inherited from BinaryCrossEntropy)."""
    Xh = host_rng.standard_normal((3, 7))
    Yh = 2.0 * Xh[:1] if head.task == "regression" else (Xh[:1] > 0.3) * 1.0
    X, Y = backend.asarray(Xh, dtype="float64"), backend.asarray(Yh, dtype="float64")
    acts = [dlcore.get_activation("tanh"), head.activation]
    params = dlcore.initialize_parameters([3, 4, 1], "xavier", backend, 2, "float64")
    AL, caches = dlcore.forward(X, params, acts)
    assert float(dlcore.cost(caches, Y, acts, head=head)) == pytest.approx(
        float(head.cost(caches[-1].Z, AL, Y)), rel=1e-14
    )

    def cost_of(host_params):  # the head's own cost, called directly
        _, cs = dlcore.forward(X, {k: backend.asarray(v) for k, v in host_params.items()}, acts)
        return float(head.cost(cs[-1].Z, cs[-1].A, Y))

    grads = dlcore.backward(AL, Y, caches, acts, head=head)
    for k, g in numeric_gradients(cost_of, backend, params).items():
        np.testing.assert_allclose(to_host(backend, grads[k]), g, rtol=1e-6, atol=1e-9)
    assert not head.residual_gradient and not head.logit_cross_entropy
    assert HEADS["linear"].residual_gradient and HEADS["sigmoid"].logit_cross_entropy


def test_a_head_class_given_for_a_head_object_is_refused_on_every_backend(backend):
    """MeanSquaredError (the class) has truthy properties: numpy and torch computed binary cross-entropy
    under its name (0.5368 where the squared error was 0.0870), array_api_strict raised a TypeError."""
    from dlcore.heads import MeanSquaredError

    X, Y = backend.asarray(np.ones((3, 5))), backend.asarray(np.zeros((1, 5)))
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation("linear")]
    params = dlcore.initialize_parameters([3, 4, 1], "xavier", backend, 2, "float64")
    AL, caches = dlcore.forward(X, params, acts)
    refused = (
        r"^head must be a dlcore\.heads\.Head object or None; got <class .*MeanSquaredError'>: an instance"
    )
    with pytest.raises(ValueError, match=refused):
        dlcore.cost(caches, Y, acts, head=MeanSquaredError)
    with pytest.raises(ValueError, match=refused):
        dlcore.backward(AL, Y, caches, acts, head=MeanSquaredError)
    plan = dlcore.Plan.of(5, None, 2, None)
    with pytest.raises(ValueError, match=refused):
        dlcore.train(
            params, acts, X, Y, optimizer=dlcore.GradientDescent(0.1), plan=plan, head=MeanSquaredError
        )
    assert float(dlcore.cost(caches, Y, acts, head=MeanSquaredError())) == pytest.approx(
        float(backend.xp.sum(AL * AL)) / (2 * 5), rel=1e-12
    )  # the half mean squared error, (1 / 2m) sum (A - Y)^2


def test_no_import_circles_in_the_core():
    root = Path(dlcore.__file__).parent
    modules = {f"dlcore.{p.stem}": p for p in root.glob("*.py") if p.stem != "__init__"}
    graph = {name: {m for m in _imports_of(path) if m in modules} for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError(f"import circle: {' -> '.join([*stack, node, nxt])}")
            if not state.get(nxt):
                visit(nxt, [*stack, node])
        state[node] = 2

    for name in sorted(graph):
        if not state.get(name):
            visit(name, [])
    assert len(graph) > 15 and graph["dlcore.model"] >= {"dlcore.training", "dlcore.persistence"}


def test_device_rng_reaches_the_backend_and_is_the_host_rng_on_cpu():
    """fit(device_rng=True) asks the backend for on-device draws; CPU backends answer with the host RNG
    (so the run is bit-identical), a GPU backend with its own generator."""
    base = dlcore.get_backend("numpy")
    asked = []

    class Recording(type(base)):
        def rng(self, seed=None, *, on_device=False):
            asked.append(on_device)
            return super().rng(seed, on_device=on_device)

    backend = Recording(base.xp, base.device, base.ops)
    X, Y = dlcore.datasets.planar(base, m=64)
    runs = []
    for device_rng in (False, True):
        net = Network([2, 4, 1], "tanh", backend=backend, seed=1)
        net.fit(X, Y, learning_rate=0.1, epochs=3, batch_size=16, keep_prob=0.8, device_rng=device_rng)
        runs.append(net.parameters_numpy())
    assert asked[-2:] == [False, True]
    for k, v in runs[0].items():
        np.testing.assert_array_equal(runs[1][k], v)


def test_binary_cross_entropy_from_logits_keeps_relative_accuracy_when_confident(backend, dtype):
    """y = 1, z > 0 (and y = 0, z < 0): the loss log(1 + e^-|z|) is tiny; logaddexp(0, z) - z cancels to 0
    in float32 at z = 15, the max/log1p form keeps it to a few ulps."""
    from dlcore.losses import binary_cross_entropy_from_logits

    for z, y in ((15.0, 1.0), (-15.0, 0.0), (30.0, 1.0), (-30.0, 0.0), (0.5, 1.0), (-3.0, 1.0)):
        want = np.log1p(np.exp(-abs(z))) + max(z, 0.0) - y * z  # float64 on the host
        J = float(
            binary_cross_entropy_from_logits(
                backend.asarray([[z]], dtype=dtype), backend.asarray([[y]], dtype=dtype)
            )
        )
        assert J == pytest.approx(want, rel=1e-6 if dtype == "float32" else 1e-14), (z, y)


def test_the_network_works_inside_its_backends_device_context():
    """cupy:1 must allocate on GPU 1: every Network entry point enters backend.activate() once."""
    base = dlcore.get_backend("numpy")
    depth, entered = [0], []

    class Recording(type(base)):
        def activate(self):
            from contextlib import contextmanager

            @contextmanager
            def context():
                entered.append(depth[0])
                depth[0] += 1
                try:
                    yield
                finally:
                    depth[0] -= 1

            return context()

        def asarray(self, x, dtype=None):
            assert depth[0] > 0 or not entered, "an array was made outside the device context"
            return super().asarray(x, dtype)

    backend = Recording(base.xp, base.device, base.ops)
    X, Y = dlcore.datasets.planar(base, m=32)
    net = Network([2, 3, 1], "tanh", backend=backend, seed=1)
    calls = {"fit": lambda: net.fit(X, Y, iterations=3), "predict": lambda: net.predict(X),
             "predict_proba": lambda: net.predict_proba(X), "cost": lambda: net.cost(X, Y),
             "score": lambda: net.score(X, Y), "accuracy": lambda: net.accuracy(X, Y)}  # fmt: skip
    for name, call in calls.items():
        before = len(entered)
        call()
        assert len(entered) > before and entered[before] == 0, name  # entered, from the outside
    assert entered[0] == 0  # the constructor's initial weights too


def test_checking_x_for_nan_costs_one_boolean_pass_not_an_int64_copy():
    """fit/predict check X for NaN/inf: a bool mask (1 byte an entry), never an int64 copy (8 bytes)."""
    import tracemalloc

    X = np.random.default_rng(0).standard_normal((2000, 500))  # 8 MB of float64
    net = Network([2000, 3, 1], "relu", backend="numpy", seed=0)
    net.check_X(X)  # warm-up
    tracemalloc.start()
    try:
        net.check_X(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 4, f"checking X allocated {peak} bytes for an X of {X.nbytes}"
    X[3, 7] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(1 entries\)"):
        net.check_X(X)
