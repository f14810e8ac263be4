"""Losses J (the mean over the m columns), each computed so that it stays finite where it can.

- binary cross-entropy  J = -1/m sum(Y log A + (1 - Y) log(1 - A)), A = sigmoid(Z): from the logits as
  ``sum(max(Z, 0) - Y Z + log(1 + e^-|Z|)) / m`` (log(1 + e^Z) - Y Z without overflow, and without the
  cancellation of ``logaddexp(0, Z) - Y Z`` for Y = 1, Z > 0), so even saturated outputs (|Z| = 1e4)
  give a finite, accurate cost;
- categorical cross-entropy  J = -1/m sum_i sum_c Y[c, i] log A[c, i], with log A = Z - logsumexp(Z);
- mean squared error  J = 1/(2m) sum_i ||A[:, i] - Y[:, i]||^2 (the 1/2 makes dJ/dA = (A - Y) / m).
"""

from __future__ import annotations

from typing import Any

from dlcore._namespace import namespace
from dlcore.activations import log_softmax

Array = Any


def binary_cross_entropy_from_logits(Z: Array, Y: Array) -> Array:
    """J from the output logits. Z, Y: (1, m). Returns a 0-D array (stays on the device).

    ``max(Z, 0) + log1p(exp(-|Z|))`` is log(1 + e^Z): as stable as ``logaddexp`` and, on NumPy, about 15x
    faster at m = 40,000 (logaddexp runs a scalar loop)."""
    xp = namespace(Z)
    m = Z.shape[1]
    loss = xp.maximum(Z, 0.0)
    loss -= Y * Z  # exactly 0 for a confident, correct prediction: no cancellation below
    loss += xp.log1p(xp.exp(-xp.abs(Z)))
    return xp.sum(loss) / m


def binary_cross_entropy(A: Array, Y: Array, eps: float = 1e-12) -> Array:
    """J from probabilities A (the course's formula; A is clipped to [eps, 1 - eps]). Returns 0-D."""
    xp = namespace(A)
    m = A.shape[1]
    A = xp.clip(A, eps, 1.0 - eps)
    return -xp.sum(Y * xp.log(A) + (1.0 - Y) * xp.log(1.0 - A)) / m


def binary_cross_entropy_grad(A: Array, Y: Array) -> Array:
    """dA[L] = -(Y / A - (1 - Y) / (1 - A)), the course's derivative of the loss w.r.t. A."""
    return -(Y / A - (1.0 - Y) / (1.0 - A))


def categorical_cross_entropy_from_logits(Z: Array, Y: Array) -> Array:
    """J = -1/m sum(Y * log_softmax(Z)) from logits Z: (C, m) and one-hot Y: (C, m). Returns 0-D."""
    xp = namespace(Z)
    m = Z.shape[1]
    return -xp.sum(Y * log_softmax(Z)) / m


def mean_squared_error(A: Array, Y: Array) -> Array:
    """J = 1/(2m) sum((A - Y)^2) for A, Y: (n_y, m). Returns 0-D."""
    xp = namespace(A)
    m = A.shape[1]
    D = A - Y
    return xp.sum(D * D) / (2.0 * m)
