"""Weight initializers. W[l]: (n[l], n[l-1]) random, b[l]: (n[l], 1) zeros.

Random draws come from the backend's host RNG (NumPy's Generator, then moved to the device), so a
seed gives bit-identical initial parameters on every backend.

- ``small``:  randn * 0.01, the course's choice for shallow tanh/sigmoid networks.
- ``he``:     randn * sqrt(2 / n[l-1]), for ReLU networks.
- ``xavier``: randn * sqrt(1 / n[l-1]), for tanh networks (the course's "Xavier").
- ``glorot``: randn * sqrt(2 / (n[l-1] + n[l])), Glorot & Bengio's normal variant.
- ``zeros``:  all zeros. Kept to show why it fails: every hidden unit computes the same function
  and receives the same update, forever (the symmetry problem).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

from dlcore.backends import get_backend
from dlcore.validation import check_seed

Params = dict[str, Any]

SCALES: dict[str, Callable[[int, int], float]] = {
    "small": lambda n_prev, n: 0.01,
    "he": lambda n_prev, n: math.sqrt(2.0 / n_prev),
    "xavier": lambda n_prev, n: math.sqrt(1.0 / n_prev),
    "glorot": lambda n_prev, n: math.sqrt(2.0 / (n_prev + n)),
}
INITIALIZERS = (*SCALES, "zeros")


def check_layer_dims(layer_dims: Sequence[int]) -> list[int]:
    """Validate [n_x, n[1], ..., n[L]]: at least two sizes, all positive integers."""
    if isinstance(layer_dims, (str, bytes)) or not hasattr(layer_dims, "__iter__"):
        raise ValueError(f"layer_dims must be a list of layer sizes, e.g. [n_x, 4, 1]; got {layer_dims!r}")
    dims = list(layer_dims)
    if len(dims) < 2:
        raise ValueError(f"layer_dims needs at least an input and an output size, e.g. [n_x, 1]; got {dims}")
    sizes = []
    for n in dims:  # any integer type (NumPy's too), as Python ints; not bools, floats or strings
        size = operator.index(n) if hasattr(n, "__index__") and not isinstance(n, bool) else 0
        if size <= 0:
            raise ValueError(f"layer sizes must be positive integers; got {dims}")
        sizes.append(size)
    return sizes


def initialize_parameters(
    layer_dims: Sequence[int], init: str, backend: Any, seed: int | None, dtype: Any
) -> Params:
    """Parameters {"W1": (n[1], n[0]), "b1": (n[1], 1), ..., "WL", "bL"} on ``backend`` (a Backend or
    its name) in ``dtype``: float32 or float64, by name, NumPy's or the backend's dtype object."""
    backend = get_backend(backend)
    dims = check_layer_dims(layer_dims)
    if init not in INITIALIZERS:
        raise ValueError(f"unknown initializer {init!r}; choose one of: {', '.join(INITIALIZERS)}")
    xp, rng = backend.xp, backend.rng(check_seed(seed))
    dtype = backend.float_dtype(dtype)
    params: Params = {}
    for l in range(1, len(dims)):
        n, n_prev = dims[l], dims[l - 1]
        if init == "zeros":
            params[f"W{l}"] = xp.zeros((n, n_prev), dtype=dtype, device=backend.device)
        else:
            params[f"W{l}"] = rng.normal((n, n_prev), dtype=dtype, scale=SCALES[init](n_prev, n))
        params[f"b{l}"] = xp.zeros((n, 1), dtype=dtype, device=backend.device)
    return params
