"""Built-in data sets, one registry (:data:`DATASETS`): generated ones, deterministic by seed and
bit-identical on every backend, and scikit-learn's digits.

The generated sets return ``X: (2, m)`` and ``Y: (1, m)`` on the given backend, in the course's column
layout. Like the seeded initial weights, they are computed on the host (NumPy, through the numpy
backend's namespace: a GPU's linspace, sin and cos may differ in the last bits) and then moved.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlcore.backends import get_backend
from dlcore.backends.sklearn_data import load_digits_columns
from dlcore.memory import check_fits
from dlcore.validation import as_float, check_number, check_positive_int, check_seed

Array = Any

#: host bytes per example at a generated set's peak (float64 parts, X and Y, the cast to float32): 60 at
#: most, measured with tracemalloc at m = 10^6
HOST_BYTES_PER_EXAMPLE = 64


def _check_room(backend: Any, m: Any, name: str) -> None:
    """Refuse (ValueError) an ``m`` that is no integer >= 1, or m examples of ``name`` that the host
    (where they are made) or ``backend`` (X: (2, m) and Y: (1, m), float64 at most) cannot hold, before
    anything is drawn."""
    m = check_positive_int(m, "m")
    what, fix = f"generating {m:,} examples of {name}", "use fewer examples"
    host, backend = get_backend("numpy"), get_backend(backend)
    check_fits(HOST_BYTES_PER_EXAMPLE * m, host, what, fix, where="the host (the sets are drawn there)")
    if backend is not host:
        check_fits(3 * 8 * m, backend, what, fix)


def _host(seed: int) -> tuple[Any, Any, Any]:
    """The host (numpy) backend's namespace and seeded RNG, and the float64 dtype: data is made there."""
    host = get_backend("numpy")
    return host.xp, host.rng(check_seed(seed)), host.dtype("float64")


def _moved(backend: Any, X: Array, Y: Array, dtype: Any) -> tuple[Array, Array]:
    """Host X and Y moved to ``backend`` (a Backend or its name) in ``dtype`` (float32 or float64)."""
    backend = get_backend(backend)
    dtype = backend.float_dtype(dtype)
    return backend.asarray(X, dtype=dtype), backend.asarray(Y, dtype=dtype)


def planar(backend: Any, m: int = 400, seed: int = 1, dtype: Any = "float64") -> tuple[Array, Array]:
    """The course's planar "flower": two classes of about m/2 points on the petals of r = 4 sin(4t)."""
    _check_room(backend, m, "planar")
    xp, rng, f64 = _host(seed)
    a = 4.0
    parts = []
    for j, N in enumerate((m // 2, m - m // 2)):
        t = xp.linspace(j * 3.12, (j + 1) * 3.12, N, dtype=f64, device="cpu")
        t = t + rng.normal((N,), dtype=f64, scale=0.2)  # theta
        r = a * xp.sin(4 * t) + rng.normal((N,), dtype=f64, scale=0.2)  # radius
        parts.append((r * xp.sin(t), r * xp.cos(t), float(j)))
    return _finish(backend, parts, dtype)


def _finish(backend: Any, parts: list[tuple[Array, Array, float]], dtype: Any) -> tuple[Array, Array]:
    """Stack host ``(x1, x2, label)`` parts (each x: (N,), float64) into X: (2, m), Y: (1, m) of ``dtype``
    on ``backend``."""
    xp, _, f64 = _host(0)
    X = xp.concat([xp.stack([x1, x2]) for x1, x2, _ in parts], axis=1)
    Y = xp.concat([xp.full((1, x1.shape[0]), label, dtype=f64) for x1, _, label in parts], axis=1)
    return _moved(backend, X, Y, dtype)


def moons(
    backend: Any, m: int = 400, seed: int = 1, dtype: Any = "float64", noise: float = 0.15
) -> tuple[Array, Array]:
    """Two interleaved half circles: class 0 on the upper moon, class 1 on the lower one, plus noise."""
    noise = check_number(noise, "noise")  # NaN made NaN X, a negative one was drawn as its absolute value
    _check_room(backend, m, "moons")
    xp, rng, f64 = _host(seed)
    N0 = m // 2
    N1 = m - N0
    t0 = xp.linspace(0.0, math.pi, N0, dtype=f64, device="cpu")
    t1 = xp.linspace(0.0, math.pi, N1, dtype=f64, device="cpu")
    parts = [
        (
            xp.cos(t0) + rng.normal((N0,), dtype=f64, scale=noise),
            xp.sin(t0) + rng.normal((N0,), dtype=f64, scale=noise),
            0.0,
        ),
        (
            1.0 - xp.cos(t1) + rng.normal((N1,), dtype=f64, scale=noise),
            0.5 - xp.sin(t1) + rng.normal((N1,), dtype=f64, scale=noise),
            1.0,
        ),
    ]
    return _finish(backend, parts, dtype)


def circles(
    backend: Any,
    m: int = 400,
    seed: int = 1,
    dtype: Any = "float64",
    noise: float = 0.08,
    factor: float = 0.5,
) -> tuple[Array, Array]:
    """Two concentric rings: class 0 on the unit circle, class 1 on the circle of radius ``factor``."""
    noise = check_number(noise, "noise")
    if not (math.isfinite(radius := as_float(factor)) and radius > 0):
        raise ValueError(f"factor must be a finite number > 0 (the inner ring's radius); got {factor!r}")
    factor = radius
    _check_room(backend, m, "circles")
    xp, rng, f64 = _host(seed)
    N0 = m // 2
    N1 = m - N0
    parts = []
    for N, radius, label in ((N0, 1.0, 0.0), (N1, factor, 1.0)):
        t = rng.uniform((N,), 0.0, 2 * math.pi, dtype=f64)
        x1 = radius * xp.cos(t) + rng.normal((N,), dtype=f64, scale=noise)
        x2 = radius * xp.sin(t) + rng.normal((N,), dtype=f64, scale=noise)
        parts.append((x1, x2, label))
    return _finish(backend, parts, dtype)


def xor(backend: Any, m: int = 400, seed: int = 1, dtype: Any = "float64") -> tuple[Array, Array]:
    """Points uniform on [-1, 1]^2, label 1 where x1 and x2 have opposite signs (not linearly separable)."""
    _check_room(backend, m, "xor")
    xp, rng, f64 = _host(seed)
    P = rng.uniform((2, m), -1.0, 1.0, dtype=f64)
    Y = xp.reshape(xp.astype((P[0, :] * P[1, :]) < 0, f64), (1, m))
    return _moved(backend, P, Y, dtype)


def digits(backend: Any, m: int | None = None, seed: int = 1, dtype: Any = "float64") -> tuple[Array, Array]:
    """scikit-learn's 1,797 8x8 digits: X: (64, 1797) in [0, 1], Y: (1, 1797) labels 0..9 (10 classes).
    Needs scikit-learn (``dlcore[sklearn]``); ``m`` and ``seed`` are ignored (the set is fixed)."""
    X, Y = load_digits_columns()
    return _moved(backend, X, Y, dtype)


DATASETS: dict[str, Callable[..., tuple[Array, Array]]] = {
    "planar": planar,
    "moons": moons,
    "circles": circles,
    "xor": xor,
    "digits": digits,
}
#: the generated sets (no extra package needed; ``--samples`` sizes them)
GENERATED = ("planar", "moons", "circles", "xor")
