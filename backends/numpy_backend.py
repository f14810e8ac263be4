"""NumPy on the CPU: the reference backend, with a few ops done in place through NumPy's ``out=``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat.numpy as xp
import numpy as np
from dlcore.backends.base import Backend
from dlcore.backends.host_memory import keep_freed_host_memory

from dlcore.ops import Ops, register_ops

Array = Any


#: arrays of fewer elements are allocated afresh even in a captured step: malloc serves them from its
#: free lists faster than the workspace's bookkeeping (measured: ~0.15 us against ~0.4 us), and they
#: stay in the caches either way
SMALL = 4096


class NumpyOps(Ops):
    """NumPy's own versions of the hot primitives: ``out=`` buffers, in-place ufuncs, no wrappers.

    Inside a step made by :meth:`capture`, every (n, m) array the step needs (Z, A, dZ, dA, dW, the
    cost's terms) comes from a workspace allocated on the first call and reused by the next ones, as a
    hand-written NumPy step would preallocate them: no allocation, and the buffers stay warm in the
    caches. Outside a captured step every result is a fresh array. The arithmetic is the default's, in
    the same order: the same bits (tests/test_ops.py).

    Measured and left to the default: ReLU' as ``np.multiply(dA, Z > 0, out=dA)`` (the boolean operand
    is cast inside the ufunc loop: 1.3x slower than multiplying by a float copy of the mask).
    """

    name = "numpy"

    def __init__(self, xp: Any) -> None:
        super().__init__(xp)
        self._workspace: list[np.ndarray] | None = None  # the running captured step's buffers
        self._next = 0

    # -- the workspace ------------------------------------------------------------------------------
    def capture(self, step: Callable[..., Any]) -> Callable[..., Any]:
        """``step`` with its own workspace: the i-th buffer it asks for is the i-th of the last call
        (reallocated when the shape changes, e.g. the last, partial mini-batch)."""
        buffers: list[np.ndarray] = []

        def captured(*args: Any, **kwargs: Any) -> Any:
            if self._workspace is not None:  # nested: the outer step's workspace serves
                return step(*args, **kwargs)
            self._workspace, self._next = buffers, 0
            try:
                return step(*args, **kwargs)
            finally:
                self._workspace = None

        return captured

    def _empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        workspace = self._workspace
        if workspace is None or shape[0] * shape[-1] < SMALL:  # small: np.empty is cheaper than a lookup
            return np.empty(shape, dtype)
        i = self._next
        self._next = i + 1
        if i < len(workspace):
            buffer = workspace[i]
            if buffer.shape == shape and buffer.dtype == dtype:
                return buffer
            workspace[i] = buffer = np.empty(shape, dtype)
            return buffer
        buffer = np.empty(shape, dtype)
        workspace.append(buffer)
        return buffer

    # -- layers -------------------------------------------------------------------------------------
    def layer_forward(self, W: Array, A_prev: Array, b: Array, g: Any) -> tuple[Array, Array]:
        dtype = A_prev.dtype if W.dtype == A_prev.dtype else np.result_type(W, A_prev)
        shape = (W.shape[0], A_prev.shape[1])
        Z = np.matmul(W, A_prev, out=self._empty(shape, dtype))
        Z += b
        if g.name == "tanh":
            return Z, np.tanh(Z, out=self._empty(shape, dtype))
        if g.name == "relu":
            return Z, np.maximum(Z, 0.0, out=self._empty(shape, dtype))
        if g.name == "sigmoid":  # activations.sigmoid: where(Z >= 0, 1, E) / (1 + E), E = exp(-|Z|)
            E = np.abs(Z, out=self._empty(shape, dtype))
            np.negative(E, out=E)
            np.exp(E, out=E)
            A = np.greater_equal(Z, 0.0, out=self._empty(shape, dtype))
            np.maximum(A, E, out=A)  # 1 where Z >= 0 (E <= 1 there), else E (> 0): the where, mask-free
            E += 1.0
            A /= E
            return Z, A
        return Z, g.forward(Z)

    def activation_backward(self, g: Any, dA: Array, Z: Array, A: Array) -> Array:
        if g.name == "tanh":  # g' = 1 - A^2
            d = np.multiply(A, A, out=self._empty(A.shape, A.dtype))
            np.subtract(1.0, d, out=d)
        elif g.name == "relu":  # g' = (Z > 0), as a float mask
            d = np.greater(Z, 0.0, out=self._empty(Z.shape, Z.dtype))
        else:
            d = g.derivative(Z, A)
        dA *= d
        return dA

    def bias_gradient(self, dZ: Array) -> Array:
        """db = sum(dZ, axis=1) by the ufunc itself: np.sum's Python wrappers cost ~1 us a call."""
        return np.add.reduce(dZ, axis=1, keepdims=True, out=self._empty((dZ.shape[0], 1), dZ.dtype))

    def linear_backward(self, dZ: Array, A_prev: Array, W: Array, need_dA_prev: bool):
        dW = np.matmul(dZ, A_prev.T, out=self._empty(W.shape, dZ.dtype))
        db = self.bias_gradient(dZ)
        if not need_dA_prev:
            return None, dW, db
        dA = self._empty(A_prev.shape, dZ.dtype)
        if W.shape[0] == 1:  # the outer product as a broadcast multiply
            return np.multiply(W.T, dZ, out=dA), dW, db
        return np.matmul(W.T, dZ, out=dA), dW, db

    # -- the output layer ---------------------------------------------------------------------------
    def output_gradient(self, head: Any, Z: Array, A: Array, Y: Array, scale: float) -> Array:
        if not head.residual_gradient:
            return super().output_gradient(head, Z, A, Y, scale)
        dZ = np.subtract(A, Y, out=self._empty(A.shape, A.dtype))  # (A - Y) scale / m
        dZ *= scale / A.shape[1]
        return dZ

    def cost(self, head: Any, Z: Array, A: Array, Y: Array) -> Array:
        """Binary cross-entropy from the logits in workspace buffers: max(Z, 0) - Y Z + log1p(e^-|Z|), the
        default's value (the same bits for 0/1 labels). Infinite logits make 0 * inf here: a cost that is
        not finite is computed again by the default, which gives the limits."""
        if head.name != "binary":
            return super().cost(head, Z, A, Y)
        loss = np.maximum(Z, 0.0, out=self._empty(Z.shape, Z.dtype))
        t = np.multiply(Y, Z, out=self._empty(Z.shape, Z.dtype))
        loss -= t
        np.abs(Z, out=t)
        np.negative(t, out=t)
        np.exp(t, out=t)
        np.log1p(t, out=t)
        loss += t
        J = np.add.reduce(loss, axis=None) / Z.shape[1]
        return J if math.isfinite(J) else super().cost(head, Z, A, Y)

    def adam_update(self, W, dW, v, s, learning_rate, beta1, beta2, epsilon, t) -> None:
        """The default's arithmetic in the same order (the same bits), two temporaries instead of six."""
        v *= beta1
        v += (1.0 - beta1) * dW
        tmp = np.multiply(dW, dW)
        tmp *= 1.0 - beta2
        s *= beta2
        s += tmp
        np.multiply(s, 1.0 / (1.0 - beta2**t), out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += epsilon
        step = (learning_rate * (1.0 / (1.0 - beta1**t))) * v
        step /= tmp
        W -= step


class NumpyBackend(Backend):
    """``numpy`` through ``array_api_compat.numpy``, on the CPU."""

    name = "numpy"
    low_precision = ("float16",)  # mixed precision's compute dtypes (NumPy has no bfloat16)

    @classmethod
    def create(cls, device: str | None) -> NumpyBackend:
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on the CPU only; got device {device!r}")
        keep_freed_host_memory()  # the CPU's memory pool (host_memory.py)
        return cls(xp, "cpu", OPS)

    def owns(self, x: Any) -> bool:
        return type(x) is np.ndarray

    def from_host(self, host: np.ndarray) -> Any:
        return np.asarray(host)

    def quiet_floating_point(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")


OPS = NumpyOps(xp)
register_ops(np.ndarray, OPS)  # the functional API on plain NumPy arrays uses these ops too
