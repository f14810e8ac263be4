"""Losses J (the mean over the m columns), each computed so that it stays finite where it can.

- binary cross-entropy  J = -1/m sum(Y log A + (1 - Y) log(1 - A)), A = sigmoid(Z): from the logits as
  ``sum(max(Z, 0) - Y Z + log(1 + e^-|Z|)) / m`` (log(1 + e^Z) - Y Z without overflow, and without the
  cancellation of ``logaddexp(0, Z) - Y Z`` for Y = 1, Z > 0), so even saturated outputs (|Z| = 1e4)
  give a finite, accurate cost;
- categorical cross-entropy  J = -1/m sum_i sum_c Y[c, i] log A[c, i], with log A = Z - logsumexp(Z)
  (a term with Y[c, i] = 0 adds 0 even when Z[c, i] = -inf);
- mean squared error  J = 1/(2m) sum_i ||A[:, i] - Y[:, i]||^2 (the 1/2 makes dJ/dA = (A - Y) / m).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlcore._namespace import namespace
from dlcore.activations import log_softmax

Array = Any


def _times(a: Array, b: Array) -> Array:
    """a * b elementwise, with 0 wherever a == 0, even where b is infinite (no 0 * inf = NaN)."""
    xp = namespace(b)
    return a * xp.where(a == 0, xp.zeros_like(b), b)


def binary_cross_entropy_from_logits(
    Z: Array, Y: Array, positive_part: Callable[[Array], Array] | None = None
) -> Array:
    """J from the output logits. Z, Y: (1, m). Returns a 0-D array (stays on the device).

    ``max(Z, 0) + log1p(exp(-|Z|))`` is log(1 + e^Z): as stable as ``logaddexp`` and, on NumPy, about 15x
    faster at m = 40,000 (logaddexp runs a scalar loop). Infinite logits give the limit, never NaN:
    the loss is written ``(1 - Y) max(Z, 0) + Y max(-Z, 0) + log1p(e^-|Z|)`` with ``0 * inf = 0``
    (z = -inf with y = 0 costs 0, z = +inf with y = 0 costs inf). ``positive_part``: x -> max(x, 0), by
    default ``xp.maximum(x, 0.0)`` (a backend's ops may pass its library's own)."""
    xp = namespace(Z)
    m = Z.shape[1]
    pos = positive_part or (lambda x: xp.maximum(x, 0.0))
    loss = _times(1.0 - Y, pos(Z))
    loss += _times(Y, pos(-Z))  # exactly 0 for a confident, correct prediction: no cancellation
    loss += xp.log1p(xp.exp(-xp.abs(Z)))
    return xp.sum(loss) / m


def binary_cross_entropy(A: Array, Y: Array, eps: float | None = None) -> Array:
    """J from probabilities A (the course's formula). Returns 0-D.

    A is clipped to [eps, 1 - eps], by default the dtype's own machine epsilon (1.2e-7 in float32, where
    a fixed 1e-12 would round 1 - eps back to 1 and give log(0) = -inf, then NaN)."""
    xp = namespace(A)
    m = A.shape[1]
    if eps is None:
        eps = float(xp.finfo(A.dtype).eps)
    A = xp.clip(A, eps, 1.0 - eps)
    return -xp.sum(_times(Y, xp.log(A)) + _times(1.0 - Y, xp.log(1.0 - A))) / m


def binary_cross_entropy_grad(A: Array, Y: Array) -> Array:
    """dA[L] = -(Y / A - (1 - Y) / (1 - A)), the course's derivative of the loss w.r.t. A, with A clipped
    as :func:`binary_cross_entropy` clips it (a saturated A of exactly 0 or 1 gives a finite slope)."""
    xp = namespace(A)
    eps = float(xp.finfo(A.dtype).eps)
    A = xp.clip(A, eps, 1.0 - eps)
    return -(Y / A - (1.0 - Y) / (1.0 - A))


def categorical_cross_entropy_from_logits(Z: Array, Y: Array) -> Array:
    """J = -1/m sum(Y * log_softmax(Z)) from logits Z: (C, m) and one-hot Y: (C, m). Returns 0-D."""
    xp = namespace(Z)
    m = Z.shape[1]
    # a -inf logit of a class with Y = 0 adds 0, not NaN; 0 - J/m: a certain, correct net costs 0.0,
    # not -0.0 (printed "cost -0.000000")
    return 0.0 - xp.sum(_times(Y, log_softmax(Z))) / m


def mean_squared_error(A: Array, Y: Array) -> Array:
    """J = 1/(2m) sum((A - Y)^2) for A, Y: (n_y, m). Returns 0-D."""
    xp = namespace(A)
    m = A.shape[1]
    D = A - Y
    return xp.sum(D * D) / (2.0 * m)
