"""Array operations per training step, counted on the CPU: a proxy for GPU kernel launches.

Usage::

    python benchmarks/launches.py            # the table (also: python -m dlcore.benchmarks.launches)
    python benchmarks/launches.py --json     # the counts as JSON

Every operation the core dispatches on array_api_strict arrays is counted by wrapping the namespace's
functions and the ``Array`` operators (a counter that ignores nested calls). Each counted operation is
what CuPy would launch as one kernel (an elementwise op, a reduction, a ``where``, a cast, a fill), except
``matmul`` (one cuBLAS GEMM, counted apart), allocations (``empty``/``empty_like``: a memory-pool lookup,
no launch) and slicing views. "fused" runs :class:`~dlcore.backends.cupy_kernels.CupyOps` itself with
``fused=True`` over a fake CuPy whose ``ElementwiseKernel`` counts one launch and computes its formula in
NumPy, so the dispatch (which primitive is fused when) is CupyOps' own; the fused step is checked to
compute the unfused step's numbers.

One step = what :func:`dlcore.training.train` does per update with a full batch: forward, backward and
the optimizer's update; a recorded step adds the cost (``+cost``), and each cost check copies the
parameters for a rollback (``+check``: 2L copies). These are counts, not times: the GPU's step times
and host/device time per step are in BENCHMARKS.md, "On a GPU" (benchmarks/cupy_step.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import array_api_strict as xs
import numpy as np
from dlcore.backends import get_backend
from dlcore.backends.cupy_kernels import NUMPY_FORMULAS, CupyOps
from dlcore.benchmarks import description
from dlcore.benchmarks.workloads import _network

from dlcore import propagation as prop
from dlcore.heads import head_for
from dlcore.ops import Ops
from dlcore.optimizers import Adam, GradientDescent, Optimizer
from dlcore.precision import MixedPrecision

#: the issue's launch-bound nets (names in workloads.NETWORKS)
NETS = ("planar", "deep")
ARRAY = type(xs.asarray([0.0]))
#: Array operators that run a kernel
OPERATORS = [
    f"__{op}__"
    for base in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor")
    for op in (base, f"r{base}", f"i{base}")
] + [f"__{op}__" for op in ("neg", "pos", "abs", "invert", "lt", "le", "gt", "ge", "eq", "ne", "setitem")]
#: no kernel: views and host-side questions (an ``asarray`` of a device array with ``copy=True`` is
#: counted as ``asarray(copy)``, one device-to-device copy)
NO_LAUNCH = {
    "asarray",
    "reshape",
    "permute_dims",
    "matrix_transpose",
    "expand_dims",
    "isdtype",
    "result_type",
}
NO_LAUNCH |= {"can_cast", "finfo", "iinfo", "get_array_api_strict_flags", "__array_namespace_info__"}


def _kind(name: str) -> str:
    if name in ("matmul", "__matmul__", "__rmatmul__", "__imatmul__", "tensordot", "vecdot"):
        return "gemm"
    if name in ("empty", "empty_like"):
        return "alloc"
    if name == "fused":
        return "fused"
    if name in NO_LAUNCH:
        return "view"
    return "kernel"


@dataclass
class Counts:
    """Operations by name, and a switch that stops counting (inside a fused kernel's NumPy formula)."""

    ops: Counter = field(default_factory=Counter)
    depth: int = 0
    paused: bool = False

    def add(self, name: str) -> None:
        if not self.paused:
            self.ops[name] += 1

    def by_kind(self) -> Counter:
        kinds: Counter = Counter()
        for name, n in self.ops.items():
            kinds[_kind(name)] += n
        return kinds

    def launches(self) -> int:
        kinds = self.by_kind()
        return kinds["kernel"] + kinds["gemm"] + kinds["fused"]


@contextlib.contextmanager
def counting(counts: Counts) -> Iterator[Counts]:
    """Count every array_api_strict function and ``Array`` operator called from outside the library."""
    saved: list[tuple[Any, str, Any]] = []

    def wrap(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if counts.depth == 0:
                counts.add("asarray(copy)" if name == "asarray" and kwargs.get("copy") else name)
            counts.depth += 1
            try:
                return f(*args, **kwargs)
            finally:
                counts.depth -= 1

        return counted

    for name in xs.__all__:
        f = getattr(xs, name)
        if callable(f) and not isinstance(f, type) and type(f).__name__ == "function":
            saved.append((xs, name, f))
            setattr(xs, name, wrap(name, f))
    for name in OPERATORS:
        if name in vars(ARRAY):
            f = vars(ARRAY)[name]
            saved.append((ARRAY, name, f))
            setattr(ARRAY, name, wrap(name, f))
    try:
        yield counts
    finally:
        for owner, name, f in reversed(saved):
            setattr(owner, name, f)


# -- CupyOps on the CPU: a fake CuPy whose kernels count one launch and compute in NumPy --------------


class _FakeCupy:
    """What CupyOps needs of ``cupy``: ``ElementwiseKernel``, here counting one ``fused`` launch each."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

        class ElementwiseKernel:
            def __init__(
                self, in_params: str, out_params: str, operation: str, name: str, options: tuple = ()
            ) -> None:  # options: NVRTC's flags, nothing to a NumPy stand-in
                self.key = name.removeprefix("dlcore_")

            def __call__(self, *args: Any) -> None:
                counts.ops["fused"] += 1
                counts.paused = True
                try:
                    NUMPY_FORMULAS[self.key](*(a._array if isinstance(a, ARRAY) else a for a in args))
                finally:
                    counts.paused = False

        self.ElementwiseKernel = ElementwiseKernel


@contextlib.contextmanager
def _stand_in() -> Iterator[None]:
    """What CupyOps over :class:`_FakeCupy` needs: array_api_strict's dtypes given the ``.type`` CupyOps
    passes scalars through (``A.dtype.type(x)``, as NumPy's and CuPy's have), and a kernel that fails
    raising its error: CupyOps would fall back to the default ops with a warning, and the "fused" counts
    and comparisons would silently be the default's (a stand-in that refused a new argument did so)."""
    DType = type(xs.float32)
    DType.type = property(lambda self: self._np_dtype.type)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="dlcore: the fused CuPy kernel", category=RuntimeWarning)
            yield
    finally:
        del DType.type


class _LowPrecisionStandIn:
    """array_api_strict as a backend that computes in a low dtype: float64 masters and float32 playing
    float16, so that every cast and the dynamic loss scale's device logic run (and are counted) as they
    would on a GPU; the counts do not depend on which two dtypes they are."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def low_precision_dtypes(self) -> tuple[str, ...]:
        return ("float16",)

    def low_precision_dtype(self, name: str) -> Any:
        return xs.float32


# -- one step -----------------------------------------------------------------------------------------
def _problem(name: str, backend: Any, dtype: str = "float32") -> tuple[Any, Any, dict, list]:
    """X, Y, parameters and activations of the suite's network ``name`` (launch counts do not depend on
    the values)."""
    return _network(backend, dtype, name)[1:]


def _step(X, Y, params, acts, ops: Ops, optimizer: Optimizer, record: bool) -> None:
    """The loop's update (dlcore.training.train, full batch): forward (+ cost), backward, update."""
    head = head_for(acts[-1])
    scale = optimizer.gradient_scale
    AL, caches = prop._forward(X, params, acts, ops=ops)
    if record:
        prop._cost(caches, Y, acts, head, ops)
    grads = prop._backward(AL, Y, caches, acts, None, scale, ops, head)
    optimizer.step(params, grads, ops, scale)


def count_step(net: str, optimizer: str = "gd", fused: bool = False, mixed: bool = False) -> dict[str, Any]:
    """Operations of one step of ``net`` (``"planar"``, ``"deep"``), after one warm-up step; ``mixed``:
    in mixed precision with a dynamic loss scale (:class:`dlcore.precision.MixedPrecision`)."""
    backend = get_backend("array_api_strict")
    X, Y, params, acts = _problem(net, backend, "float64" if mixed else "float32")
    opt: Optimizer = GradientDescent(0.01) if optimizer == "gd" else Adam(0.001)
    with _stand_in():
        ops: Any = CupyOps(xs, _FakeCupy(Counts()), fused=True) if fused else Ops(xs)
        counts = ops.lib.counts if fused else Counts()
        if mixed:
            opt = MixedPrecision(opt, "float16", "dynamic")
            params = opt.prepare(params, _LowPrecisionStandIn(backend))
            X, ops = opt.cast(X), opt.wrap_ops(ops)
        _step(X, Y, params, acts, ops, opt, record=True)  # warm-up: Adam's state is made here
        counts.ops.clear()
        with counting(counts):
            _step(X, Y, params, acts, ops, opt, record=False)
        step = Counts(Counter(counts.ops))
        counts.ops.clear()
        with counting(counts):
            head = head_for(acts[-1])
            _, caches = prop._forward(X, params, acts, ops=ops)
            before = counts.launches()
            prop._cost(caches, Y, acts, head, ops)
            cost = counts.launches() - before
            before = counts.launches()
            prop.copy_params(params)
            check = counts.launches() - before
    kinds = step.by_kind()
    return {
        "net": net,
        "optimizer": optimizer,
        "fused": fused,
        "mixed": mixed,
        "launches": step.launches(),
        "gemm": kinds["gemm"],
        "elementwise": kinds["kernel"],
        "fused_kernels": kinds["fused"],
        "allocations": kinds["alloc"],
        "cost": cost,
        "check": check,
        "ops": dict(sorted(step.ops.items())),
    }


def check_fused_matches_unfused(net: str, optimizer: str = "gd") -> float:
    """The largest relative difference between the parameters after 3 fused and 3 unfused steps."""
    backend = get_backend("array_api_strict")
    results = []
    for fused in (False, True):
        X, Y, params, acts = _problem(net, backend)
        opt = GradientDescent(0.01) if optimizer == "gd" else Adam(0.001)
        with _stand_in():
            ops = CupyOps(xs, _FakeCupy(Counts()), fused=True) if fused else Ops(xs)
            for _ in range(3):
                _step(X, Y, params, acts, ops, opt, record=False)
        results.append({k: backend.to_numpy(v) for k, v in params.items()})
    return max(
        float(np.max(np.abs(results[0][k] - results[1][k])) / (np.max(np.abs(results[0][k])) + 1e-30))
        for k in results[0]
    )


def table() -> list[dict[str, Any]]:
    return [
        count_step(net, opt, fused, mixed)
        for net in NETS
        for opt in ("gd", "adam")
        for mixed in (False, True)
        for fused in (False, True)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    rows = table()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(
        "| net | optimizer | ops | launches/step | GEMM | elementwise+reductions | fused | +cost | +check |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['net']} | {r['optimizer']} | {'fused' if r['fused'] else 'default'}"
            f"{' + mixed fp16' if r['mixed'] else ''} | {r['launches']} | "
            f"{r['gemm']} | {r['elementwise']} | {r['fused_kernels']} | {r['cost']} | {r['check']} |"
        )
    for net in NETS:
        for opt in ("gd", "adam"):
            diff = check_fused_matches_unfused(net, opt)
            print(f"fused == default on {net}/{opt}: max relative difference {diff:.1e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
