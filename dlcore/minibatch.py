"""Mini-batches: shuffle the columns once per epoch with the backend's seeded RNG, then cut them into
batches of ``batch_size`` columns; the last batch holds the remaining ``m mod batch_size`` columns.

    X: (n_x, m) -> X{1}: (n_x, batch_size), ..., X{T}: (n_x, m - (T-1) batch_size),  T = ceil(m / batch_size)

One epoch is one pass over the T batches; one iteration is one parameter update (one batch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from dlcore._namespace import namespace
from dlcore.validation import check_positive_int

Array = Any


def check_batch_size(batch_size: Any, m: int) -> int:
    """``None`` means the full batch (m); otherwise an integer >= 1 (capped at m)."""
    if batch_size is None:
        return m
    try:
        size = check_positive_int(batch_size, "batch_size")
    except ValueError:
        raise ValueError(
            f"batch_size must be an integer >= 1 (or None for the full batch); got {batch_size!r}"
        ) from None
    return min(size, m)


def num_batches(m: int, batch_size: int) -> int:
    """T = ceil(m / batch_size), the number of updates per epoch."""
    return math.ceil(m / batch_size)


def shuffle_columns(X: Array, Y: Array, rng: Any) -> tuple[Array, Array]:
    """The same random permutation of the m columns of X: (n_x, m) and Y: (n_y, m)."""
    xp = namespace(X)
    idx = rng.permutation(X.shape[1])
    return xp.take(X, idx, axis=1), xp.take(Y, idx, axis=1)


def mini_batches(X: Array, Y: Array, batch_size: int, rng: Any = None) -> Iterator[tuple[Array, Array]]:
    """Yield (X{t}, Y{t}) for one epoch, shuffled first when ``rng`` is given.

    A single full batch (batch_size >= m) is yielded as is, unshuffled: the order of the columns does not
    change its gradient, and skipping the copy keeps it bit-identical to full-batch training.
    """
    m = X.shape[1]
    if batch_size >= m:
        yield X, Y
        return
    if rng is not None:
        X, Y = shuffle_columns(X, Y, rng)
    for start in range(0, m, batch_size):
        stop = min(start + batch_size, m)
        yield X[:, start:stop], Y[:, start:stop]


def train_validation_split(
    X: Array, Y: Array, fraction: float, rng: Any
) -> tuple[Array, Array, Array, Array]:
    """Hold out ceil(fraction m) random columns for validation: returns X_train, Y_train, X_val, Y_val."""
    m = X.shape[1]
    return split_columns(X, Y, rng.permutation(m), validation_count(m, fraction))


def validation_count(m: int, fraction: float) -> int:
    """ceil(fraction m): the columns :func:`train_validation_split` holds out of m. Raises ValueError
    when ``fraction`` is not in (0, 1) or leaves no training example."""
    try:
        given, fraction = fraction, float(fraction)
    except (TypeError, ValueError):  # "could not convert string to float: 'a'" named no option
        raise ValueError(f"validation_split must be a fraction in (0, 1); got {fraction!r}") from None
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must be a fraction in (0, 1); got {given!r}")
    n_val = math.ceil(fraction * m)
    if n_val >= m:
        raise ValueError(f"validation_split={fraction} leaves no training examples out of m={m}; lower it")
    return n_val


def split_columns(X: Array, Y: Array, perm: Array, n_held: int) -> tuple[Array, Array, Array, Array]:
    """``X_kept, Y_kept, X_held, Y_held``: columns ``perm[n_held:]`` and the held-out ``perm[:n_held]``."""
    xp = namespace(X)
    kept, held = perm[n_held:], perm[:n_held]
    return (
        xp.take(X, kept, axis=1),
        xp.take(Y, kept, axis=1),
        xp.take(X, held, axis=1),
        xp.take(Y, held, axis=1),
    )
