"""The ops seam: every backend's ops object computes what the default Array API ops compute, on fresh
random inputs (never zeros), and the core really goes through the ops it is handed."""

from __future__ import annotations

import numpy as np
import pytest
from dlcore.backends import get_backend

import dlcore
from dlcore.activations import ACTIVATIONS, SOFTMAX, get_activation
from dlcore.heads import HEADS, ProbabilityCrossEntropy
from dlcore.ops import Ops, ops_of
from tests.conftest import to_host

ACTS = [*ACTIVATIONS.values(), get_activation("leaky_relu:0.2")]


def _pair(backend):
    """(the backend's ops, the default ops on the same namespace)."""
    return backend.ops, Ops(backend.xp)


def _close(backend, got, want, tol):
    np.testing.assert_allclose(to_host(backend, got), to_host(backend, want), **tol)


def _rand(backend, rng, shape, dtype, scale=1.0):
    return backend.asarray(rng.standard_normal(shape) * scale, dtype=dtype)


def test_every_backend_hands_out_ops(backend):
    assert isinstance(backend.ops, Ops) and backend.ops.xp is backend.xp
    ops = ops_of(backend.asarray(np.ones((2, 2))))  # what the functional API uses for these arrays
    assert ops is backend.ops or (backend.name == "array_api_strict" and type(ops) is Ops)


@pytest.mark.parametrize("g", ACTS, ids=lambda g: g.spec)
def test_layer_primitives_match_the_default(backend, dtype, tol, g, host_rng):
    ops, ref = _pair(backend)
    W, A_prev = _rand(backend, host_rng, (5, 4), dtype), _rand(backend, host_rng, (4, 7), dtype)
    b = _rand(backend, host_rng, (5, 1), dtype)
    Z, A = ref.layer_forward(W, A_prev, b, g)
    for mine, theirs in zip(
        ops.layer_forward(W, A_prev, b, g), ref.layer_forward(W, A_prev, b, g), strict=True
    ):
        _close(backend, mine, theirs, tol)
    dA = _rand(backend, host_rng, (5, 7), dtype)
    mine, theirs = backend.xp.asarray(dA, copy=True), backend.xp.asarray(dA, copy=True)
    _close(backend, ops.activation_backward(g, mine, Z, A), ref.activation_backward(g, theirs, Z, A), tol)
    _close(backend, ops.bias_gradient(dA), ref.bias_gradient(dA), tol)


@pytest.mark.parametrize("name", [*HEADS, "course"])
def test_output_gradient_and_cost_match_the_default(backend, dtype, tol, name, host_rng):
    ops, ref = _pair(backend)
    head = HEADS.get(name) or ProbabilityCrossEntropy(ACTIVATIONS["sigmoid"])
    n = 3 if head.activation is SOFTMAX else 1
    Z = _rand(backend, host_rng, (n, 9), dtype, 2.0)
    A = head.activation.forward(Z)
    if name == "linear":
        Y = _rand(backend, host_rng, (n, 9), dtype)
    else:
        labels = host_rng.integers(0, max(n, 2), size=(1, 9))
        Y = backend.asarray(labels if n == 1 else (labels == np.arange(n)[:, None]), dtype=dtype)
    _close(backend, ops.output_gradient(head, Z, A, Y, 0.7), ref.output_gradient(head, Z, A, Y, 0.7), tol)
    _close(backend, ops.cost(head, Z, A, Y), ref.cost(head, Z, A, Y), tol)


@pytest.mark.parametrize("learning_rate", [1.0, 0.3])
def test_updating_every_parameter_at_once_matches_one_at_a_time(backend, dtype, tol, learning_rate, host_rng):
    """gd_update_all (TorchOps: one multi-tensor launch at a learning rate of 1, the training step's) gives
    each parameter the default's W -= alpha dW: its bits at 1 (a subtraction), within the dtype's
    tolerance otherwise (a fused kernel may contract alpha dW + W into one FMA)."""
    ops, ref = _pair(backend)
    shapes = [(4, 3), (4, 1), (1, 4), (1, 1)]
    W0 = [_rand(backend, host_rng, s, dtype) for s in shapes]
    dW = [_rand(backend, host_rng, s, dtype) for s in shapes]
    mine, theirs = ([backend.xp.asarray(W, copy=True) for W in W0] for _ in range(2))
    ops.gd_update_all(mine, dW, learning_rate)
    for W, d in zip(theirs, dW, strict=True):
        ref.gd_update(W, d, learning_rate)
    for a, b, before in zip(mine, theirs, W0, strict=True):
        if learning_rate == 1.0:
            np.testing.assert_array_equal(to_host(backend, a), to_host(backend, b))
        _close(backend, a, b, tol)
        assert not np.array_equal(to_host(backend, a), to_host(backend, before))


@pytest.mark.parametrize("update", ["gd", "momentum", "rmsprop", "adam"])
def test_optimizer_updates_match_the_default(backend, dtype, tol, update, host_rng):
    ops, ref = _pair(backend)
    shape = (6, 5)
    W0, dW = _rand(backend, host_rng, shape, dtype), _rand(backend, host_rng, shape, dtype)
    s0 = backend.asarray(host_rng.random(shape), dtype=dtype)  # second moments are >= 0
    v0 = _rand(backend, host_rng, shape, dtype)
    copy = lambda x: backend.xp.asarray(x, copy=True)  # noqa: E731
    results = []
    for o in (ops, ref):
        W, v, s = copy(W0), copy(v0), copy(s0)
        if update == "gd":
            o.gd_update(W, dW, 0.3)
        elif update == "momentum":
            o.momentum_update(W, dW, v, 0.3, 0.9)
        elif update == "rmsprop":
            o.rmsprop_update(W, dW, s, 0.3, 0.99, 1e-8)
        else:
            o.adam_update(W, dW, v, s, 0.3, 0.9, 0.999, 1e-8, 3)
        results.append((W, v, s))
    for mine, theirs in zip(*results, strict=True):
        _close(backend, mine, theirs, tol)
    if backend.name == "numpy":  # NumPy's in-place versions keep the default's order of operations
        for mine, theirs in zip(*results, strict=True):
            np.testing.assert_array_equal(to_host(backend, mine), to_host(backend, theirs))
    assert not np.array_equal(to_host(backend, results[0][0]), to_host(backend, W0))  # it did move


def test_dropout_mask_and_capture_match_the_default(backend, dtype):
    ops, ref = _pair(backend)
    dt = backend.dtype(dtype)
    mine = ops.dropout_mask((40, 30), 0.7, backend.rng(4), dt)
    theirs = ref.dropout_mask((40, 30), 0.7, backend.rng(4), dt)
    np.testing.assert_array_equal(to_host(backend, mine), to_host(backend, theirs))
    assert set(np.unique(to_host(backend, mine))) == {0.0, np.float64(np.asarray(1 / 0.7, dtype=dtype))}

    def step(x):
        return x + 1

    assert ops.capture(step)(1) == 2


class CountingOps(Ops):
    """Default ops that count what the core asks for: the seam is where the core computes."""

    def __init__(self, xp):
        super().__init__(xp)
        self.calls: dict[str, int] = {}

    def __getattribute__(self, name):
        calls = object.__getattribute__(self, "__dict__").get("calls")
        if calls is not None and not name.startswith("_") and name not in ("xp", "calls", "name"):
            calls[name] = calls.get(name, 0) + 1
        return object.__getattribute__(self, name)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"layer_forward", "activation_backward", "bias_gradient", "output_gradient", "gd_update_all"}),
        ({"optimizer": "adam", "batch_size": 16, "keep_prob": 0.8}, {"adam_update", "dropout_mask"}),
        ({"optimizer": "momentum"}, {"momentum_update"}),
        ({"optimizer": "rmsprop"}, {"rmsprop_update"}),
    ],
)
def test_the_network_computes_through_its_backends_ops(options, expected):
    base = get_backend("numpy")
    backend = type(base)(base.xp, base.device, CountingOps(base.xp))
    X, Y = dlcore.datasets.planar(backend, m=64)
    net = dlcore.Network([2, 5, 1], "tanh", backend=backend, seed=1)
    net.fit(X, Y, learning_rate=0.1, iterations=4, **options)
    assert expected <= set(backend.ops.calls), backend.ops.calls


def test_a_captured_step_computes_the_same_and_reuses_its_buffers(backend, dtype, host_rng):
    """ops.capture(step): the same numbers as the plain step on every call; NumPy serves the step's arrays
    from a workspace, so the second call makes no new (n, m) array."""
    ops = backend.ops
    dims = [3, 6, 5, 1]
    m = 1000  # (6, m) and (5, m) arrays: large enough for NumPy's workspace
    X = _rand(backend, host_rng, (3, m), dtype)
    Y = backend.asarray((host_rng.random((1, m)) > 0.5), dtype=dtype)
    acts = [get_activation("tanh"), get_activation("relu"), ACTIVATIONS["sigmoid"]]
    start = dlcore.initialize_parameters(dims, "xavier", backend, 5, dtype)
    copy = lambda p: {k: backend.xp.asarray(v, copy=True) for k, v in p.items()}  # noqa: E731
    seen = []

    def step(params):
        AL, caches = dlcore.forward(X, params, acts, ops=ops)
        grads = dlcore.backward(AL, Y, caches, acts, scale=0.1, ops=ops)
        seen.append({id(a) for c in caches[:2] for a in (c.Z, c.A)})
        dlcore.update(params, grads, 1.0, ops)
        return float(dlcore.cost(caches, Y, acts))

    plain, captured, run = copy(start), copy(start), ops.capture(step)
    for _ in range(3):
        assert run(captured) == step(plain)
    for k, v in plain.items():
        np.testing.assert_array_equal(to_host(backend, captured[k]), to_host(backend, v))
    if backend.name == "numpy":  # calls 1, 3, 5 were captured: the same hidden-layer buffers each time
        assert seen[0] == seen[2] == seen[4] and not seen[0] & seen[1]
