"""CupyOps' fused kernels, checked on the CPU where no GPU is: off unless DLCORE_CUPY_FUSED=1; each fused
method hands its kernel the right arrays and scalars (a fake ElementwiseKernel runs a NumPy version of
each kernel's formula, so a wrong argument order or scalar shows); a kernel that cannot compile turns
the fused path off with one warning and the default ops give the same numbers. The kernels' CUDA source
itself runs only on a GPU (tests/test_ops.py compares every ops object with the default there)."""

from __future__ import annotations

import types
import warnings

import array_api_compat.numpy as xp
import numpy as np
import pytest
from dlcore.backends import cupy_kernels
from dlcore.backends.cupy_kernels import KERNELS, NUMPY_FORMULAS, CupyOps

from dlcore.activations import ACTIVATIONS
from dlcore.heads import HEADS
from dlcore.ops import Ops

NUMPY_KERNELS = NUMPY_FORMULAS  # what each kernel computes, in NumPy


def fake_cupy(fail: bool = False):
    made = []

    class ElementwiseKernel:
        def __init__(self, in_params, out_params, operation, name):
            made.append(name)
            self.key = name.removeprefix("dlcore_")
            assert (in_params, out_params, operation) == KERNELS[self.key]

        def __call__(self, *args):
            if fail:
                raise RuntimeError("nvrtc: error: identifier 'fabs' is undefined")
            NUMPY_KERNELS[self.key](*args)

    return types.SimpleNamespace(ElementwiseKernel=ElementwiseKernel), made


def _arrays(rng, shape=(5, 7)):
    return [rng.standard_normal(shape) for _ in range(4)]


def test_fused_kernels_are_off_by_default(monkeypatch):
    monkeypatch.delenv(cupy_kernels.ENV_VAR, raising=False)
    lib, made = fake_cupy()
    ops = CupyOps(xp, lib)
    W, dW, *_ = _arrays(np.random.default_rng(0))
    ops.gd_update(W, dW, 0.5)
    assert not ops.fused and made == []
    monkeypatch.setenv(cupy_kernels.ENV_VAR, "1")
    assert CupyOps(xp, lib).fused


@pytest.mark.parametrize("fail", [False, True], ids=["kernels", "compile-failure-fallback"])
def test_every_fused_method_computes_what_the_default_ops_compute(fail, host_rng):
    lib, made = fake_cupy(fail)
    fused, ref = CupyOps(xp, lib, fused=True), Ops(xp)
    W, A_prev, dA0, _ = _arrays(host_rng)
    b = host_rng.standard_normal((5, 1))
    W = host_rng.standard_normal((5, 4))
    A_prev = host_rng.standard_normal((4, 7))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("tanh", "relu", "sigmoid"):
            g = ACTIVATIONS[name]
            for mine, theirs in zip(fused.layer_forward(W, A_prev, b, g), ref.layer_forward(W, A_prev, b, g),
                                    strict=True):  # fmt: skip
                np.testing.assert_allclose(mine, theirs, rtol=1e-12)
            Z, A = ref.layer_forward(W, A_prev, b, g)
            mine, theirs = dA0.copy(), dA0.copy()
            np.testing.assert_allclose(fused.activation_backward(g, mine, Z, A),
                                       ref.activation_backward(g, theirs, Z, A), rtol=1e-12)  # fmt: skip
        A, Y = host_rng.random((1, 7)), (host_rng.random((1, 7)) > 0.5) * 1.0
        for head in HEADS.values():
            np.testing.assert_allclose(fused.output_gradient(head, A, A, Y, 0.3),
                                       ref.output_gradient(head, A, A, Y, 0.3), rtol=1e-12)  # fmt: skip
        shape = (6, 3)
        W0, dW = host_rng.standard_normal(shape), host_rng.standard_normal(shape)
        v0, s0 = host_rng.standard_normal(shape), host_rng.random(shape)
        a, b_ = W0.copy(), W0.copy()
        fused.gd_update(a, dW, 0.3)
        ref.gd_update(b_, dW, 0.3)
        np.testing.assert_allclose(a, b_, rtol=1e-12)
        states = [(W0.copy(), v0.copy(), s0.copy()) for _ in range(2)]
        fused.adam_update(states[0][0], dW, states[0][1], states[0][2], 0.01, 0.9, 0.999, 1e-8, 3)
        ref.adam_update(states[1][0], dW, states[1][1], states[1][2], 0.01, 0.9, 0.999, 1e-8, 3)
        for mine, theirs in zip(*states, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    failures = [w for w in caught if "fused CuPy kernel" in str(w.message)]
    if fail:  # one warning, then the default ops for the rest of the process
        assert len(failures) == 1 and not fused.fused
    else:
        assert failures == [] and fused.fused
        assert set(made) == {f"dlcore_{name}" for name in KERNELS}  # every kernel was used
