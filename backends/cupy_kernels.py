"""Fused CuPy kernels for the hot elementwise paths (``ElementwiseKernel``: one launch instead of two to
six), behind :class:`CupyOps`. On by default since their first GPU run (an H200, 2026-11-22: the suite
green with them, and the training step 0.63-0.65x of the default ops' time on the launch-bound planar and
deep nets, 0.62-0.83x on the wide one: benchmarks/cupy_step.py, BENCHMARKS.md "On a GPU");
``DLCORE_CUPY_FUSED=0`` turns them off.
tests/test_ops.py compares every ops object with the default. A kernel that fails to compile or launch
turns the fused path off for the process, with one warning, and the default Array API code serves.

Each kernel keeps the default's arithmetic (the same operations in the same order, compiled without
fused multiply-adds: NVRTC_OPTIONS), so results agree with the default's to the last bits.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from dlcore.backends.base import switched_on

from dlcore.activations import sigmoid
from dlcore.ops import Ops, adam_scales

ENV_VAR = "DLCORE_CUPY_FUSED"
#: no contraction of a * b + c into a fused multiply-add: each kernel rounds where the default's separate
#: operations do, so its results are the default's bits (with it, float32 Adam drifted 2e-5 from them in
#: 30 steps on an H200); a few flops per element loaded: the kernels are memory-bound (not timed apart)
NVRTC_OPTIONS = ("--fmad=false",)

#: name -> (in_params, out_params, operation)
KERNELS: dict[str, tuple[str, str, str]] = {
    # layer forward after Z = W A_prev (cuBLAS): the bias and the activation in one pass
    "bias_tanh": ("T b", "T Z, T A", "Z = Z + b; A = tanh(Z)"),
    # ReLU keeps a NaN as the default's maximum(Z, 0) does (the cost sees it; "Z > 0 ? Z : 0" made it 0)
    "bias_relu": ("T b", "T Z, T A", "Z = Z + b; A = Z <= (T)0 ? (T)0 : Z"),
    "bias_sigmoid": (
        "T b",
        "T Z, T A",
        "Z = Z + b; T E = exp(-fabs(Z)); A = (Z >= (T)0 ? (T)1 : E) / ((T)1 + E)",
    ),
    # activation backward, in place in dA
    "tanh_backward": ("T A", "T dA", "dA = dA * ((T)1 - A * A)"),
    "relu_backward": ("T Z", "T dA", "dA = dA * (T)(Z > (T)0)"),
    # dZ[L] = (A[L] - Y) scale / m, for the three matched heads
    "output_gradient": ("T A, T Y, T s", "T dZ", "dZ = (A - Y) * s"),
    # optimizer updates, in place in W and the state
    "gd_update": ("T dW, T lr", "T W", "W = W - lr * dW"),
    # a1 = 1 - b1 and a2 = 1 - b2 rounded once from float64, as the default's Python scalars are: in float32
    # (T)1 - b2 is 0.0009999871, not 0.001 (s 1.3e-5 off the default's after one step on an H200)
    "adam_update": (
        "T g, T b1, T a1, T b2, T a2, T lr_t, T c2, T eps",
        "T W, T v, T s",
        "v = v * b1; v = v + a1 * g; s = s * b2; s = s + a2 * (g * g); "
        "W = W - lr_t * v / (sqrt(s * c2) + eps)",
    ),
}


#: what each kernel computes, in NumPy, with its in_params then out_params as positional arguments: the
#: CPU stand-in for a kernel (the fakes of tests/test_cupy_kernels.py, benchmarks/launches.py)
NUMPY_FORMULAS: dict[str, Any] = {
    "bias_tanh": lambda b, Z, A: (np.add(Z, b, out=Z), np.tanh(Z, out=A)),
    "bias_relu": lambda b, Z, A: (np.add(Z, b, out=Z), np.maximum(Z, 0, out=A)),
    "bias_sigmoid": lambda b, Z, A: (np.add(Z, b, out=Z), np.copyto(A, sigmoid(Z))),
    "tanh_backward": lambda A, dA: np.multiply(dA, 1 - A * A, out=dA),
    "relu_backward": lambda Z, dA: np.multiply(dA, (Z > 0).astype(dA.dtype), out=dA),
    "output_gradient": lambda A, Y, s, dZ: np.multiply(A - Y, s, out=dZ),
    "gd_update": lambda dW, lr, W: np.subtract(W, lr * dW, out=W),
    "adam_update": lambda g, b1, a1, b2, a2, lr_t, c2, eps, W, v, s: (
        np.copyto(v, v * b1 + a1 * g),
        np.copyto(s, s * b2 + a2 * (g * g)),
        np.subtract(W, lr_t * v / (np.sqrt(s * c2) + eps), out=W),
    ),
}
assert set(NUMPY_FORMULAS) == set(KERNELS), "a kernel of KERNELS has no NumPy formula"


class CupyOps(Ops):
    """The GPU's primitives: the default Array API code, and with ``fused`` (the default; off with
    ``DLCORE_CUPY_FUSED=0``) fused ``ElementwiseKernel``s for layer forward, activation backward, the
    output gradient and the gradient-descent and Adam updates."""

    name = "cupy"

    def __init__(self, xp: Any, lib: Any = None, fused: bool | None = None) -> None:
        super().__init__(xp)
        self.lib = lib
        self.fused = switched_on(ENV_VAR) if fused is None else fused
        self._kernels: dict[str, Any] = {}

    def _run(self, name: str, *args: Any) -> bool:
        """Launch kernel ``name``; False (and the fused path off, one warning) if it cannot run."""
        if not self.fused or self.lib is None:
            return False
        try:
            kernel = self._kernels.get(name)
            if kernel is None:
                kernel = self._kernels[name] = self.lib.ElementwiseKernel(
                    *KERNELS[name], f"dlcore_{name}", options=NVRTC_OPTIONS
                )
            kernel(*args)
        except Exception as exc:  # CompileException, a driver error: the default ops serve from now on
            self.fused = False
            warnings.warn(
                f"dlcore: the fused CuPy kernel {name} failed ({type(exc).__name__}: {exc}); "
                "using the default ops",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        return True

    def layer_forward(self, W: Any, A_prev: Any, b: Any, g: Any) -> tuple[Any, Any]:
        if self.fused and g.name in ("tanh", "relu", "sigmoid"):
            Z = W @ A_prev
            A = self.xp.empty_like(Z)
            if self._run(f"bias_{g.name}", b, Z, A):
                return Z, A
            Z += b  # the kernel failed before writing (it is all or nothing per launch)
            return Z, g.forward(Z)
        return super().layer_forward(W, A_prev, b, g)

    def activation_backward(self, g: Any, dA: Any, Z: Any, A: Any) -> Any:
        if g.name == "tanh" and self._run("tanh_backward", A, dA):
            return dA
        if g.name == "relu" and self._run("relu_backward", Z, dA):
            return dA
        return super().activation_backward(g, dA, Z, A)

    def output_gradient(self, head: Any, Z: Any, A: Any, Y: Any, scale: float) -> Any:
        if self.fused and head.residual_gradient:
            dZ = self.xp.empty_like(A)
            if self._run("output_gradient", A, Y, A.dtype.type(scale / A.shape[1]), dZ):
                return dZ
        return super().output_gradient(head, Z, A, Y, scale)

    def gd_update(self, W: Any, dW: Any, learning_rate: float) -> None:
        if not self._run("gd_update", dW, W.dtype.type(learning_rate), W):
            super().gd_update(W, dW, learning_rate)

    def adam_update(self, W, dW, v, s, learning_rate, beta1, beta2, epsilon, t) -> None:
        T = W.dtype.type
        lr_t, c2 = adam_scales(learning_rate, beta1, beta2, t, W)
        # a host count gives host floats; a count on the device (mixed precision's) 0-D arrays in W's dtype,
        # which the kernel broadcasts: the same kernel either way, and no host sync
        if isinstance(t, numbers.Integral):
            lr_t, c2 = T(lr_t), T(c2)
        a1, a2 = T(1.0 - beta1), T(1.0 - beta2)
        if not self._run("adam_update", dW, T(beta1), a1, T(beta2), a2, lr_t, c2, T(epsilon), W, v, s):
            super().adam_update(W, dW, v, s, learning_rate, beta1, beta2, epsilon, t)
