"""Softmax and categorical cross-entropy: closed forms, stability, labels, the confusion matrix,
gradient checks (float64) with a softmax output and L2, and a softmax Network end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlcore
from dlcore import Network
from dlcore.activations import SOFTMAX, get_activation, log_softmax, softmax
from dlcore.labels import check_class_labels, class_indices, one_hot
from dlcore.losses import categorical_cross_entropy_from_logits
from dlcore.metrics import confusion_matrix
from dlcore.regularization import add_l2_gradients, l2_cost
from dlcore.training import format_cost
from tests.conftest import numeric_gradients, to_host


def _np_softmax(Z):
    E = np.exp(Z - Z.max(axis=0))
    return E / E.sum(axis=0)


def test_softmax_and_cross_entropy_match_numpy(backend, dtype, tol, host_rng):
    Zh = host_rng.standard_normal((4, 9)) * 3
    labels = host_rng.integers(0, 4, size=(1, 9))
    Yh = (labels == np.arange(4)[:, None]).astype(float)
    Z, Y = backend.asarray(Zh, dtype=dtype), backend.asarray(Yh, dtype=dtype)
    A = softmax(Z)
    np.testing.assert_allclose(to_host(backend, A), _np_softmax(Zh), **tol)
    np.testing.assert_allclose(to_host(backend, A).sum(axis=0), 1.0, **tol)
    J = -np.mean(np.sum(Yh * np.log(_np_softmax(Zh)), axis=0))
    assert float(categorical_cross_entropy_from_logits(Z, Y)) == pytest.approx(J, rel=tol["rtol"] * 10)


def test_extreme_logits_stay_finite_and_exact(backend, dtype):
    """Z = +-1e4: naive exp overflows; log-sum-exp gives the closed form J = max(z) - z_true."""
    Z = backend.asarray([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]], dtype=dtype)
    Y = backend.asarray(np.eye(3)[:, [1, 1, 2]], dtype=dtype)  # labels 1, 1, 2
    A = to_host(backend, softmax(Z))
    assert np.all(np.isfinite(A))
    np.testing.assert_allclose(A[:, 0], [1, 0, 0], atol=1e-6)
    assert np.all(np.isfinite(to_host(backend, log_softmax(Z))))
    J = float(categorical_cross_entropy_from_logits(Z, Y))
    want = (2e4 + 0.0 + np.log(3.0)) / 3  # column 1: 1e4 - (-1e4); column 2: 0; column 3: log 3
    assert J == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("scale", [1e7, 1e15])
def test_tied_huge_logits_cost_log_2(backend, dtype, scale):
    """Two classes tied at logits of 1e7 (float32) or 1e15 (float64): J = log 2, the closed form (and
    torch's cross_entropy). Z - (max + log sum) rounded log 2 away next to the max: J was 1.0 or 0.72."""
    if dtype == "float32" and scale > 1e10:
        pytest.skip("float32 logits of 1e15 round the gap between classes away")
    Z = backend.asarray([[scale, scale], [scale, -scale]], dtype=dtype)
    Y = backend.asarray([[1.0, 1.0], [0.0, 0.0]], dtype=dtype)
    J = float(categorical_cross_entropy_from_logits(Z, Y))
    assert J == pytest.approx(np.log(2.0) / 2, rel=1e-6)  # column 1: log 2; column 2: 0


def test_one_hot_indices_and_confusion_matrix_against_a_loop(backend, host_rng):
    xp = backend.xp
    true = host_rng.integers(0, 5, size=(1, 40))
    pred = np.where(host_rng.random((1, 40)) < 0.7, true, host_rng.integers(0, 5, size=(1, 40)))
    T = one_hot(backend.asarray(true, dtype="int64"), 5, backend.dtype("float64"))
    assert T.shape == (5, 40) and T.device == backend.device
    np.testing.assert_array_equal(to_host(backend, class_indices(T)), true)
    C = to_host(backend, confusion_matrix(backend.asarray(true, "int64"), backend.asarray(pred, "int64"), 5))
    loop = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(true[0], pred[0], strict=True):
        loop[t, p] += 1
    np.testing.assert_array_equal(C, loop)
    assert C.sum() == 40 and np.trace(C) == np.sum(true == pred)
    assert xp.isdtype(confusion_matrix(T[:1, :], T[:1, :], 2).dtype, "integral")


@pytest.mark.parametrize(
    ("labels", "hint"),
    [([[1, 2, 3, 1, 2, 3]], True), ([[0.0, 1.5, 1.0, 2.0, 0.0, 2.0]], False), ([[0, -1, 2, 5, 1, 1]], False)],
    ids=["from 1", "1.5", "-1 and 5"],
)
def test_one_hot_refuses_labels_no_column_can_hold(backend, labels, hint):
    """Labels 1..3 for 3 classes (or 1.5) gave all-zero columns, which train_step trained on silently;
    the hint to subtract 1 is for labels counted from 1 only."""
    with pytest.raises(
        ValueError, match=r"^labels must be integers in 0 \.\. 2 for 3 classes; [12] are not"
    ) as e:
        one_hot(backend.asarray(labels), 3, backend.dtype("float64"))
    assert ("subtract 1" in str(e.value)) == hint


def test_one_hot_of_narrow_integer_labels_counts_classes_past_their_range(backend):
    """The classes were an arange in the labels' dtype: in uint8, 256 wrapped to 0, so a label 0 was hot
    in rows 0 and 256 (and 1 in rows 1 and 257) for 300 classes."""
    hot = one_hot(backend.asarray(np.array([[0, 1, 100, 255]], dtype=np.uint8)), 300)
    np.testing.assert_array_equal(np.nonzero(to_host(backend, hot))[0], [0, 1, 100, 255])


def test_labels_as_integers_or_one_hot(backend):
    ints = np.array([[0, 2, 1, 2]])
    hot = np.eye(3)[:, [0, 2, 1, 2]]
    a = check_class_labels(ints, 3, 4, backend, "float64")
    b = check_class_labels(hot, 3, 4, backend, "float64")
    c = check_class_labels(ints.astype(float), 3, 4, backend, "float32")
    np.testing.assert_array_equal(to_host(backend, a), hot)
    np.testing.assert_array_equal(to_host(backend, b), hot)
    np.testing.assert_array_equal(to_host(backend, c), hot.astype(np.float32))
    assert a.device == backend.device


@pytest.mark.parametrize(
    ("Y", "message"),
    [
        (np.array([0, 1, 2, 1]), r"\(1, m\) = \(1, 4\).*Y\.reshape\(1, -1\)"),
        (np.array([[0, 1, 3, 1]]), r"integer class labels 0 \.\. 2"),
        (np.array([[0, 1, 0.5, 1]]), r"integer class labels 0 \.\. 2"),
        (np.array([[0, -1, 2, 1]]), r"integer class labels 0 \.\. 2"),
        (np.ones((3, 4)), "must be one-hot"),
        (np.ones((2, 4)), r"\(n_classes, m\) = \(3, 4\)"),
        (np.array([[0, np.nan, 2, 1]]), "NaN or inf"),
    ],
)
def test_bad_class_labels(backend, Y, message):
    with pytest.raises(ValueError, match=message):
        check_class_labels(Y, 3, 4, backend, "float64")


# -- gradients --------------------------------------------------------------------------------------
def _softmax_problem(backend, dims, hidden, seed, m=7):
    rng = np.random.default_rng(seed)
    X = backend.asarray(rng.standard_normal((dims[0], m)), dtype="float64")
    Y = one_hot(
        backend.asarray(rng.integers(0, dims[-1], size=(1, m)), "int64"), dims[-1], backend.xp.float64
    )
    acts = [get_activation(hidden) for _ in dims[2:]] + [SOFTMAX]
    params = dlcore.initialize_parameters(dims, "xavier", backend, seed, "float64")
    for l in range(1, len(dims)):
        params[f"b{l}"] = backend.asarray(rng.standard_normal((dims[l], 1)) * 0.5, dtype="float64")
    return X, Y, params, acts


def _total_cost(backend, X, Y, host_params, acts, lambd):
    params = {k: backend.asarray(v, dtype="float64") for k, v in host_params.items()}
    _, caches = dlcore.forward(X, params, acts)
    return float(dlcore.cost(caches, Y, acts)) + float(l2_cost(params, lambd, X.shape[1]))


def _numeric(backend, X, Y, params, acts, lambd, eps=1e-6):
    return numeric_gradients(lambda host: _total_cost(backend, X, Y, host, acts, lambd), backend, params, eps)


@pytest.mark.parametrize(
    ("dims", "hidden", "lambd"),
    [
        ([4, 3], "none", 0.0),
        ([4, 5, 3], "tanh", 0.0),
        ([3, 5, 4, 4], "relu", 0.0),
        ([4, 5, 3], "tanh", 0.7),
        ([3, 4, 2], "sigmoid", 0.3),
    ],
)
def test_gradient_check_softmax_and_l2(backend, dims, hidden, lambd):
    X, Y, params, acts = _softmax_problem(
        backend, dims, "tanh" if hidden == "none" else hidden, seed=len(dims)
    )
    AL, caches = dlcore.forward(X, params, acts)
    np.testing.assert_allclose(to_host(backend, AL).sum(axis=0), 1.0, rtol=1e-12)
    grads = dlcore.backward(AL, Y, caches, acts)
    if lambd:
        add_l2_gradients(grads, params, lambd, X.shape[1])
    analytic = {k: to_host(backend, v) for k, v in grads.items()}
    numeric = _numeric(backend, X, Y, params, acts, lambd)
    a = np.concatenate([analytic[k].ravel() for k in sorted(numeric)])
    n = np.concatenate([numeric[k].ravel() for k in sorted(numeric)])
    rel = np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n))
    assert rel < 1e-7, f"relative error {rel:.2e}"
    if lambd:  # and the oracle sees the L2 term: leaving it out of the gradient is caught
        plain = {k: to_host(backend, v) for k, v in dlcore.backward(AL, Y, caches, acts).items()}
        p = np.concatenate([plain[k].ravel() for k in sorted(numeric)])
        assert np.linalg.norm(p - n) / (np.linalg.norm(p) + np.linalg.norm(n)) > 1e-3


# -- the Network ----------------------------------------------------------------------------------
def _blobs(host_rng, m=150, k=3):
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])[:k]
    labels = host_rng.integers(0, k, size=m)
    X = (centers[labels] + host_rng.standard_normal((m, 2)) * 0.6).T
    return X, labels.reshape(1, -1)


def test_softmax_network_learns_three_blobs(backend, dtype, host_rng):
    X, labels = _blobs(host_rng)
    net = Network([2, 8, 3], "relu", "softmax", init="he", backend=backend, seed=0, dtype=dtype)
    history = net.fit(X, labels, learning_rate=0.5, iterations=200, cost_every=50)
    assert history.costs[-1] < 0.3 * history.costs[0]
    P = to_host(backend, net.predict_proba(X))
    assert P.shape == (3, 150)
    np.testing.assert_allclose(P.sum(axis=0), 1.0, rtol=1e-5)
    pred = to_host(backend, net.predict(X))
    assert pred.shape == (1, 150) and pred.dtype == np.int64
    np.testing.assert_array_equal(pred, P.argmax(axis=0)[None, :])
    assert net.accuracy(X, labels) >= 0.95
    assert net.accuracy(X, labels) == pytest.approx(np.mean(pred == labels))
    hot = (labels == np.arange(3)[:, None]).astype(float)
    assert net.accuracy(X, hot) == net.accuracy(X, labels)
    assert net.cost(X, hot) == pytest.approx(net.cost(X, labels))


def test_integer_and_one_hot_labels_train_identically(backend, host_rng):
    X, labels = _blobs(host_rng, m=60)
    hot = (labels == np.arange(3)[:, None]).astype(float)
    a = Network([2, 4, 3], "tanh", "softmax", backend=backend, seed=3)
    b = Network([2, 4, 3], "tanh", "softmax", backend=backend, seed=3)
    a.fit(X, labels, 0.3, 20)
    b.fit(X, hot, 0.3, 20)
    for k, v in a.parameters_numpy().items():
        np.testing.assert_array_equal(v, b.parameters_numpy()[k])


def test_softmax_network_argument_errors(backend):
    with pytest.raises(ValueError, match="softmax needs at least 2 output units"):
        Network([2, 4, 1], output_activation="softmax", backend=backend)
    net = Network([2, 4, 3], output_activation="softmax", backend=backend)
    with pytest.raises(ValueError, match=r"integer class labels 0 \.\. 2"):
        net.fit(np.ones((2, 5)), np.array([[0, 1, 2, 3, 0]]))


# -- the command line and the digits -------------------------------------------------------------
DIGITS = [
    "train", "--dataset", "digits", "--layers", "64,64,10", "--hidden-activation", "relu", "--init", "he",
    "--optimizer", "adam", "--batch-size", "64", "--epochs", "30", "--lr", "0.001", "--backend", "numpy",
]  # fmt: skip


def test_digits_from_the_cli_reach_95_percent(capsys):
    pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (pip install scikit-learn)")
    from dlcore.cli import main

    assert main([*DIGITS, "--quiet"]) == 0
    out = capsys.readouterr().out
    test_acc = float(out.split("test accuracy: ")[1].split("%")[0])
    assert test_acc >= 95.0, out
    rows = out.split("test confusion matrix (rows: true class, columns: predicted):\n")[1].splitlines()[1:11]
    C = np.array([[int(v) for v in row.split()[1:]] for row in rows])
    assert C.shape == (10, 10) and C.sum() == 359  # 20% of 1,797 held out
    assert np.trace(C) / C.sum() == pytest.approx(test_acc / 100, abs=0.0005)


def test_digits_without_scikit_learn_is_one_line(capsys, monkeypatch):
    import sys

    from dlcore.cli import main

    monkeypatch.setitem(sys.modules, "sklearn", None)  # import fails
    assert main(DIGITS) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install scikit-learn" in err and "Traceback" not in err


def test_cli_refuses_an_output_layer_that_does_not_match_the_classes(capsys):
    pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (pip install scikit-learn)")
    from dlcore.cli import main

    assert main(["train", "--dataset", "digits", "--layers", "64,8,1", "--backend", "numpy"]) == 2
    assert "layers must end with 10 (one softmax output per class" in capsys.readouterr().err


def test_a_certain_correct_softmax_costs_plus_zero_not_minus_zero(backend, dtype):
    """-sum(Y log_softmax(Z)) / m of exact zeros is -0.0: the CLI printed "cost -0.000000" and saved
    final_cost -0.0 for a digits net that had learnt its training set."""
    Z = backend.asarray([[60.0, -60.0], [-60.0, 60.0]], dtype=dtype)
    J = float(categorical_cross_entropy_from_logits(Z, backend.asarray(np.eye(2), dtype=dtype)))
    assert J == 0.0 and math.copysign(1.0, J) == 1.0
    assert format_cost(J) == "0.000000"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_hot_takes_a_dtype_by_name_on_every_backend(backend, dtype):
    """one_hot(labels, 3, "float64") worked on numpy only: AttributeError ('_np_dtype') on
    array_api_strict, a TypeError from to() on torch."""
    labels = backend.asarray([[0, 2, 1]], dtype="int64")
    Y = one_hot(labels, 3, dtype)
    assert backend.dtype_name(Y.dtype) == dtype
    np.testing.assert_array_equal(to_host(backend, Y), np.eye(3)[:, [0, 2, 1]])
    with pytest.raises(ValueError, match=r"^dtype must be a dtype of the labels' array library or its name"):
        one_hot(labels, 3, "floaty")
