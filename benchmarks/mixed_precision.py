"""Mixed precision measured: the wide net's step in bfloat16/float16 against float32, and the accuracy
cost on scikit-learn's digits.

Usage::

    python benchmarks/mixed_precision.py                    # torch on its CPU (default), both parts
    python benchmarks/mixed_precision.py --backend torch:cuda --steps 50
    python benchmarks/mixed_precision.py --part digits --backend numpy
    python benchmarks/mixed_precision.py --part wide --backend torch:cuda --dims 784,4096,4096,1 --m 8192

The step time is the median time of an update of :func:`dlcore.training.train` (full batch gradient
descent; each update stamped by the ``progress`` hook after a device sync; the first update, with the
warm-up and the first cost check, left out) over ``--repeat`` runs of ``--steps`` that interleave the
dtypes; mixed runs :func:`dlcore.precision.train_mixed` (float32
masters, the named compute dtype, dynamic loss scaling for float16). On a CPU this says what the code
costs there; the speed target is a GPU's (tensor cores): run it there with ``--backend torch:cuda``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from dlcore.backends import BackendError, get_backend
from dlcore.benchmarks import description, positive_int, positive_ints
from dlcore.benchmarks.workloads import NETWORKS, _problem

import dlcore
from dlcore import datasets
from dlcore.data import train_test_split
from dlcore.optimizers import Adam, GradientDescent
from dlcore.precision import MixedPrecision, train_mixed
from dlcore.training import Plan, train


def _step_times(
    backend: Any, dims: list[int], X: Any, Y: Any, acts: list, steps: int, compute: str | None
) -> list[float]:
    """Seconds of each update of a ``steps``-update run (the first one, with the first cost check and the
    warm-up, left out): the ``progress`` hook stamps each update after a device sync."""
    params = dlcore.initialize_parameters(dims, "he", backend, 1, "float32")
    plan = Plan.of(X.shape[1], None, steps + 1, None)
    stamps: list[float] = []

    def stamp(_: int) -> None:
        backend.synchronize()
        stamps.append(time.perf_counter())

    if compute is None:
        train(
            params,
            acts,
            X,
            Y,
            optimizer=GradientDescent(1e-3),
            plan=plan,
            cost_every=steps + 1,
            ops=backend.ops,
            progress=stamp,
        )
    else:
        mp = MixedPrecision(GradientDescent(1e-3), compute)
        train_mixed(
            params, acts, X, Y, precision=mp, backend=backend, plan=plan, cost_every=steps + 1, progress=stamp
        )
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def wide_step(
    backend: Any,
    steps: int = 5,
    repeat: int = 3,
    compute: tuple[str, ...] | None = None,
    dims: list[int] | None = None,
    m: int | None = None,
) -> tuple[list[int], int, dict[str, float]]:
    """(dims, m, median seconds per step) of the wide net [784, 1024, 1024, 1], m = 2048 (or ReLU layers
    ``dims`` on ``m`` columns), in float32 and each low dtype (``compute``; default: all the backend
    has), over ``repeat`` interleaved runs of ``steps``."""
    wide, _, m_wide = NETWORKS["wide"]  # benchmarks/workloads.py's NETWORKS
    dims, m = dims or wide, m or m_wide
    X, Y, _, acts = _problem(backend, "float32", dims, "relu", m)
    names = (None, *(compute or backend.low_precision_dtypes()))
    times: dict[str, list[float]] = {name or "float32": [] for name in names}
    for _ in range(repeat):  # interleaved: a machine whose speed drifts hits every dtype alike
        for name in names:
            times[name or "float32"] += _step_times(backend, dims, X, Y, acts, steps, name)
    return dims, m, {name: statistics.median(t) for name, t in times.items()}


def digits_accuracy(backend: Any, epochs: int = 30, seed: int = 1) -> dict[str, tuple[float, float]]:
    """(train, test) accuracy of [64, 64, 10] relu/softmax, Adam 0.005, batches of 64, for ``epochs``,
    in float32 and in each low dtype (the same initial weights, split and shuffles)."""
    X, Y = datasets.digits(backend, dtype="float32")
    Xtr, Ytr, Xte, Yte = train_test_split(X, Y, 0.25, backend, seed)
    out = {}
    for compute in (None, *backend.low_precision_dtypes()):
        net = dlcore.Network([64, 64, 10], "relu", "softmax", backend=backend, dtype="float32", seed=seed)
        net.fit(
            Xtr,
            Ytr,
            epochs=epochs,
            batch_size=64,
            optimizer=Adam(0.005),
            cost_every=epochs,
            seed=seed,
            precision=compute,
        )
        out[compute or "float32"] = (net.score(Xtr, Ytr), net.score(Xte, Yte))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--part", choices=["all", "wide", "digits"], default="all")
    parser.add_argument("--steps", type=positive_int, default=5)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--epochs", type=positive_int, default=30)
    parser.add_argument(
        "--compute",
        nargs="+",
        choices=["bfloat16", "float16"],
        help="the wide net's low dtypes (default: all)",
    )
    parser.add_argument(
        "--dims", type=positive_ints, help="the step's layers instead of the wide net's, e.g. 784,4096,4096,1"
    )
    parser.add_argument("--m", type=positive_int, help="the step's columns instead of the wide net's 2048")
    args = parser.parse_args(argv)
    try:
        backend = get_backend(args.backend)
        for name in args.compute or ():
            backend.low_precision_dtype(name)
    except (BackendError, ValueError) as exc:
        parser.error(str(exc))
    print(f"backend: {backend.name} on {backend.device_name()}")
    if args.part in ("all", "wide"):
        dims, m, times = wide_step(backend, args.steps, args.repeat, args.compute, args.dims, args.m)
        for name, t in times.items():
            print(f"{dims} m={m} {name:>8}: {t * 1e3:8.1f} ms/step ({times['float32'] / t:.2f}x float32)")
    if args.part in ("all", "digits"):
        for name, (train_acc, test_acc) in digits_accuracy(backend, args.epochs).items():
            print(
                f"digits [64, 64, 10] {args.epochs} epochs {name:>8}: "
                f"train {train_acc:.4f}, test {test_acc:.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
