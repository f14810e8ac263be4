"""Regularization: L2 weight decay and inverted dropout, as in the course.

L2 (``lambd``, the ``alpha`` of scikit-learn's MLP), for a (mini-)batch of m examples:
    J_reg = J + lambd / (2 m) * sum_l ||W[l]||_F^2,      dW[l] += lambd / m * W[l]

Inverted dropout on the hidden layers (never the input or the output), keep probability p:
    D[l] = (U < p) / p  with U uniform from the backend's RNG,  A[l] = g(Z[l]) * D[l]
    backward:  dA[l] = dA[l] * D[l]   (propagation.backward(..., masks=D))
Dividing by p keeps the expected value of A[l], so nothing changes at predict time (dropout off).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlcore._namespace import namespace
from dlcore.activations import Activation
from dlcore.layers import LayerCache
from dlcore.ops import Ops, as_at_least_float32, ops_of
from dlcore.propagation import _forward

Array = Any
Params = dict[str, Array]


# -- L2 -----------------------------------------------------------------------------------------
def l2_cost(params: Params, lambd: float, m: int) -> Array:
    """lambd / (2 m) * sum of the squared weights of every layer (biases are not penalized). 0-D, in
    float32 at least (mixed precision's float16 would overflow past 65504, bfloat16 keep ~3 digits)."""
    weights = [as_at_least_float32(W) for name, W in params.items() if name.startswith("W")]
    xp = namespace(weights[0])
    return (lambd / (2.0 * m)) * sum(xp.sum(W * W) for W in weights)


def add_l2_gradients(grads: Params, params: Params, lambd: float, m: int, scale: float = 1.0) -> Params:
    """dW[l] += scale * lambd / m * W[l], in place (``scale``: backward's, when the grads are pre-scaled);
    db untouched. A low-precision dW (mixed precision) is replaced by its float32 sum with the term: the
    data-parallel path adds L2 to the ranks' float32 sums the same way, so one rank gives one process's
    bits."""
    scale = scale * lambd / m
    for name, W in params.items():
        if name.startswith("W"):
            dW = grads["d" + name] = as_at_least_float32(grads["d" + name])
            dW += scale * as_at_least_float32(W)
    return grads


# -- inverted dropout -----------------------------------------------------------------------------
def check_keep_prob(keep_prob: Any) -> float:
    try:
        p = float(keep_prob)
    except (TypeError, ValueError):
        raise ValueError(f"keep_prob must be a number in (0, 1]; got {keep_prob!r}") from None
    if not 0.0 < p <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1] (1 = no dropout); got {keep_prob!r}")
    return p


def dropout_mask(
    shape: tuple[int, ...], keep_prob: float, rng: Any, dtype: Any, ops: Ops | None = None
) -> Array:
    """D = (U < keep_prob) / keep_prob with U ~ uniform[0, 1) drawn by the backend's ``rng``."""
    return (ops or rng.backend.ops).dropout_mask(shape, keep_prob, rng, dtype)


def forward_with_dropout(
    X: Array,
    params: Params,
    activations: Sequence[Activation],
    keep_prob: float,
    rng: Any,
    ops: Ops | None = None,
    columns: tuple[int, int, int] | None = None,
) -> tuple[Array, list[LayerCache], list[Array]]:
    """Forward pass with inverted dropout on A[1] .. A[L-1]. Returns A[L], caches, masks D[1..L-1].

    Each cache keeps the layer's own A = g(Z) (for g'), while the next layer's A_prev is A * D.
    ``columns=(mb, lo, hi)``: X holds columns lo..hi of a batch of mb (data-parallel training); each
    mask is drawn for all mb columns and sliced, so the ranks together use one process's masks.
    """
    ops = ops or ops_of(X)
    masks: list[Array] = []

    def drop(A: Array) -> Array:
        if columns is None:
            D = ops.dropout_mask(tuple(A.shape), keep_prob, rng, A.dtype)
        else:
            mb, lo, hi = columns
            D = ops.dropout_mask((A.shape[0], mb), keep_prob, rng, A.dtype)[:, lo:hi]
        masks.append(D)
        return A * D

    AL, caches = _forward(X, params, activations, hidden=drop, ops=ops)
    return AL, caches, masks
