"""Activation functions g(Z) and their derivatives g'(Z), elementwise on (n[l], m) arrays; softmax.

Each :class:`Activation` has ``forward(Z) -> A`` and ``derivative(Z, A) -> g'(Z)``; the derivative
is handed the cached ``A = g(Z)`` too, so sigmoid and tanh reuse it instead of recomputing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from dlcore._namespace import namespace

Array = Any


def sigmoid(Z: Array) -> Array:
    """g(z) = 1 / (1 + e^-z), accurate in relative terms on both sides: with E = e^-|z| (in (0, 1],
    never overflows), g(z) = 1 / (1 + E) for z >= 0 and E / (1 + E) for z < 0, so g(-30) is 9.4e-14,
    not 0 (``(1 + tanh(z/2)) / 2`` cancels for z < 0). No overflow, no warning, any |z|; g(+-inf) = 1, 0."""
    xp = namespace(Z)
    E = xp.exp(-xp.abs(Z))
    A = xp.where(Z >= 0, xp.ones_like(E), E)
    E += 1.0  # in place: 1 + E
    A /= E
    return A


def sigmoid_derivative(Z: Array, A: Array) -> Array:
    """g'(z) = g(z) (1 - g(z)) = A (1 - A)."""
    return A * (1.0 - A)


def tanh(Z: Array) -> Array:
    """g(z) = (e^z - e^-z) / (e^z + e^-z)."""
    return namespace(Z).tanh(Z)


def tanh_derivative(Z: Array, A: Array) -> Array:
    """g'(z) = 1 - tanh(z)^2 = 1 - A^2."""
    return 1.0 - A * A


def relu(Z: Array) -> Array:
    """g(z) = max(0, z)."""
    return namespace(Z).maximum(Z, 0.0)


def relu_derivative(Z: Array, A: Array) -> Array:
    """g'(z) = 1 if z > 0 else 0."""
    xp = namespace(Z)
    return xp.astype(Z > 0, Z.dtype)


def linear(Z: Array) -> Array:
    """g(z) = z (the identity)."""
    return Z


def linear_derivative(Z: Array, A: Array) -> Array:
    """g'(z) = 1."""
    return namespace(Z).ones_like(Z)


def softmax(Z: Array) -> Array:
    """A[c, i] = e^Z[c, i] / sum_k e^Z[k, i], column-wise, stable for any finite Z. (C, m) -> (C, m)."""
    xp = namespace(Z)
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return E / xp.sum(E, axis=0, keepdims=True)


def log_softmax(Z: Array) -> Array:
    """log softmax(Z) = Z - logsumexp(Z), finite for any finite Z. (C, m) -> (C, m). Computed as
    (Z - max) - log sum e^(Z - max): with max + log sum first, the log sum (at most log C) is rounded
    away next to logits of 1e7 in float32, and the cost of two tied classes came out 1, not log 2."""
    xp = namespace(Z)
    shifted = Z - xp.max(Z, axis=0, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=0, keepdims=True))


def softmax_derivative(Z: Array, A: Array) -> Array:
    raise ValueError(
        "softmax has no elementwise derivative; use it as the output layer with categorical "
        "cross-entropy, where dZ = A - Y"
    )


# a built-in's functions (leaky_relu's are partials with its slope, checked apart)
_BUILTIN = {
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
    "linear": (linear, linear_derivative),
    "softmax": (softmax, softmax_derivative),
}


@dataclass(frozen=True)
class Activation:
    """A named activation: ``forward(Z) -> A`` and ``derivative(Z, A) -> g'(Z)``."""

    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array]
    slope: float | None = None  # leaky_relu only

    def __post_init__(self) -> None:
        """A built-in's name means the built-in: every backend's fast path, the output heads and model
        files go by the name, so an activation of one's own under it would be computed as the built-in
        on some backends and saved as it (ValueError)."""
        if ":" in self.name:  # "leaky_relu:0.5" was saved under its name and loaded as the built-in
            raise ValueError(
                f"{self.name!r}: ':' marks a built-in's option in an activation's spec (leaky_relu:SLOPE); "
                "give an activation of your own a name without it"
            )
        own = (self.forward, self.derivative)
        if self.name == "leaky_relu":
            builtin = all(
                isinstance(f, partial) and f.func is g and f.keywords == {"slope": self.slope}
                for f, g in zip(own, (leaky_relu_forward, leaky_relu_derivative), strict=True)
            )
        else:
            builtin = _BUILTIN.get(self.name, own) == own
        if not builtin:
            raise ValueError(
                f"{self.name!r} is a built-in activation's name: give an activation of your own another "
                "name (dlcore computes and saves a built-in by its name)"
            )

    def __call__(self, Z: Array) -> Array:
        return self.forward(Z)

    @property
    def spec(self) -> str:
        """The string :func:`get_activation` turns back into this activation."""
        return self.name if self.slope is None else f"{self.name}:{self.slope!r}"


def leaky_relu(slope: float = 0.01) -> Activation:
    """g(z) = z if z > 0 else slope * z; g'(z) = 1 if z > 0 else slope."""
    slope = float(slope)
    if not (0.0 <= slope < 1.0):
        raise ValueError(f"leaky_relu slope must be in [0, 1); got {slope}")
    # partials of module functions, not closures: a network with this activation pickles
    return Activation(
        "leaky_relu",
        partial(leaky_relu_forward, slope=slope),
        partial(leaky_relu_derivative, slope=slope),
        slope,
    )


def leaky_relu_forward(Z: Array, slope: float) -> Array:
    """g(z) = z if z > 0 else slope * z."""
    return namespace(Z).where(Z > 0, Z, slope * Z)


def leaky_relu_derivative(Z: Array, A: Array, slope: float) -> Array:
    """g'(z) = 1 if z > 0 else slope."""
    xp = namespace(Z)
    return xp.astype(Z > 0, Z.dtype) * (1.0 - slope) + slope


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative),
    "tanh": Activation("tanh", tanh, tanh_derivative),
    "relu": Activation("relu", relu, relu_derivative),
    "leaky_relu": leaky_relu(0.01),
    "linear": Activation("linear", linear, linear_derivative),
}
#: the multi-class output layer (with categorical cross-entropy, :mod:`dlcore.heads`); never a hidden one
SOFTMAX = Activation("softmax", softmax, softmax_derivative)


def get_activation(spec: str | Activation) -> Activation:
    """Look up an activation by name: ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"linear"``,
    ``"leaky_relu"`` (slope 0.01) or ``"leaky_relu:0.2"`` (slope 0.2)."""
    if isinstance(spec, Activation):
        return spec
    if spec == "softmax":  # output layer only, with categorical cross-entropy: see dlcore.heads
        return SOFTMAX
    name, _, arg = str(spec).partition(":")
    if name == "leaky_relu" and arg:
        try:
            return leaky_relu(float(arg))
        except ValueError as exc:
            raise ValueError(f"bad activation {spec!r}: {exc}") from None
    if name not in ACTIVATIONS or arg:
        raise ValueError(
            f"unknown activation {spec!r}; choose one of: {', '.join(ACTIVATIONS)}, 'leaky_relu:SLOPE', or "
            "'softmax' (output layer only)"
        )
    return ACTIVATIONS[name]
