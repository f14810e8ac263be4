"""Activations against closed forms and finite differences; sigmoid and the cost at extreme logits."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from array_api_compat import array_namespace

from dlcore.activations import ACTIVATIONS, SOFTMAX, Activation, get_activation, leaky_relu
from dlcore.losses import binary_cross_entropy, binary_cross_entropy_from_logits
from tests.conftest import to_host

ALL = ["sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu:0.2", "linear"]
CLOSED_FORM = {
    "sigmoid": lambda z: 1.0 / (1.0 + math.exp(-z)),
    "tanh": math.tanh,
    "relu": lambda z: max(0.0, z),
    "leaky_relu": lambda z: z if z > 0 else 0.01 * z,
    "leaky_relu:0.2": lambda z: z if z > 0 else 0.2 * z,
    "linear": lambda z: z,
}


def _away_from_kinks(rng, shape):
    z = rng.uniform(-4, 4, shape)
    return np.where(np.abs(z) < 1e-3, 0.5, z)  # relu's kink at 0 has no derivative


@pytest.mark.parametrize("name", ALL)
def test_activation_matches_closed_form(backend, dtype, tol, name, host_rng):
    g = get_activation(name)
    z = _away_from_kinks(host_rng, (3, 7))
    got = to_host(backend, g(backend.asarray(z, dtype=dtype)))
    want = np.vectorize(CLOSED_FORM[name])(z.astype(dtype).astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=max(tol["rtol"], 1e-12), atol=max(tol["atol"], 1e-7))
    assert got.dtype == np.dtype(dtype)


@pytest.mark.parametrize("name", ALL)
def test_derivative_matches_finite_differences(backend, name, host_rng):
    """float64 central differences: relative error < 1e-7 on every element."""
    g = get_activation(name)
    z = _away_from_kinks(host_rng, (4, 9))
    eps = 1e-6
    Z = backend.asarray(z, dtype="float64")
    analytic = to_host(backend, g.derivative(Z, g(Z)))
    plus = to_host(backend, g(backend.asarray(z + eps, dtype="float64")))
    minus = to_host(backend, g(backend.asarray(z - eps, dtype="float64")))
    numeric = (plus - minus) / (2 * eps)
    rel = np.linalg.norm(analytic - numeric) / (np.linalg.norm(analytic) + np.linalg.norm(numeric))
    assert rel < 1e-7, f"{name}: relative error {rel:.2e}"


@pytest.mark.parametrize("z", [1e4, -1e4, 800.0, -800.0, 88.8, -104.0, 0.0])
def test_sigmoid_is_finite_and_silent_at_extremes(backend, dtype, z):
    sig = ACTIVATIONS["sigmoid"]
    Z = backend.asarray(np.full((1, 3), z), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow RuntimeWarning fails the test
        A = to_host(backend, sig(Z))
        d = to_host(backend, sig.derivative(Z, sig(Z)))
    assert np.all(np.isfinite(A)) and np.all((A >= 0) & (A <= 1))
    assert np.all(np.isfinite(d)) and np.all(d >= 0)
    if abs(z) >= 800:
        assert A[0, 0] == (1.0 if z > 0 else 0.0)


@pytest.mark.parametrize("z", [1e4, -1e4, 50.0, -50.0])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_cost_from_logits_is_finite_when_saturated(backend, dtype, z, y):
    Z = backend.asarray(np.full((1, 4), z), dtype=dtype)
    Y = backend.asarray(np.full((1, 4), y), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = float(binary_cross_entropy_from_logits(Z, Y))
    want = max(z, 0.0) - y * z + math.log1p(math.exp(-abs(z)))  # log(1 + e^z) - y z
    assert math.isfinite(J)
    assert J == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_cost_from_logits_matches_the_course_formula(backend, dtype, host_rng):
    z = host_rng.uniform(-5, 5, (1, 11))
    y = (host_rng.random((1, 11)) > 0.5).astype(float)
    Z, Y = backend.asarray(z, dtype=dtype), backend.asarray(y, dtype=dtype)
    a = 1 / (1 + np.exp(-z))
    want = -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))
    assert float(binary_cross_entropy_from_logits(Z, Y)) == pytest.approx(want, rel=1e-5)
    A = ACTIVATIONS["sigmoid"](Z)
    assert float(binary_cross_entropy(A, Y)) == pytest.approx(want, rel=1e-4)


def test_unknown_activation_names_the_choices():
    with pytest.raises(
        ValueError, match="unknown activation 'swish'.*sigmoid.*tanh.*relu.*'softmax' \\(output"
    ):
        get_activation("swish")
    with pytest.raises(ValueError, match="slope"):
        leaky_relu(1.5)
    assert get_activation("leaky_relu:0.2").slope == 0.2
    assert get_activation(get_activation("leaky_relu:0.2").spec).slope == 0.2


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "linear", "softmax", "leaky_relu"])
def test_an_activation_of_ones_own_cannot_take_a_built_in_name(name):
    """A scaled tanh named "tanh" was computed as the built-in on numpy, as its own forward with the
    built-in's derivative on torch (wrong gradients), as itself on array_api_strict, and saved as "tanh"."""

    def scaled_tanh(Z):
        return 1.7159 * array_namespace(Z).tanh(Z * 2 / 3)

    with pytest.raises(ValueError, match=rf"^'{name}' is a built-in activation's name: give .* another name"):
        Activation(name, scaled_tanh, lambda Z, A: 1.7159 * (2 / 3) * (1 - (A / 1.7159) ** 2), 0.01)
    own = Activation("scaled_tanh", scaled_tanh, lambda Z, A: 1 - A * A)
    assert get_activation(own) is own
    builtin = SOFTMAX if name == "softmax" else ACTIVATIONS[name]
    assert Activation(builtin.name, builtin.forward, builtin.derivative, builtin.slope) == builtin
    assert get_activation("leaky_relu:0.2").slope == 0.2


@pytest.mark.parametrize("name", ["leaky_relu:0.5", "tanh:2", "swish:1"])
def test_an_activation_of_ones_own_cannot_take_a_spec_for_a_name(name):
    """A swish named "leaky_relu:0.5" trained as itself, was saved under that name and loaded as the
    built-in leaky ReLU: other predictions, no error."""

    def swish(Z):
        return Z / (1 + array_namespace(Z).exp(-Z))

    with pytest.raises(ValueError, match=rf"^'{name}': ':' marks a built-in's option .* a name without it$"):
        Activation(name, swish, lambda Z, A: A)
