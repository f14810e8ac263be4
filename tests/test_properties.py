"""Property tests (hypothesis): derivatives, extreme logits, shapes, and memory over long runs."""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlcore
import dlcore.datasets
from dlcore.activations import get_activation
from dlcore.losses import binary_cross_entropy_from_logits
from tests.conftest import to_host

FIXTURE_OK = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
logits = st.floats(min_value=-20, max_value=20, allow_nan=False).filter(lambda z: abs(z) > 1e-3)


@FIXTURE_OK
@given(
    name=st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu:0.3", "linear"]),
    zs=st.lists(logits, min_size=1, max_size=12),
)
def test_derivative_matches_central_difference(backend, name, zs):
    g, eps = get_activation(name), 1e-6
    z = np.array([zs])
    Z = backend.asarray(z, dtype="float64")
    analytic = to_host(backend, g.derivative(Z, g(Z)))
    numeric = (
        to_host(backend, g(backend.asarray(z + eps, dtype="float64")))
        - to_host(backend, g(backend.asarray(z - eps, dtype="float64")))
    ) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@FIXTURE_OK
@given(
    zs=st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), min_size=1, max_size=16),
    ys=st.lists(st.sampled_from([0.0, 1.0]), min_size=16, max_size=16),
)
def test_sigmoid_and_cost_stay_finite_and_in_range(backend, dtype, zs, ys):
    m = len(zs)
    Z = backend.asarray(np.array([zs]), dtype=dtype)
    Y = backend.asarray(np.array([ys[:m]]), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = to_host(backend, dlcore.get_activation("sigmoid")(Z))
        J = float(binary_cross_entropy_from_logits(Z, Y))
    assert np.all((A >= 0) & (A <= 1))
    assert math.isfinite(J) and J >= 0
    z64 = to_host(backend, Z).astype(np.float64)
    want = np.mean(np.logaddexp(0, z64) - np.array([ys[:m]]) * z64)
    assert J == pytest.approx(want, rel=1e-5, abs=1e-5)


@FIXTURE_OK
@given(
    dims=st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=6),
    m=st.integers(min_value=1, max_value=9),
    hidden=st.sampled_from(["tanh", "relu", "leaky_relu", "sigmoid"]),
)
def test_forward_and_backward_shapes(backend, dims, m, hidden):
    dims[-1] = 1
    net = dlcore.Network(dims, hidden, backend=backend, seed=0)
    X = backend.asarray(np.ones((dims[0], m)), dtype="float64")
    Y = backend.asarray(np.zeros((1, m)), dtype="float64")
    AL, caches = dlcore.forward(X, net.params, net.activations)
    assert AL.shape == (1, m) and len(caches) == len(dims) - 1
    for l, cache in enumerate(caches, start=1):
        assert cache.Z.shape == cache.A.shape == (dims[l], m)
    grads = dlcore.backward(AL, Y, caches, net.activations)
    for k, v in net.params.items():
        assert grads["d" + k].shape == v.shape


def test_training_memory_is_flat_after_warm_up():
    """1,000 iterations on NumPy: traced memory after the first checks does not grow."""
    backend = dlcore.get_backend("numpy")
    X, Y = dlcore.datasets.planar(backend)
    net = dlcore.Network([2, 16, 8, 1], "tanh", init="xavier", backend=backend)
    samples = []
    tracemalloc.start()
    try:
        net.fit(
            X,
            Y,
            0.1,
            1000,
            cost_every=100,
            callback=lambda i, J: samples.append(tracemalloc.get_traced_memory()[0]),
        )
    finally:
        tracemalloc.stop()
    assert len(samples) == 11
    growth = max(samples[2:]) - samples[2]
    assert growth < 32 * 1024, f"memory grew by {growth} bytes between iteration 200 and 1000"
