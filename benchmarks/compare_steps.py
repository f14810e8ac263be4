"""Before/after: the training step of another checkout against this one, interleaved in one process.

    python benchmarks/compare_steps.py /path/to/old/checkout [--rounds 21] [--scaling]
    python benchmarks/compare_steps.py --numba [--scaling]    # numba's fused kernels off, then on

Separate processes are too noisy on a small VM (the deep net's step varied by 30% from one process to
the next), so the old checkout's ``dlcore/`` (and its ``backends/``) is copied into a temporary folder
as the package ``dlcore_before``, both are imported, and their ``train_step`` calls alternate round by
round on the same inputs. Prints a Markdown table: medians and the median of the paired ratios.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dlcore.benchmarks import description, positive_int
from dlcore.benchmarks.timing import median, paired
from dlcore.benchmarks.workloads import NETWORKS, SCALING_HIDDEN, SCALING_PLANAR_M, seeded_data

import dlcore

NETS = NETWORKS
#: --scaling: the scaling series of ``dlcore bench --only scaling``
SCALING = {
    **{f"planar m={m}": ([2, 4, 1], "tanh", m) for m in SCALING_PLANAR_M},
    **{f"h={h}": ([784, h, h, 1], "relu", 2048) for h in SCALING_HIDDEN},
}


def import_before(checkout: Path, where: Path):
    """The checkout's dlcore as ``dlcore_before`` (its backends/ as ``dlcore_before.backends``)."""
    target = where / "dlcore_before"
    shutil.copytree(checkout / "dlcore", target)
    if (checkout / "backends").is_dir():
        shutil.copytree(checkout / "backends", target / "backends", dirs_exist_ok=True)
    for path in target.rglob("*.py"):
        text = re.sub(r"\b(from|import) dlcore\b", r"\1 dlcore_before", path.read_text())
        text = re.sub(r"\b(from|import) backends\b", r"\1 dlcore_before.backends", text)
        path.write_text(text)
    sys.path.insert(0, str(where))
    import dlcore_before

    return dlcore_before


def _cases(nets: dict):
    """``(name, dims, hidden, dtype, X, Y)`` for each net in float32 and float64, on seeded data."""
    for name, (dims, hidden, m) in nets.items():
        for dtype in ("float32", "float64"):
            X, Y = (a.astype(dtype) for a in seeded_data(dims[0], m))
            yield name, dims, hidden, dtype, X, Y


def compare(before, rounds: int, nets: dict = NETS) -> list[tuple[str, float, float, float]]:
    rows = []
    for name, dims, hidden, dtype, X, Y in _cases(nets):
        steps = {}
        for label, lib in (("before", before), ("after", dlcore)):
            net = lib.Network(dims, hidden, init="he", backend="numpy", seed=3, dtype=dtype)

            def step(lib=lib, net=net, X=X, Y=Y) -> None:
                lib.train_step(X, Y, net.params, net.activations, 1e-5)

            step()
            steps[label] = step
        rows.append((f"{name} {dtype}", *_interleave(steps, rounds)))
    return rows


def compare_kernels(rounds: int, nets: dict) -> list[tuple[str, float, float, float]]:
    """This checkout's step without ("before") and with ("after") numba's fused kernels, interleaved: each
    side has its own NumpyOps (its own workspace and recording) and sets the kernels before each call."""
    from dlcore.backends import numpy_backend as nb

    kernels = nb.fused_kernels()
    if kernels is None:
        raise SystemExit("numba's fused kernels are off here (pip install numba; leave DLCORE_NUMBA unset)")
    rows = []
    try:
        for name, dims, hidden, dtype, X, Y in _cases(nets):
            steps = {}
            for label, active in (("before", None), ("after", kernels)):
                net = dlcore.Network(dims, hidden, init="he", backend="numpy", seed=3, dtype=dtype)
                ops = nb.NumpyOps(nb.xp)

                def step(net=net, ops=ops, active=active, X=X, Y=Y) -> None:
                    nb._KERNELS[:] = [active]
                    dlcore.train_step(X, Y, net.params, net.activations, 1e-5, ops=ops)

                step()
                steps[label] = step
            rows.append((f"{name} {dtype}", *_interleave(steps, rounds)))
    finally:  # the kernels as they were, also after an error or Ctrl-C
        nb._KERNELS[:] = [kernels]
    return rows


def _interleave(steps: dict, rounds: int) -> tuple[float, float, float]:
    """Median seconds of ``before`` and ``after``, and the median of their per-round ratios."""
    start = time.perf_counter()
    steps["after"]()
    n = max(1, int(0.03 / (time.perf_counter() - start)))
    samples: dict[str, list[float]] = {label: [] for label in steps}
    for r in range(rounds):
        for label in list(steps) if r % 2 == 0 else list(steps)[::-1]:
            steps[label]()  # untimed: the other's buffers out of the caches
            start = time.perf_counter()
            for _ in range(n):
                steps[label]()
            samples[label].append((time.perf_counter() - start) / n)
    return median(samples["before"]), median(samples["after"]), paired(samples, "after", "before")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument(
        "checkout", type=Path, nargs="?", help="the other checkout (a git worktree of the old main)"
    )
    parser.add_argument(
        "--numba", action="store_true", help="this checkout without, then with, numba's fused kernels"
    )
    parser.add_argument("--rounds", type=positive_int, default=21)
    parser.add_argument("--scaling", action="store_true", help="the scaling series instead of the three nets")
    args = parser.parse_args(argv)
    nets = SCALING if args.scaling else NETS
    if args.numba:
        rows = compare_kernels(args.rounds, nets)
    elif args.checkout is None:
        parser.error("give the other checkout, or --numba")
    elif not (args.checkout / "dlcore").is_dir():
        parser.error(f"{args.checkout} is no dlcore checkout (it has no dlcore/ folder)")
    else:
        with tempfile.TemporaryDirectory() as where:
            before = import_before(args.checkout, Path(where))
            rows = compare(before, args.rounds, nets)
    print("| step | before (µs) | after (µs) | after / before (paired median) |")
    print("|---|---:|---:|---:|")
    for name, b, a, ratio in rows:
        print(f"| {name} | {b * 1e6:,.1f} | {a * 1e6:,.1f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
