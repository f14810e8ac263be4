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

from dlcore import propagation as prop
from dlcore.activations import Activation, get_activation
from dlcore.backends import Backend, get_backend
from dlcore.initializers import check_layer_dims, initialize_parameters
from dlcore.minibatch import check_batch_size, schedule, train_validation_split
from dlcore.multiclass import check_class_labels, class_indices
from dlcore.optimizers import Optimizer, get_optimizer
from dlcore.regularization import check_keep_prob
from dlcore.training import run_epochs
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
    #: with mini-batches / optimizers / validation: the epoch of each record, the validation costs,
    #: whether early stopping ended training, and the epoch whose parameters were restored
    epochs: list[int] = field(default_factory=list)
    val_costs: list[float] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

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
        output_activation: g[L]; ``"sigmoid"`` for binary cross-entropy, ``"softmax"`` for C classes
            (``layer_dims[-1] = C``, categorical cross-entropy; Y as integer labels (1, m) or one-hot (C, m)).
        activations: one activation per layer, overriding the two above.
        init: ``"small"``, ``"he"``, ``"xavier"``, ``"glorot"`` or ``"zeros"``.
        backend: a backend name (``"auto"``, ``"numpy"``, ``"cupy"``, ``"array_api_strict"``) or a
            :class:`dlcore.backends.Backend`; ``None`` reads ``$DLCORE_BACKEND`` (default ``auto``).
        seed: seeds the initial weights; the same seed gives identical weights on every backend.
        dtype: ``"float64"`` or ``"float32"``.
    """

    #: input normalization (a :class:`dlcore.data.Normalization`) saved with the model and applied to every
    #: X that enters fit/predict/predict_proba/cost/accuracy, so raw data goes in; set by :meth:`load`
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
        if self.activations[-1].name not in ("sigmoid", "softmax"):
            raise ValueError(
                f"output_activation must be 'sigmoid' for binary cross-entropy (or 'softmax' for "
                f"several classes); got {self.activations[-1].name!r}"
            )
        if self.activations[-1].name == "softmax" and self.layer_dims[-1] < 2:
            raise ValueError(
                f"softmax needs at least 2 output units (one per class); got layer_dims[-1] = "
                f"{self.layer_dims[-1]}: use a sigmoid output for two classes, or n_classes units"
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

    # -- training -------------------------------------------------------------------------------
    def check_X(self, X: Any) -> Array:
        """X as a validated (n_x, m) array on this network's backend and dtype, normalized with
        :attr:`normalization` when the network carries one."""
        X = check_features(X, self.layer_dims[0], self.backend, self.dtype)
        if self.normalization is not None:
            X = self.normalization.apply(X, self.backend)
        return X

    @property
    def n_classes(self) -> int | None:
        """C for a softmax output, ``None`` for a binary (sigmoid) one."""
        return self.layer_dims[-1] if self.activations[-1].name == "softmax" else None

    def check_XY(self, X: Any, Y: Any) -> tuple[Array, Array]:
        """X: (n_x, m) and Y: (1, m) 0/1 labels; with softmax, Y one-hot (C, m) from labels or one-hot."""
        X = self.check_X(X)
        if self.n_classes is not None:
            return X, check_class_labels(Y, self.n_classes, X.shape[1], self.backend, self.dtype)
        return X, check_labels(Y, X.shape[1], self.backend, self.dtype)

    def fit(
        self,
        X: Any,
        Y: Any,
        learning_rate: float = 0.0075,
        iterations: int | None = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        optimizer: str | Optimizer = "gd",
        decay_rate: float = 0.0,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        patience: int | None = None,
        seed: int | None = None,
        cost_every: int | None = None,
        callback: Callable[[int, float], None] | None = None,
    ) -> History:
        """Train on X: (n_x, m), Y: (1, m) (softmax: integer labels (1, m) or one-hot (C, m)).

        By default batch gradient descent for ``iterations`` steps (3000). Options:
        ``batch_size`` (mini-batches, reshuffled every epoch; ``None`` = full batch), ``epochs``
        (passes over the data, instead of ``iterations``, which count updates), ``optimizer``
        (``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"`` or an :class:`~dlcore.optimizers.Optimizer`),
        ``decay_rate`` (alpha = alpha0 / (1 + decay_rate * epoch)), ``l2`` (lambda), ``keep_prob``
        (inverted dropout on hidden layers), ``validation_split`` or ``validation_data`` with
        ``patience`` (early stopping, best parameters restored), ``seed`` (shuffles, split, dropout;
        default the network's seed).

        The cost is brought to the host only every ``cost_every`` iterations (epochs when any option
        is used; default 100, or 1 with mini-batches) and after the last, so a GPU is never stalled by
        a per-iteration sync. At each of those checks a non-finite cost stops training: the parameters
        are rolled back to the last finite ones and :class:`TrainingDiverged` is raised.
        ``callback(iteration, cost)`` runs at each check.

        Returns the cost :class:`History`.
        """
        X, Y = self.check_XY(X, Y)
        lr = check_learning_rate(learning_rate)
        if iterations is not None and epochs is not None:
            raise ValueError("give epochs or iterations, not both (an iteration is one mini-batch update)")
        if epochs is not None:
            epochs = check_positive_int(epochs, "epochs")
        else:
            iterations = check_positive_int(3000 if iterations is None else iterations, "iterations")
        opt = get_optimizer(optimizer, lr, decay_rate)
        l2 = float(l2)
        if not (math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be a finite number >= 0 (0 = no regularization); got {l2!r}")
        keep_prob = check_keep_prob(keep_prob)
        plain = isinstance(optimizer, str) and opt.name == "gd" and not opt.decay_rate and not l2
        extras = batch_size is not None or keep_prob < 1.0 or validation_split or validation_data or patience
        if plain and not extras:  # plain full-batch gradient descent: the lean loop, no extra work
            steps = epochs or iterations  # one full batch: an epoch is one iteration
            every = check_positive_int(100 if cost_every is None else cost_every, "cost_every")
            with self.backend.quiet_floating_point():
                return self._gradient_descent(X, Y, lr, steps, every, callback)
        rng = self.backend.rng(self.seed if seed is None else seed)
        validation = None
        if validation_data is not None:
            validation = self.check_XY(*validation_data)
        elif validation_split:
            X, Y, Xv, Yv = train_validation_split(X, Y, validation_split, rng)
            validation = (Xv, Yv)
        if patience is not None and validation is None:
            raise ValueError(
                "patience needs validation_split > 0 (e.g. 0.1) or validation_data=(X_val, Y_val)"
            )
        m = X.shape[1]
        bs = check_batch_size(batch_size, m)
        _, epochs, max_iterations = schedule(m, bs, iterations, epochs)
        every = check_positive_int(
            cost_every if cost_every is not None else (1 if bs < m else 100), "cost_every"
        )
        with self.backend.quiet_floating_point():
            return run_epochs(
                self,
                X,
                Y,
                optimizer=opt,
                epochs=epochs,
                max_iterations=max_iterations,
                batch_size=bs,
                l2=l2,
                keep_prob=keep_prob,
                validation=validation,
                patience=patience,
                cost_every=every,
                callback=callback,
                rng=rng,
            )

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
                last_good = prop.copy_params(params)
            steps = prop.backward(AL, Y, caches, acts, scale=lr)  # lr * dW, lr * db: no temporaries
            prop.update(params, steps, learning_rate=1.0)
        return history

    # -- inference ------------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> Array:
        """P(y = 1 | x) for each column of X: (n_x, m) -> (1, m) on the network's backend; softmax:
        the class probabilities (C, m), each column summing to 1."""
        return prop.predict_proba(self.check_X(X), self.params, self.activations)

    def predict(self, X: Any) -> Array:
        """0/1 predictions (1, m), int64: 1 where the probability exceeds 0.5; softmax: class indices."""
        return prop.predict(self.check_X(X), self.params, self.activations)

    def cost(self, X: Any, Y: Any) -> float:
        """The cross-entropy cost J on (X, Y) (binary, or categorical for softmax)."""
        X, Y = self.check_XY(X, Y)
        _, caches = prop.forward(X, self.params, self.activations)
        return float(prop.cost(caches, Y, self.activations))

    def accuracy(self, X: Any, Y: Any) -> float:
        """Fraction of examples classified correctly, in [0, 1]."""
        X, Y = self.check_XY(X, Y)
        if self.n_classes is not None:  # Y is one-hot (C, m) here: compare class indices
            Y = class_indices(Y)
        return prop.accuracy(prop.predict(X, self.params, self.activations), Y)
