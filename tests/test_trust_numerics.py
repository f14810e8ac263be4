"""Issue 14, numerics (items 16-19): sigmoid accurate in relative terms on both sides, cross-entropies that
never round to NaN (float32 clipping, 0 * inf), and shape checks at the functional entry points."""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
from dlcore.backends import get_backend

import dlcore
from dlcore import propagation as prop
from dlcore.activations import get_activation, sigmoid
from dlcore.losses import (
    binary_cross_entropy,
    binary_cross_entropy_from_logits,
    categorical_cross_entropy_from_logits,
)
from tests.conftest import to_host


def _sigmoid_reference(z: float) -> float:
    """1 / (1 + e^-z) with 60 significant digits (the decimal module: no float cancellation at all)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        return float(1 / (1 + (-decimal.Decimal(z)).exp()))


# item 16 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "lo", "rtol"), [("float64", -700.0, 4e-16 * 8), ("float32", -85.0, 6e-8 * 8)]
)
def test_sigmoid_is_accurate_in_relative_terms_on_both_sides(backend, dtype, lo, rtol):
    grid = np.concatenate([np.linspace(lo, -lo, 401), [-40.0, -20.0, -17.0, -10.0, -1e-3, 0.0, 1e-3, 10.0]])
    z = grid.astype(dtype)  # the reference is taken at the rounded z
    got = to_host(backend, sigmoid(backend.asarray(z, dtype=dtype))).astype(np.float64)
    want = np.array([_sigmoid_reference(float(v)) for v in z])
    assert np.all(got > 0) and np.all(got <= 1)  # float32 z = -20 gave exactly 0 before
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)  # float32 z = -10 was 2e-4 off before


def test_sigmoid_limits_and_nan(backend):
    z = backend.asarray([-np.inf, np.inf, 0.0], dtype="float64")
    np.testing.assert_array_equal(to_host(backend, sigmoid(z)), [0.0, 1.0, 0.5])
    assert np.isnan(to_host(backend, sigmoid(backend.asarray([np.nan], dtype="float64"))))[0]


# item 17 ------------------------------------------------------------------------------------------
def test_probability_cross_entropy_clips_with_the_dtypes_own_epsilon(backend, dtype):
    A = backend.asarray([[1.0, 0.0, 0.5]], dtype=dtype)  # saturated outputs, the wrong way round
    Y = backend.asarray([[0.0, 1.0, 1.0]], dtype=dtype)
    J = float(binary_cross_entropy(A, Y))  # eps = 1e-12 rounded away in float32: NaN before
    eps = float(np.finfo(dtype).eps)
    want = -(math.log(eps) + math.log(eps) + math.log(0.5)) / 3
    assert math.isfinite(J) and J == pytest.approx(want, rel=1e-5)


# item 18 ------------------------------------------------------------------------------------------
def test_binary_cross_entropy_of_infinite_logits_is_the_limit_not_nan(backend, dtype):
    Z = backend.asarray([[-np.inf, np.inf, 15.0]], dtype=dtype)
    Y = backend.asarray([[0.0, 1.0, 1.0]], dtype=dtype)
    J = float(binary_cross_entropy_from_logits(Z, Y))
    assert J == pytest.approx(math.log1p(math.exp(-15.0)) / 3, rel=1e-5)  # right and certain: 0
    wrong = float(binary_cross_entropy_from_logits(Z, backend.asarray([[1.0, 0.0, 1.0]], dtype=dtype)))
    assert wrong == math.inf  # certain and wrong: inf, never NaN


def test_softmax_cost_with_a_minus_inf_logit_on_another_class_is_finite(backend):
    Z = backend.asarray([[2.0, 1.0], [-np.inf, 0.0], [0.5, 3.0]], dtype="float64")
    Y = backend.asarray([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype="float64")
    J = float(categorical_cross_entropy_from_logits(Z, Y))

    def nll(column, target):  # by hand, the -inf class contributes e^-inf = 0 to the sum
        return -(column[target] - math.log(sum(math.exp(v) for v in column)))

    want = (nll([2.0, -math.inf, 0.5], 0) + nll([1.0, 0.0, 3.0], 2)) / 2
    assert J == pytest.approx(want, rel=1e-12)  # PyTorch's cross_entropy gives the same 0.18563


# item 19 ------------------------------------------------------------------------------------------
def _softmax_setup(backend):
    acts = [get_activation("tanh"), get_activation("softmax")]
    params = dlcore.initialize_parameters([2, 4, 3], "he", backend, seed=1, dtype="float64")
    X = backend.asarray(np.random.default_rng(0).standard_normal((2, 5)), dtype="float64")
    return acts, params, X


def test_functional_cost_and_backward_refuse_labels_where_one_hot_is_needed(backend):
    acts, params, X = _softmax_setup(backend)
    AL, caches = dlcore.forward(X, params, acts)
    labels = backend.asarray([[0.0, 1.0, 2.0, 1.0, 0.0]], dtype="float64")  # (1, m): broadcast before
    with pytest.raises(
        ValueError, match=r"Y must have the output's shape .* \(3, 5\); got \(1, 5\).*one_hot"
    ):
        dlcore.cost(caches, labels, acts)
    with pytest.raises(ValueError, match=r"one_hot"):
        dlcore.backward(AL, labels, caches, acts)
    with pytest.raises(ValueError, match=r"one_hot"):
        dlcore.train_step(X, labels, params, acts, learning_rate=0.1)
    Y = dlcore.one_hot(backend.asarray([[0, 1, 2, 1, 0]]), 3)
    assert math.isfinite(float(dlcore.cost(caches, backend.asarray(Y, dtype="float64"), acts)))


def test_functional_forward_refuses_a_rank_1_bias_and_shapes_that_do_not_chain(backend):
    acts = [get_activation("sigmoid")]
    X = backend.asarray(np.ones((2, 3)), dtype="float64")
    W = backend.asarray(np.ones((3, 2)), dtype="float64")
    b = backend.asarray(np.zeros(3), dtype="float64")  # n = m = 3: added per column before
    with pytest.raises(ValueError, match=r"b1 must have shape \(3, 1\), a column; got \(3,\).*reshape"):
        dlcore.forward(X, {"W1": W, "b1": b}, acts)
    b = backend.asarray(np.zeros((3, 1)), dtype="float64")
    with pytest.raises(ValueError, match=r"W1 must have shape \(n\[1\], 4\)"):
        dlcore.forward(backend.asarray(np.ones((4, 3)), dtype="float64"), {"W1": W, "b1": b}, acts)
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        dlcore.forward(backend.asarray(np.ones(2), dtype="float64"), {"W1": W, "b1": b}, acts)
    with pytest.raises(ValueError, match=r"one entry per layer"):
        dlcore.forward(X, {"W1": W, "b1": b}, acts * 2)


@pytest.mark.parametrize("wrong", ["X", "Y", "b1"])
def test_functional_train_step_refuses_arrays_of_another_dtype_on_every_backend(backend, wrong):
    """float32 parameters with a float64 X, Y or b1: NumPy promoted silently, PyTorch ("expected m1 and
    m2 to have the same dtype") and array_api_strict ("Cannot perform __isub__") refused in their words."""
    acts = [get_activation("tanh"), get_activation("sigmoid")]
    params = dlcore.initialize_parameters([2, 3, 1], "he", backend, seed=1, dtype="float32")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((2, 5)), (rng.random((1, 5)) > 0.5) * 1.0
    arrays = {"X": X, "Y": Y, "b1": to_host(backend, params["b1"])}
    X, Y, b1 = (backend.asarray(v, dtype="float64" if k == wrong else "float32") for k, v in arrays.items())
    params["b1"] = b1
    pattern = rf"^{wrong} is \S*float64 but (W1|the output A\[L\]) is \S*float32: give "
    with pytest.raises(ValueError, match=pattern):
        dlcore.train_step(X, Y, params, acts, learning_rate=0.1)


def test_the_training_loop_checks_shapes_once_not_per_step(monkeypatch):
    calls = []
    real = prop.check_network_shapes
    monkeypatch.setattr(prop, "check_network_shapes", lambda *a: calls.append(1) or real(*a))
    X = np.random.default_rng(1).standard_normal((2, 40))
    net = dlcore.Network([2, 4, 1], "tanh", backend=get_backend("numpy"), seed=1)
    net.fit(X, (X[:1] > 0).astype(float), learning_rate=0.5, iterations=200, cost_every=50)
    assert len(calls) == 1


def test_the_ops_layer_forward_sigmoid_is_accurate_too(backend):
    """What a Network computes: its backend's ops.layer_forward, which may fuse its own sigmoid."""
    z = np.linspace(-85.0, 85.0, 341).astype("float32")
    W = backend.asarray([[1.0]], dtype="float32")
    b = backend.asarray([[0.0]], dtype="float32")
    _, A = backend.ops.layer_forward(
        W, backend.asarray(z[None, :], dtype="float32"), b, get_activation("sigmoid")
    )
    got = to_host(backend, A)[0].astype(np.float64)
    want = np.array([_sigmoid_reference(float(v)) for v in z])
    np.testing.assert_allclose(got, want, rtol=6e-8 * 8, atol=0)
