"""Time the training step (dlcore.train_step) of the benchmark's three nets in this process's dlcore.

Used to compare two checkouts in one run, alternating processes (see BENCHMARKS.md):
    PYTHONPATH=/path/to/old python benchmarks/compare_steps.py   # the old tree's dlcore
    python benchmarks/compare_steps.py                           # the installed one
Prints one JSON object: {"planar float64": median seconds per step, ...}.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

import dlcore

NETS = {
    "planar": ([2, 4, 1], "tanh", 400),
    "deep": ([12288, 20, 7, 5, 1], "relu", 209),
    "wide": ([784, 1024, 1024, 1], "relu", 2048),
}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    out = {}
    for name, (dims, hidden, m) in NETS.items():
        for dtype in ("float32", "float64"):
            rng = np.random.default_rng(3)
            X = rng.standard_normal((dims[0], m)).astype(dtype)
            Y = (rng.random((1, m)) > 0.5).astype(dtype)
            net = dlcore.Network(dims, hidden, init="he", backend="numpy", seed=3, dtype=dtype)

            def step(X=X, Y=Y, net=net) -> None:
                dlcore.train_step(X, Y, net.params, net.activations, 1e-5)

            start = time.perf_counter()
            step()
            n = max(1, int(0.05 / max(time.perf_counter() - start, 1e-7)))
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(n):
                    step()
                samples.append((time.perf_counter() - start) / n)
            out[f"{name} {dtype}"] = statistics.median(samples)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
