"""scikit-learn's bundled data sets, loaded on the host with NumPy (scikit-learn is an optional extra).

Returned in the course's column layout: ``X: (n_x, m)`` float64, ``Y: (1, m)`` int64 class labels.
"""

from __future__ import annotations

import importlib

import numpy as np

SKLEARN_FIX = 'pip install scikit-learn (or pip install "dlcore[sklearn]")'


def sklearn_available() -> tuple[bool, str]:
    """``(True, "")`` when scikit-learn imports, else ``(False, one line saying how to get it)``."""
    try:
        importlib.import_module("sklearn")
    except ImportError:
        return False, f"the digits data set needs scikit-learn, which is not installed; {SKLEARN_FIX}"
    return True, ""


def load_digits(
    test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits (1,797 images, 10 classes), pixels scaled to [0, 1], split into a
    stratified train and test part: ``X_train: (64, m_train)``, ``Y_train: (1, m_train)``, ``X_test``,
    ``Y_test``. Raises ValueError (with the install command) when scikit-learn is missing."""
    ok, why = sklearn_available()
    if not ok:
        raise ValueError(why)
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    digits = _load()
    X = digits.data.astype(np.float64) / 16.0  # pixel intensities 0..16 -> [0, 1]
    y = digits.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
    return X_tr.T.copy(), y_tr.reshape(1, -1), X_te.T.copy(), y_te.reshape(1, -1)


def load_digits_columns() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``X: (64, 1797)`` in [0, 1] and ``Y: (1, 1797)`` int64 labels 0..9 (no split)."""
    ok, why = sklearn_available()
    if not ok:
        raise ValueError(why)
    from sklearn.datasets import load_digits as _load

    digits = _load()
    return (digits.data.astype(np.float64) / 16.0).T.copy(), digits.target.astype(np.int64).reshape(1, -1)
