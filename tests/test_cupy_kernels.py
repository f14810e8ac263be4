"""CupyOps' fused kernels, checked on the CPU where no GPU is: on unless DLCORE_CUPY_FUSED=0; each fused
method hands its kernel the right arrays and scalars, and each kernel computes what the default ops
compute, NaN included (a fake ElementwiseKernel interprets the kernel's own operation text element by
element, as CUDA C on scalars of the type T, so a wrong formula, argument order or scalar shows); a kernel
that cannot compile turns the fused path off with one warning and the default ops give the same numbers.
Compiled by NVRTC, the kernels run only on a GPU (tests/test_ops.py compares every ops object with the
default there)."""

from __future__ import annotations

import re
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

#: the CUDA functions the kernels call, on NumPy scalars
C_FUNCTIONS = {"tanh": np.tanh, "exp": np.exp, "fabs": np.fabs, "sqrt": np.sqrt}


def _ternaries(expr: str) -> str:
    """C's ``c ? a : b`` (anywhere, nested in parentheses) as Python's ``(a if c else b)``."""
    depth, question = 0, -1
    for i, ch in enumerate(expr):
        depth += (ch == "(") - (ch == ")")
        if ch == "?" and depth == 0:
            question = i
            break
    if question >= 0:
        depth, pending = 0, 0
        for j in range(question + 1, len(expr)):
            ch = expr[j]
            depth += (ch == "(") - (ch == ")")
            if depth == 0 and ch == "?":
                pending += 1
            elif depth == 0 and ch == ":":
                if not pending:
                    cond, a, b = (p.strip() for p in (expr[:question], expr[question + 1 : j], expr[j + 1 :]))
                    return f"({_ternaries(a)} if {_ternaries(cond)} else {_ternaries(b)})"
                pending -= 1
        raise ValueError(f"no ':' for the '?' in {expr!r}")
    out, depth, start = [], 0, 0
    for i, ch in enumerate(expr):  # no top-level '?': convert each parenthesized group
        if ch == "(":
            if depth == 0:
                out.append(expr[start : i + 1])
                start = i + 1
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                out.append(_ternaries(expr[start:i]))
                start = i
    return "".join(out) + expr[start:]


def python_statements(operation: str) -> str:
    """A kernel's operation (CUDA C statements on scalars: ``T E = ...``, ``(T)`` casts, ``?:``) as Python."""
    lines = []
    for statement in filter(None, (part.strip() for part in operation.split(";"))):
        statement = re.sub(r"^T\s+(?=\w+\s*=)", "", statement)  # a declaration: T E = ...
        statement = re.sub(r"\(T\)(?=\()", "T", statement)  # (T)(x > y) -> T(x > y)
        statement = re.sub(r"\(T\)([\w.]+)", r"T(\1)", statement)  # (T)0 -> T(0)
        target, expr = re.fullmatch(r"(\w+)\s*=(?!=)\s*(.*)", statement).groups()
        lines.append(f"{target} = {_ternaries(expr)}")
    return "\n".join(lines)


def run_source(key: str, *args) -> None:
    """What ElementwiseKernel(*KERNELS[key]) does with ``args`` (in_params, then out_params), element by
    element on scalars of T (the outputs' dtype; CuPy's TypeError when an array's dtype is another)."""
    in_params, out_params, operation = KERNELS[key]
    names = [p.split()[-1] for p in f"{in_params}, {out_params}".split(",")]
    outputs = [p.split()[-1] for p in out_params.split(",")]
    T = args[-1].dtype.type
    for name, a in zip(names, args, strict=True):
        if isinstance(a, np.ndarray) and a.dtype != args[-1].dtype:
            raise TypeError(f"Type is mismatched. {name} {a.dtype} {args[-1].dtype} T")
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    code = compile(python_statements(operation), f"<kernel {key}>", "exec")
    with np.errstate(all="ignore"):
        for index in np.ndindex(shape):
            scope = {"T": T, **C_FUNCTIONS}
            scope.update({n: T(np.broadcast_to(a, shape)[index]) for n, a in zip(names, args, strict=True)})
            exec(code, scope)
            for name, a in zip(names, args, strict=True):
                if name in outputs:
                    a[index] = scope[name]


def fake_cupy(fail: bool = False):
    made = []

    class ElementwiseKernel:
        def __init__(self, in_params, out_params, operation, name, options=()):
            made.append(name)
            self.key = name.removeprefix("dlcore_")
            assert (in_params, out_params, operation) == KERNELS[self.key]
            assert options == ("--fmad=false",)  # the default's roundings: no fused multiply-adds

        def __call__(self, *args):
            if fail:
                raise RuntimeError("nvrtc: error: identifier 'fabs' is undefined")
            run_source(self.key, *args)

    return types.SimpleNamespace(ElementwiseKernel=ElementwiseKernel), made


def _arrays(rng, shape=(5, 7)):
    return [rng.standard_normal(shape) for _ in range(4)]


@pytest.mark.parametrize("value", ["0", "off", "False", " no "])
def test_fused_kernels_are_on_by_default_and_the_switch_turns_them_off(monkeypatch, value):
    monkeypatch.delenv(cupy_kernels.ENV_VAR, raising=False)
    assert CupyOps(xp, fake_cupy()[0]).fused
    monkeypatch.setenv(cupy_kernels.ENV_VAR, value)
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
    dA0 = host_rng.standard_normal((5, 7))
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
        # a step count on the device (mixed precision's): the same kernel, its scales 0-D arrays
        counted, run, launched = (W0.copy(), v0.copy(), s0.copy()), fused._run, []
        fused._run = lambda name, *args: launched.append(name) or run(name, *args)
        fused.adam_update(counted[0], dW, counted[1], counted[2], 0.01, 0.9, 0.999, 1e-8, np.asarray(3))
        del fused._run
        assert launched == ["adam_update"]
        for mine, theirs in zip(counted, states[1], strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    failures = [w for w in caught if "fused CuPy kernel" in str(w.message)]
    if fail:  # one warning, then the default ops for the rest of the process
        assert len(failures) == 1 and not fused.fused
    else:
        assert failures == [] and fused.fused
        assert set(made) == {f"dlcore_{name}" for name in KERNELS}  # every kernel was used


def test_the_fused_adam_rounds_its_constants_as_the_default_does(host_rng):
    """The kernel computed 1 - beta in the array's dtype, where the default multiplies by the Python float
    1 - beta (rounded once): in float32, (T)1 - 0.999 is 0.0009999871, not 0.001, and s came out 1.3e-5
    off the default's after one step on an H200. Now the same bits, step after step."""
    lib, _ = fake_cupy()
    fused, ref = CupyOps(xp, lib, fused=True), Ops(xp)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    W0, v0, s0 = (
        f32(host_rng.standard_normal((6, 3))),
        np.zeros((6, 3), np.float32),
        np.zeros((6, 3), np.float32),
    )
    states = [(W0.copy(), v0.copy(), s0.copy()) for _ in range(2)]
    for t in (1, 2, 3):
        dW = f32(host_rng.standard_normal((6, 3)))
        for ops, (W, v, s) in zip((fused, ref), states, strict=True):
            ops.adam_update(W, dW, v, s, 0.01, 0.9, 0.999, 1e-8, t)
        for mine, theirs in zip(*states, strict=True):
            assert mine.dtype == np.float32
            np.testing.assert_array_equal(mine, theirs)


def test_the_interpreter_reads_c_as_c():
    """The fake's reading of the kernels' C: casts, declarations, nested and parenthesized ternaries."""
    read = python_statements
    assert read("Z = Z + b; A = Z > (T)0 ? Z : (T)0") == "Z = Z + b\nA = (Z if Z > T(0) else T(0))"
    assert read("T E = exp(-fabs(Z)); A = (Z >= (T)0 ? (T)1 : E) / ((T)1 + E)") == (
        "E = exp(-fabs(Z))\nA = ((T(1) if Z >= T(0) else E)) / (T(1) + E)"
    )
    assert read("dA = dA * (T)(Z > (T)0)") == "dA = dA * T(Z > T(0))"
    assert _ternaries("a ? b ? c : d : e ? f : g") == "((c if b else d) if a else (f if e else g))"


@pytest.mark.parametrize("name", ["tanh", "relu", "sigmoid"])
def test_the_fused_layer_forward_keeps_nan_as_the_default_does(name, host_rng):
    """A NaN in W[l] reaches A[l] and so the cost, where the divergence check stops training: a kernel that
    mapped it to 0 (ReLU written as ``Z > 0 ? Z : 0``) would hide it and train on with NaN weights."""
    W, A_prev, b = host_rng.standard_normal((3, 4)), host_rng.standard_normal((4, 5)), np.zeros((3, 1))
    W[1, 2] = np.nan
    lib, _ = fake_cupy()
    g = ACTIVATIONS[name]
    fused, default = CupyOps(xp, lib, fused=True), Ops(xp)
    mine, theirs = fused.layer_forward(W, A_prev, b, g), default.layer_forward(W, A_prev, b, g)
    for a, want in zip(mine, theirs, strict=True):  # Z, A
        np.testing.assert_array_equal(np.isnan(a), np.isnan(want))
        assert np.isnan(a[1]).all()


def test_the_numpy_formulas_compute_what_the_kernel_source_computes(host_rng):
    """NUMPY_FORMULAS (the kernels' CPU stand-in for benchmarks/launches.py) against the source, NaN too."""
    scalars = {"s": 0.3, "lr": 0.1, "b1": 0.9, "a1": 0.1, "b2": 0.999, "a2": 0.001, "lr_t": 0.05, "c2": 1.5,
               "eps": 1e-8}  # fmt: skip
    for key, (in_params, out_params, _) in KERNELS.items():
        names = [p.split()[-1] for p in f"{in_params}, {out_params}".split(",")]
        args = [np.float64(scalars[n]) if n in scalars else host_rng.standard_normal((3, 4)) for n in names]
        if key == "adam_update":
            args[names.index("s")] = host_rng.random((3, 4))  # the second moment (an output here): >= 0
        next(a for a in args if isinstance(a, np.ndarray))[0, 0] = np.nan  # in the first array input
        theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        run_source(key, *args)
        NUMPY_FORMULAS[key](*theirs)
        for name, mine, want in zip(names, args, theirs, strict=True):
            np.testing.assert_allclose(mine, want, rtol=1e-12, equal_nan=True, err_msg=f"{key}: {name}")
