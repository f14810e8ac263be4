"""The training step on torch:cuda, eager against replayed as a CUDA graph (TorchOps' ``graphs``).

    python -m dlcore.benchmarks.torch_graphs [--device cuda] [--dtype float32,float64] [--rounds 15]

Contestants, interleaved round by round by the suite's ``time_case`` (N calls, then one synchronize):
``eager`` (``train_step`` on TorchOps with graphs off), ``graphs`` (graphs on: captured at its third call,
one graph launch a step after that), ``floor`` (the step's matrix products alone). Reported: medians and
the per-round (paired) ratios, and the largest difference of the parameters the two sides trained (0:
the same bits; cuBLAS promises them within one stream, the graph runs on another). Prediction (issue
20): the small nets are launch-bound (planar 27 launches a step, deep 49: benchmarks/launches.py), so a
graph takes most of their CPU-side cost off the step (several x); the wide net is product-bound (~1x).
On a machine without CUDA ``--device cpu`` runs the same code with graphs off on both sides (a dry run
of the script, ratios ~1).
"""

from __future__ import annotations

import argparse
import sys

import torch
from dlcore.backends import BackendError, get_backend
from dlcore.backends.torch_backend import TorchOps
from dlcore.benchmarks import description, names_from, positive_int
from dlcore.benchmarks.timing import time_sides
from dlcore.benchmarks.workloads import NETWORKS


def measure(
    device: str, dtype: str, name: str, rounds: int
) -> tuple[dict[str, tuple[float, float | None]], float]:
    """({contestant: (median seconds, its paired ratio to eager)}, the largest |parameter difference|
    between the two sides after the same steps)."""
    backend = get_backend(f"torch:{device}")
    sides = {
        "eager": TorchOps(backend.xp, torch, graphs=False),
        "graphs": TorchOps(backend.xp, torch, graphs=True),
    }
    _, times, differ = time_sides("torch_graphs", backend, dtype, name, sides, rounds)
    return times, differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", type=names_from(("float32", "float64")), default="float32,float64")
    parser.add_argument("--rounds", type=positive_int, default=15)
    parser.add_argument("--nets", type=names_from(NETWORKS), default=",".join(NETWORKS))
    args = parser.parse_args(argv)
    try:
        device = get_backend(f"torch:{args.device}").device_name()
    except (BackendError, ValueError) as exc:
        parser.error(f"{exc} (--device cpu runs the script dry)")
    print(f"torch {torch.__version__} on {device}")
    if not torch.cuda.is_available() or args.device == "cpu":
        print("(no CUDA here: graphs are off on both sides; a dry run of the script)")
    print("| net | dtype | eager | graphs (x eager) | floor (x eager) | max diff |")
    print("|---|---|---:|---:|---:|---:|")
    for dtype in args.dtype:
        for name in args.nets:
            r, differ = measure(args.device, dtype, name, args.rounds)
            cells = [f"{r['eager'][0] * 1e6:,.1f} us"]
            cells += [f"{r[k][0] * 1e6:,.1f} us ({r[k][1]:.3f})" for k in ("graphs", "floor")]
            print(f"| {name} | {dtype} | " + " | ".join(cells) + f" | {differ:.2g} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
