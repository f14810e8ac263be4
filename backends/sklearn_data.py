"""The host (NumPy) side of dlcore's scikit-learn support (scikit-learn is an optional extra).

scikit-learn's bundled data sets in the course's column layout (``X: (n_x, m)`` float64, ``Y: (1, m)``
int64 class labels), and the conversions :mod:`dlcore.sklearn`'s estimators make between scikit-learn's
rows (``X: (m, n)``, ``y: (m,)`` labels of any type) and the core's columns.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from dlcore.backends.base import to_numpy

SKLEARN_FIX = 'pip install scikit-learn (or pip install "dlcore[sklearn]")'


def sklearn_available() -> tuple[bool, str]:
    """``(True, "")`` when scikit-learn imports, else ``(False, one line saying how to get it)``."""
    try:
        importlib.import_module("sklearn")
    except ImportError:
        return False, f"the digits data set needs scikit-learn, which is not installed; {SKLEARN_FIX}"
    return True, ""


def load_digits_columns() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``X: (64, 1797)`` in [0, 1] and ``Y: (1, 1797)`` int64 labels 0..9 (no split)."""
    ok, why = sklearn_available()
    if not ok:
        raise ValueError(why)
    from sklearn.datasets import load_digits as _load

    digits = _load()
    return (digits.data.astype(np.float64) / 16.0).T.copy(), digits.target.astype(np.int64).reshape(1, -1)


# -- the scikit-learn estimators' host-side conversions (dlcore.sklearn: rows in, columns inside) ---------
def encode_labels(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, Y)``: the sorted distinct labels of ``y`` (m,) (any type: ints, strings, ...) and
    ``Y: (1, m)`` int64 indices into them."""
    classes, indices = np.unique(np.asarray(y), return_inverse=True)
    return classes, indices.reshape(1, -1).astype(np.int64)


def label_indices(y: Any, classes: np.ndarray) -> np.ndarray:
    """``Y: (1, m)`` int64 indices of the labels ``y`` in ``classes``; ValueError naming unseen labels."""
    y = np.asarray(y)
    unseen = np.setdiff1d(y, classes)
    if unseen.size:
        raise ValueError(
            f"y holds labels not in classes_ {classes.tolist()}: {unseen[:5].tolist()}; pass every class "
            "to the first partial_fit (classes=...)"
        )
    return np.searchsorted(classes, y).reshape(1, -1).astype(np.int64)


def _not_narrowed(A: np.ndarray, dtype: str) -> np.dtype:
    """``dtype``, or ``A``'s own float dtype where it is wider: the core (Network.check_X, check_targets)
    narrows it and refuses values beyond ``dtype``'s range in one sentence. Cast here first, they were
    inf, and the core said to clean or impute NaN or inf it was never given."""
    wider = A.dtype.kind == "f" and A.dtype.itemsize > np.dtype(dtype).itemsize
    return A.dtype if wider else np.dtype(dtype)


def rows_to_columns(X: Any, dtype: str) -> np.ndarray:
    """scikit-learn's ``X: (m, n)`` as the core's ``(n, m)``, contiguous, in ``dtype`` (or X's wider
    float dtype, which the core narrows)."""
    X = np.asarray(X)
    return np.ascontiguousarray(X.T, dtype=_not_narrowed(X, dtype))


def targets_to_columns(y: Any, dtype: str) -> np.ndarray:
    """Regression targets ``(m,)`` or ``(m, k)`` as ``Y: (1, m)`` or ``(k, m)`` (dtype as for X)."""
    y = np.asarray(y)
    y = y.astype(_not_narrowed(y, dtype), copy=False)
    return np.ascontiguousarray(y.reshape(1, -1) if y.ndim == 1 else y.T)


def columns_to_rows(A: Any, squeeze: bool) -> np.ndarray:
    """The core's ``(k, m)`` output as ``(m, k)`` on the host, or ``(m,)`` when ``squeeze``."""
    A = to_numpy(A)
    return A[0].copy() if squeeze else np.ascontiguousarray(A.T)


def probabilities_to_rows(P: Any) -> np.ndarray:
    """Class probabilities ``(m, C)`` from the network's output: a sigmoid's ``(1, m)`` P(class 1)
    becomes the two columns ``[1 - p, p]``; a softmax's ``(C, m)`` is transposed, in float64 with each
    row summing to 1 in float64 (a float32 softmax's rows, off by ~1e-7, made scikit-learn's log_loss
    warn that they "do not sum to one" on every call)."""
    P = to_numpy(P).astype(np.float64, copy=False)
    if P.shape[0] == 1:
        return np.ascontiguousarray(np.stack([1.0 - P[0], P[0]], axis=1))
    return np.ascontiguousarray((P / np.sum(P, axis=0, keepdims=True)).T)


def most_probable(classes: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """The label of each row's most probable class."""
    return classes[np.argmax(proba, axis=1)]
