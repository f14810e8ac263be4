"""Multi-class output: softmax, categorical cross-entropy (stable, via log-sum-exp), labels.

Shapes: logits ``Z[L]: (C, m)`` for C classes, ``A[L] = softmax(Z[L]): (C, m)`` (each column sums to
1), one-hot labels ``Y: (C, m)``, integer labels ``(1, m)`` with values in ``0 .. C-1``.

    softmax(z)_i = e^(z_i - max z) / sum_j e^(z_j - max z)
    J = -1/m sum_i sum_c Y[c, i] log A[c, i],  with log A = Z - logsumexp(Z)  (never log 0)
    dZ[L] = A[L] - Y  (softmax and cross-entropy derivatives combined, as for the sigmoid)
"""

from __future__ import annotations

from typing import Any

from dlcore._namespace import namespace
from dlcore.activations import Activation

Array = Any


def logsumexp(Z: Array) -> Array:
    """log sum_c e^Z[c, i] per column, (C, m) -> (1, m), shifted by the column max: no overflow."""
    xp = namespace(Z)
    Zmax = xp.max(Z, axis=0, keepdims=True)
    return Zmax + xp.log(xp.sum(xp.exp(Z - Zmax), axis=0, keepdims=True))


def softmax(Z: Array) -> Array:
    """A[c, i] = e^Z[c, i] / sum_k e^Z[k, i], column-wise, stable for any finite Z. (C, m) -> (C, m)."""
    xp = namespace(Z)
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return E / xp.sum(E, axis=0, keepdims=True)


def log_softmax(Z: Array) -> Array:
    """log softmax(Z) = Z - logsumexp(Z), finite for any finite Z. (C, m) -> (C, m)."""
    return Z - logsumexp(Z)


def _softmax_derivative(Z: Array, A: Array) -> Array:
    raise ValueError(
        "softmax has no elementwise derivative; use it as the output layer with categorical "
        "cross-entropy, where dZ = A - Y"
    )


SOFTMAX = Activation("softmax", softmax, _softmax_derivative)


def categorical_cross_entropy_from_logits(Z: Array, Y: Array) -> Array:
    """J = -1/m sum(Y * log_softmax(Z)) from logits Z: (C, m) and one-hot Y: (C, m). Returns 0-D."""
    xp = namespace(Z)
    m = Z.shape[1]
    return -xp.sum(Y * log_softmax(Z)) / m


def one_hot(labels: Array, n_classes: int, dtype: Any = None) -> Array:
    """Integer labels (1, m) -> one-hot (n_classes, m): Y[c, i] = 1 where labels[0, i] == c."""
    xp = namespace(labels)
    classes = xp.reshape(xp.arange(n_classes, dtype=labels.dtype, device=labels.device), (n_classes, 1))
    hot = labels == classes
    return hot if dtype is None else xp.astype(hot, dtype)


def class_indices(Y: Array) -> Array:
    """One-hot or probability columns (C, m) -> the index of the largest entry, (1, m) int64."""
    xp = namespace(Y)
    return xp.astype(xp.argmax(Y, axis=0, keepdims=True), xp.int64)


def confusion_matrix(labels: Array, predictions: Array, n_classes: int) -> Array:
    """C[i, j] = number of examples of true class i predicted as class j. labels, predictions: (1, m)
    integers -> (n_classes, n_classes) int64, computed on the device as one_hot(labels) one_hot(pred)^T."""
    xp = namespace(labels)
    T = one_hot(xp.astype(labels, xp.int64), n_classes, xp.int64)
    P = one_hot(xp.astype(predictions, xp.int64), n_classes, xp.int64)
    return T @ P.T


def check_class_labels(Y: Any, n_classes: int, m: int, backend: Any, dtype: Any) -> Array:
    """Labels as integers (1, m) in 0 .. n_classes-1 or one-hot (n_classes, m) -> one-hot (n_classes, m)
    of ``dtype`` on ``backend``, or a ValueError saying what is wrong."""
    xp = backend.xp
    try:
        Y = backend.asarray(Y)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Y must be a numeric array; could not convert it ({exc})") from None
    shape = tuple(Y.shape)
    if Y.ndim != 2 or shape not in ((1, m), (n_classes, m)):
        hint = ": use Y.reshape(1, -1)" if Y.ndim == 1 else ""
        raise ValueError(
            f"Y must hold integer class labels of shape (1, m) = (1, {m}) or one-hot columns of shape "
            f"(n_classes, m) = ({n_classes}, {m}); got {shape}{hint}"
        )
    Yf = xp.astype(Y, backend.dtype("float64")) if xp.isdtype(Y.dtype, ("integral", "bool")) else Y
    if not bool(xp.all(xp.isfinite(Yf))):
        raise ValueError("Y contains NaN or inf; clean or impute them first")
    if shape == (n_classes, m) and n_classes != 1:
        ok = xp.all((Yf == 0) | (Yf == 1)) and xp.all(xp.sum(Yf, axis=0) == 1)
        if not bool(ok):
            raise ValueError(
                f"Y of shape ({n_classes}, m) must be one-hot (one 1 per column); "
                f"or pass integer labels of shape (1, {m})"
            )
        return backend.asarray(Yf, dtype=dtype)
    bad = (Yf < 0) | (Yf >= n_classes) | (Yf != xp.floor(Yf))
    if bool(xp.any(bad)):
        raise ValueError(
            f"Y must hold integer class labels 0 .. {n_classes - 1} (the output layer has {n_classes} "
            "units); map your classes to 0 .. n_classes-1 or widen the output layer"
        )
    return one_hot(xp.astype(Yf, xp.int64), n_classes, backend.dtype(dtype))
