"""Each change of issue 16's second round toggled alone, in one process: the planar step at every m.

    python benchmarks/replay_ablation.py [400,4000,40000,400000] [rounds]

Contestants, timed by the suite's ``time_case`` (interleaved round by round; paired medians):
everything; without the typed 0-D scalars of the recording; without the cost's reuse of the sigmoid's
exp(-|Z|); without the replay (the captured step with its workspace, as before the round); the
hand-written step. Prints one line per point.
"""

from __future__ import annotations

import argparse
import sys

from dlcore.backends import get_backend
from dlcore.backends import numpy_backend as nb
from dlcore.benchmarks import description, positive_int, positive_ints
from dlcore.benchmarks.handwritten import HandWrittenStep
from dlcore.benchmarks.timing import median, paired, time_case
from dlcore.benchmarks.workloads import Case, seeded_data

import dlcore
from dlcore import propagation
from dlcore.activations import get_activation


class NoSharedExp(nb.NumpyOps):
    """NumpyOps whose binary cost computes exp(-|Z|) again."""

    def cost(self, *args):
        self._thread.step.exp_neg_abs = None
        return super().cost(*args)


def contestants(X, Y, acts, start, backend) -> dict:
    typed = nb._typed_scalars

    def recorded(ops, typed_scalars=True):
        params = {k: v.copy() for k, v in start.items()}
        nb._typed_scalars = typed if typed_scalars else (lambda args, nin: args)
        try:
            for _ in range(3):  # the second call records
                propagation.train_step(X, Y, params, acts, 1e-5, ops=ops)
        finally:
            nb._typed_scalars = typed
        return lambda: propagation.train_step(X, Y, params, acts, 1e-5, ops=ops)

    ops = nb.NumpyOps(backend.xp)
    plain = ops.capture(propagation._train_step)  # the workspace, not replayed
    params = {k: v.copy() for k, v in start.items()}
    return {
        "all": recorded(nb.NumpyOps(backend.xp)),
        "no typed scalars": recorded(nb.NumpyOps(backend.xp), typed_scalars=False),
        "no shared exp": recorded(NoSharedExp(backend.xp)),
        "no replay": lambda: plain(X, Y, params, acts, 1e-5, True, ops),
        "hand": HandWrittenStep(X, Y, {k: v.copy() for k, v in start.items()}, "tanh", 1e-5).step,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument(
        "ms", nargs="?", type=positive_ints, default="400,4000,40000,400000", help="comma-separated m"
    )
    parser.add_argument("rounds", nargs="?", type=positive_int, default=11, help="rounds (default 11)")
    args = parser.parse_args(argv)
    ms, rounds = args.ms, args.rounds
    backend = get_backend("numpy")
    for dtype in ("float32", "float64"):
        for m in ms:
            X, Y = (a.astype(dtype) for a in seeded_data(2, m))
            acts = [get_activation("tanh"), get_activation("sigmoid")]
            start = dlcore.initialize_parameters([2, 4, 1], "xavier", backend, 3, dtype)
            steps = contestants(X, Y, acts, start, backend)
            case = Case("ablation", f"planar m={m}", f"[2, 4, 1] m={m}", m, steps, lambda: None, rounds)
            samples = time_case(case, backend)
            parts = [
                f"{k} {median(v) * 1e6:,.1f} µs ({paired(samples, k, 'all'):.3f}x all, "
                f"{paired(samples, k, 'hand'):.3f}x hand)"
                for k, v in samples.items()
            ]
            print(f"{dtype} m={m}: " + ", ".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
