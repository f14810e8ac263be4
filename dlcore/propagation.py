"""L-layer forward and backward propagation, the gradient-descent update, and prediction.

The functional layer under :class:`dlcore.Network`. Parameters are a dict in the course's naming:
``{"W1": (n[1], n[0]), "b1": (n[1], 1), ..., "WL": (n[L], n[L-1]), "bL": (n[L], 1)}``, and
``activations`` lists g[1] .. g[L]. Logistic regression is ``layer_dims = [n_x, 1]`` with a sigmoid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from array_api_compat import array_namespace

from dlcore._namespace import namespace
from dlcore.activations import Activation
from dlcore.layers import LayerCache, layer_backward, layer_forward, linear_backward
from dlcore.losses import (
    binary_cross_entropy,
    binary_cross_entropy_from_logits,
    binary_cross_entropy_grad,
)
from dlcore.multiclass import categorical_cross_entropy_from_logits, class_indices

Array = Any
Params = dict[str, Array]


def num_layers(params: Params) -> int:
    """L, the number of layers with parameters."""
    return len(params) // 2


def forward(
    X: Array,
    params: Params,
    activations: Sequence[Activation],
    hidden: Callable[[Array], Array] | None = None,
) -> tuple[Array, list[LayerCache]]:
    """X: (n_x, m) -> A[L]: (n[L], m), plus one cache per layer.

    ``hidden``: applied to A[1] .. A[L-1] before they enter the next layer (inverted dropout:
    ``A * D[l]``); each cache keeps the layer's own A = g(Z), which is what g' needs.
    """
    A, caches = X, []
    L = num_layers(params)
    for l in range(1, L + 1):
        A, cache = layer_forward(A, params[f"W{l}"], params[f"b{l}"], activations[l - 1])
        caches.append(cache)
        if hidden is not None and l < L:
            A = hidden(A)
    return A, caches


def cost(caches: Sequence[LayerCache], Y: Array, activations: Sequence[Activation]) -> Array:
    """Binary cross-entropy of the forward pass that made ``caches``; from Z[L] when g[L] is sigmoid.
    With a softmax output (Y one-hot, (C, m)): categorical cross-entropy from Z[L] (log-sum-exp)."""
    last = caches[-1]
    if activations[-1].name == "sigmoid":
        return binary_cross_entropy_from_logits(last.Z, Y)
    if activations[-1].name == "softmax":
        return categorical_cross_entropy_from_logits(last.Z, Y)
    return binary_cross_entropy(last.A, Y)


def backward(
    AL: Array,
    Y: Array,
    caches: Sequence[LayerCache],
    activations: Sequence[Activation],
    masks: Sequence[Array] | None = None,
    scale: float = 1.0,
) -> Params:
    """Gradients {"dW1", "db1", ..., "dWL", "dbL"} of the cost J (the mean loss over the m columns).

    With a sigmoid output the first step is dZ[L] = (A[L] - Y) / m (the loss and sigmoid derivatives
    combined, which stays exact when A saturates); the same holds for a softmax output with
    categorical cross-entropy. Otherwise dA[L] = -(Y/A - (1-Y)/(1-A)) / m. The 1/m taken here is the
    course's 1/m of dW and db (see :mod:`dlcore.layers`).
    ``masks``: the inverted-dropout masks D[1] .. D[L-1] the forward pass used; dA[l] = dA[l] * D[l].
    ``scale``: returns ``scale`` times the gradients at no extra cost (the chain rule is linear);
    :func:`train_step` passes the learning rate, so that the update is one subtraction per parameter.
    """
    L = len(caches)
    m = AL.shape[1]
    grads: Params = {}
    if activations[-1].name in ("sigmoid", "softmax"):
        dZ = AL - Y
        dZ *= scale / m  # in place: dZ[L] = (A[L] - Y) / m
        dA, grads[f"dW{L}"], grads[f"db{L}"] = linear_backward(dZ, caches[-1], L > 1)
    else:
        dA = binary_cross_entropy_grad(AL, Y)
        dA *= scale / m
        dA, grads[f"dW{L}"], grads[f"db{L}"] = layer_backward(
            dA, caches[-1], activations[-1], L > 1, overwrite_dA=True
        )
    for l in range(L - 1, 0, -1):
        if masks is not None:
            dA *= masks[l - 1]  # in place: dA is backpropagation's own array
        dA, grads[f"dW{l}"], grads[f"db{l}"] = layer_backward(
            dA, caches[l - 1], activations[l - 1], need_dA_prev=l > 1, overwrite_dA=True
        )
    return grads


def update(params: Params, grads: Params, learning_rate: float) -> Params:
    """Gradient descent, in place: W[l] -= learning_rate * dW[l], b[l] -= learning_rate * db[l].

    With ``learning_rate=1`` the arrays are subtracted as they are, with no temporary: pass the
    steps ``backward(..., scale=learning_rate)`` returns, as :func:`train_step` does.
    """
    for name, value in params.items():
        grad = grads["d" + name]
        value -= grad if learning_rate == 1.0 else learning_rate * grad
    return params


def copy_params(params: Params) -> Params:
    """A copy of every parameter array (on its own device), e.g. a snapshot to roll back to."""
    return {name: namespace(value).asarray(value, copy=True) for name, value in params.items()}


def train_step(
    X: Array,
    Y: Array,
    params: Params,
    activations: Sequence[Activation],
    learning_rate: float,
    compute_cost: bool = True,
) -> Array | None:
    """One step of batch gradient descent, in place: forward, cost, backward, update.

    X: (n_x, m), Y: (1, m). Returns J (a 0-D array on the device, computed from the parameters
    *before* the update) or ``None`` when ``compute_cost`` is false.
    """
    AL, caches = forward(X, params, activations)
    J = cost(caches, Y, activations) if compute_cost else None
    steps = backward(AL, Y, caches, activations, scale=learning_rate)  # learning_rate * dW, ...
    update(params, steps, learning_rate=1.0)  # W -= learning_rate * dW, without a temporary
    return J


def predict_proba(X: Array, params: Params, activations: Sequence[Activation]) -> Array:
    """A[L]: (1, m), the predicted probability of class 1 for each column of X."""
    AL, _ = forward(X, params, activations)
    return AL


def predict(X: Array, params: Params, activations: Sequence[Activation]) -> Array:
    """0/1 predictions (1, m) as int64: 1 where A[L] > 0.5; for a softmax output, the class index
    argmax_c A[L][c, i]."""
    AL = predict_proba(X, params, activations)
    if activations[-1].name == "softmax":
        return class_indices(AL)
    xp = namespace(AL)
    return xp.astype(AL > 0.5, xp.int64)


def accuracy(predictions: Array, Y: Array) -> float:
    """Fraction of columns where the 0/1 predictions equal the labels Y: (1, m)."""
    xp = array_namespace(predictions, Y)
    correct = predictions == xp.astype(Y, predictions.dtype)
    return int(xp.sum(xp.astype(correct, xp.int64))) / correct.shape[1]
