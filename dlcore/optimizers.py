"""Optimizers: small objects that update the parameters in place from their gradients.

State (velocities ``v``, squared-gradient averages ``s``) has the shape of the parameters and is made
with ``xp.zeros_like`` on the first step, on the parameters' own device. The course's equations:

- gradient descent: ``W -= alpha dW``
- momentum:         ``v = beta v + (1 - beta) dW;  W -= alpha v``
- RMSprop:          ``s = beta2 s + (1 - beta2) dW^2;  W -= alpha dW / (sqrt(s) + eps)``
- Adam:             ``v, s`` as above, ``v^ = v / (1 - beta1^t)``, ``s^ = s / (1 - beta2^t)``,
  ``W -= alpha v^ / (sqrt(s^) + eps)``  (t counts steps from 1: bias correction)

Learning-rate decay per epoch: ``alpha = alpha0 / (1 + decay_rate * epoch)`` (call :meth:`start_epoch`).
Each update is one call of the backend's ops (:mod:`dlcore.ops`), which may fuse it into one kernel.
Gradient descent asks backpropagation for gradients already scaled by alpha
(:attr:`Optimizer.gradient_scale`), so its update is one subtraction with no temporary.
"""

from __future__ import annotations

import math
from typing import Any

from dlcore._namespace import array_kind, namespace
from dlcore.ops import Ops, ops_of
from dlcore.propagation import apply_update, check_gradients, copy_params
from dlcore.validation import as_float, check_learning_rate, check_number

Array = Any
Params = dict[str, Array]


class Optimizer:
    """Base class: ``step(params, grads)`` updates ``params`` in place; grads are named ``"d" + name``."""

    name = "base"

    def __init__(self, learning_rate: float = 0.01, decay_rate: float = 0.0) -> None:
        lr = check_learning_rate(learning_rate)
        decay = check_number(decay_rate, "decay_rate")
        self.learning_rate0 = lr
        self.learning_rate = lr
        self.decay_rate = decay
        self.t = 0  # steps taken (mixed precision's dynamic loss scale keeps it on the device: a 0-D int64)
        self.first_epoch = 0  # the schedule's epoch of a fit's epoch 0 (partial_fit's stream goes on)

    def start_epoch(self, epoch: int) -> float:
        """Set alpha = alpha0 / (1 + decay_rate * (first_epoch + epoch)) for epoch 0, 1, ...; returns it.
        ValueError when it rounds to 0 (no step would move, and gradient descent divides by it)."""
        if self.decay_rate:
            at = self.first_epoch + epoch
            rate = self.learning_rate0 / (1.0 + self.decay_rate * at)
            if not rate > 0:
                raise ValueError(
                    f"learning_rate={self.learning_rate0:g} with decay_rate={self.decay_rate:g} rounds to 0 "
                    f"at epoch {at}; use a smaller decay_rate"
                )
            self.learning_rate = rate
        return self.learning_rate

    def divergence_advice(self, learning_rate: float) -> str:
        """The last sentence of a divergence message: what to change (``learning_rate``: the one given)."""
        return f"Lower the learning rate (e.g. {learning_rate / 10:g})."

    def prepared_for(self, params: Params) -> bool:
        """Whether the training loop may hand this optimizer ``params`` (yes: a precision policy steps
        only the low-precision copies it prepared, :meth:`dlcore.precision.MixedPrecision.prepared_for`)."""
        return True

    def advance_schedule(self, epochs: int) -> None:
        """A fit ran ``epochs`` epochs: the next one's decay goes on from there, as its state does."""
        self.first_epoch += epochs

    @property
    def gradient_scale(self) -> float:
        """The factor to ask backpropagation for (``backward(scale=...)``) so that :meth:`step` is cheapest:
        the learning rate for gradient descent (the step is then one subtraction), else 1."""
        return 1.0

    def check_state(self, params: Params) -> None:
        """A ValueError, before anything changes, when this optimizer's state was made by steps on another
        network: arrays of another library, device, shape or dtype than the parameters they are for (the
        library's own error came half-way through a step, after the step count had moved on)."""
        for states in self.state():
            for name, state in states.items():
                like = params.get(name)
                if like is None:
                    continue
                if type(state) is not type(like):
                    problem = f"is of type {array_kind(state)} but {name} is of type {array_kind(like)}"
                elif state.shape != like.shape:  # one library: its own shape type on both sides
                    problem = f"has shape {tuple(state.shape)} but {name} has {tuple(like.shape)}"
                elif state.device != like.device:
                    problem = f"is on device {state.device} but {name} on {like.device}"
                elif state.dtype != like.dtype:  # numpy went on in float64, array_api_strict failed mid-step
                    problem = f"is {state.dtype} but {name} is {like.dtype}"
                else:
                    continue
                raise ValueError(
                    f"this optimizer's state for {name} {problem}: it was stepped on another network; give "
                    "each network its own optimizer"
                )

    def step(self, params: Params, grads: Params, ops: Ops | None = None, scale: float = 1.0) -> Params:
        """One update of every parameter, in place, from the gradients ``grads`` times ``scale``."""
        ops = ops or ops_of(next(iter(params.values())))
        self._check_first(params, grads)
        self.t = self.t + 1  # rebound, never in place: a count kept on the device may be shared
        for name, value in params.items():
            grad = grads["d" + name]
            self._update(ops, name, value, grad if scale == 1.0 else grad / scale)
        return params

    def _update(self, ops: Ops, name: str, value: Array, grad: Array) -> None:
        raise NotImplementedError

    def _check_first(self, params: Params, grads: Params) -> None:
        """The gradients and this optimizer's state checked against ``params`` at the first step on them:
        once per dict (a fit hands the same one each step; made every step, the checks took 2.6 µs, 8% of
        a planar Adam step)."""
        if getattr(self, "_checked", None) != id(params):
            check_gradients(params, grads)
            self.check_state(params)
            self._checked = id(params)

    def snapshot(self, params: Params) -> Params:
        """A copy of the parameters the optimizer updates, to roll back to (divergence) or restore
        (early stopping) with :meth:`restore`."""
        return copy_params(params)

    def restore(self, params: Params, snapshot: Params) -> None:
        """Put a :meth:`snapshot` back into ``params`` (training ends there: its arrays are taken)."""
        params.update(snapshot)

    def state(self) -> list[Params]:
        """The per-parameter state dicts (velocities ``v``, averages ``s``): the instance's dict
        attributes, so that a subclass's own state is found too (mixed precision restores them after a
        skipped step)."""
        return [d for d in vars(self).values() if isinstance(d, dict)]

    def reset_state(self) -> bool:
        """Forget the per-parameter state and the step count, as a new optimizer's (a rollback after a
        divergence: the state holds what blew up). Whether there was state to forget."""
        states = [d for d in self.state() if d]
        for d in states:
            d.clear()
        self.t = 0
        return bool(states)

    def restart(self) -> None:
        """Start over as a new optimizer of the same settings: no state, step count 0, the decay from
        epoch 0 (a template stepped before passed its moments, count and decay on)."""
        self.reset_state()
        self.first_epoch = 0
        self.learning_rate = self.learning_rate0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate0!r}, decay_rate={self.decay_rate!r})"


class GradientDescent(Optimizer):
    """W -= alpha dW (exactly :func:`dlcore.update`), from steps alpha dW that backward already scaled."""

    name = "gd"

    @property
    def gradient_scale(self) -> float:
        return self.learning_rate

    def step(self, params: Params, grads: Params, ops: Ops | None = None, scale: float = 1.0) -> Params:
        """W -= (alpha / scale) (scale dW): with ``scale`` = alpha, one subtraction and no temporary."""
        self._check_first(params, grads)
        self.t = self.t + 1
        return apply_update(params, grads, self.learning_rate / scale, ops)  # 1.0: scale is the rate


def _state(states: Params, name: str, like: Array) -> Array:
    """``states[name]``, zeros shaped like the parameter before the first step (checked against the
    parameters by :meth:`Optimizer.check_state`)."""
    if name not in states:
        states[name] = namespace(like).zeros_like(like)
    return states[name]


def _check_beta(beta: float, name: str) -> float:
    value = as_float(beta)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1); got {beta!r}")
    return value


def _check_epsilon(epsilon: float) -> float:
    """epsilon keeps dW / (sqrt(s) + epsilon) finite where s is 0: a finite number > 0."""
    value = as_float(epsilon)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"epsilon must be a finite number > 0 (e.g. 1e-8); got {epsilon!r}")
    return value


class Momentum(Optimizer):
    """v = beta v + (1 - beta) dW;  W -= alpha v."""

    name = "momentum"

    def __init__(self, learning_rate: float = 0.01, beta: float = 0.9, decay_rate: float = 0.0) -> None:
        super().__init__(learning_rate, decay_rate)
        self.beta = _check_beta(beta, "beta")
        self.v: Params = {}

    def _update(self, ops: Ops, name: str, value: Array, grad: Array) -> None:
        ops.momentum_update(value, grad, _state(self.v, name, value), self.learning_rate, self.beta)


class RMSprop(Optimizer):
    """s = beta2 s + (1 - beta2) dW^2;  W -= alpha dW / (sqrt(s) + eps)."""

    name = "rmsprop"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        decay_rate: float = 0.0,
    ) -> None:
        super().__init__(learning_rate, decay_rate)
        self.beta2 = _check_beta(beta2, "beta2")
        self.epsilon = _check_epsilon(epsilon)
        self.s: Params = {}

    def _update(self, ops: Ops, name: str, value: Array, grad: Array) -> None:
        s = _state(self.s, name, value)
        ops.rmsprop_update(value, grad, s, self.learning_rate, self.beta2, self.epsilon)


class Adam(Optimizer):
    """Momentum and RMSprop together, bias-corrected:
    v^ = v / (1 - beta1^t), s^ = s / (1 - beta2^t), W -= alpha v^ / (sqrt(s^) + eps)."""

    name = "adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        decay_rate: float = 0.0,
    ) -> None:
        super().__init__(learning_rate, decay_rate)
        self.beta1 = _check_beta(beta1, "beta1")
        self.beta2 = _check_beta(beta2, "beta2")
        self.epsilon = _check_epsilon(epsilon)
        self.v: Params = {}
        self.s: Params = {}

    def _update(self, ops: Ops, name: str, value: Array, grad: Array) -> None:
        v, s = _state(self.v, name, value), _state(self.s, name, value)
        ops.adam_update(value, grad, v, s, self.learning_rate, self.beta1, self.beta2, self.epsilon, self.t)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def get_optimizer(spec: str | Optimizer, learning_rate: float = 0.01, decay_rate: float = 0.0) -> Optimizer:
    """An optimizer object from a name (``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"``), or
    ``spec`` itself when it already is one."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, type) and issubclass(spec, Optimizer):
        raise ValueError(
            f"optimizer={spec.__name__} is the class: pass an instance ({spec.__name__}(0.001)) or its name"
            f" ({spec.name!r})"
        )
    if spec not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {spec!r}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[spec](learning_rate=learning_rate, decay_rate=decay_rate)
