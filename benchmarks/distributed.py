"""Data-parallel training on one machine: 1 rank x T threads against N ranks x T/N threads, same cores.

    python -m dlcore.benchmarks.distributed [--ranks 2] [--cores 2] [--m 2048 16384] [--steps 20]

For each batch size m, the wide net [784, 1024, 1024, 1] (float32, full batch, gradient descent) runs
``--steps`` timed updates through ``Network.fit`` twice: once as one process with all ``--cores`` BLAS
threads, once as ``mpiexec -n RANKS`` with cores / RANKS threads each. Each run reports the median
step time (every step is timed: ``progress`` is called after each update), the allreduce time per
step (the communicator is wrapped with a timer) and its share of the step. The script starts both
runs itself (as subprocesses, so the thread counts are set before NumPy loads) and prints a Markdown
table; ``--worker`` is the per-rank entry the subprocesses use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dlcore.benchmarks import description, positive_int

NET = [784, 1024, 1024, 1]


def worker(m: int, steps: int, distributed: bool) -> dict:
    """One rank's measurement (run inside the subprocess)."""
    import numpy as np
    from dlcore.backends.comm import MPIComm, SingleProcess

    from dlcore import Network
    from dlcore.memory import parameter_count

    comm = MPIComm() if distributed else SingleProcess()
    spent: list[float] = []
    allreduce = comm.allreduce

    def timed_allreduce(x):
        start = time.perf_counter()
        out = allreduce(x)
        spent.append(time.perf_counter() - start)
        return out

    comm.allreduce = timed_allreduce
    rng = np.random.default_rng(0)
    X = rng.standard_normal((NET[0], m)).astype(np.float32)
    Y = (rng.random((1, m)) < 0.5).astype(np.float32)
    net = Network(NET, hidden_activation="relu", dtype="float32", seed=1)
    marks: list[float] = []
    net.fit(X, Y, 1e-4, iterations=2, comm=comm if distributed else None)  # warm-up: buffers, BLAS threads
    spent.clear()
    marks.append(time.perf_counter())
    net.fit(
        X,
        Y,
        1e-4,
        iterations=steps,
        cost_every=steps,
        comm=comm if distributed else None,
        progress=lambda i: marks.append(time.perf_counter()),
    )
    step_times = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    per_step = spent[-steps:]
    return {
        "rank": comm.rank,
        "size": comm.size,
        "step": statistics.median(step_times),
        "allreduce": statistics.median(per_step) if per_step else 0.0,
        "bytes": parameter_count(net.layer_dims) * net.itemsize,
    }


def run(m: int, steps: int, ranks: int, threads: int) -> dict:
    """Start one configuration as a subprocess; rank 0's result."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    cmd = [sys.executable, "-m", "dlcore.benchmarks.distributed", "--worker", str(m), str(steps)]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
        cmd = [mpiexec, "-n", str(ranks), *cmd, "--distributed"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # the worker's own last words (a missing mpi4py, a bad --m) say why
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SystemExit(f"{ranks} rank(s), m = {m}: the worker failed: {why}")
    return json.loads(done.stdout.strip().splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--ranks", type=positive_int, default=2)
    parser.add_argument("--cores", type=positive_int, default=2)
    parser.add_argument("--m", type=positive_int, nargs="+", default=[2048, 16384])
    parser.add_argument("--steps", type=positive_int, default=20)
    parser.add_argument("--worker", nargs=2, type=int, metavar=("M", "STEPS"), help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(*args.worker, args.distributed)
        if result["rank"] == 0:
            print(json.dumps(result), flush=True)
        return 0
    print(f"wide net {NET}, float32, full batch, {args.steps} steps, {args.cores} cores")
    threads = max(1, args.cores // args.ranks)  # each rank's, as run() is given them
    print(
        f"| m | 1 rank x {args.cores} threads | {args.ranks} ranks x {threads} thread(s) "
        "| allreduce / step | its share | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for m in args.m:
        one = run(m, args.steps, 1, args.cores)
        many = run(m, args.steps, args.ranks, threads)
        print(
            f"| {m:,} | {1e3 * one['step']:.1f} ms | {1e3 * many['step']:.1f} ms | "
            f"{1e3 * many['allreduce']:.2f} ms ({many['bytes'] / 2**20:.1f} MiB) | "
            f"{many['allreduce'] / many['step']:.0%} | {one['step'] / many['step']:.2f}x |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
