"""One rank of a data-parallel run, started by tests/test_distributed.py under ``mpiexec -n N``:

    python tests/distributed_worker.py SCENARIO OUT_DIR [BACKEND]

trains the scenario's network with ``Network.fit(..., comm=MPIComm())`` and writes its parameters and
costs to ``OUT_DIR/rank<r>.npz``. The scenarios (and the single-process reference the test compares
with) are in :data:`SCENARIOS`, shared by both sides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

#: name -> (layer dims, hidden activation, dtype, fit options)
SCENARIOS = {
    # the proof: planar [2, 4, 1] tanh, m = 400, float64, 2,000 full-batch steps
    "full": ([2, 4, 1], "tanh", "float64", {"learning_rate": 1.2, "iterations": 2000, "cost_every": 100}),
    # mini-batch Adam with L2 and dropout, 3 epochs; batch 64 of 400 leaves a last batch of 16
    "minibatch": (
        [2, 8, 4, 1],
        "relu",
        "float64",
        {
            "learning_rate": 0.01,
            "epochs": 3,
            "batch_size": 64,
            "optimizer": "adam",
            "l2": 0.05,
            "keep_prob": 0.8,
        },
    ),
    # early stopping on a validation split, momentum; 320 train columns in batches of 53 leave a last
    # batch of 2 columns: narrower than 3 ranks (one rank has an empty slice)
    "validation": (
        [2, 5, 1],
        "tanh",
        "float64",
        {
            "learning_rate": 0.05,
            "epochs": 40,
            "batch_size": 53,
            "optimizer": "momentum",
            "validation_split": 0.2,
            "patience": 3,
        },
    ),
    # mixed precision: float16 compute with dynamic loss scaling, float32 masters, mini-batch Adam
    "mixed": (
        [2, 8, 1],
        "tanh",
        "float32",
        {"learning_rate": 0.01, "epochs": 3, "batch_size": 64, "optimizer": "adam", "precision": "float16"},
    ),
}


def network(scenario: str, backend: str = "numpy"):
    from dlcore import Network

    dims, hidden, dtype, _ = SCENARIOS[scenario]
    return Network(dims, hidden_activation=hidden, backend=backend, dtype=dtype, seed=3)


def data(backend: str = "numpy"):
    from dlcore.backends import get_backend

    from dlcore.datasets import planar

    return planar(get_backend(backend), m=400, seed=1, dtype="float64")


def main(argv: list[str]) -> int:
    from dlcore.backends.comm import MPIComm

    scenario, out = argv[0], Path(argv[1])
    backend = argv[2] if len(argv) > 2 else "numpy"
    comm = MPIComm()
    net = network(scenario, backend)
    X, Y = data(backend)
    if os.environ.get("DLCORE_TEST_DIFFERENT_DATA") and comm.rank == 1:
        X = X * 1.0001
    if os.environ.get("DLCORE_TEST_FAIL_RANK") == str(comm.rank):

        def callback(i: int, J: float) -> None:
            if i >= 200:
                raise RuntimeError(f"rank {comm.rank} broke at iteration {i}")
    else:
        callback = None
    options = dict(SCENARIOS[scenario][3])
    if os.environ.get("DLCORE_TEST_INTERRUPT_RANK") == str(comm.rank):
        import signal

        def callback(i: int, J: float) -> None:  # noqa: F811
            if i == 500:
                os.kill(os.getpid(), signal.SIGINT)

    try:
        history = net.fit(X, Y, comm=comm, callback=callback, **options)
        costs, stopped = history.costs, "finished"
    except KeyboardInterrupt:
        costs, stopped = [], "interrupted"
    np.savez(out / f"rank{comm.rank}.npz", costs=np.asarray(costs), stopped=stopped, **net.parameters_numpy())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
