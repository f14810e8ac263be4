"""One layer, forward and backward: the whole of backpropagation on one screen.

Shapes (the course's column layout, one example per column):
    A_prev: (n[l-1], m)   W: (n[l], n[l-1])   b: (n[l], 1)   Z, A, dZ, dA: (n[l], m)

The course's equations, dZ = dA * g'(Z), dW = dZ A_prev^T / m, db = sum(dZ, axis=1) / m and
dA_prev = W^T dZ, with one change of bookkeeping: here dA and dZ are the derivatives of the mean
cost J, so the 1/m is applied once, to dZ[L] = (A[L] - Y) / m in :func:`dlcore.propagation.backward`,
and flows down every layer through the chain rule. ``dW = dZ @ A_prev.T`` below is the course's
``dW = dZ @ A_prev.T / m``: same numbers, one (n[l], n[l-1]) pass and one (n[l], m) pass fewer per layer.

The code also avoids work the equations do not need: the bias is added in place, a one-row W turns
W^T dZ into an outer product (a broadcast multiply, ~15x faster than matmul on CPU), and layer 1
skips dA[0] = dX. The primitives come from ``ops`` (:mod:`dlcore.ops`), so a backend may fuse them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dlcore.activations import Activation
from dlcore.ops import Ops, ops_of

Array = Any


class LayerCache(NamedTuple):
    """What forward keeps for backward: the layer's input, weights, pre-activation and output."""

    A_prev: Array
    W: Array
    Z: Array
    A: Array


def layer_forward(
    A_prev: Array, W: Array, b: Array, g: Activation, ops: Ops | None = None
) -> tuple[Array, LayerCache]:
    """Z = W A_prev + b, A = g(Z). Returns A: (n[l], m) and the cache."""
    Z, A = (ops or ops_of(A_prev)).layer_forward(W, A_prev, b, g)
    return A, LayerCache(A_prev, W, Z, A)


def layer_backward(
    dA: Array,
    cache: LayerCache,
    g: Activation,
    need_dA_prev: bool = True,
    overwrite_dA: bool = False,
    ops: Ops | None = None,
) -> tuple[Array | None, Array, Array]:
    """From dA = dJ/dA: (n[l], m) to (dA_prev, dW, db), with dZ = dA * g'(Z).

    ``overwrite_dA=True`` computes dZ in dA's memory (backpropagation owns its dA; callers keep theirs).
    """
    ops = ops or ops_of(dA)
    if not overwrite_dA:
        dA = ops.xp.asarray(dA, copy=True)
    dZ = ops.activation_backward(g, dA, cache.Z, cache.A)
    return linear_backward(dZ, cache, need_dA_prev, ops)


def linear_backward(
    dZ: Array, cache: LayerCache, need_dA_prev: bool = True, ops: Ops | None = None
) -> tuple[Array | None, Array, Array]:
    """The linear part Z = W A_prev + b, backwards, from dZ = dJ/dZ (which carries the 1/m).

    dW = dZ A_prev^T,  db = sum(dZ, axis=1),  dA_prev = W^T dZ.
    ``dA_prev`` is skipped (None) for the first layer, where nobody needs dX. ``dZ`` is not modified.
    """
    return (ops or ops_of(dZ)).linear_backward(dZ, cache.A_prev, cache.W, need_dA_prev)
