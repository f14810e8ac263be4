"""Input checks at the API boundary: every refusal is a ValueError that names the problem and the fix.

Integer and boolean arrays are accepted and converted to the network's floating dtype; arrays from
another backend (a NumPy X for a CuPy network, say) are copied onto the network's backend.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from dlcore._namespace import check_dense

Array = Any


def _convert(value: Any, backend: Any, name: str) -> Array:
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a numeric array; got {type(value).__name__}")
    check_dense(value, name)
    try:
        arr = backend.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array; could not convert it ({exc})") from None
    xp = backend.xp
    if not xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    return arr


def count_non_finite(arr: Array, xp: Any) -> int:
    """How many entries of ``arr`` are NaN or inf: one boolean pass (1 byte an entry) when all are finite,
    the count only otherwise (an int64 copy of X cost 8 bytes an entry: +20 MiB on the deep net's X)."""
    finite = xp.isfinite(arr)
    if bool(xp.all(finite)):
        return 0
    return int(xp.sum(xp.astype(~finite, xp.int64)))


def _check_finite(arr: Array, backend: Any, name: str) -> None:
    bad = count_non_finite(arr, backend.xp)
    if bad:
        raise ValueError(f"{name} contains NaN or inf ({bad} entries); clean or impute them first")


def in_dtype(arr: Array, backend: Any, dtype: Any, name: str, normalization: Any = None) -> Array:
    """``arr`` checked finite, standardized by ``normalization`` (if any) in the wider of its own floating
    dtype and ``dtype`` (float64 for integers), then cast to ``dtype``: rounded first, float32 would
    keep 3 distinct values of a feature near 1.7e9 that spans 200 (its steps there are 128 apart).
    ValueError for NaN or inf, or values beyond ``dtype``'s range."""
    xp = backend.xp
    bits = xp.finfo(dtype).bits
    floating = xp.isdtype(arr.dtype, "real floating")
    if floating:  # integers and booleans are finite
        _check_finite(arr, backend, name)
    if normalization is not None:
        if not floating:
            work = backend.float_dtype("float64")
        else:
            work = arr.dtype if xp.finfo(arr.dtype).bits >= bits else dtype
        arr = normalization.apply(xp.astype(arr, work, copy=False), backend)
    narrowing = xp.isdtype(arr.dtype, "real floating") and xp.finfo(arr.dtype).bits > bits  # may overflow
    with backend.quiet_floating_point():  # an overflow is refused below, in one sentence
        cast = backend.asarray(arr, dtype=dtype)
    if narrowing and count_non_finite(cast, xp):
        kind = "standardized values" if normalization is not None else "values"
        raise ValueError(
            f"{name} holds {kind} beyond {backend.dtype_name(dtype)}'s range: use dtype='float64' or "
            f"rescale {name}"
        )
    return cast


def check_features(X: Any, n_x: int, backend: Any, dtype: Any, normalization: Any = None) -> Array:
    """X as a (n_x, m) array of ``dtype`` on ``backend`` (standardized by ``normalization`` before the
    cast, see :func:`in_dtype`), or a ValueError saying what is wrong."""
    X = _convert(X, backend, "X")
    if X.ndim == 1:
        raise ValueError(
            f"X must be 2-D with shape (n_x, m), one example per column; got a rank-1 array of "
            f"shape {tuple(X.shape)}: use X.reshape({n_x}, -1)"
        )
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D with shape (n_x, m); got shape {tuple(X.shape)} "
            "(flatten images to columns with dlcore.flatten_images)"
        )
    rows, m = X.shape
    if rows != n_x:
        if m == n_x:
            raise ValueError(
                f"X has shape {tuple(X.shape)} but the network expects (n_x={n_x}, m) with one "
                "example per column: pass X.T"
            )
        raise ValueError(
            f"X has {rows} features (rows) but the network's input layer expects n_x={n_x}; "
            f"X must have shape ({n_x}, m)"
        )
    if m == 0:
        raise ValueError(f"X has no examples (shape {tuple(X.shape)}, m = 0); pass at least one column")
    return in_dtype(X, backend, dtype, "X", normalization)


def check_labels(Y: Any, m: int, backend: Any, dtype: Any) -> Array:
    """Y as a (1, m) array of 0/1 labels of ``dtype`` on ``backend``, or a ValueError."""
    Y = _convert(Y, backend, "Y")
    shape = tuple(Y.shape)
    if shape != (1, m):
        if Y.ndim == 1:
            hint = ": use Y.reshape(1, -1)"
        elif shape == (m, 1):
            hint = ": pass Y.T"
        else:
            hint = ""
        raise ValueError(f"Y must have shape (1, m) = (1, {m}) to match X; got {shape}{hint}")
    Y = backend.asarray(Y, dtype=dtype)
    _check_finite(Y, backend, "Y")
    xp = backend.xp
    outside = ~((Y == 0) | (Y == 1))
    if bool(xp.any(outside)):
        try:  # boolean indexing has a data-dependent shape, which some namespaces refuse
            seen = f" (found {float(Y[outside][0]):g})"
        except Exception:
            seen = ""
        raise ValueError(f"Y must hold binary labels 0 or 1{seen}; map your classes to {{0, 1}} first")
    return Y


def check_learning_rate(learning_rate: Any) -> float:
    try:
        lr = float(learning_rate)
    except (TypeError, ValueError):
        raise ValueError(f"learning_rate must be a number; got {learning_rate!r}") from None
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning_rate must be a finite number > 0; got {learning_rate!r}")
    return lr


def _integer(value: Any) -> int | None:
    """``value`` as an int (NumPy's integers too, as a grid made with np.arange hands them), or None for
    a bool, a float, a string, an array."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, or a ValueError naming the option."""
    number = _integer(value)
    if number is None or number < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return number


def as_float(value: Any) -> float:
    """``value`` as a float, or NaN when it is not a number (a string, a list): a check then refuses it."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def check_number(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0, or a ValueError naming the option."""
    number = as_float(value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return number


def check_targets(Y: Any, n_y: int, m: int, backend: Any, dtype: Any, normalization: Any = None) -> Array:
    """Regression targets as a finite (n_y, m) array of ``dtype`` on ``backend`` (standardized by
    ``normalization`` before the cast, see :func:`in_dtype`), or a ValueError."""
    Y = _convert(Y, backend, "Y")
    shape = tuple(Y.shape)
    if shape != (n_y, m):
        hint = ": pass Y.T" if shape == (m, n_y) else ""
        if Y.ndim == 1 and n_y == 1:
            hint = ": use Y.reshape(1, -1)"
        raise ValueError(
            f"Y must have shape (n_y, m) = ({n_y}, {m}) to match the output layer and X; got {shape}{hint}"
        )
    return in_dtype(Y, backend, dtype, "Y", normalization)


def check_callable(function: Any, name: str) -> None:
    """A ValueError unless ``function`` is None or callable (a callback given a file name failed only
    after training had begun)."""
    if function is not None and not callable(function):
        raise ValueError(f"{name} must be a function (or None); got {function!r}")


def check_seed(seed: Any) -> int | None:
    """``seed`` as accepted by the random generators: ``None`` (fresh entropy) or an integer >= 0."""
    if seed is None:
        return None
    number = _integer(seed)
    if number is None or number < 0:
        raise ValueError(f"seed must be None or an integer >= 0 (e.g. seed=1); got {seed!r}")
    return number
