"""Scores of predictions against labels or targets: accuracy, the confusion matrix, R^2 and RMSE."""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from dlcore._namespace import namespace
from dlcore.labels import one_hot

Array = Any


def accuracy(predictions: Array, Y: Array) -> float:
    """Fraction of columns where the predicted labels equal the labels Y: (1, m)."""
    xp = array_namespace(predictions, Y)
    if tuple(predictions.shape) != tuple(Y.shape):
        raise ValueError(
            f"predictions and labels must have one shape, (1, m); got {tuple(predictions.shape)} and "
            f"{tuple(Y.shape)}"
        )
    correct = predictions == xp.astype(Y, predictions.dtype)
    return int(xp.sum(xp.astype(correct, xp.int64))) / correct.shape[1]


def confusion_matrix(labels: Array, predictions: Array, n_classes: int) -> Array:
    """C[i, j] = number of examples of true class i predicted as class j. labels, predictions: (1, m)
    integers -> (n_classes, n_classes) int64, computed on the device as one_hot(labels) one_hot(pred)^T.

    The product is taken in float64 (counts exact to 2^53): PyTorch has no integer matrix product on
    CUDA ("addmm_cuda" not implemented for 'Long', seen on an H200)."""
    xp = namespace(labels)
    T = one_hot(xp.astype(labels, xp.int64), n_classes, xp.float64)
    P = one_hot(xp.astype(predictions, xp.int64), n_classes, xp.float64)
    return xp.astype(T @ P.T, xp.int64)


def r2_score(A: Array, Y: Array) -> float:
    """R^2 = 1 - sum((y - a)^2) / sum((y - mean(y))^2) of each output (row), averaged over the outputs
    (scikit-learn's ``r2_score``, its default ``multioutput="uniform_average"``); A, Y: (n_y, m).

    1 is a perfect fit, 0 is no better than predicting the output's mean. An output with constant Y (no
    spread to explain) scores 1 when A == Y there and 0 otherwise. One host transfer.
    """
    xp = namespace(A)
    residual = xp.sum((Y - A) ** 2, axis=1)
    spread = xp.sum((Y - xp.mean(Y, axis=1, keepdims=True)) ** 2, axis=1)
    explained = 1.0 - residual / xp.where(spread > 0, spread, xp.ones_like(spread))
    constant = xp.astype(residual == 0, residual.dtype)
    return float(xp.mean(xp.where(spread > 0, explained, constant)))


def rmse(A: Array, Y: Array) -> float:
    """Root mean squared error sqrt(mean((A - Y)^2)) over every output and column."""
    xp = namespace(A)
    D = A - Y
    return math.sqrt(float(xp.sum(D * D)) / (D.shape[0] * D.shape[1]))
