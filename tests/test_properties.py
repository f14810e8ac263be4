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


@pytest.mark.parametrize(
    "options",
    [
        {"learning_rate": 0.1, "cost_every": 100},  # full batch: a check every 100 iterations
        # 400 examples in batches of 100: 4 updates per epoch, 250 epochs, a check every 25 epochs
        # (0, 25, ..., 225 and the last, 249), with Adam, L2 and dropout
        {"learning_rate": 0.01, "batch_size": 100, "optimizer": "adam", "l2": 0.01, "keep_prob": 0.9,
         "cost_every": 25},
    ],
    ids=["full-batch-gd", "mini-batch-adam-l2-dropout"],
)  # fmt: skip
def test_training_memory_is_flat_after_warm_up(options):
    """1,000 updates on NumPy: traced memory after the first checks does not grow."""
    backend = dlcore.get_backend("numpy")
    X, Y = dlcore.datasets.planar(backend)
    net = dlcore.Network([2, 16, 8, 1], "tanh", init="xavier", backend=backend)
    samples = []
    record = lambda i, J: samples.append(tracemalloc.get_traced_memory()[0])  # noqa: E731
    tracemalloc.start()
    try:
        net.fit(X, Y, iterations=1000, callback=record, **options)
    finally:
        tracemalloc.stop()
    assert len(samples) == 11
    growth = max(samples[2:]) - samples[2]
    assert growth < 32 * 1024, f"memory grew by {growth} bytes between the third check and update 1000"


activation_specs = st.one_of(
    st.sampled_from(["sigmoid", "tanh", "relu", "linear", "leaky_relu"]),
    st.floats(min_value=1e-4, max_value=0.9, allow_nan=False).map(lambda a: f"leaky_relu:{a!r}"),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dims=st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=5),
    hidden=st.lists(activation_specs, min_size=4, max_size=4),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
    normalized=st.booleans(),
)
def test_save_load_round_trip_for_random_architectures(backend, tmp_path_factory, dims, hidden, dtype, seed,
                                                       normalized):  # fmt: skip
    """Any architecture saved on one backend loads bit-exact (weights, activations, dtype) on numpy and
    array_api_strict, and predicts the same."""
    from dlcore.backends import get_backend

    from dlcore.data import Normalization

    dims[-1] = 1
    L = len(dims) - 1
    acts = [*hidden[: L - 1], "sigmoid"]
    net = dlcore.Network(dims, activations=acts, init="xavier", backend=backend, seed=seed, dtype=dtype)
    X = backend.asarray(np.random.default_rng(seed).standard_normal((dims[0], 7)) * 3 + 1, dtype=dtype)
    if normalized:
        net.normalization = Normalization.fit(X, backend)
    path = tmp_path_factory.mktemp("roundtrip") / "m.npz"
    net.save(path)
    for target in ("numpy", "array_api_strict"):
        loaded = dlcore.Network.load(path, backend=target)
        be = get_backend(target)
        assert loaded.layer_dims == dims and loaded.dtype_name == dtype
        assert [a.spec for a in loaded.activations] == [a.spec for a in net.activations]
        assert loaded.normalization == net.normalization
        for k, v in net.parameters_numpy().items():
            got = loaded.parameters_numpy()[k]
            assert got.dtype == v.dtype
            np.testing.assert_array_equal(got, v)
        want = to_host(backend, net.predict_proba(X))
        got = to_host(be, loaded.predict_proba(be.asarray(to_host(backend, X))))
        np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == "float64" else 1e-5, atol=1e-7)
