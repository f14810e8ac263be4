"""``dlcore bench``: run the benchmark cases and print one Markdown table.

    python -m dlcore.benchmarks.report [--backend numpy|torch|cupy|all] [--quick] [--json FILE] [--plot PNG]

Columns: backend, device, dtype, benchmark, size, loop median, vectorized median, speedup
(loop / vectorized at equal size), loop and vectorized time per element, step / floor and
dlcore / PyTorch (training steps; PyTorch as its users write it: ``nn.Linear`` + ``torch.optim.SGD``,
and as raw tensors with a hand-written update). Every case is checked for agreement before it is
timed. The raw samples (seconds per call) go to ``--json`` (default ``bench.json``); ``--plot`` draws speedup
against size (needs matplotlib: ``pip install "dlcore[plot]"``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from dlcore.backends import BackendError, cupy_status, get_backend, storage
from dlcore.backends.info import numpy_blas
from dlcore.backends.plotting import check_output, save_figure
from dlcore.benchmarks import description, names_from, positive_int, workloads
from dlcore.benchmarks.timing import median, paired, paired_interval, time_case, timing_method

HEADER = (
    "| backend | device | dtype | benchmark | size | loop median | vectorized median | speedup "
    "| loop / element | vectorized / element | step / floor | dlcore / PyTorch | dlcore / other peers |"
)


def _seconds(t: float | None) -> str:
    if t is None:
        return "—"
    t = float(f"{t:.3g}")  # rounded first: 0.9996 ms is "1 ms", not "1e+03 µs"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def _ratio(x: float | None) -> str:
    return "—" if x is None else (f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x")


def _peers(ratios: dict[str, float]) -> str:
    return ", ".join(f"{role.removeprefix('pytorch_')} {_ratio(x)}" for role, x in ratios.items()) or "—"


def rows_for(case: workloads.Case, samples: dict[str, list[float]], backend, dtype: str) -> list[dict]:
    """Table rows for one timed case (the logistic case gives one row per loop contestant)."""
    med = {role: median(ts) for role, ts in samples.items()}
    base = {
        "backend": backend.name,
        "device": backend.device_name(),
        "dtype": dtype,
        "size": case.size,
        "elements": case.elements,
    }
    vec = med["vectorized"]
    rows = []
    loops = [("loop", "")] if "loop" in med else []
    if "one_loop" in med:  # logistic regression: the two-loop and the one-loop versions
        loops = [("loop", " (two loops)"), ("one_loop", " (one loop)")]
    for role, suffix in loops:
        rows.append(
            {
                **base,
                "benchmark": case.name + suffix,
                "loop_median_s": med[role],
                "vectorized_median_s": vec,
                "speedup": med[role] / vec,
                "loop_per_element_s": med[role] / case.elements,
                "vectorized_per_element_s": vec / case.elements,
                "step_over_floor": None,
                "dlcore_over_pytorch": None,
                "dlcore_over_peers": {},
            }
        )
    if not loops:
        peers = [role for role in med if role not in ("vectorized", "floor", "pytorch")]
        rows.append(
            {
                **base,
                "benchmark": case.name,
                "loop_median_s": None,
                "vectorized_median_s": vec,
                "speedup": None,
                "loop_per_element_s": None,
                "vectorized_per_element_s": vec / case.elements,
                "step_over_floor": vec / med["floor"] if "floor" in med else None,
                "floor_median_s": med.get("floor"),
                "dlcore_over_pytorch": vec / med["pytorch"] if "pytorch" in med else None,
                "pytorch_median_s": med.get("pytorch"),
                # the other peers (PyTorch with raw tensors, scikit-learn): dlcore / peer and its median
                "dlcore_over_peers": {role: vec / med[role] for role in peers},
                "peer_medians_s": {role: med[role] for role in peers},
                # ratios within each interleaved round: steadier than the ratio of medians on a busy machine
                "step_over_floor_paired": paired(samples, "vectorized", "floor"),
                # its 95% interval (timing.median_interval): None without a floor or with < 6 rounds
                "step_over_floor_interval": paired_interval(samples, "vectorized", "floor"),
                "dlcore_over_pytorch_paired": paired(samples, "vectorized", "pytorch"),
                "dlcore_over_peers_paired": {role: paired(samples, "vectorized", role) for role in peers},
            }
        )
    return rows


def _paired_or_not(r: dict, key: str) -> Any:
    """The row's per-round (paired) ratio where it has one, else the ratio of the medians."""
    paired_value = r.get(f"{key}_paired")
    if isinstance(paired_value, dict):  # the peers: role by role
        return {role: paired_value.get(role) or x for role, x in r[key].items()}
    return r[key] if paired_value is None else paired_value


def markdown(rows: list[dict]) -> str:
    """The rows as one Markdown table; its ratios are the medians of the per-round ratios (the
    contestants share each round's noise), else of the medians (the JSON holds both)."""
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['device']} | {r['dtype']} | {r['benchmark']} | {r['size']} "
            f"| {_seconds(r['loop_median_s'])} | {_seconds(r['vectorized_median_s'])} "
            f"| {_ratio(r['speedup'])} "
            f"| {_seconds(r['loop_per_element_s'])} | {_seconds(r['vectorized_per_element_s'])} "
            f"| {_ratio(_paired_or_not(r, 'step_over_floor'))} "
            f"| {_ratio(_paired_or_not(r, 'dlcore_over_pytorch'))} "
            f"| {_peers(_paired_or_not(r, 'dlcore_over_peers'))} |"
        )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = f"{models[0]} x {len(models)}" if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["blas"] = numpy_blas()
    torch, why = workloads.torch_status()
    info["torch"] = torch.__version__ if torch else why
    if torch:
        info["torch_threads"] = workloads.cpu_threads()
    cupy = cupy_status()[0]
    if cupy is not None:
        info["cupy"] = cupy.__version__
    return info


def _limit_threads(n: int) -> None:
    """N threads for every BLAS loaded so far (called again after each group's setup, which may load
    more: scikit-learn brings SciPy's own OpenBLAS), and for PyTorch once imported: the torch backend's
    own steps (its peers set theirs again from :func:`workloads.cpu_threads`, the same N)."""
    workloads.THREADS = n
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ValueError("--threads needs threadpoolctl for the BLAS: pip install threadpoolctl") from None
    threadpool_limits(n, user_api="blas")
    torch = sys.modules.get("torch")
    if torch is not None:  # the torch backend's own steps too, not only the PyTorch peers
        torch.set_num_threads(n)


def _backends(choice: str) -> list:
    if choice == "all":  # torch joins as a backend too (the same core on tensors) unless --no-torch
        torch = ["torch"] if workloads.torch_status()[0] is not None else []
        names = ["numpy", *torch] + (["cupy"] if cupy_status()[0] is not None else [])
    else:
        names = [choice]
    return [get_backend(n) for n in names]


def plot(rows: list[dict], path: str) -> None:
    """Speedup (loop / vectorized) against problem size, one line per benchmark, log-log."""
    from matplotlib import colormaps  # there: main's check_output refused a missing matplotlib before the run
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5))  # no pyplot: matplotlib's global backend stays the caller's
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in rows:
        if r["speedup"] is not None:
            key = (r["benchmark"], r["backend"], r["dtype"])
            series.setdefault(key, []).append((r["elements"], r["speedup"]))
    names = sorted({name for name, _, _ in series})
    colors = {name: colormaps["tab10"](i % 10) for i, name in enumerate(names)}
    markers = {name: "osD^v<>ph*"[i // 10 % 10] for i, name in enumerate(names)}
    for (name, backend, dtype), points in sorted(series.items()):
        xs, ys = zip(*sorted(points), strict=True)
        single = dtype.startswith("float32")  # "float32 (TF32)" too
        ax.plot(
            xs,
            ys,
            "-" if single else "--",
            marker=markers[name],
            fillstyle="full" if single else "none",
            color=colors[name],
            label=f"{name} ({backend}, {dtype})",
        )  # one point a series (--quick): the marker alone tells the dtypes apart
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("size (elements, or n_x * m, or examples)")
    ax.set_ylabel("speedup: loop time / vectorized time")
    ax.set_title(
        "Loop against vectorized, same size (solid, filled: float32; dashed, open: float64)", fontsize=10
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlcore bench", description=description(__doc__))
    parser.add_argument(
        "--backend",
        default="all",
        help="numpy, array_api_strict, torch, cupy, auto, a device (torch:cuda, cupy:1) or all available "
        "(default)",
    )
    parser.add_argument(
        "--dtype",
        default="both",
        choices=["float32", "float64", "both"],
        help="the dtypes timed (default: both)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, fewer rounds (~15 s; 2.5 min with torch)"
    )
    parser.add_argument(
        "--only",
        type=names_from(workloads.GROUPS),
        default=None,
        help="comma-separated groups (default all): " + ",".join(workloads.GROUPS),
    )
    parser.add_argument("--json", default="bench.json", metavar="FILE", help="raw results (bench.json)")
    parser.add_argument("--plot", default=None, metavar="PNG", help="speedup against size (needs matplotlib)")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="BLAS and PyTorch threads (needs threadpoolctl for BLAS)",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    parser.add_argument(
        "--tf32",
        action="store_true",
        help="time float32 products on a GPU in TF32 (dlcore's and PyTorch's; checks stay in full float32)",
    )
    return parser


def _in_tf32(asked: bool, backend: Any, dtype: str) -> bool:
    """Whether ``--tf32`` (``asked``) times this backend's ``dtype`` rows in TF32: a GPU's float32 only."""
    return asked and dtype == "float32" and backend.is_gpu


@contextlib.contextmanager
def _tf32(backend: Any) -> Iterator[None]:
    """TF32 for a GPU backend's timed runs: its own products and its PyTorch peers' (on CUDA); both
    switches put back on the way out, an error's too."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(backend.tf32())
        peer = workloads.torch_device(backend) if backend.name != "torch" else None
        if peer is not None:  # the PyTorch peers' GPU: this backend's own
            stack.enter_context(get_backend(f"torch:{peer[1]}").tf32())
        yield


def peak_memory(dtype: str, name: str = "wide") -> dict[str, float]:
    """Bytes NumPy allocates for a training step (tracemalloc), against what the step must hold: the
    parameters, gradients and cached Z and A (X is input). ``workspace``: what the first step allocates
    and keeps (the ops' buffers, one set per shape); ``step_peak_extra``: a later step's peak above all
    that (traced from the first step on: started after it, the workspace went uncounted). A step on
    another ops object comes first, untraced: a process's first step of a dtype compiles numba's kernels,
    whose ~31 MiB of Python objects were counted as the workspace of the first dtype measured."""
    import tracemalloc

    from dlcore.propagation import backward, forward, train_step

    backend = get_backend("numpy")
    _, X, Y, params, acts = workloads._network(backend, dtype, name)
    train_step(X, Y, params, acts, workloads.LEARNING_RATE, ops=type(backend.ops)(backend.xp))
    ops = type(backend.ops)(backend.xp)  # its own: the backend's may hold this step's workspace already
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    train_step(X, Y, params, acts, workloads.LEARNING_RATE, ops=ops)  # the first step: its workspace stays
    steady = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    train_step(X, Y, params, acts, workloads.LEARNING_RATE, ops=ops)
    peak = tracemalloc.get_traced_memory()[1] - steady
    tracemalloc.stop()
    AL, caches = forward(X, params, acts)
    grads = backward(AL, Y, caches, acts)
    nbytes = lambda arrays: sum(a.nbytes for a in arrays)  # noqa: E731
    p, g = nbytes(params.values()), nbytes(grads.values())
    cached = nbytes([a for c in caches for a in (c.Z, c.A)])
    workspace = steady - base
    return {
        "params": p,
        "grads": g,
        "cache_Z_A": cached,
        "workspace": workspace,
        "step_peak_extra": peak,
        "resident_before": p + workspace,
    }


def run(args: argparse.Namespace) -> int:
    groups = args.only or list(workloads.GROUPS)  # names_from parsed --only: known names, at least one
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    if args.no_torch and args.backend.split(":")[0] == "torch":
        raise ValueError("--no-torch leaves PyTorch out, and --backend torch runs on it: give one of them")
    if args.tf32 and "float32" not in dtypes:
        raise ValueError("--tf32 changes float32 products only: drop it, or add --dtype float32")
    workloads.USE_TORCH = not args.no_torch
    storage.check_writable(args.json, "--json")  # before the run, not after it
    if args.plot:
        if not set(groups) & set(workloads.LOOPED):
            raise ValueError(
                f"--plot draws loop against vectorized speed-ups, which only {', '.join(workloads.LOOPED)} "
                "time: add one of them to --only, or drop --plot"
            )
        check_output(args.plot)
    if args.threads is not None:
        cores = os.cpu_count() or 1
        if args.threads > 4 * cores:  # PyTorch crashed (SIGSEGV) at 100,000 threads
            raise ValueError(f"--threads {args.threads} on {cores} cores; give at most {4 * cores}")
        _limit_threads(args.threads)
    info = machine_info()
    start = time.perf_counter()
    rows, raw = [], []
    backends = _backends(args.backend)
    if args.tf32 and not any(b.is_gpu for b in backends):
        raise ValueError(
            "--tf32 times float32 products in TF32, an NVIDIA GPU's mode, and no backend here is on a GPU: "
            "run it with --backend cupy or torch:cuda"
        )
    info["tf32"] = args.tf32
    info["timing"] = {backend.name: timing_method(backend) for backend in backends}
    for backend in backends:
        for dtype in dtypes:
            for group in groups:
                build = workloads.GROUPS[group]
                cases = build(backend, dtype, args.quick)
                if args.threads is not None:
                    _limit_threads(args.threads)
                tf32 = _in_tf32(args.tf32, backend, dtype)
                label = "float32 (TF32)" if tf32 else dtype  # the rows' and the raw samples'
                for case in cases:
                    with backend.quiet_floating_point():
                        case.check()  # in full precision, also with --tf32
                        with _tf32(backend) if tf32 else contextlib.nullcontext():
                            samples = time_case(case, backend)
                    rows.extend(rows_for(case, samples, backend, label))
                    raw.append(
                        {"backend": backend.name, "dtype": label, "benchmark": case.name, "size": case.size,
                         "elements": case.elements, "info": case.info, "samples_s": samples}
                    )  # fmt: skip
                    print(f"  {backend.name} {dtype} {case.name} {case.size}: done", file=sys.stderr)
    if "train_step" in groups and any(b.name == "numpy" for b in backends):
        info["peak_memory_wide"] = {dtype: peak_memory(dtype) for dtype in dtypes}
    info["seconds"] = round(time.perf_counter() - start, 1)
    info["command"] = "dlcore bench " + " ".join(args.argv)
    # the raw results first: a stdout that fails (| true, > /dev/full) once lost a whole run's
    storage.write_text_atomic(
        args.json, lambda f: json.dump({"machine": info, "rows": rows, "raw": raw}, f, indent=1)
    )
    plot_error = None
    if args.plot:  # drawn before the report too: a failing stdout lost it
        try:
            plot(rows, args.plot)
        except OSError as exc:  # said after the report (a full disk lost the table with it)
            plot_error = exc
    try:
        _print_report(args, info, rows, raw, drawn=bool(args.plot) and plot_error is None)
    except BrokenPipeError:  # its reader went away: exit 141 quietly (dlcore.cli.main)
        raise
    except OSError as exc:
        raise OSError(f"cannot write the report to stdout ({exc.strerror or exc}); the raw results are in "
                      f"{args.json}") from None  # fmt: skip
    if plot_error is not None:
        raise OSError(f"{plot_error}; the raw results are in {args.json}")
    return 0


def _print_report(
    args: argparse.Namespace, info: dict, rows: list[dict], raw: list[dict], drawn: bool
) -> None:
    """The report on stdout: the machine, the table, memory per step, where the raw results are."""
    print(f"dlcore bench: {info['cpu']}, numpy {info['numpy']} ({info['blas']}), torch {info['torch']}")
    for name, method in info["timing"].items():
        print(f"timing ({name}): {method}")
    if args.tf32:
        print("TF32: the GPU's float32 rows timed with TF32 products (checked in full float32 first)")
    print(markdown(rows))
    for dtype, mem in info.get("peak_memory_wide", {}).items():
        mib = {k: round(v / 2**20, 1) for k, v in mem.items()}
        print(
            f"\nwide net {dtype}, one step (MiB): the ops' workspace {mib['workspace']} kept from the "
            f"first step, and a step's peak {mib['step_peak_extra']} beyond it and the parameters "
            f"({mib['params']}); gradients {mib['grads']}, cached Z and A {mib['cache_Z_A']}"
        )
    peaks = [r for r in raw if r["info"].get("peak_bytes")]
    if peaks:
        print("\nmemory per step (peak allocated above the resident arrays, tracemalloc):")
    for r in peaks:
        kib = {role: f"{b / 1024:,.0f} KiB" for role, b in r["info"]["peak_bytes"].items()}
        print(
            f"  {r['benchmark']} {r['dtype']}: dlcore {kib['vectorized']}, hand-written {kib['handwritten']}"
        )
    print(f"\nraw results: {args.json} ({info['seconds']} s)")
    if drawn:
        print(f"plot: {args.plot}")
    sys.stdout.flush()  # a failing stdout shows here, inside the caller's handler


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return run(args)
    except BrokenPipeError:  # stdout's reader went away: dlcore.cli.main ends quietly (exit 141)
        raise
    except (BackendError, ValueError, OSError) as exc:
        print(f"dlcore bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # python -m dlcore.benchmarks.report ... | head: quietly, as dlcore bench
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
