"""Output heads: the last layer's activation, its loss, their fused gradient, and the prediction rule.

A head replaces every branch on the output activation's name. ``cost(Z, A, Y)`` is J (0-D, on the
device); ``output_gradient(Z, A, Y, scale, ops)`` is ``scale * dJ/dZ[L]``, where the loss and g[L]
derivatives combine into ``dZ[L] = (A[L] - Y) / m`` for the three matched pairs:

| head | g[L] | loss | Y | predict |
|---|---|---|---|---|
| :class:`BinaryCrossEntropy` | sigmoid | binary cross-entropy (from the logits) | (1, m) 0/1 | A > 0.5 |
| :class:`CategoricalCrossEntropy` | softmax | categorical cross-entropy | (C, m) one-hot | argmax |
| :class:`MeanSquaredError` | linear (identity) | 1/(2m) sum (A - Y)^2 | (n_y, m) real | A |

Any other output activation with values in (0, 1) (one of your own) gets :class:`ProbabilityCrossEntropy`,
the course's general path: ``dA[L] = -(Y/A - (1-Y)/(1-A)) / m``, then ``dZ[L] = dA[L] * g'(Z[L])``. The
built-in tanh, ReLU and leaky ReLU leave (0, 1), where cross-entropy has no meaning: refused.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dlcore._namespace import namespace
from dlcore.activations import ACTIVATIONS, SOFTMAX, Activation
from dlcore.labels import check_class_labels, class_indices
from dlcore.losses import (
    binary_cross_entropy,
    binary_cross_entropy_from_logits,
    binary_cross_entropy_grad,
    categorical_cross_entropy_from_logits,
    mean_squared_error,
)
from dlcore.metrics import accuracy, r2_score
from dlcore.validation import check_labels, check_targets

Array = Any


class Head:
    """Base class. Subclasses set ``name``, ``activation``, ``metric`` and the loss."""

    name = "head"
    metric = "accuracy"  # what :meth:`score` returns
    task = "classification"
    activation: Activation

    def cost(self, Z: Array, A: Array, Y: Array) -> Array:
        raise NotImplementedError

    def output_gradient(self, Z: Array, A: Array, Y: Array, scale: float, ops: Any) -> Array:
        """dZ[L] = scale (A[L] - Y) / m: the matched loss and activation derivatives combined."""
        dZ = A - Y
        dZ *= scale / A.shape[1]  # in place: one (n[L], m) array
        return dZ

    @property
    def residual_gradient(self) -> bool:
        """Whether :meth:`output_gradient` is this base class's dZ[L] = scale (A[L] - Y) / m, which a backend
        may then compute its own way (fused); a head that defines its own is always called."""
        return type(self).output_gradient is Head.output_gradient

    @property
    def logit_cross_entropy(self) -> bool:
        """Whether :meth:`cost` is :class:`BinaryCrossEntropy`'s, from the logits, which a backend may then
        compute its own way; a head that defines its own is always called."""
        return type(self).cost is BinaryCrossEntropy.cost

    def predict(self, A: Array) -> Array:
        """Predicted labels (int64) or values from the output A[L]."""
        return namespace(A).astype(A > 0.5, namespace(A).int64)

    def check_targets(self, Y: Any, n_out: int, m: int, backend: Any, dtype: Any) -> Array:
        """Y as training targets of shape (n[L], m) on ``backend``, or a ValueError naming the problem."""
        return check_labels(Y, m, backend, dtype)

    def score(self, A: Array, Y: Array) -> float:
        """The head's metric of the outputs A[L] against checked targets Y (accuracy, or R^2)."""
        return accuracy(self.predict(A), Y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.activation.spec})"


class BinaryCrossEntropy(Head):
    """sigmoid + binary cross-entropy, computed from the logits Z[L] (finite even when A saturates)."""

    name = "binary"
    activation = ACTIVATIONS["sigmoid"]

    def cost(self, Z: Array, A: Array, Y: Array) -> Array:
        return binary_cross_entropy_from_logits(Z, Y)


class CategoricalCrossEntropy(Head):
    """softmax + categorical cross-entropy from the logits; Y one-hot (C, m), predictions are argmax."""

    name = "softmax"
    activation = SOFTMAX

    def cost(self, Z: Array, A: Array, Y: Array) -> Array:
        return categorical_cross_entropy_from_logits(Z, Y)

    def predict(self, A: Array) -> Array:
        return class_indices(A)

    def check_targets(self, Y: Any, n_out: int, m: int, backend: Any, dtype: Any) -> Array:
        return check_class_labels(Y, n_out, m, backend, dtype)

    def score(self, A: Array, Y: Array) -> float:
        return accuracy(class_indices(A), class_indices(Y))


class MeanSquaredError(Head):
    """identity + mean squared error: regression. Predictions are A[L] itself; the metric is R^2."""

    name = "regression"
    metric = "R^2"
    task = "regression"
    activation = ACTIVATIONS["linear"]

    def cost(self, Z: Array, A: Array, Y: Array) -> Array:
        return mean_squared_error(A, Y)

    def predict(self, A: Array) -> Array:
        return A

    def check_targets(self, Y: Any, n_out: int, m: int, backend: Any, dtype: Any) -> Array:
        return check_targets(Y, n_out, m, backend, dtype)

    def score(self, A: Array, Y: Array) -> float:
        return r2_score(A, Y)


class ProbabilityCrossEntropy(Head):
    """Any other output activation g with binary cross-entropy on its probabilities (the course's path)."""

    name = "probability"

    def __init__(self, activation: Activation) -> None:
        self.activation = activation

    def cost(self, Z: Array, A: Array, Y: Array) -> Array:
        return binary_cross_entropy(A, Y)

    def output_gradient(self, Z: Array, A: Array, Y: Array, scale: float, ops: Any) -> Array:
        """dA[L] = -(Y/A - (1-Y)/(1-A)) scale / m, then dZ[L] = dA[L] g'(Z[L])."""
        dA = binary_cross_entropy_grad(A, Y)
        dA *= scale / A.shape[1]
        return ops.activation_backward(self.activation, dA, Z, A)


HEADS: dict[str, Head] = {
    "sigmoid": BinaryCrossEntropy(),
    "softmax": CategoricalCrossEntropy(),
    "linear": MeanSquaredError(),
}


def check_head(head: Any) -> None:
    """A ValueError unless ``head`` is None or a :class:`Head` object (the class itself passed for one had
    truthy properties: numpy and torch computed binary cross-entropy under MeanSquaredError's name)."""
    if head is not None and not isinstance(head, Head):
        hint = ": an instance, not the class, e.g. MeanSquaredError()" if isinstance(head, type) else ""
        raise ValueError(f"head must be a dlcore.heads.Head object or None; got {head!r}{hint}")


def head_for(activation: Activation) -> Head:
    """The head an output activation implies: sigmoid, softmax, linear, or the course's general path."""
    head = HEADS.get(activation.name)
    if head is not None and (head.activation is activation or head.activation == activation):
        return head  # the identity test first: the hot path asks this twice per step
    return _general_head(activation)


#: built-in activations whose values leave (0, 1): no cross-entropy of them
NOT_PROBABILITIES = ("tanh", "relu", "leaky_relu")


@cache
def _general_head(activation: Activation) -> Head:
    if activation.name in NOT_PROBABILITIES:
        raise ValueError(
            f"the output activation {activation.name!r} gives values outside (0, 1), where cross-entropy is "
            "not defined: use 'sigmoid' (binary), 'softmax' (several classes) or 'linear' (regression)"
        )
    return ProbabilityCrossEntropy(activation)
