"""The public model object: :class:`Network`, an L-layer binary classifier.

It owns a backend, a parameter dict and a list of activations, and calls the functional layer in
:mod:`dlcore.propagation` for everything, so both styles share one implementation.

>>> net = Network([2, 4, 1], hidden_activation="tanh", init="small", backend="numpy", seed=1)
>>> history = net.fit(X, Y, learning_rate=1.2, iterations=10_000)   # X: (2, m), Y: (1, m)
>>> net.accuracy(X, Y)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends import Backend, get_backend
from dlcore import propagation as prop
from dlcore.activations import Activation, get_activation
from dlcore.initializers import check_layer_dims, initialize_parameters
from dlcore.validation import (
    check_features,
    check_labels,
    check_learning_rate,
    check_positive_int,
)

Array = Any


@dataclass
class History:
    """Costs recorded during :meth:`Network.fit`: ``costs[i]`` is J before iteration ``iterations[i]``
    (the last entry is J after the final update)."""

    iterations: list[int] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)

    def append(self, iteration: int, cost: float) -> None:
        self.iterations.append(iteration)
        self.costs.append(cost)

    def __len__(self) -> int:
        return len(self.costs)

    def __iter__(self):
        return iter(self.costs)

    def __getitem__(self, i: int) -> float:
        return self.costs[i]


class TrainingDiverged(ArithmeticError):
    """The cost became NaN or inf; the network was rolled back to its last finite parameters."""

    def __init__(self, message: str, iteration: int, learning_rate: float, history: History):
        super().__init__(message)
        self.iteration = iteration
        self.learning_rate = learning_rate
        self.history = history


class Network:
    """A fully connected binary classifier trained by batch gradient descent.

    Args:
        layer_dims: ``[n_x, n[1], ..., n[L]]``; ``[n_x, 1]`` is logistic regression.
        hidden_activation: g for layers 1 .. L-1 (``"relu"``, ``"tanh"``, ``"sigmoid"``,
            ``"leaky_relu"``, ``"leaky_relu:0.2"``, ``"linear"``).
        output_activation: g[L]; ``"sigmoid"`` for binary cross-entropy.
        activations: one activation per layer, overriding the two above.
        init: ``"small"``, ``"he"``, ``"xavier"``, ``"glorot"`` or ``"zeros"``.
        backend: a backend name (``"auto"``, ``"numpy"``, ``"cupy"``, ``"array_api_strict"``) or a
            :class:`backends.Backend`; ``None`` reads ``$DLCORE_BACKEND`` (default ``auto``).
        seed: seeds the initial weights; the same seed gives identical weights on every backend.
        dtype: ``"float64"`` or ``"float32"``.
    """

    #: input normalization (a :class:`dlcore.data.Normalization`) saved with the model; set by :meth:`load`
    normalization: Any = None
    #: free-form metadata saved with the model (training settings); set by :meth:`load`
    info: dict | None = None

    def __init__(
        self,
        layer_dims: Sequence[int],
        hidden_activation: str | Activation = "relu",
        output_activation: str | Activation = "sigmoid",
        *,
        activations: Sequence[str | Activation] | None = None,
        init: str = "he",
        backend: str | Backend | None = None,
        seed: int | None = 1,
        dtype: str = "float64",
    ) -> None:
        self.layer_dims = check_layer_dims(layer_dims)
        L = len(self.layer_dims) - 1
        if activations is None:
            activations = [hidden_activation] * (L - 1) + [output_activation]
        if len(activations) != L:
            raise ValueError(f"activations needs one entry per layer ({L}); got {len(activations)}")
        self.activations = [get_activation(a) for a in activations]
        if self.activations[-1].name != "sigmoid":
            raise ValueError(
                f"output_activation must be 'sigmoid' for binary cross-entropy; "
                f"got {self.activations[-1].name!r}"
            )
        self.backend = get_backend(backend)
        self.dtype = self.backend.dtype(dtype)
        self.init = init
        self.seed = seed
        self.params = initialize_parameters(self.layer_dims, init, self.backend, seed, self.dtype)

    # -- conveniences ---------------------------------------------------------------------------
    @property
    def xp(self) -> Any:
        """The array namespace the network computes with."""
        return self.backend.xp

    @property
    def dtype_name(self) -> str:
        return self.backend.dtype_name(self.dtype)

    def __repr__(self) -> str:
        acts = ", ".join(a.spec for a in self.activations)
        return (
            f"Network({self.layer_dims}, activations=[{acts}], backend={self.backend.name!r}, "
            f"dtype={self.dtype_name!r})"
        )

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str, normalization: Any = None, info: dict | None = None) -> None:
        """Write parameters and config to ``path`` (``.npz``, atomically); see :mod:`dlcore.persistence`."""
        from dlcore.persistence import save_network

        save_network(self, path, normalization, info)

    @classmethod
    def load(cls, path: str, backend: str | Backend | None = None) -> Network:
        """A network saved with :meth:`save`, rebuilt on ``backend`` (any backend); ValueError if bad file."""
        from dlcore.persistence import load_network

        return load_network(path, backend)

    def parameters_numpy(self) -> dict[str, Any]:
        """A host (NumPy) copy of the parameters, e.g. for saving or inspection."""
        return {k: self.backend.to_numpy(v).copy() for k, v in self.params.items()}

    def set_parameters(self, params: dict[str, Any]) -> None:
        """Replace the parameters (any array type; shapes must match ``layer_dims``)."""
        new = {}
        for l in range(1, len(self.layer_dims)):
            for name, shape in (
                (f"W{l}", (self.layer_dims[l], self.layer_dims[l - 1])),
                (f"b{l}", (self.layer_dims[l], 1)),
            ):
                if name not in params:
                    raise ValueError(f"parameters lack {name!r}")
                value = self.backend.asarray(params[name], dtype=self.dtype)
                if tuple(value.shape) != shape:
                    raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}")
                new[name] = value
        self.params = new

    def _copy_params(self) -> dict[str, Array]:
        xp = self.xp
        return {k: xp.asarray(v, copy=True) for k, v in self.params.items()}

    # -- training -------------------------------------------------------------------------------
    def check_X(self, X: Any) -> Array:
        """X as a validated (n_x, m) array on this network's backend and dtype."""
        return check_features(X, self.layer_dims[0], self.backend, self.dtype)

    def check_XY(self, X: Any, Y: Any) -> tuple[Array, Array]:
        X = self.check_X(X)
        return X, check_labels(Y, X.shape[1], self.backend, self.dtype)

    def fit(
        self,
        X: Any,
        Y: Any,
        learning_rate: float = 0.0075,
        iterations: int = 3000,
        *,
        cost_every: int = 100,
        callback: Callable[[int, float], None] | None = None,
    ) -> History:
        """Batch gradient descent on X: (n_x, m), Y: (1, m).

        The cost is brought to the host only every ``cost_every`` iterations (and after the last),
        so a GPU is never stalled by a per-iteration sync. At each of those checks a non-finite
        cost stops training: the parameters are rolled back to the last finite ones and
        :class:`TrainingDiverged` is raised. ``callback(iteration, cost)`` runs at each check.

        Returns the cost :class:`History`.
        """
        X, Y = self.check_XY(X, Y)
        lr = check_learning_rate(learning_rate)
        iterations = check_positive_int(iterations, "iterations")
        cost_every = check_positive_int(cost_every, "cost_every")
        with self.backend.quiet_floating_point():
            return self._gradient_descent(X, Y, lr, iterations, cost_every, callback)

    def _gradient_descent(self, X, Y, lr, iterations, cost_every, callback) -> History:
        acts, params = self.activations, self.params
        history = History()
        last_good = None
        for i in range(iterations + 1):
            AL, caches = prop.forward(X, params, acts)
            if i % cost_every == 0 or i == iterations:
                J = float(prop.cost(caches, Y, acts))
                if not math.isfinite(J):
                    if last_good is not None:
                        self.params = last_good
                    raise TrainingDiverged(
                        f"training diverged: the cost became {J} at iteration {i} with "
                        f"learning_rate={lr:g}; the parameters from iteration "
                        f"{history.iterations[-1] if history else 0} were kept. "
                        "Lower the learning rate.",
                        i,
                        lr,
                        history,
                    )
                history.append(i, J)
                if callback is not None:
                    callback(i, J)
                if i == iterations:
                    break
                last_good = self._copy_params()
            grads = prop.backward(AL, Y, caches, acts)
            prop.update(params, grads, lr)
        return history

    # -- inference ------------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> Array:
        """P(y = 1 | x) for each column of X: (n_x, m) -> (1, m) on the network's backend."""
        return prop.predict_proba(self.check_X(X), self.params, self.activations)

    def predict(self, X: Any) -> Array:
        """0/1 predictions (1, m), int64: 1 where the probability exceeds 0.5."""
        return prop.predict(self.check_X(X), self.params, self.activations)

    def cost(self, X: Any, Y: Any) -> float:
        """The binary cross-entropy cost J on (X, Y)."""
        X, Y = self.check_XY(X, Y)
        _, caches = prop.forward(X, self.params, self.activations)
        return float(prop.cost(caches, Y, self.activations))

    def accuracy(self, X: Any, Y: Any) -> float:
        """Fraction of examples classified correctly, in [0, 1]."""
        X, Y = self.check_XY(X, Y)
        return prop.accuracy(prop.predict(X, self.params, self.activations), Y)
