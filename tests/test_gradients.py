"""Backpropagation against two independent oracles: float64 finite differences and the loop
reference, plus a single neuron worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlcore
from dlcore import reference
from dlcore.activations import get_activation
from tests.conftest import numeric_gradients, to_host

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "linear"]
ARCHITECTURES = {
    "logistic": [5, 1],
    "shallow": [3, 4, 1],
    "deep": [4, 5, 4, 3, 3, 1],  # 5 layers
}


def _problem(backend, dims, hidden, seed, dtype="float64", m=8):
    rng = np.random.default_rng(seed)
    X = backend.asarray(rng.standard_normal((dims[0], m)), dtype=dtype)
    Y = backend.asarray((rng.random((1, m)) > 0.5).astype(float), dtype=dtype)
    acts = [get_activation(hidden) for _ in dims[2:]] + [get_activation("sigmoid")]
    params = dlcore.initialize_parameters(dims, "xavier", backend, seed, dtype)
    for l in range(1, len(dims)):  # non-zero biases exercise db properly
        params[f"b{l}"] = backend.asarray(rng.standard_normal((dims[l], 1)) * 0.5, dtype=dtype)
    return X, Y, params, acts


def _cost(backend, X, Y, host_params, acts):
    params = {k: backend.asarray(v, dtype="float64") for k, v in host_params.items()}
    _, caches = dlcore.forward(X, params, acts)
    return float(dlcore.cost(caches, Y, acts))


def _numeric_gradients(backend, X, Y, params, acts, eps=1e-6):
    return numeric_gradients(lambda host: _cost(backend, X, Y, host, acts), backend, params, eps)


def _relative_error(analytic: dict, numeric: dict) -> float:
    a = np.concatenate([np.ravel(analytic[k]) for k in sorted(numeric)])
    n = np.concatenate([np.ravel(numeric[k]) for k in sorted(numeric)])
    return float(np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n)))


GRADIENT_CASES = [("logistic", "none")] + [(a, h) for a in ("shallow", "deep") for h in HIDDEN]


@pytest.mark.parametrize(("arch", "hidden"), GRADIENT_CASES)
def test_gradient_check(backend, arch, hidden):
    """Every activation, logistic regression, a shallow net and a 5-layer net (float64)."""
    dims = ARCHITECTURES[arch]
    X, Y, params, acts = _problem(backend, dims, hidden, seed=len(dims) + len(hidden))
    AL, caches = dlcore.forward(X, params, acts)
    grads = dlcore.backward(AL, Y, caches, acts)
    assert set(grads) == {"d" + k for k in params}
    for k, v in params.items():
        assert grads["d" + k].shape == v.shape and grads["d" + k].device == backend.device
    analytic = {k: to_host(backend, v) for k, v in grads.items()}
    rel = _relative_error(analytic, _numeric_gradients(backend, X, Y, params, acts))
    assert rel < 1e-7, f"{arch}/{hidden}: relative error {rel:.2e}"


def test_gradient_check_catches_a_wrong_gradient(backend):
    """The oracle can fail: a gradient off by 1% is flagged."""
    X, Y, params, acts = _problem(backend, ARCHITECTURES["shallow"], "tanh", seed=3)
    AL, caches = dlcore.forward(X, params, acts)
    analytic = {k: to_host(backend, v) for k, v in dlcore.backward(AL, Y, caches, acts).items()}
    analytic["dW1"] = analytic["dW1"] * 1.01
    assert _relative_error(analytic, _numeric_gradients(backend, X, Y, params, acts)) > 1e-4


def _vectorized_equals_the_loop(backend, tol, X, Y, params, acts) -> None:
    """The vectorized cost and gradients against reference.network_gradients_loop's."""
    AL, caches = dlcore.forward(X, params, acts)
    grads = dlcore.backward(AL, Y, caches, acts)
    J_loop, grads_loop = reference.network_gradients_loop(X, Y, params, acts)
    assert float(dlcore.cost(caches, Y, acts)) == pytest.approx(J_loop, rel=tol["rtol"] * 10, abs=tol["atol"])
    for k in grads:
        np.testing.assert_allclose(to_host(backend, grads[k]), to_host(backend, grads_loop[k]), **tol)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("hidden", ["tanh", "relu", "leaky_relu:0.1"])
def test_vectorized_equals_loop_reference(backend, dtype, tol, arch, hidden):
    X, Y, params, acts = _problem(backend, ARCHITECTURES[arch], hidden, seed=11, dtype=dtype, m=13)
    _vectorized_equals_the_loop(backend, tol, X, Y, params, acts)


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_the_loop_reference_covers_every_output_head(backend, dtype, tol, host_rng, output):
    """Three output units: multi-label sigmoid, softmax over 3 classes, 3 regression targets. The loop's
    cost once took unit 0 alone, always with binary cross-entropy (its gradients were right): 2.04
    against 0.56 for 3 sigmoid units."""
    n_x, m = 4, 9
    X = backend.asarray(host_rng.standard_normal((n_x, m)), dtype=dtype)
    if output == "softmax":
        Y = np.eye(3)[:, host_rng.integers(0, 3, m)]
    else:
        Y = host_rng.random((3, m)) if output == "linear" else (host_rng.random((3, m)) > 0.5) * 1.0
    Y = backend.asarray(Y, dtype=dtype)
    params = dlcore.initialize_parameters([n_x, 5, 3], "xavier", backend, 2, dtype)
    acts = [get_activation("tanh"), get_activation(output)]
    _vectorized_equals_the_loop(backend, tol, X, Y, params, acts)
    with pytest.raises(ValueError, match="needs a sigmoid, softmax or linear output; got tanh"):
        reference.network_gradients_loop(X, Y, params, [acts[0], get_activation("tanh")])


def test_logistic_regression_loops_equal_vectorized(backend, dtype, tol, host_rng):
    n_x, m = 6, 15
    X = backend.asarray(host_rng.standard_normal((n_x, m)), dtype=dtype)
    Y = backend.asarray((host_rng.random((1, m)) > 0.5).astype(float), dtype=dtype)
    w = backend.asarray(host_rng.standard_normal((n_x, 1)), dtype=dtype)
    b = 0.3
    params = {"W1": w.T, "b1": backend.asarray([[b]], dtype=dtype)}
    acts = [get_activation("sigmoid")]
    AL, caches = dlcore.forward(X, params, acts)
    grads = dlcore.backward(AL, Y, caches, acts)
    J = float(dlcore.cost(caches, Y, acts))
    loose = {"rtol": max(tol["rtol"], 1e-9), "atol": max(tol["atol"], 1e-9)}
    for impl in (reference.logistic_gradients_two_loops, reference.logistic_gradients_one_loop):
        J_loop, dw, db = impl(w, b, X, Y)
        assert J_loop == pytest.approx(J, **{"rel": loose["rtol"] * 10, "abs": loose["atol"]})
        np.testing.assert_allclose(to_host(backend, dw).T, to_host(backend, grads["dW1"]), **loose)
        assert db == pytest.approx(float(grads["db1"][0, 0]), rel=loose["rtol"] * 10, abs=loose["atol"])


def test_single_neuron_by_hand(backend, dtype):
    """w = [0.5, -1], b = 0.25, x = [1, 2], y = 1: z = -1.25, a = sigmoid(z), dz = a - 1."""
    params = {"W1": backend.asarray([[0.5, -1.0]], dtype=dtype), "b1": backend.asarray([[0.25]], dtype=dtype)}
    X = backend.asarray([[1.0], [2.0]], dtype=dtype)
    Y = backend.asarray([[1.0]], dtype=dtype)
    acts = [get_activation("sigmoid")]
    AL, caches = dlcore.forward(X, params, acts)
    a = 1 / (1 + math.exp(1.25))
    assert float(caches[0].Z[0, 0]) == pytest.approx(-1.25)
    assert float(AL[0, 0]) == pytest.approx(a, rel=1e-6)
    assert float(dlcore.cost(caches, Y, acts)) == pytest.approx(-math.log(a), rel=1e-6)
    grads = dlcore.backward(AL, Y, caches, acts)
    np.testing.assert_allclose(to_host(backend, grads["dW1"]), [[(a - 1) * 1, (a - 1) * 2]], rtol=1e-6)
    assert float(grads["db1"][0, 0]) == pytest.approx(a - 1, rel=1e-6)
    dlcore.update(params, grads, 0.1)
    np.testing.assert_allclose(
        to_host(backend, params["W1"]), [[0.5 - 0.1 * (a - 1), -1 - 0.2 * (a - 1)]], rtol=1e-6
    )


def test_primitive_loops_match_vectorized(backend, dtype, tol, host_rng):
    xp = backend.xp
    a = backend.asarray(host_rng.standard_normal(50), dtype=dtype)
    b = backend.asarray(host_rng.standard_normal(50), dtype=dtype)
    assert reference.dot_loop(a, b) == pytest.approx(float(xp.vecdot(a, b)), rel=1e-5)
    np.testing.assert_allclose(to_host(backend, reference.exp_loop(a)), to_host(backend, xp.exp(a)), **tol)
    A = backend.asarray(host_rng.standard_normal((7, 5)), dtype=dtype)
    v = backend.asarray(host_rng.standard_normal((5, 1)), dtype=dtype)
    np.testing.assert_allclose(to_host(backend, reference.matvec_loop(A, v)), to_host(backend, A @ v), **tol)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_backward_scale_multiplies_every_gradient(backend, dtype, tol, arch):
    """``backward(..., scale=s)`` is s times the gradients (train_step's one-subtraction update)."""
    X, Y, params, acts = _problem(backend, ARCHITECTURES[arch], "relu", seed=5, dtype=dtype)
    AL, caches = dlcore.forward(X, params, acts)
    plain = {k: to_host(backend, v) for k, v in dlcore.backward(AL, Y, caches, acts).items()}
    scaled = {k: to_host(backend, v) for k, v in dlcore.backward(AL, Y, caches, acts, scale=0.25).items()}
    for k in plain:
        np.testing.assert_allclose(scaled[k], 0.25 * plain[k], **tol)
    assert np.any(plain["dW1"] != 0)


def test_train_step_is_forward_cost_backward_update(backend, dtype, tol):
    X, Y, params, acts = _problem(backend, ARCHITECTURES["deep"], "tanh", seed=9, dtype=dtype)
    expected = {k: backend.xp.asarray(v, copy=True) for k, v in params.items()}
    AL, caches = dlcore.forward(X, expected, acts)
    J_expected = float(dlcore.cost(caches, Y, acts))
    dlcore.update(expected, dlcore.backward(AL, Y, caches, acts), learning_rate=0.5)
    J = float(dlcore.train_step(X, Y, params, acts, 0.5))
    assert J == pytest.approx(J_expected, rel=tol["rtol"])
    for k in params:
        np.testing.assert_allclose(to_host(backend, params[k]), to_host(backend, expected[k]), **tol)


def test_the_functional_step_takes_numpy_scalars_and_refuses_what_fit_refuses(backend):
    """A NumPy scalar learning rate (np.float64 from a grid) was a TypeError on array_api_strict only (a
    RuntimeError in update() on its second device); a NaN or negative rate turned the parameters NaN or
    climbed the cost silently, and m = 0 was a ZeroDivisionError: the sentences Network.fit gives now."""
    X, Y, params, acts = _problem(backend, ARCHITECTURES["deep"], "tanh", seed=9)
    twin = {k: backend.xp.asarray(v, copy=True) for k, v in params.items()}
    J = dlcore.train_step(X, Y, params, acts, np.float64(0.5))
    assert float(J) == float(dlcore.train_step(X, Y, twin, acts, 0.5))
    AL, caches = dlcore.forward(X, params, acts)
    grads = dlcore.backward(AL, Y, caches, acts)
    dlcore.update(params, grads, np.float32(0.5))
    dlcore.update(twin, grads, 0.5)
    for k in params:  # the same bits
        np.testing.assert_array_equal(to_host(backend, params[k]), to_host(backend, twin[k]))
    for rate in (float("nan"), -0.1, 0.0, "fast"):
        with pytest.raises(ValueError, match=r"^learning_rate must be a (finite )?number"):
            dlcore.train_step(X, Y, params, acts, rate)
        with pytest.raises(ValueError, match=r"^learning_rate must be a (finite )?number"):
            dlcore.update(params, grads, rate)
    with pytest.raises(ValueError, match=r"^X has no examples \(shape \(\d+, 0\), m = 0\)"):
        dlcore.train_step(X[:, :0], Y[:, :0], params, acts, 0.5)
    for k in params:  # nothing refused changed anything
        np.testing.assert_array_equal(to_host(backend, params[k]), to_host(backend, twin[k]))


def test_course_output_gradient_path_matches_finite_differences(backend):
    """An output activation that is not named "sigmoid" takes the course's dA[L] = -(Y/A - (1-Y)/(1-A))
    path (then dZ = dA * g'(Z)); it must agree with the fused sigmoid path and with finite differences."""
    from dlcore.activations import Activation, sigmoid, sigmoid_derivative

    course_sigmoid = Activation("course_sigmoid", sigmoid, sigmoid_derivative)
    X, Y, params, acts = _problem(backend, ARCHITECTURES["shallow"], "tanh", seed=21)
    course_acts = [*acts[:-1], course_sigmoid]
    AL, caches = dlcore.forward(X, params, course_acts)
    course = {k: to_host(backend, v) for k, v in dlcore.backward(AL, Y, caches, course_acts).items()}
    fused = {k: to_host(backend, v) for k, v in dlcore.backward(AL, Y, caches, acts).items()}
    for k in fused:
        np.testing.assert_allclose(course[k], fused[k], rtol=1e-9, atol=1e-12)
    assert _relative_error(course, _numeric_gradients(backend, X, Y, params, course_acts)) < 1e-7
