"""L-layer forward and backward propagation, the gradient-descent update, and prediction.

The functional layer under :class:`dlcore.Network`. Parameters are a dict in the course's naming:
``{"W1": (n[1], n[0]), "b1": (n[1], 1), ..., "WL": (n[L], n[L-1]), "bL": (n[L], 1)}``, and
``activations`` lists g[1] .. g[L]. Logistic regression is ``layer_dims = [n_x, 1]`` with a sigmoid.
The output activation g[L] implies the loss (its :mod:`head <dlcore.heads>`): sigmoid -> binary
cross-entropy, softmax -> categorical cross-entropy, linear -> mean squared error. Every primitive
comes from ``ops`` (default: the ops registered for the arrays' library, :func:`dlcore.ops.ops_of`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dlcore._namespace import check_dense, check_together, namespace
from dlcore.activations import Activation
from dlcore.heads import Head, check_head, head_for
from dlcore.layers import LayerCache, layer_backward, layer_forward, linear_backward
from dlcore.metrics import accuracy
from dlcore.ops import Ops, ops_of
from dlcore.validation import check_learning_rate

Array = Any
Params = dict[str, Array]

__all__ = [
    "accuracy",
    "backward",
    "check_network_shapes",
    "check_target_shape",
    "cost",
    "forward",
    "predict",
    "predict_proba",
    "train_step",
    "update",
]


def num_layers(params: Params) -> int:
    """L, the number of layers with parameters."""
    return len(params) // 2


def _shape(x: Array) -> tuple[int, ...]:
    return tuple(x.shape)


def check_network_shapes(X: Array, params: Params, activations: Sequence[Activation]) -> None:
    """A ValueError unless X: (n_x, m) and the parameters chain as W[l]: (n[l], n[l-1]), b[l]: (n[l], 1)
    with one activation per layer, all of one dtype (NumPy would promote a float64 X silently, PyTorch
    and array_api_strict refuse it in their own words). Shapes and dtypes only (no device work, no sync)."""
    check_dense(X, "X")
    if getattr(X, "ndim", None) != 2:
        raise ValueError(f"X must be 2-D with shape (n_x, m), one example per column; got shape {_shape(X)}")
    L = num_layers(params)
    if L < 1 or len(params) != 2 * L:
        raise ValueError(f"params must hold W1, b1, ..., WL, bL; got {sorted(params)}")
    if len(activations) != L:
        raise ValueError(f"activations needs one entry per layer ({L}); got {len(activations)}")
    n_prev = X.shape[0]
    for l in range(1, L + 1):
        if f"W{l}" not in params or f"b{l}" not in params:
            raise ValueError(f"params lack W{l} or b{l}; got {sorted(params)}")
        W, b = params[f"W{l}"], params[f"b{l}"]
        if W.ndim != 2 or W.shape[1] != n_prev:
            raise ValueError(
                f"W{l} must have shape (n[{l}], {n_prev}) to follow "
                f"{'X' if l == 1 else f'layer {l - 1}'}; got {_shape(W)}"
            )
        if _shape(b) != (W.shape[0], 1):
            hint = f": use b{l}.reshape(-1, 1)" if b.ndim == 1 else ""
            raise ValueError(f"b{l} must have shape ({W.shape[0]}, 1), a column; got {_shape(b)}{hint}")
        n_prev = W.shape[0]
    W1 = params["W1"]
    dtype = W1.dtype
    for name, value in {"X": X, **params}.items():
        check_together(value, W1, name, "W1")
        if value.dtype != dtype:
            raise ValueError(
                f"{name} is {value.dtype} but W1 is {dtype}: give every array one dtype "
                f"(xp.astype({name}, W1.dtype))"
            )


def check_target_shape(Y: Array, AL: Array, activations: Sequence[Activation]) -> None:
    """A ValueError unless Y has the output's shape (n[L], m) and dtype. Metadata only."""
    check_targets_for(Y, tuple(AL.shape), AL, "the output A[L]", activations)


def check_targets_for(
    Y: Array,
    shape: tuple[int, ...],
    like: Array,
    like_name: str,
    activations: Sequence[Activation],
    same_dtype: bool = True,
) -> None:
    """A ValueError unless Y is an array of ``like``'s library and dtype (``same_dtype=False``: any
    floating dtype, as mixed precision's float32 targets of float16 parameters) of the output's ``shape``
    (n[L], m), naming the fix. Metadata only."""
    check_dense(Y, "Y")
    check_together(Y, like, "Y", like_name)
    if _shape(Y) == shape:
        if same_dtype and Y.dtype != like.dtype or not namespace(Y).isdtype(Y.dtype, "real floating"):
            raise ValueError(
                f"Y is {Y.dtype} but {like_name} is {like.dtype}: give Y the parameters' dtype "
                "(xp.astype(Y, W1.dtype))"
            )
        return
    n, m = shape
    hint = ""
    if activations and activations[-1].name == "softmax" and _shape(Y) == (1, m):
        hint = f": integer labels must be one-hot for the functional API, dlcore.one_hot(Y, {n}, W1.dtype)"
    elif getattr(Y, "ndim", None) == 1:
        hint = ": use Y.reshape(1, -1)"
    elif _shape(Y) == (m, n):
        hint = ": pass Y.T"
    raise ValueError(f"Y must have the output's shape (n[L], m) = ({n}, {m}); got {_shape(Y)}{hint}")


def forward(
    X: Array,
    params: Params,
    activations: Sequence[Activation],
    hidden: Callable[[Array], Array] | None = None,
    ops: Ops | None = None,
) -> tuple[Array, list[LayerCache]]:
    """X: (n_x, m) -> A[L]: (n[L], m), plus one cache per layer.

    ``hidden``: applied to A[1] .. A[L-1] before they enter the next layer (inverted dropout:
    ``A * D[l]``); each cache keeps the layer's own A = g(Z), which is what g' needs.
    A ValueError when the shapes do not chain (:func:`check_network_shapes`; shapes only, never values).
    """
    check_network_shapes(X, params, activations)
    return _forward(X, params, activations, hidden, ops)


def _forward(
    X: Array,
    params: Params,
    activations: Sequence[Activation],
    hidden: Callable[[Array], Array] | None = None,
    ops: Ops | None = None,
) -> tuple[Array, list[LayerCache]]:
    """:func:`forward` without the shape checks: the training loop's path (it checks once, up front)."""
    ops = ops or ops_of(X)
    A, caches = X, []
    L = num_layers(params)
    for l in range(1, L + 1):
        A, cache = layer_forward(A, params[f"W{l}"], params[f"b{l}"], activations[l - 1], ops)
        caches.append(cache)
        if hidden is not None and l < L:
            A = hidden(A)
    return A, caches


def cost(
    caches: Sequence[LayerCache], Y: Array, activations: Sequence[Activation], head: Head | None = None
) -> Array:
    """J of the forward pass that made ``caches`` (a 0-D array on the device), with the loss of ``head``
    (default: the one g[L] implies; binary cross-entropy from Z[L] for a sigmoid output).
    A ValueError unless Y has A[L]'s shape (n[L], m) (softmax: one-hot (C, m), not labels (1, m))."""
    if not caches:
        raise ValueError("cost needs the caches of a forward pass; got none")
    check_head(head)
    check_target_shape(Y, caches[-1].A, activations)
    return _cost(caches, Y, activations, head)


def _cost(
    caches: Sequence[LayerCache],
    Y: Array,
    activations: Sequence[Activation],
    head: Head | None = None,
    ops: Ops | None = None,
) -> Array:
    """:func:`cost` without the shape check (the training loop's path); computed by the ops."""
    last = caches[-1]
    return (ops or ops_of(last.Z)).cost(head or head_for(activations[-1]), last.Z, last.A, Y)


def backward(
    AL: Array,
    Y: Array,
    caches: Sequence[LayerCache],
    activations: Sequence[Activation],
    masks: Sequence[Array] | None = None,
    scale: float = 1.0,
    ops: Ops | None = None,
    head: Head | None = None,
) -> Params:
    """Gradients {"dW1", "db1", ..., "dWL", "dbL"} of the cost J (the mean loss over the m columns).

    The first step is the head's dZ[L] (``(A[L] - Y) / m`` for sigmoid, softmax and linear outputs, the
    loss and activation derivatives combined, exact when A saturates; otherwise the course's
    dA[L] = -(Y/A - (1-Y)/(1-A)) / m times g'(Z[L])). The 1/m taken there is the course's 1/m of dW and
    db (see :mod:`dlcore.layers`). Then, for l = L-1 .. 1: dZ = dA * g'(Z), dW = dZ A_prev^T,
    db = sum(dZ), dA_prev = W^T dZ.
    ``masks``: the inverted-dropout masks D[1] .. D[L-1] the forward pass used; dA[l] = dA[l] * D[l].
    ``scale``: returns ``scale`` times the gradients at no extra cost (the chain rule is linear);
    :func:`train_step` passes the learning rate, so that the update is one subtraction per parameter.
    A ValueError unless Y has A[L]'s shape and there is one cache and one activation per layer.
    """
    if not caches or len(caches) != len(activations):
        raise ValueError(f"backward needs one cache per activation; got {len(caches)} and {len(activations)}")
    check_head(head)
    check_target_shape(Y, AL, activations)
    return _backward(AL, Y, caches, activations, masks, scale, ops, head)


def _backward(
    AL: Array,
    Y: Array,
    caches: Sequence[LayerCache],
    activations: Sequence[Activation],
    masks: Sequence[Array] | None = None,
    scale: float = 1.0,
    ops: Ops | None = None,
    head: Head | None = None,
) -> Params:
    """:func:`backward` without the shape checks (the training loop's path)."""
    ops = ops or ops_of(AL)
    L = len(caches)
    last = caches[-1]
    grads: Params = {}
    dZ = ops.output_gradient(head or head_for(activations[-1]), last.Z, AL, Y, scale)
    dA, grads[f"dW{L}"], grads[f"db{L}"] = linear_backward(dZ, last, L > 1, ops)
    for l in range(L - 1, 0, -1):
        if masks is not None:
            dA *= masks[l - 1]  # in place: dA is backpropagation's own array
        dA, grads[f"dW{l}"], grads[f"db{l}"] = layer_backward(
            dA, caches[l - 1], activations[l - 1], need_dA_prev=l > 1, overwrite_dA=True, ops=ops
        )
    return grads


def update(params: Params, grads: Params, learning_rate: float, ops: Ops | None = None) -> Params:
    """Gradient descent, in place: W[l] -= learning_rate * dW[l], b[l] -= learning_rate * db[l].

    With ``learning_rate=1`` the arrays are subtracted as they are, with no temporary: pass the
    steps ``backward(..., scale=learning_rate)`` returns, as :func:`train_step` does. The gradients are
    checked first (:func:`check_gradients`).
    """
    check_gradients(params, grads)
    return apply_update(params, grads, check_learning_rate(learning_rate), ops)


def apply_update(params: Params, grads: Params, learning_rate: float, ops: Ops | None = None) -> Params:
    """:func:`update` without its checks: the training loop's, whose gradients backward made."""
    ops = ops or ops_of(next(iter(params.values())))
    ops.gd_update_all(list(params.values()), [grads["d" + name] for name in params], learning_rate)
    return params


def check_gradients(params: Params, grads: Params) -> None:
    """A ValueError unless ``grads`` holds ``d<name>`` for every parameter, an array of its library, device,
    shape and dtype (torch took NumPy gradients as no update at all, a wrong shape broadcast silently)."""
    for name, value in params.items():
        grad = grads.get("d" + name) if isinstance(grads, Mapping) else None
        if grad is None:
            raise ValueError(f"grads lack d{name}: give one gradient per parameter (dW1, db1, ...)")
        check_together(grad, value, f"d{name}", name)
        if _shape(grad) != _shape(value):
            raise ValueError(
                f"d{name} has shape {_shape(grad)} but {name} has {_shape(value)}: give each "
                "gradient its parameter's shape"
            )
        if grad.dtype != value.dtype:
            raise ValueError(
                f"d{name} is {grad.dtype} but {name} is {value.dtype}: give the gradients the parameters' "
                f"dtype (xp.astype(d{name}, {name}.dtype))"
            )


def copy_params(params: Params) -> Params:
    """A copy of every parameter array (on its own device), e.g. a snapshot to roll back to."""
    return {name: ops_of(value).xp.asarray(value, copy=True) for name, value in params.items()}


def train_step(
    X: Array,
    Y: Array,
    params: Params,
    activations: Sequence[Activation],
    learning_rate: float,
    compute_cost: bool = True,
    ops: Ops | None = None,
) -> Array | None:
    """One step of batch gradient descent, in place: forward, cost, backward, update.

    X: (n_x, m), Y: (n[L], m). Returns J (a 0-D array on the device, computed from the parameters
    *before* the update) or ``None`` when ``compute_cost`` is false.
    """
    learning_rate = check_learning_rate(learning_rate)  # a NumPy scalar failed on array_api_strict
    if getattr(X, "ndim", None) == 2 and X.shape[1] == 0:  # the gradients' 1/m
        raise ValueError(f"X has no examples (shape {tuple(X.shape)}, m = 0); pass at least one column")
    ops = ops or ops_of(X)
    steps = _CAPTURED.steps
    step = steps.get(ops)
    if step is None:  # once per ops object: a backend may reuse the step's buffers, or replay the step
        step = steps[ops] = ops.capture(_train_step, replay=True)
    return step(X, Y, params, activations, learning_rate, compute_cost, ops)


def _train_step(X, Y, params, activations, learning_rate, compute_cost, ops) -> Array | None:
    """Captured with ``replay=True``: every array is computed by ``ops`` (nothing here but shapes and
    calls), so that a backend may record the step's primitives once and replay them while the arguments
    stay the same (NumpyOps); the shape checks then run once per recording, not once per call."""
    check_network_shapes(X, params, activations)  # shapes only: a few tuple comparisons per call
    for name, value in {"X": X, "Y": Y, **params}.items():  # torch's in-place out= kernels refuse autograd
        if getattr(value, "requires_grad", False):
            raise ValueError(
                f"{name} requires grad (torch autograd), but dlcore computes its own gradients: pass "
                f"{name}.detach(), or make it without requires_grad=True"
            )
    head = head_for(activations[-1])
    AL, caches = _forward(X, params, activations, ops=ops)
    check_target_shape(Y, AL, activations)
    J = _cost(caches, Y, activations, head, ops) if compute_cost else None
    steps = _backward(AL, Y, caches, activations, None, learning_rate, ops, head)  # learning_rate * dW, ...
    apply_update(params, steps, 1.0, ops)  # W -= learning_rate * dW, without a temporary
    return J


class _PerThread(threading.local):
    """train_step as each ops object captured it, per thread: its buffers and recording live in the
    captured step, and threads training at once must not share them."""

    def __init__(self) -> None:
        self.steps: dict[Ops, Any] = {}


_CAPTURED = _PerThread()


def predict_proba(X: Array, params: Params, activations: Sequence[Activation]) -> Array:
    """A[L]: (n[L], m): the probability of class 1 (sigmoid), of each class (softmax), or the values."""
    AL, _ = forward(X, params, activations)
    return AL


def predict(X: Array, params: Params, activations: Sequence[Activation]) -> Array:
    """The head's predictions (1, m): 0/1 int64 where A[L] > 0.5; class indices argmax_c A[L][c, i] for
    softmax; A[L] itself for a linear (regression) output."""
    return head_for(activations[-1]).predict(predict_proba(X, params, activations))
