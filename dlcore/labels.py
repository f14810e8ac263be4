"""Class labels: integer labels (1, m) with values 0 .. C-1 <-> one-hot columns (C, m), and their checks."""

from __future__ import annotations

from typing import Any

from dlcore._namespace import namespace

Array = Any


def one_hot(labels: Array, n_classes: int, dtype: Any = None) -> Array:
    """Integer labels (1, m) -> one-hot (n_classes, m): Y[c, i] = 1 where labels[0, i] == c; bool unless
    ``dtype`` is given (targets for training: the network's float dtype, as the labels' namespace's dtype
    or its name). ValueError for a label that is
    not an integer in 0 .. n_classes-1 (its column would be all zeros, and train on nothing)."""
    xp = namespace(labels)
    if xp.isdtype(labels.dtype, ("integral", "bool")):  # classes in int64: in uint8, 256 was class 0 again
        labels = xp.astype(labels, xp.int64, copy=False)  # (and a bool arange is [False, True, True, ...])
    classes = xp.reshape(xp.arange(n_classes, dtype=labels.dtype, device=labels.device), (n_classes, 1))
    hot = labels == classes
    missed = ~xp.any(hot, axis=0)
    if bool(xp.any(missed)):  # the error path: a few more host reads to say which fix applies
        count = int(xp.sum(xp.astype(missed, xp.int64)))
        from_1 = float(xp.min(labels)) == 1 and float(xp.max(labels)) == n_classes
        raise ValueError(
            f"labels must be integers in 0 .. {n_classes - 1} for {n_classes} classes; {count} are not"
            + (" (labels counted from 1: subtract 1)" if from_1 else "")
        )
    if dtype is None:
        return hot
    try:  # a name ("float64") is the namespace's dtype of that name, on every backend
        return xp.astype(hot, getattr(xp, dtype) if isinstance(dtype, str) else dtype)
    except (AttributeError, TypeError, ValueError):
        raise ValueError(
            f"dtype must be a dtype of the labels' array library or its name ('float64'); got {dtype!r}"
        ) from None


def class_indices(Y: Array) -> Array:
    """One-hot or probability columns (C, m) -> the index of the largest entry, (1, m) int64."""
    xp = namespace(Y)
    return xp.astype(xp.argmax(Y, axis=0, keepdims=True), xp.int64)


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
    try:  # one_hot refuses what no column holds (out of range, not whole): one check, not two
        return one_hot(Yf, n_classes, backend.dtype(dtype))
    except ValueError:
        raise ValueError(
            f"Y must hold integer class labels 0 .. {n_classes - 1} (the output layer has {n_classes} "
            "units); map your classes to 0 .. n_classes-1 or widen the output layer"
        ) from None
