"""The training step on cupy: the default ops against CupyOps' fused kernels, where the time goes, and
whether this CuPy can capture a whole step as a CUDA graph.

    python -m dlcore.benchmarks.cupy_step [--dtype float32,float64] [--rounds 11] [--nets planar,deep,wide]

Contestants, interleaved round by round by the suite's ``time_case`` (N calls, then one synchronize):
``default`` (``train_step`` on CupyOps with the fused kernels off), ``fused`` (on), ``floor`` (the step's
matrix products alone). Then, per net, ``cupyx.profiler.benchmark`` of one default step: its host time
(Python and CuPy dispatching the kernels) next to its device time (events around the call). A step whose
host time exceeds the device's work is launch-bound: the GPU waits for Python, and only fewer launches
(fused kernels) or no launches (a graph) make it faster. Last, ``graph``: the step captured on a
non-default stream (``Stream.begin_capture``) and replayed; CuPy before some version could not capture
cuBLAS (``cublas.setStream`` raised during capture: cupy/cupy#6290), so this line says what this CuPy does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from dlcore.backends import BackendError, get_backend
from dlcore.backends.cupy_kernels import CupyOps
from dlcore.benchmarks import description
from dlcore.benchmarks.timing import time_sides
from dlcore.benchmarks.workloads import NETWORKS


def measure(dtype: str, name: str, rounds: int) -> dict[str, Any]:
    """Medians and paired ratios (to ``default``) of the contestants, the host and device time of one
    default step, the largest |parameter difference| default vs fused, and the graph's outcome."""
    import cupy
    import cupyx.profiler

    backend = get_backend("cupy")
    sides = {
        "default": CupyOps(backend.xp, cupy, fused=False),
        "fused": CupyOps(backend.xp, cupy, fused=True),
    }
    case, times, differ = time_sides("cupy_step", backend, dtype, name, sides, rounds)
    result: dict[str, Any] = dict(times)
    perf = cupyx.profiler.benchmark(case.contestants["default"], n_repeat=200, n_warmup=10)
    result["host_device"] = (float(np.median(perf.cpu_times)), float(np.median(perf.gpu_times[0])))
    result["differ"] = differ
    result["graph"] = _graph(case.contestants["default"], backend)  # unfused CupyOps hold no state
    return result


def _graph(run: Any, backend: Any) -> str:
    """Capture ``run`` (warmed up) on a new stream and replay it: its median time, or why it failed."""
    import cupyx.profiler

    stream = backend.lib.cuda.Stream(non_blocking=True)
    try:
        with stream:
            run()  # warm on this stream (pool blocks, cuBLAS workspace)
            stream.synchronize()
            stream.begin_capture()
            try:
                run()
            finally:
                graph = stream.end_capture()
        with stream:  # the profiler's events go on the current stream: the replay's
            perf = cupyx.profiler.benchmark(graph.launch, n_repeat=200, n_warmup=10)
        return f"{float(np.median(perf.gpu_times[0])) * 1e6:,.1f} us a replay"
    except Exception as exc:  # what this CuPy says; the benchmark goes on
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"capture failed: {type(exc).__name__}: {first[:120]}"
    finally:
        backend.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--nets", default=",".join(NETWORKS))
    args = parser.parse_args(argv)
    try:
        device = get_backend("cupy").device_name()
    except BackendError as exc:  # CuPy missing, or no GPU
        parser.error(str(exc))
    import cupy

    print(f"cupy {cupy.__version__} on {device}")
    print("| net | dtype | default | fused (x default) | floor (x default) | default: host / device per step "
          "| max diff | whole-step graph |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for dtype in args.dtype.split(","):
        for name in args.nets.split(","):
            r = measure(dtype, name, args.rounds)
            host, device = r["host_device"]
            cells = [f"{r['default'][0] * 1e6:,.1f} us"]
            cells += [f"{r[k][0] * 1e6:,.1f} us ({r[k][1]:.3f})" for k in ("fused", "floor")]
            cells += [f"{host * 1e6:,.1f} / {device * 1e6:,.1f} us", f"{r['differ']:.2g}", r["graph"]]
            print(f"| {name} | {dtype} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
