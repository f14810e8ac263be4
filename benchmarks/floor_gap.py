"""How close to its matrix-product floor can a training step on this CPU get? The engine against the best
step one can write on NumPy + numba, with no constraint on the bits.

    python benchmarks/floor_gap.py [--points h=64,deep] [--dtype float32,float64] [--rounds 9] [--ablate]

Needs numba (``pip install numba``). Contestants, timed by the suite's ``time_case``
(interleaved round by round on the same inputs), each reported as step / floor (the paired median, then
its 95% interval: ``timing.median_interval``; decide a target such as "within 1.03x" only where the
interval lies on one side of it) next to its median time:

- ``floor``: only the step's matrix products (:func:`dlcore.benchmarks.workloads.floor_products`).
- ``dlcore``: ``train_step`` on the default path; ``dlcore+numba``: with NumpyOps' fused kernels.
- ``fused``: the products into preallocated buffers plus, per layer, ONE numba pass for everything
  elementwise: forward ``A = max(W A_prev + b, 0)`` written once (the ReLU mask is taken from A, so Z is
  never stored), backward ``dZ = (W^T dZ_next or its outer product) * (A > 0)`` with the outer product of
  the one-row output layer folded in, NumPy's row sums for db and its ``W -= dW``. Single-threaded passes: the
  best a step can do without touching the products.
- ``fused-2threads``: the same passes over rows split between numba's threads (``prange``), timed in
  rounds of its own between two pauses (its ratio: of the medians).
- with ``--ablate``, the fused step without each of its two structural wins over the engine, each with
  its own column (step / floor): ``fused, Z kept`` (the forward pass writes Z and A, as the engine's
  ``layer_forward`` does) and ``fused, outer apart`` (the output layer's outer product and the ReLU'
  after it as two passes, as the engine's ``linear_backward`` and ``activation_backward`` do them).

The gap ``fused`` leaves is what memory-bound elementwise passes cost beside two-thread products on
this machine; ``fused-2threads`` shows why they cannot simply take the second core: OpenBLAS's worker
thread spin-waits after each product and the passes' second thread competes with it for that core.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
from dlcore.benchmarks import description, names_from, positive_int
from dlcore.benchmarks.timing import SETTLE_S, median, paired, paired_interval, settle_down, time_case
from dlcore.benchmarks.workloads import NETWORKS, SCALING_HIDDEN, Case, floor_products, seeded_data

import dlcore
from dlcore.activations import get_activation

POINTS = {
    **{f"h={h}": ([784, h, h, 1], 2048) for h in SCALING_HIDDEN},
    "deep": (NETWORKS["deep"][0], NETWORKS["deep"][2]),
}
LR = 1e-4


def _passes(numba, parallel: bool):
    """The fused elementwise passes, compiled for serial rows or rows over numba's threads."""
    jit = numba.njit(nogil=True, parallel=parallel)
    rows = numba.prange if parallel else range

    def bias_relu(Z, b, A):  # A = max(Z + b, 0); Z is only read
        n, m = Z.shape
        for i in rows(n):
            bi = b[i, 0]
            for j in range(m):
                z = Z[i, j] + bi
                A[i, j] = z if z > 0 else 0

    def bias_relu_keep_z(Z, b, A):  # Z += b; A = max(Z, 0): Z written too, as the engine's forward
        n, m = Z.shape
        for i in rows(n):
            bi = b[i, 0]
            for j in range(m):
                z = Z[i, j] + bi
                Z[i, j] = z
                A[i, j] = z if z > 0 else 0

    def relu_backward(dA, A):  # dA *= (A > 0), in place
        n, m = A.shape
        for i in rows(n):
            for j in range(m):
                dA[i, j] = dA[i, j] if A[i, j] > 0 else 0

    def outer_relu_backward(w, dz, A, dZ):  # dZ = (w^T dz) * (A > 0): the output layer's outer product
        n, m = A.shape
        for i in rows(n):
            wi = w[0, i]
            for j in range(m):
                dZ[i, j] = wi * dz[0, j] if A[i, j] > 0 else 0

    def subtract(W, dW):  # W -= dW
        w, d = W.reshape(-1), dW.reshape(-1)
        for k in rows(w.size):
            w[k] -= d[k]

    passes = SimpleNamespace(
        **{f.__name__: jit(f) for f in (bias_relu, bias_relu_keep_z, relu_backward, outer_relu_backward)}
    )
    # serial: NumPy's own subtract (SIMD) is faster than numba's loop for the update
    passes.subtract = jit(subtract) if parallel else lambda W, dW: np.subtract(W, dW, out=W)
    return passes


def fused_step(X, Y, params, passes, keep_z: bool = False, outer_apart: bool = False) -> Callable[[], float]:
    """One gradient-descent step of the ReLU net ``params`` (sigmoid output unit), cost included, with
    every buffer allocated once; see the module's docstring. ``keep_z``: the forward pass writes Z as well
    as A; ``outer_apart``: the output layer's outer product, then ReLU' in a second pass (the engine's
    structure, for ``--ablate``)."""
    relu_backward, subtract = passes.relu_backward, passes.subtract
    bias_relu = passes.bias_relu_keep_z if keep_z else passes.bias_relu
    outer_relu_backward = passes.outer_relu_backward
    if outer_apart:

        def outer_relu_backward(w, dz, A, dZ):
            np.multiply(w.T, dz, out=dZ)
            relu_backward(dZ, A)

    L = len(params) // 2
    W = [params[f"W{l}"] for l in range(1, L + 1)]
    b = [params[f"b{l}"] for l in range(1, L + 1)]
    m, dt = X.shape[1], X.dtype
    Z = [np.empty((w.shape[0], m), dt) for w in W]
    A = [X] + [np.empty_like(z) for z in Z[:-1]]
    dZ = [np.empty_like(z) for z in Z]
    dW = [np.empty_like(w) for w in W]
    db = [np.empty_like(v) for v in b]
    t = np.empty((1, m), dt)
    loss = np.empty((1, m), dt)

    def step() -> float:
        for l in range(L - 1):
            np.matmul(W[l], A[l], out=Z[l])
            bias_relu(Z[l], b[l], A[l + 1])
        ZL = Z[-1]
        np.matmul(W[-1], A[-1], out=ZL)
        np.add(ZL, b[-1], out=ZL)
        np.maximum(ZL, 0, out=loss)  # J = mean(max(Z, 0) - Y Z + log1p(exp(-|Z|)))
        np.multiply(Y, ZL, out=t)
        np.subtract(loss, t, out=loss)
        np.abs(ZL, out=t)
        np.negative(t, out=t)
        np.exp(t, out=t)
        np.log1p(t, out=t)
        np.add(loss, t, out=loss)
        J = float(np.add.reduce(loss, axis=None)) / m
        np.negative(ZL, out=t)  # dZ[L] = (sigmoid(Z) - Y) lr / m
        np.exp(t, out=t)
        np.add(t, 1.0, out=t)
        np.divide(1.0, t, out=t)
        np.subtract(t, Y, out=dZ[-1])
        np.multiply(dZ[-1], LR / m, out=dZ[-1])
        for l in range(L - 1, -1, -1):
            np.matmul(dZ[l], A[l].T, out=dW[l])
            np.add.reduce(dZ[l], axis=1, keepdims=True, out=db[l])
            if l > 0:
                if W[l].shape[0] == 1:
                    outer_relu_backward(W[l], dZ[l], A[l], dZ[l - 1])
                else:
                    np.matmul(W[l].T, dZ[l], out=dZ[l - 1])
                    relu_backward(dZ[l - 1], A[l])
            subtract(W[l], dW[l])
            np.subtract(b[l], db[l], out=b[l])
        return J

    return step


def measure(
    point: str, dtype: str, rounds: int, numba, ablate: bool = False
) -> dict[str, tuple[float, float, tuple[float, float] | None]]:
    """{contestant: (median seconds, median of step / floor over rounds, its 95% interval or None)}; the
    two-thread contestant, timed in rounds of its own: its median over the floor's, no interval."""
    from dlcore.backends import numpy_backend as nb

    dims, m = POINTS[point]
    X, Y = (a.astype(dtype) for a in seeded_data(dims[0], m))
    acts = [get_activation("relu")] * (len(dims) - 2) + [get_activation("sigmoid")]
    backend = dlcore.get_backend("numpy")

    def fresh() -> dict:
        return dlcore.initialize_parameters(dims, "he", backend, 3, dtype)

    kernels = nb.fused_kernels()

    def engine(active) -> Callable[[], None]:
        params, ops = fresh(), nb.NumpyOps(nb.xp)

        def step() -> None:
            nb._KERNELS[:] = [active]
            dlcore.train_step(X, Y, params, acts, LR, ops=ops)

        return step

    steps = {
        "floor": floor_products(X, fresh()),
        "dlcore": engine(None),
        "dlcore+numba": engine(kernels),
        "fused": fused_step(X, Y, fresh(), serial := _passes(numba, False)),
    }
    if ablate:
        steps["fused, Z kept"] = fused_step(X, Y, fresh(), serial, keep_z=True)
        steps["fused, outer apart"] = fused_step(X, Y, fresh(), serial, outer_apart=True)
    threaded = {"fused-2threads": fused_step(X, Y, fresh(), _passes(numba, True))}
    for step in (*steps.values(), *threaded.values()):  # compile; record the replayed step (2nd call)
        step()
    size = f"{dims} m={m}"
    try:
        samples = time_case(Case("floor_gap", point, size, m, steps, lambda: None, rounds), backend)
        # apart, after and before a pause: numba's threads keep spinning after a parallel pass and would
        # slow whichever contestant ran next (the floor ran at 2x in a shared round-robin)
        settle_down(SETTLE_S)
        samples |= time_case(Case("floor_gap", point, size, m, threaded, lambda: None, rounds), backend)
        settle_down(SETTLE_S)
    finally:
        nb._KERNELS[:] = [kernels]
    floor = median(samples["floor"])
    return {
        name: (median(s), paired(samples, name, "floor"), paired_interval(samples, name, "floor"))
        if name in steps and name != "floor"
        else (median(s), median(s) / floor, None)
        for name, s in samples.items()
    }


def _cell(seconds: float, ratio: float, interval: tuple[float, float] | None) -> str:
    """``6.53 ms (1.068; 1.041-1.090)``: the median time, then step / floor and its 95% interval."""
    spread = f"; {interval[0]:.3f}-{interval[1]:.3f}" if interval else ""
    return f"{seconds * 1e3:.2f} ms ({ratio:.3f}{spread})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--points", type=names_from(POINTS), default=",".join(POINTS))
    parser.add_argument("--dtype", type=names_from(("float32", "float64")), default="float32,float64")
    parser.add_argument("--rounds", type=positive_int, default=9)
    parser.add_argument("--ablate", action="store_true", help="also the fused step without each of its wins")
    args = parser.parse_args(argv)
    try:
        import numba
    except ImportError:
        raise SystemExit("floor_gap needs numba: pip install numba") from None
    from dlcore.backends.numpy_backend import fused_kernels

    if fused_kernels() is None:
        raise SystemExit("numba's fused kernels are off here (leave DLCORE_NUMBA unset)")
    names = ["floor", "dlcore", "dlcore+numba", "fused", "fused-2threads"]
    if args.ablate:
        names[4:4] = ["fused, Z kept", "fused, outer apart"]
    print("| point | dtype | " + " | ".join(names) + " |")
    print("|---|---|" + "---:|" * len(names))
    for point in args.points:
        for dtype in args.dtype:
            result = measure(point, dtype, args.rounds, numba, args.ablate)
            cells = [_cell(*result[n]) for n in names]
            print(f"| {point} | {dtype} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
