"""Built-in generated data sets, deterministic by seed and identical on every backend.

All return ``X: (2, m)`` and ``Y: (1, m)`` on the given backend, in the course's column layout.
Random draws come from the backend's host RNG; the arithmetic runs in the backend's namespace.
"""

from __future__ import annotations

from typing import Any

Array = Any


def planar(backend: Any, m: int = 400, seed: int = 1, dtype: Any = "float64") -> tuple[Array, Array]:
    """The course's planar "flower": two classes of m/2 points on the petals of r = 4 sin(4t)."""
    xp, rng = backend.xp, backend.rng(seed)
    f64 = backend.dtype("float64")
    N, a = m // 2, 4.0
    Xs, Ys = [], []
    for j in range(2):
        t = xp.linspace(j * 3.12, (j + 1) * 3.12, N, dtype=f64, device=backend.device)
        t = t + rng.normal((N,), dtype=f64, scale=0.2)  # theta
        r = a * xp.sin(4 * t) + rng.normal((N,), dtype=f64, scale=0.2)  # radius
        Xs.append(xp.stack([r * xp.sin(t), r * xp.cos(t)]))
        Ys.append(xp.full((1, N), float(j), dtype=f64, device=backend.device))
    X, Y = xp.concat(Xs, axis=1), xp.concat(Ys, axis=1)
    return xp.astype(X, backend.dtype(dtype)), xp.astype(Y, backend.dtype(dtype))
