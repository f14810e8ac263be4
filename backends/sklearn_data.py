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


def load_digits_columns() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``X: (64, 1797)`` in [0, 1] and ``Y: (1, 1797)`` int64 labels 0..9 (no split)."""
    ok, why = sklearn_available()
    if not ok:
        raise ValueError(why)
    from sklearn.datasets import load_digits as _load

    digits = _load()
    return (digits.data.astype(np.float64) / 16.0).T.copy(), digits.target.astype(np.int64).reshape(1, -1)
