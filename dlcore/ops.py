"""The ops seam: every array primitive the training core needs, in plain Array API code.

The core (layers, heads, optimizers, regularization) never computes a hot primitive itself: it asks an
:class:`Ops` object. This default implementation is plain Array API code and runs on any namespace
(``array_api_strict`` included); a backend may hand the core a subclass that overrides any method with
a fused or native version (NumPy ``out=`` buffers, a CuPy ``ElementwiseKernel``, a CUDA graph), the way
Thinc's ``CupyOps`` extends its ``Ops``. Layers never know the library.

Shapes in the course's notation: ``W: (n[l], n[l-1])``, ``b: (n[l], 1)``, ``A_prev: (n[l-1], m)``,
``Z, A, dA, dZ: (n[l], m)``. Methods whose docstring says *in place* may overwrite that argument and
return it; callers hand over arrays they own.

Ops for an array come from :func:`ops_of` (what a backend registered for the array's type, else the
default); a :class:`~dlcore.backends.Backend` carries its own as ``backend.ops``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from dlcore._namespace import namespace

Array = Any


class Ops:
    """The default primitives, in the Array API standard only. Subclass and override the hot paths."""

    name = "array_api"

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.xp, '__name__', self.xp)!s})"

    # -- layers -------------------------------------------------------------------------------------
    def layer_forward(self, W: Array, A_prev: Array, b: Array, g: Any) -> tuple[Array, Array]:
        """(Z, A): Z = W A_prev + b, A = g(Z), the place to fuse the bias with the activation."""
        Z = W @ A_prev
        Z += b
        return Z, g.forward(Z)

    def activation_backward(self, g: Any, dA: Array, Z: Array, A: Array) -> Array:
        """dZ = dA * g'(Z), in place in dA (backpropagation owns its dA)."""
        dA *= g.derivative(Z, A)
        return dA

    def bias_gradient(self, dZ: Array) -> Array:
        """db = sum(dZ, axis=1): (n[l], 1)."""
        return self.xp.sum(dZ, axis=1, keepdims=True)

    def linear_backward(
        self, dZ: Array, A_prev: Array, W: Array, need_dA_prev: bool
    ) -> tuple[Array | None, Array, Array]:
        """(dA_prev, dW, db): dW = dZ A_prev^T, db = sum(dZ, axis=1), dA_prev = W^T dZ (None when not
        needed; for a one-row W an outer product, computed as a broadcast multiply: ~15x faster on CPU)."""
        dW = dZ @ A_prev.T
        db = self.bias_gradient(dZ)
        if not need_dA_prev:
            return None, dW, db
        return (W.T * dZ if W.shape[0] == 1 else W.T @ dZ), dW, db

    # -- the output layer ---------------------------------------------------------------------------
    def output_gradient(self, head: Any, Z: Array, A: Array, Y: Array, scale: float) -> Array:
        """dZ[L] = scale * dJ/dZ[L] of ``head``'s loss (a new array; fused with g' where it cancels)."""
        return head.output_gradient(Z, A, Y, scale, self)

    def cost(self, head: Any, Z: Array, A: Array, Y: Array) -> Array:
        """J, ``head``'s mean loss, as a 0-D array on the device."""
        return head.cost(Z, A, Y)

    # -- optimizers (every update in place in W and in the optimizer's state) -------------------------
    def gd_update(self, W: Array, dW: Array, learning_rate: float) -> None:
        """W -= alpha dW (``learning_rate=1``: dW is already the step, subtracted with no temporary)."""
        W -= dW if learning_rate == 1.0 else learning_rate * dW

    def gd_update_all(self, Ws: Sequence[Array], dWs: Sequence[Array], learning_rate: float) -> None:
        """:meth:`gd_update` of every parameter: the place to update them all in one launch."""
        for W, dW in zip(Ws, dWs, strict=True):
            self.gd_update(W, dW, learning_rate)

    def moving_average(self, avg: Array, x: Array, beta: float) -> Array:
        """avg = beta avg + (1 - beta) x, in place."""
        avg *= beta
        avg += (1.0 - beta) * x
        return avg

    def momentum_update(self, W: Array, dW: Array, v: Array, learning_rate: float, beta: float) -> None:
        """v = beta v + (1 - beta) dW;  W -= alpha v."""
        W -= learning_rate * self.moving_average(v, dW, beta)

    def rmsprop_update(
        self, W: Array, dW: Array, s: Array, learning_rate: float, beta2: float, epsilon: float
    ) -> None:
        """s = beta2 s + (1 - beta2) dW^2;  W -= alpha dW / (sqrt(s) + eps)."""
        s = self.moving_average(s, dW * dW, beta2)
        W -= learning_rate * dW / (self.xp.sqrt(s) + epsilon)

    def adam_update(
        self,
        W: Array,
        dW: Array,
        v: Array,
        s: Array,
        learning_rate: float,
        beta1: float,
        beta2: float,
        epsilon: float,
        t: int | Array,
    ) -> None:
        """v, s as in momentum and RMSprop; W -= alpha v^ / (sqrt(s^) + eps), v^ = v / (1 - beta1^t),
        s^ = s / (1 - beta2^t) (t counts steps from 1: a host int, or a 0-D integer array on W's device)."""
        v = self.moving_average(v, dW, beta1)
        s = self.moving_average(s, dW * dW, beta2)
        step_size, s_hat_scale = adam_scales(learning_rate, beta1, beta2, t, W)
        W -= step_size * v / (self.xp.sqrt(s * s_hat_scale) + epsilon)

    # -- regularization -------------------------------------------------------------------------------
    def dropout_mask(self, shape: tuple[int, ...], keep_prob: float, rng: Any, dtype: Any) -> Array:
        """D = (U < keep_prob) / keep_prob, U uniform on [0, 1) from ``rng`` (reproducible host draws).
        A compute dtype under 32 bits (mixed precision) draws and compares U in float32: its masks are
        float32's (in bfloat16, 0.8 is 0.80078 and U itself has 8 bits)."""
        U = rng.uniform(shape, dtype=at_least_float32(self.xp, dtype))
        return self.xp.astype(U < keep_prob, dtype) / keep_prob

    # -- whole steps ----------------------------------------------------------------------------------
    def capture(
        self, step: Callable[..., Any], replay: bool = False, inputs: tuple[int, ...] = ()
    ) -> Callable[..., Any]:
        """``step`` as a function the backend may run faster when called again and again: a CUDA graph,
        or buffers reused from one call to the next. Arrays made inside one call may be reused by the next,
        so ``step`` must return nothing but what it computes fresh (a cost). ``replay=True``: the caller
        vouches that ``step`` computes every array through the ops object it is handed as an argument, that
        its control flow depends on the arguments' shapes and scalars only, never on array values, and that
        it has no effect but on those arrays (no Python state: an optimizer's step counter, a progress
        hook), so that a backend may record one call and replay only its array work while the arguments
        stay the same arrays (NumpyOps). ``inputs``: the positions of arguments the step only reads (a
        mini-batch X{t}, Y{t}); a backend may copy a new one into a buffer of its own of that shape, so
        that the next batch is the same arguments to a replay (a CUDA graph's static inputs). The
        identity here."""
        return step


_BY_TYPE: dict[type, Ops] = {}


def at_least_float32(xp: ModuleType, dtype: Any) -> Any:
    """``dtype``, or float32 for a dtype of fewer bits (mixed precision's float16 and bfloat16)."""
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def as_at_least_float32(x: Array) -> Array:
    """``x``, or ``x`` cast to float32 when its dtype has fewer bits (see :func:`at_least_float32`)."""
    xp = namespace(x)
    return xp.astype(x, at_least_float32(xp, x.dtype), copy=False)


def register_ops(array_type: type, ops: Ops) -> None:
    """Make ``ops`` the primitives for arrays of ``array_type`` (backends call this)."""
    _BY_TYPE[array_type] = ops


def adam_scales(learning_rate: float, beta1: float, beta2: float, t: int | Array, like: Array) -> tuple:
    """Adam's (alpha / (1 - beta1^t), 1 / (1 - beta2^t)). For a host step count, host floats; for a
    count kept on the device (mixed precision's, which a skipped step does not advance: no host sync),
    0-D arrays in ``like``'s dtype, computed in float64 and rounded once, as the host floats are (the pow
    is the device library's: within an ulp of Python's)."""
    if isinstance(t, numbers.Integral):
        return learning_rate * (1.0 / (1.0 - beta1**t)), 1.0 / (1.0 - beta2**t)
    key = (learning_rate, beta1, beta2, like.dtype)
    last_t, last_key, scales = _LAST_DEVICE_SCALES[0]
    if last_t is t and last_key == key:  # the step's other parameters: one count, so computed once
        return scales
    xp = namespace(like)
    steps = xp.astype(t, xp.float64)
    one = xp.ones((), dtype=xp.float64, device=like.device)
    step_size = learning_rate * (1.0 / (1.0 - (one * beta1) ** steps))
    s_hat_scale = 1.0 / (1.0 - (one * beta2) ** steps)
    scales = xp.astype(step_size, like.dtype), xp.astype(s_hat_scale, like.dtype)
    _LAST_DEVICE_SCALES[0] = (t, key, scales)  # t held: its identity keeps meaning this count
    return scales


#: (device step count, (alpha, beta1, beta2, dtype), scales) of the last :func:`adam_scales` from a device
#: count: every parameter of one step asks with the same count object (a new one each step)
_LAST_DEVICE_SCALES: list[tuple[Any, Any, Any]] = [(None, None, None)]


def ops_of(x: Array) -> Ops:
    """The ops registered for ``type(x)``, or the default :class:`Ops` of its namespace (memoized)."""
    ops = _BY_TYPE.get(type(x))
    if ops is None:
        ops = _BY_TYPE[type(x)] = Ops(namespace(x))
    return ops
