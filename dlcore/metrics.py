"""Scores of predictions against labels or targets: accuracy, the confusion matrix, R^2 and RMSE."""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from dlcore._namespace import check_together, namespace
from dlcore.labels import one_hot

Array = Any


def _check_shapes(a: Array, b: Array, names: str, rows: str = "1", score: str | None = None) -> None:
    """ValueError unless a and b are both (1, m) (``rows="n_y"``: both (n_y, m), one shape), and, for a
    ``score`` (a mean over the examples), m > 0."""
    check_together(a, b, *names.split(" and "))
    shapes = tuple(a.shape), tuple(b.shape)

    def fits(shape: tuple[int, ...]) -> bool:
        return len(shape) == 2 and (rows != "1" or shape[0] == 1)

    if shapes[0] == shapes[1] and fits(shapes[0]):
        if score and not shapes[0][1]:
            raise ValueError(f"{score} of no examples (m = 0) is undefined; {names} hold none")
        return
    hint = "" if all(map(fits, shapes)) else ": pass rows, x.reshape(1, -1)"
    raise ValueError(f"{names} must both be ({rows}, m); got {shapes[0]} and {shapes[1]}{hint}")


def accuracy(predictions: Array, Y: Array) -> float:
    """Fraction of columns where the predicted labels equal the labels Y: (1, m)."""
    _check_shapes(predictions, Y, "predictions and labels", score="accuracy")
    xp = array_namespace(predictions, Y)
    if xp.isdtype(Y.dtype, "real floating"):  # a label 1.7 matches no class (cast to an integer, it was 1)
        predictions = xp.astype(predictions, Y.dtype)
    correct = predictions == xp.astype(Y, predictions.dtype)
    return int(xp.sum(xp.astype(correct, xp.int64))) / correct.shape[1]


def confusion_matrix(labels: Array, predictions: Array, n_classes: int) -> Array:
    """C[i, j] = number of examples of true class i predicted as class j. labels, predictions: (1, m)
    integers -> (n_classes, n_classes) int64, computed on the device as one_hot(labels) one_hot(pred)^T.

    The product is taken in float64 (counts exact to 2^53): PyTorch has no integer matrix product on
    CUDA ("addmm_cuda" not implemented for 'Long', seen on an H200). A label or prediction outside
    0 .. n_classes-1 is a ValueError (one_hot checks each)."""
    xp = namespace(labels)
    _check_shapes(labels, predictions, "labels and predictions")
    try:
        T = one_hot(labels, n_classes, xp.float64)  # no cast first: a label 2.9 is refused, not class 2
        P = one_hot(predictions, n_classes, xp.float64)
    except ValueError:
        raise ValueError(f"labels and predictions must be class indices in 0 .. {n_classes - 1}") from None
    return xp.astype(T @ P.T, xp.int64)


def r2_score(A: Array, Y: Array) -> float:
    """R^2 = 1 - sum((y - a)^2) / sum((y - mean(y))^2) of each output (row), averaged over the outputs
    (scikit-learn's ``r2_score``, its default ``multioutput="uniform_average"``); A, Y: (n_y, m).
    The predictions come first, as in the costs (scikit-learn's order is the reverse: y_true, y_pred).

    1 is a perfect fit, 0 is no better than predicting the output's mean. An output with constant Y (no
    spread to explain) scores 1 when A == Y there and 0 otherwise. One host transfer.
    """
    xp = namespace(A)
    _check_shapes(A, Y, "predictions A and targets Y", rows="n_y", score="R^2")
    if not (xp.isdtype(A.dtype, "real floating") and xp.isdtype(Y.dtype, "real floating")):
        A, Y = xp.astype(A, xp.float64), xp.astype(Y, xp.float64)  # integer targets: a mean of them
    residual = xp.sum((Y - A) ** 2, axis=1)
    spread = xp.sum((Y - xp.mean(Y, axis=1, keepdims=True)) ** 2, axis=1)
    explained = 1.0 - residual / xp.where(spread > 0, spread, xp.ones_like(spread))
    constant = xp.astype(residual == 0, residual.dtype)
    return float(xp.mean(xp.where(spread > 0, explained, constant)))


def rmse(A: Array, Y: Array) -> float:
    """Root mean squared error sqrt(mean((A - Y)^2)) over every output and column; A, Y: (n_y, m)."""
    xp = namespace(A)
    _check_shapes(A, Y, "predictions A and targets Y", rows="n_y", score="RMSE")
    D = A - Y
    return math.sqrt(float(xp.sum(D * D)) / (D.shape[0] * D.shape[1]))
