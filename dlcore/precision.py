"""Mixed precision: compute in bfloat16 or float16, keep float32 master weights.

:class:`MixedPrecision` wraps an optimizer. The training loop (:func:`dlcore.training.train`, unchanged)
is handed low-precision copies of the parameters, the input cast once to the low dtype, and ops that
compute the cost and dZ[L] in the master dtype (Z[L] cast up and A[L] computed again from it, so the
divergence check sees a float32 cost and confident outputs keep their gradient). Each step casts the
gradients up, divides them by the loss scale, updates the masters with the wrapped optimizer and casts
the masters down again::

    W32 (masters) --astype--> W16 --forward/backward (low)--> dW16 --astype, / S--> dW32 --optimizer--> W32

Loss scaling (float16: its range ends at 65504 and its normals at 6e-5, so small gradients flush to zero
without it; bfloat16 has float32's range and needs none):

- ``loss_scale=<number>``: static; S joins the optimizer's :attr:`gradient_scale` (a host float that
  backward already multiplies dZ[L] by), so L2's gradient is scaled too and nothing changes on the device.
- ``loss_scale="dynamic"`` (float16's default): S is a 0-D device array multiplied into dZ[L]. A step whose
  gradients are not all finite is skipped (masters and optimizer state keep their values through
  ``xp.where``) and S halves; after ``growth_interval`` good steps in a row S doubles. Every decision is
  made on the device: **no host sync per step** (:attr:`loss_scale` and :attr:`skipped_steps` are device
  arrays; reading one is a sync, done by the caller after training). Costs of the skip: a copy of the
  masters and of the optimizer's state per step (not for gradient descent, whose skipped step is a
  subtraction of zeros). The wrapped optimizer's step count ``t`` (Adam's bias correction) is then a
  0-D int64 on the device that a skipped step does not advance (PyTorch's ``GradScaler`` skips
  ``optimizer.step()``); :attr:`t` counts every step. Dynamic scaling with L2 is refused (the loop adds
  L2's gradient outside dZ[L], unscaled).

Which low dtypes a backend computes in: ``backend.low_precision_dtypes()`` (numpy: float16; torch:
bfloat16, float16; cupy: float16, its bfloat16 being partial in CuPy 14; array_api_strict: none).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from dlcore._namespace import namespace
from dlcore.activations import Activation
from dlcore.backends.base import LOW_PRECISION_DTYPES
from dlcore.ops import Ops, ops_of
from dlcore.optimizers import GradientDescent, Optimizer
from dlcore.propagation import copy_params
from dlcore.training import History, train
from dlcore.validation import as_float, check_number, check_positive_int

Array = Any
Params = dict[str, Array]

#: the compute dtypes mixed precision knows (the backends' list: each backend says which it supports)
LOW_DTYPES = LOW_PRECISION_DTYPES


class MixedPrecision(Optimizer):
    """``optimizer`` on float32 masters while the loop computes in ``compute_dtype``.

    Args:
        optimizer: the optimizer that updates the masters (any :class:`~dlcore.optimizers.Optimizer`).
        compute_dtype: ``"bfloat16"``, ``"float16"``, or ``None``: the backend's first low dtype
            (bfloat16 on torch, float16 on numpy).
        loss_scale: ``"auto"`` (dynamic for float16, none for bfloat16), ``"dynamic"``, a number > 0
            (static), or ``None``/``1`` (none).
        init_scale, growth_interval, growth_factor, backoff_factor: dynamic scaling (PyTorch's
            ``GradScaler`` defaults): start at 2^16, double after 2000 good steps, halve on a bad one.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        compute_dtype: str | None = None,
        loss_scale: str | float | None = "auto",
        *,
        init_scale: float = 2.0**16,
        growth_interval: int = 2000,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        max_scale: float = 2.0**24,
    ) -> None:
        if not isinstance(optimizer, Optimizer):  # a name failed at the first step ("no attribute 't'")
            hint = ""
            if isinstance(optimizer, str) and optimizer in LOW_DTYPES:  # the dtype given first
                hint = f": the optimizer first, then the dtype, MixedPrecision(Adam(0.001), {optimizer!r})"
            elif isinstance(optimizer, str):
                hint = f": for an optimizer by name, pass fit(optimizer={optimizer!r}, precision='mixed')"
            elif isinstance(optimizer, type):
                hint = ": an instance, not the class"
            raise ValueError(
                f"MixedPrecision wraps an Optimizer object (e.g. Adam(0.001)); got {optimizer!r}{hint}"
            )
        if compute_dtype is not None and compute_dtype not in LOW_DTYPES:
            raise ValueError(f"compute_dtype must be one of {', '.join(LOW_DTYPES)}; got {compute_dtype!r}")
        named = loss_scale in ("auto", "dynamic") if isinstance(loss_scale, str) else loss_scale is None
        number = not isinstance(loss_scale, (str, bool))  # "1024" and True were taken as no scaling at all
        if not named and not (number and math.isfinite(scale := as_float(loss_scale)) and scale > 0):
            raise ValueError(
                f"loss_scale must be 'auto', 'dynamic', a number > 0 or None; got {loss_scale!r}"
            )
        max_scale = check_number(max_scale, "max_scale")
        if not 0 < as_float(init_scale) <= max_scale:
            raise ValueError(
                f"init_scale must be a number > 0 and at most max_scale ({max_scale:g}); got {init_scale!r}"
            )
        growth_interval = check_positive_int(growth_interval, "growth_interval")
        if not (as_float(growth_factor) > 1 and 0 < as_float(backoff_factor) < 1):
            raise ValueError(
                f"dynamic loss scaling needs growth_factor > 1 and 0 < backoff_factor < 1; got "
                f"{growth_factor!r} and {backoff_factor!r}"
            )
        self.optimizer = optimizer
        self.compute_dtype = compute_dtype  # as asked (None: each backend's own, resolved per prepare)
        self.compute_name: str | None = compute_dtype  # the one the last prepare computes in
        self.loss_scale_option = loss_scale
        self.init_scale, self.max_scale = float(init_scale), float(max_scale)
        self.growth_interval = int(growth_interval)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.t = 0
        self.masters: Params = {}
        self._low: Params = {}  # the low-precision arrays last handed to the loop, by name
        self.xp: Any = None
        self.low_dtype: Any = None
        self.master_dtype: Any = None
        self.dynamic = False
        self.static_scale = 1.0
        self.loss_scale: Array | None = None  # dynamic: S, 0-D on the device
        self.skipped_steps: Array | None = None  # dynamic: steps skipped so far, 0-D int64 on the device
        self._good: Array | None = None
        #: dynamic: the step's 0-D constants, made once in prepare (no allocation per step): 0 in the master
        #: dtype, 0 as int64, and max_scale
        self._zero: Array | None = None
        self._izero: Array | None = None
        self._max: Array | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickles without the namespace (a module); :meth:`__setstate__` finds it from the masters."""
        return {**self.__dict__, "xp": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.masters:
            self.xp = namespace(next(iter(self.masters.values())))

    @classmethod
    def of(cls, spec: str | MixedPrecision, optimizer: Optimizer) -> MixedPrecision:
        """From a name: ``"mixed"`` (the backend's first low dtype), ``"bfloat16"`` or ``"float16"``."""
        if isinstance(spec, MixedPrecision):
            return spec
        if spec == "mixed":
            return cls(optimizer)
        if spec in LOW_DTYPES:
            return cls(optimizer, spec)
        raise ValueError(f"precision must be 'mixed', 'bfloat16' or 'float16'; got {spec!r}")

    # -- the wrapped optimizer's face -----------------------------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.optimizer.name

    @property
    def learning_rate(self) -> float:  # type: ignore[override]
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate = value

    @property
    def learning_rate0(self) -> float:  # type: ignore[override]
        return self.optimizer.learning_rate0

    @property
    def decay_rate(self) -> float:  # type: ignore[override]
        return self.optimizer.decay_rate

    def start_epoch(self, epoch: int) -> float:
        return self.optimizer.start_epoch(epoch)

    def advance_schedule(self, epochs: int) -> None:
        self.optimizer.advance_schedule(epochs)

    @property
    def gradient_scale(self) -> float:
        """The wrapped optimizer's, times a static loss scale (backward multiplies dZ[L] by it)."""
        return self.optimizer.gradient_scale * self.static_scale

    # -- setup ----------------------------------------------------------------------------------------
    def _dtype_name(self, backend: Any) -> str:
        """The compute dtype's name: the one asked for, or the backend's first low dtype."""
        supported = tuple(backend.low_precision_dtypes())
        return self.compute_dtype or (supported[0] if supported else "float16")

    def _dynamic(self, name: str) -> bool:
        option = self.loss_scale_option
        return option == "dynamic" or (option == "auto" and name == "float16")

    def check(self, backend: Any, l2: float = 0.0) -> None:
        """Refuse what :meth:`prepare` or the loop would, before anything is prepared or drawn: a compute
        dtype ``backend`` lacks (a BackendError naming the fix); l2 with a dynamic loss scale (its
        gradient is added outside dZ[L], so it would be divided by the scale: a ValueError)."""
        name = self._dtype_name(backend)
        backend.low_precision_dtype(name)  # raises when unsupported
        if l2 and self._dynamic(name):
            fix = (
                "pass loss_scale=None (bfloat16 has float32's range: it needs no loss scale) or l2=0"
                if name == "bfloat16"
                else "use precision='bfloat16' (a backend that has it: torch), a static loss scale "
                "(MixedPrecision(optimizer, 'float16', loss_scale=1024)), or l2=0"
            )
            raise ValueError(f"l2 with dynamic loss scaling is not supported: {fix}")

    def prepare(self, params: Params, backend: Any) -> Params:
        """Take ``params`` (float32, or float64) as the masters; return their low-precision copies. A
        dynamic loss scale set by an earlier prepare on the same device carries on (a stream of fits).

        A :class:`~dlcore.backends.BackendError` (one sentence, naming the fix) when ``backend`` cannot
        compute in the requested dtype."""
        name = self._dtype_name(backend)
        self.low_dtype = backend.low_precision_dtype(name)  # raises when unsupported
        self.compute_name = name  # not compute_dtype: None stays each backend's own (torch, then numpy)
        self.xp = backend.xp
        self.masters = dict(params)
        first = next(iter(params.values()))
        self.master_dtype = first.dtype
        option = self.loss_scale_option
        self.dynamic = self._dynamic(name)
        self.static_scale = float(option) if not isinstance(option, str) and option is not None else 1.0
        # prepared before on this device (a stream of fits, partial_fit's): the scale and its counts go on
        fresh = self.loss_scale is None or self.loss_scale.device != first.device
        if self.dynamic and fresh:
            xp, device = self.xp, first.device
            self.loss_scale = xp.full((), self.init_scale, dtype=self.master_dtype, device=device)
            self._good = xp.zeros((), dtype=xp.int64, device=device)
            self.skipped_steps = xp.zeros((), dtype=xp.int64, device=device)
            self._zero = xp.zeros((), dtype=self.master_dtype, device=device)
            self._izero = xp.zeros((), dtype=xp.int64, device=device)
            self._max = xp.full((), self.max_scale, dtype=self.master_dtype, device=device)
        t = self.optimizer.t
        if self.dynamic and (isinstance(t, numbers.Integral) or t.device != first.device):
            self.optimizer.t = self.xp.asarray(int(t), dtype=self.xp.int64, device=first.device)
        return self._cast_down(dict(params))

    def divergence_advice(self, learning_rate: float) -> str:
        """A static loss scale's overflow looks like a learning rate too large: the advice names both."""
        advice = self.optimizer.divergence_advice(learning_rate)
        if self.dynamic or self.static_scale == 1.0:
            return advice
        return (
            f"{advice[:-1]}, or the loss scale (loss_scale={self.static_scale:g}: scaled gradients beyond "
            f"{self.compute_name}'s range become inf), or pass loss_scale='dynamic'."
        )

    def prepared_for(self, params: Params) -> bool:
        """Whether ``params`` are the low-precision copies the last :meth:`prepare` made (what the loop
        must be handed: a MixedPrecision given as a plain optimizer= never was prepared for them)."""
        return bool(params) and all(self._low.get(name) is value for name, value in params.items())

    def cast(self, X: Array) -> Array:
        """An input X: (n_x, m) in the compute dtype (once per fit, not per step)."""
        return self.xp.astype(X, self.low_dtype)

    def wrap_ops(self, ops: Ops) -> PrecisionOps:
        """``ops`` computing the cost and dZ[L] in the master dtype (and dZ[L] times a dynamic S)."""
        return PrecisionOps(ops, self)

    def snapshot(self, params: Params) -> Params:
        """The loop's low-precision ``params`` copied, carrying a copy of the float32 masters
        (``.masters``): a restore puts both back, so no master is rebuilt from its low copy."""
        saved = _WithMasters(copy_params(params))
        saved.masters = copy_params(self.masters)
        return saved

    def check_state(self, params: Params) -> None:
        """The wrapped optimizer's state checked against the float32 masters it updates (``params``, the
        loop's low-precision copies, are checked by :meth:`prepared_for`)."""
        self.optimizer.check_state(self.masters)

    def reset_state(self) -> bool:
        """The wrapped optimizer's (the masters and the loss scale are not optimizer state)."""
        return self.optimizer.reset_state()

    def restart(self) -> None:
        """The wrapped optimizer's restart, its own step count, and a dynamic scale made anew by prepare."""
        self.optimizer.restart()
        self.t, self.loss_scale = 0, None

    def restore(self, params: Params, snapshot: Params) -> None:
        """Put a :meth:`snapshot` back: its low-precision arrays into ``params``, its masters into the
        masters (so :meth:`master_params` keeps them rather than casting the low arrays up)."""
        params.update(snapshot)
        self.masters.update(snapshot.masters)
        self._low.update(snapshot)

    def master_params(self, params: Params) -> Params:
        """The masters after training on ``params`` (the loop's low-precision dict). A parameter that the
        loop replaced without :meth:`restore` is taken from the loop's value, cast up: that is the
        parameter the loop chose."""
        xp = self.xp
        for name, value in params.items():
            if value is not self._low.get(name):
                self.masters[name] = xp.astype(value, self.master_dtype)
        return dict(self.masters)

    def _cast_down(self, params: Params) -> Params:
        for name, master in self.masters.items():
            params[name] = self._low[name] = self.xp.astype(master, self.low_dtype)
        return params

    # -- one step -------------------------------------------------------------------------------------
    def unscale(self, grads: Params) -> Params:
        """The gradients cast up to the master dtype and divided by the loss scale (new arrays)."""
        xp, dtype = self.xp, self.master_dtype
        inv = 1.0 / self.loss_scale if self.dynamic else None
        out = {}
        for name, g in grads.items():
            up = xp.astype(g, dtype)
            if inv is not None:
                up *= inv
            elif self.static_scale != 1.0:
                up /= self.static_scale
            out[name] = up
        return out

    def all_finite(self, grads: Params) -> Array:
        """A 0-D bool on the device: whether every gradient is finite (no host sync)."""
        xp = self.xp
        finite = None
        for g in grads.values():
            f = xp.all(xp.isfinite(g))
            finite = f if finite is None else xp.logical_and(finite, f)
        return finite

    def step(self, params: Params, grads: Params, ops: Ops | None = None, scale: float = 1.0) -> Params:
        """Update the masters from the low-precision ``grads`` (times ``scale``, as backward made them)
        and cast them down into ``params`` (the loop's dict: its arrays are replaced, not written)."""
        xp = self.xp
        ops = ops or ops_of(next(iter(self.masters.values())))
        self.t += 1
        up = self.unscale(grads)
        inner_scale = scale / self.static_scale
        if not self.dynamic:
            self.optimizer.step(self.masters, up, ops, inner_scale)
            return self._cast_down(params)
        finite = self.all_finite(up)
        zero = self._zero
        t = self.optimizer.t  # a device count: a skipped step does not advance it (Adam's bias correction)
        if type(self.optimizer) is GradientDescent:  # W - 0 is W: a skipped step needs no copy
            up = {name: xp.where(finite, g, zero) for name, g in up.items()}
            self.optimizer.step(self.masters, up, ops, inner_scale)
        else:
            states = [self.masters, *self.optimizer.state()]
            saved = [{k: xp.asarray(v, copy=True) for k, v in d.items()} for d in states]
            self.optimizer.step(self.masters, up, ops, inner_scale)
            for d, old in zip(states, saved, strict=True):
                for k, new in d.items():  # in place: the network's dict holds these masters while it trains
                    new[...] = xp.where(finite, new, old[k] if k in old else zero)
        self.optimizer.t = xp.where(finite, self.optimizer.t, t)
        self._update_scale(finite)
        return self._cast_down(params)

    def _update_scale(self, finite: Array) -> None:
        """S: halved after a bad step, doubled (up to ``max_scale``) after ``growth_interval`` good ones."""
        xp = self.xp
        izero = self._izero
        good = xp.where(finite, self._good + 1, izero)
        grow = good >= self.growth_interval
        S = self.loss_scale
        grown = xp.where(grow, xp.minimum(S * self.growth_factor, self._max), S)
        self.loss_scale = xp.where(finite, grown, S * self.backoff_factor)
        self._good = xp.where(grow, izero, good)
        self.skipped_steps = self.skipped_steps + xp.astype(xp.logical_not(finite), xp.int64)

    def __repr__(self) -> str:
        return (
            f"MixedPrecision({self.optimizer!r}, compute_dtype={self.compute_dtype!r}, "
            f"loss_scale={self.loss_scale_option!r})"
        )


class _WithMasters(dict):
    """A snapshot of the low-precision parameters, with ``masters``: the float32 masters they came from."""

    masters: Params | None = None


class PrecisionOps:
    """The backend's ops with the output layer in the master dtype: ``cost`` and ``output_gradient`` cast
    Z[L] (n[L], m) up and compute A[L] from it again; dZ[L] comes back in the compute dtype, times a
    dynamic loss scale.
    Every other primitive (and ``capture``) is the wrapped ops' own."""

    def __init__(self, ops: Ops, policy: MixedPrecision) -> None:
        self.inner = ops
        self.policy = policy
        self.xp = ops.xp
        self.name = f"{ops.name}+{policy.compute_name}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _up(self, x: Array) -> Array:
        dtype = self.policy.master_dtype
        return x if x.dtype == dtype else self.xp.astype(x, dtype)

    def _outputs(self, head: Any, Z: Array, A: Array) -> tuple[Array, Array]:
        """Z[L] cast up, and A[L] computed again from it in the master dtype: A cast up would keep the
        compute dtype's rounding (bfloat16's sigmoid(6) is 0.99609, so dZ = A - Y was 58% off there and 0
        from p ~ 0.999 on)."""
        Z = self._up(Z)
        return Z, head.activation.forward(Z) if A.dtype != Z.dtype else A

    def cost(self, head: Any, Z: Array, A: Array, Y: Array) -> Array:
        """J in the master dtype (0-D)."""
        return self.inner.cost(head, *self._outputs(head, Z, A), self._up(Y))

    def output_gradient(self, head: Any, Z: Array, A: Array, Y: Array, scale: float) -> Array:
        """dZ[L] = scale S dJ/dZ[L], computed in the master dtype, returned in the compute dtype."""
        dZ = self.inner.output_gradient(head, *self._outputs(head, Z, A), self._up(Y), scale)
        if self.policy.dynamic:
            dZ *= self.policy.loss_scale  # in place: dZ is the inner ops' new array (Ops.output_gradient)
        return self.xp.astype(dZ, self.policy.low_dtype)

    def __repr__(self) -> str:
        return f"PrecisionOps({self.inner!r}, {self.policy.compute_name})"


def _cast_within(precision: MixedPrecision, backend: Any, X: Array, name: str, fix: str) -> Array:
    """``X`` in the compute dtype (once per fit), or a ValueError naming ``name`` when a value is beyond its
    range (one host sync)."""
    cast = precision.cast(X)
    if not bool(backend.xp.all(backend.xp.isfinite(cast))):
        raise ValueError(
            f"{name} holds values beyond {precision.compute_name}'s range: {fix} or compute in a wider dtype"
        )
    return cast


def train_mixed(
    params: Params,
    activations: Sequence[Activation],
    X: Array,
    Y: Array,
    *,
    precision: MixedPrecision,
    backend: Any,
    ops: Ops | None = None,
    validation: tuple[Array, Array] | None = None,
    l2: float = 0.0,
    **kwargs: Any,
) -> History:
    """:func:`~dlcore.training.train` in mixed precision: ``precision`` wraps the optimizer (pass no
    ``optimizer=``); X: (n_x, m) and Y: (n[L], m) in the master dtype. ``params`` (the masters) are
    updated in place at the end, also when training diverges (then with the rolled-back parameters)."""
    precision.check(backend, l2)
    low = precision.prepare(params, backend)
    # X beyond the range: tanh(inf) = 1, every step skipped silently; X_val: every validation cost NaN
    X = _cast_within(precision, backend, X, "X", "standardize X")
    if validation is not None:
        X_val = _cast_within(
            precision, backend, validation[0], "the validation X", "standardize X (as the training X)"
        )
        validation = (X_val, validation[1])
    try:
        with backend.quiet_floating_point():  # an overflowing float16 step is expected: it is skipped
            return train(
                low,
                activations,
                X,
                Y,
                optimizer=precision,
                ops=precision.wrap_ops(ops or backend.ops),
                validation=validation,
                l2=l2,
                **kwargs,
            )
    finally:
        params.update(precision.master_params(low))
