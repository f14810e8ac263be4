"""Explicit-loop reference implementations: the course's "for i = 1 to m" pseudo code, kept honest.

They work on the same backend arrays as the vectorized core (indexing one element or one column at
a time), and serve twice: as the independent oracle for the vectorized core in the tests, and as
the "loop" contestant in the benchmarks. They are deliberately slow; do not vectorize them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace

from dlcore.activations import Activation

Array = Any
Params = dict[str, Array]


# -- primitives from the vectorization lecture ------------------------------------------------
def dot_loop(a: Array, b: Array) -> float:
    """c = sum_i a[i] b[i] with a Python loop over elements. a, b: (n,)."""
    c = 0.0
    for i in range(a.shape[0]):
        c += float(a[i] * b[i])
    return c


def exp_loop(v: Array) -> Array:
    """u[i] = e^v[i], one element at a time. v: (n,)."""
    xp = array_namespace(v)
    u = xp.zeros_like(v)
    for i in range(v.shape[0]):
        u[i] = xp.exp(v[i])
    return u


def matvec_loop(A: Array, v: Array) -> Array:
    """u = A v with the two nested loops: u[i] = sum_j A[i, j] v[j]. A: (n, k), v: (k, 1)."""
    xp = array_namespace(A, v)
    n, k = A.shape
    u = xp.zeros((n, 1), dtype=A.dtype, device=A.device)
    for i in range(n):
        for j in range(k):
            u[i, 0] += A[i, j] * v[j, 0]
    return u


# -- logistic regression ----------------------------------------------------------------------
def _sigmoid_scalar(z: float) -> float:
    return 0.5 * math.tanh(0.5 * z) + 0.5


def logistic_gradients_two_loops(w: Array, b: float, X: Array, Y: Array) -> tuple[float, Array, float]:
    """The course's non-vectorized logistic regression: a loop over examples and one over features.

    w: (n_x, 1), b: scalar, X: (n_x, m), Y: (1, m). Returns (J, dw: (n_x, 1), db).
    Plain Python floats inside, as on the course's slide.
    """
    xp = array_namespace(w, X)
    n_x, m = X.shape
    J, db = 0.0, 0.0
    dw = [0.0] * n_x
    for i in range(m):
        z = float(b)
        for j in range(n_x):
            z += float(w[j, 0]) * float(X[j, i])
        a = _sigmoid_scalar(z)
        y = float(Y[0, i])
        J += max(z, 0.0) - y * z + math.log1p(math.exp(-abs(z)))  # -(y log a + (1-y) log(1-a))
        dz = a - y
        for j in range(n_x):
            dw[j] += float(X[j, i]) * dz
        db += dz
    dw_arr = xp.asarray([[g / m] for g in dw], dtype=X.dtype, device=X.device)
    return J / m, dw_arr, db / m


def logistic_gradients_one_loop(w: Array, b: float, X: Array, Y: Array) -> tuple[float, Array, float]:
    """One loop over examples, the feature loop replaced by vector operations (dw += x dz)."""
    xp = array_namespace(w, X)
    n_x, m = X.shape
    J, db = 0.0, 0.0
    dw = xp.zeros((n_x, 1), dtype=X.dtype, device=X.device)
    for i in range(m):
        x = X[:, i : i + 1]
        z = float(xp.sum(w * x)) + float(b)
        a = _sigmoid_scalar(z)
        y = float(Y[0, i])
        J += max(z, 0.0) - y * z + math.log1p(math.exp(-abs(z)))
        dz = a - y
        dw += x * dz
        db += dz
    return J / m, dw / m, db / m


# -- L-layer network, one example (column) at a time -------------------------------------------
def network_gradients_loop(
    X: Array, Y: Array, params: Params, activations: Sequence[Activation]
) -> tuple[float, Params]:
    """Cost and gradients by looping over the m examples, each pushed forward and back on its own.

    For each column x(i): z[l] = W[l] a[l-1] + b[l], a[l] = g(z[l]); then back with
    dz[L] = a[L] - y (sigmoid + cross-entropy, softmax + categorical cross-entropy, or linear + squared
    error / 2: the outputs whose loss gives that dz[L]), dW[l] += dz[l] a[l-1]^T, db[l] += dz[l],
    da[l-1] = W[l]^T dz[l], dz[l-1] = da[l-1] * g'(z[l-1]); finally everything is divided by m.
    """
    xp = array_namespace(X)
    loss = _EXAMPLE_LOSSES.get(activations[-1].name)
    if loss is None:
        raise ValueError(
            f"network_gradients_loop needs a sigmoid, softmax or linear output; got {activations[-1].name}"
        )
    L = len(params) // 2
    m = X.shape[1]
    grads = {f"d{k}": xp.zeros_like(v) for k, v in params.items()}
    J = 0.0
    for i in range(m):
        a, zs, as_ = X[:, i : i + 1], [], [X[:, i : i + 1]]
        for l in range(1, L + 1):
            z = params[f"W{l}"] @ a + params[f"b{l}"]
            a = activations[l - 1].forward(z)
            zs.append(z)
            as_.append(a)
        J += loss([float(v) for v in zs[-1][:, 0]], [float(v) for v in Y[:, i]])
        dz = as_[-1] - Y[:, i : i + 1]
        for l in range(L, 0, -1):
            grads[f"dW{l}"] += dz @ as_[l - 1].T
            grads[f"db{l}"] += dz
            if l > 1:
                da = params[f"W{l}"].T @ dz
                dz = da * activations[l - 2].derivative(zs[l - 2], as_[l - 1])
    return J / m, {k: g / m for k, g in grads.items()}


def _binary_cross_entropy(z: list[float], y: list[float]) -> float:
    """One example's loss over its output units, from the logits: log(1 + e^z) - y z, stably."""
    return sum(max(zk, 0.0) - yk * zk + math.log1p(math.exp(-abs(zk))) for zk, yk in zip(z, y, strict=True))


def _categorical_cross_entropy(z: list[float], y: list[float]) -> float:
    """-sum_k y_k log softmax(z)_k, with log-sum-exp shifted by max(z)."""
    top = max(z)
    log_sum = top + math.log(sum(math.exp(zk - top) for zk in z))
    return -sum(yk * (zk - log_sum) for zk, yk in zip(z, y, strict=True))


def _half_squared_error(z: list[float], y: list[float]) -> float:
    return sum((zk - yk) ** 2 for zk, yk in zip(z, y, strict=True)) / 2.0


#: one example's loss from its output logits, for each output whose loss makes dz[L] = a[L] - y
_EXAMPLE_LOSSES = {
    "sigmoid": _binary_cross_entropy,
    "softmax": _categorical_cross_entropy,
    "linear": _half_squared_error,
}
