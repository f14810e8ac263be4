"""NumpyOps' fused ReLU kernels (the optional numba extra): the very source numba compiles, run as plain
Python, is NumPy's arithmetic bit for bit (NaN, inf, -0.0 included); compiled, the same where numba is
installed; the ops use them only for what they were compiled for, and train exactly as the default ops."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from dlcore.backends import get_backend
from dlcore.backends import numpy_backend as nb

import dlcore
from dlcore.activations import get_activation
from dlcore.ops import Ops

NP = get_backend("numpy")
PYTHON_KERNELS = types.SimpleNamespace(
    bias_relu=nb._bias_relu, relu_backward=nb._relu_backward, tanh_backward=nb._tanh_backward
)


def _awkward(shape, dtype, rng):
    """Random values with the edge cases sprinkled in: NaN, +-inf, +-0.0, tiny and huge numbers."""
    x = rng.standard_normal(shape).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-42, -1e-42, 3e38, -3e38], dtype)
    idx = rng.choice(x.size, size=min(x.size, 40), replace=False)
    x.flat[idx] = special[rng.integers(0, special.size, idx.size)]
    return x


def _check(kernels, dtype, shape=(7, 13)):
    rng = np.random.default_rng(11)
    with np.errstate(all="ignore"):
        Z0, dA0 = _awkward(shape, dtype, rng), _awkward(shape, dtype, rng)
        b = _awkward((shape[0], 1), dtype, rng)
        Z0[0], b[0] = -0.0, -0.0  # Z = -0.0 exactly: ReLU gives +0.0, as np.maximum
        Z, A = Z0.copy(), np.empty(shape, dtype)
        kernels.bias_relu(Z, b, A, np.dtype(dtype).type(0))
        Z_want = Z0 + b
        assert Z.tobytes() == Z_want.tobytes()
        assert A.tobytes() == np.maximum(Z_want, 0.0).tobytes()
        dA = dA0.copy()
        kernels.relu_backward(dA, Z0, np.dtype(dtype).type(0))
        assert dA.tobytes() == (dA0 * (Z0 > 0).astype(dtype)).tobytes()
        A = np.tanh(Z0)
        dA = dA0.copy()
        kernels.tanh_backward(dA, A, np.dtype(dtype).type(1))
        assert dA.tobytes() == (dA0 * (1.0 - A * A)).tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_kernel_source_is_numpys_arithmetic_bit_for_bit(dtype):
    _check(PYTHON_KERNELS, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_compiled_kernels_are_numpys_arithmetic_bit_for_bit(dtype, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(nb, "_KERNELS", [])
    monkeypatch.delenv("DLCORE_NUMBA", raising=False)
    kernels = nb.fused_kernels()
    assert kernels is not None
    _check(kernels, dtype, (64, 300))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_a_network_with_the_kernels_trains_exactly_as_the_default_ops(dtype, hidden, monkeypatch):
    """The wiring: NumpyOps with the kernels (here their Python source, so this runs without numba) on
    layers above the threshold, replayed and not, against the plain Array API ops."""
    monkeypatch.setattr(nb, "FUSED_MIN_ELEMENTS", 64)
    calls = []
    spy = types.SimpleNamespace(
        bias_relu=lambda *a: calls.append("f") or nb._bias_relu(*a),
        relu_backward=lambda *a: calls.append("b") or nb._relu_backward(*a),
        tanh_backward=lambda *a: calls.append("t") or nb._tanh_backward(*a),
    )
    monkeypatch.setattr(nb, "_KERNELS", [spy])
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, 40)).astype(dtype)
    Y = (rng.random((1, 40)) > 0.5).astype(dtype)
    acts = [get_activation(hidden)] * 2 + [get_activation("sigmoid")]
    params = dlcore.initialize_parameters([3, 5, 4, 1], "he", NP, 3, dtype)  # (5, 40), (4, 40): >= 64
    mine, oracle = ({k: v.copy() for k, v in params.items()} for _ in range(2))
    ops = nb.NumpyOps(NP.xp)
    for _ in range(5):  # calls 3-5 replay the recording, kernels included
        J = dlcore.train_step(X, Y, mine, acts, 0.1, ops=ops)
        J_want = dlcore.train_step(X, Y, oracle, acts, 0.1, ops=Ops(NP.xp))
        assert np.asarray(J).tobytes() == np.asarray(J_want).tobytes()
        for k in oracle:
            assert mine[k].tobytes() == oracle[k].tobytes(), k
    # 2 ReLU layers x 5 steps, forward (Z + b, max) and backward (dA[l] * g'(Z[l]))
    assert calls.count("f") == calls.count("b") == (10 if hidden == "relu" else 0)
    assert calls.count("t") == (10 if hidden == "tanh" else 0)  # tanh's forward stays NumPy's (its bits)


def test_small_or_odd_arrays_stay_with_numpy(monkeypatch):
    called = []
    spy = types.SimpleNamespace(
        bias_relu=lambda *a: called.append(a),
        relu_backward=lambda *a: called.append(a),
        tanh_backward=lambda *a: called.append(a),
    )
    monkeypatch.setattr(nb, "_KERNELS", [spy])
    ops = nb.NumpyOps(NP.xp)
    relu = get_activation("relu")
    W, A, b = np.ones((4, 3)), np.ones((3, 10)), np.ones((4, 1))
    ops.layer_forward(W, A, b, relu)  # 40 elements < FUSED_MIN_ELEMENTS
    monkeypatch.setattr(nb, "FUSED_MIN_ELEMENTS", 8)
    ops.layer_forward(W.astype(np.float16), A.astype(np.float16), b.astype(np.float16), relu)  # float16
    ops.layer_forward(W, A, b[:1], relu)  # a (1, 1) bias broadcasts: NumPy's path
    ops.activation_backward(relu, np.ones((10, 4)).T, np.ones((4, 10)), None)  # not C-contiguous
    assert called == []
    ops.layer_forward(W, A, b, relu)
    assert len(called) == 1


def test_numba_off_and_a_kernel_that_does_not_compile(monkeypatch):
    monkeypatch.setattr(nb, "_KERNELS", [])
    monkeypatch.setenv("DLCORE_NUMBA", "0")
    assert nb.fused_kernels() is None

    def njit(**options):
        def compile_(f):
            def broken(*args):
                raise RuntimeError("no LLVM today")

            return broken

        return compile_

    monkeypatch.setattr(nb, "_KERNELS", [])
    monkeypatch.delenv("DLCORE_NUMBA")
    monkeypatch.setitem(sys.modules, "numba", types.SimpleNamespace(njit=njit))
    with pytest.warns(UserWarning, match="no LLVM today"):
        assert nb.fused_kernels() is None
    assert nb.fused_kernels() is None  # asked once


def test_a_numba_that_fails_to_import_leaves_numpys_passes(monkeypatch, tmp_path):
    """numba installed but failing to import with an OSError (llvmlite without its library) ended every
    training of a wide enough ReLU layer with that error, while dlcore info said the kernels were off."""
    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "__init__.py").write_text(
        'raise OSError("libllvmlite.so: cannot open shared object")'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "numba", raising=False)
    monkeypatch.setattr(nb, "_KERNELS", [])
    monkeypatch.delenv("DLCORE_NUMBA", raising=False)
    assert nb.fused_kernels() is None
