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
    """R^2 = 1 - sum((Y - A)^2) / sum((Y - mean(Y))^2), over every output and column; A, Y: (n_y, m).

    1 is a perfect fit, 0 is no better than predicting each output's mean. For constant Y (no spread to
    explain) it is 1 when A == Y and 0 otherwise.
    """
    xp = namespace(A)
    residual = float(xp.sum((Y - A) ** 2))
    spread = float(xp.sum((Y - xp.mean(Y, axis=1, keepdims=True)) ** 2))
    if spread == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / spread


def rmse(A: Array, Y: Array) -> float:
    """Root mean squared error sqrt(mean((A - Y)^2)) over every output and column."""
    xp = namespace(A)
    D = A - Y
    return math.sqrt(float(xp.sum(D * D)) / (D.shape[0] * D.shape[1]))
