#!/usr/bin/env bash
# The CuPy backend's validation on one NVIDIA GPU (issue 13), in two commands of under 8 minutes each:
#
#   bash scripts/gpu_validate.sh 1   # the log's head (nvidia-smi, pip list, cupy.show_config()), then: the
#                                    # CPU/GPU parity checks, the GPU subset without the defaults' speed-ups
#                                    # (CuPy's fused kernels, torch's CUDA graphs: DLCORE_CUPY_FUSED=0,
#                                    # DLCORE_TORCH_GRAPHS=0), one-rank NCCL, the CLI on --backend cupy (also
#                                    # --device-rng) and auto, dlcore info, dlcore predict on cupy (and the
#                                    # GPU's model on numpy), the step timings of TorchOps' CUDA graphs and
#                                    # of CupyOps (fused or not, host/device time, a CuPy graph's capture),
#                                    # the test suite with cupy and torch:cuda (float32 and float64), quick
#                                    # benchmarks
#   bash scripts/gpu_validate.sh 2   # the full benchmark report on cupy (PyTorch CUDA as peer) and the
#                                    # pytest-benchmark suite on cupy (its loops at the quick sizes: the
#                                    # report has them at full size; so both fit the 8 minutes)
#
# Each command ends with one summary line per step: PASS, FAIL, or SKIPPED (no GPU), and exits 1 if any
# step failed. A GPU is present when nvidia-smi is installed; then CuPy must use it (a cupy test that
# skips is a failure: DLCORE_REQUIRE_CUPY=1). Without one, the CPU steps still run (a rehearsal) and the
# GPU steps say SKIPPED (no GPU); GPU_VALIDATE_DRY=1 also runs the GPU steps' commands on numpy, to check
# them, and they still say SKIPPED. Every step has a time limit, and no step starts (or runs) after
# $GPU_VALIDATE_BUDGET_S seconds from the start (default 470: under 8 minutes);
# a step past its limit gets SIGINT (then SIGKILL 10 s later), so pytest still prints what failed so far.
#
# Offline set-up: the wheels the machine lacks are in .whl/ (scripts/fetch_gpu_wheels.sh, run where there
# is network). The script installs this tree, editable and from .whl/ only, into the environment of
# $PYTHON (default python3) when that is a venv (the GPU machine's is), else into a venv over it ($VENV,
# default /tmp/dlcore-gpu-venv, with the system site-packages). Editable, because the tests run from
# the tree, where only the installed package maps the backends/ and benchmarks/ folders to
# dlcore.backends and dlcore.benchmarks (a plain PYTHONPATH cannot).
#
# With the device tool (no network there; /work/.library/device/README.md):
#   here:   bash scripts/fetch_gpu_wheels.sh
#   device: run(command="bash scripts/gpu_validate.sh 1", carry=[".whl"], timeout_s=600), then "... 2"
# Logs and results land in $OUT: gpu_validate_1.log, bench_gpu_quick.json; gpu_validate_2.log,
# bench_gpu.json, speedup_gpu.png, pytest_bench_gpu.json. Commit the logs under docs/.
set -uo pipefail
PART=${1:-1}
case $PART in 1|2) ;; *) echo "usage: $0 1|2" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_validate_$PART.log"
: > "$LOG"
PY=${PYTHON:-python3}
VENV=${VENV:-/tmp/dlcore-gpu-venv}
# $PY in a venv (the GPU machine's python3 is /opt/torch/.venv/bin/python3): install into it, where
# CuPy's cuda-pathfinder finds the nvidia-* libraries (it searches site.getsitepackages() only, so a
# second venv layered over it by a .pth would hide them). A system Python gets a venv over it.
if "$PY" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then VPY=$PY; else VPY="$VENV/bin/python"; fi
WORK=$(mktemp -d)
DEADLINE=$((SECONDS + ${GPU_VALIDATE_BUDGET_S:-470}))  # no step starts later; each stops by then
export PYTHONUNBUFFERED=1 VPY OUT WORK LOG
if command -v nvidia-smi >/dev/null 2>&1; then GPU=1; else GPU=0; fi
export GPU BK=cupy

log() { echo "$*" | tee -a "$LOG"; }

# -- the log's head -------------------------------------------------------------------------------
log "gpu_validate part $PART: $(date -u +%FT%TZ), $(uname -m), GPU present: $([ $GPU = 1 ] && echo yes || echo 'no (nvidia-smi not found)')"
log "===== nvidia-smi"
if [ $GPU = 1 ]; then nvidia-smi 2>&1 | tee -a "$LOG"; else log "nvidia-smi: not found"; fi

setup() {  # this tree installed (editable) from .whl/ only, where $PY's packages (CuPy, PyTorch, ...) are
    if [ "$VPY" != "$PY" ] && [ ! -x "$VPY" ]; then  # a system Python: a venv that sees its packages
        "$PY" -m venv --system-site-packages --without-pip "$VENV" || return 1  # pip: the system's
    fi
    local pip=("$VPY" -m pip install --quiet --no-cache-dir --disable-pip-version-check)
    [ -d .whl ] && pip+=(--no-index --find-links .whl)
    "${pip[@]}" -e ".[test]" || return 1  # built in isolation, with setuptools>=77 from .whl/
    "$VPY" -c 'import dlcore, dlcore.backends, dlcore.benchmarks; print("installed: dlcore", dlcore.__version__, "from", dlcore.__path__[0])'
}
setup_mpi() {  # the nccl step meets its one rank through MPI: an mpi4py wheel that finds no MPI library
    # gets MPICH's wheel from .whl/ (libmpi.so.12 lands in the venv's lib/, where mpi4py looks); a failure
    # here fails no step but the nccl one, which then says why
    if "$VPY" -c 'import mpi4py' 2>/dev/null && ! "$VPY" -c 'from mpi4py import MPI' 2>/dev/null &&
        compgen -G ".whl/mpich-*.whl" >/dev/null; then
        echo "mpi4py finds no MPI library: installing MPICH's wheel from .whl/"
        "$VPY" -m pip install --quiet --no-cache-dir --disable-pip-version-check --no-index --no-deps \
            .whl/mpich-*.whl || echo "MPICH's wheel did not install"
    fi
    "$VPY" -c 'from mpi4py import MPI; print("MPI:", MPI.Get_library_version().splitlines()[0])' 2>&1 | tail -n 1
}
log "===== setup: $VPY -m pip install -e .[test] $([ -d .whl ] && echo 'from .whl/ only (offline)')"
if setup 2>&1 | tee -a "$LOG"; then SETUP=PASS; else SETUP=FAIL; fi
setup_mpi 2>&1 | tee -a "$LOG"

log "===== pip list"
"$VPY" -m pip list --disable-pip-version-check 2>&1 | tee -a "$LOG"
log "===== cupy.show_config()"
"$VPY" -c 'import cupy; cupy.show_config()' 2>&1 | tail -n 60 | tee -a "$LOG"
"$VPY" - <<'PY' 2>&1 | tee -a "$LOG"
import sys
import numpy
print("python", sys.version.split()[0], "| numpy", numpy.__version__)
try:
    import torch
    matmul = torch.backends.cuda.matmul  # fp32_precision since PyTorch 2.9, where allow_tf32 warns
    tf32 = getattr(matmul, "fp32_precision", None) or matmul.allow_tf32
    print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| GPU", torch.cuda.is_available(),
          "| fp32 matmul", tf32)
except ImportError:
    print("torch: not installed")
PY

# -- the steps (functions run by `bash -c` under a time limit; $BK is cupy, or numpy in a dry run) ------
do_probe() {
    "$VPY" -c 'import os, sys
from dlcore.backends import cupy_status, get_backend
reason = cupy_status()[1]
if reason:
    print("cupy_status:", reason)
    sys.exit(1 if os.environ["BK"] == "cupy" else 0)
be = get_backend("cupy")
print("cupy: ok on", be.device_name(), "| memory", be.memory_info())'
}
do_tests() {  # the whole suite; with a GPU every cupy case runs (float32 and float64), none may skip. Over
    # 8 processes where pytest-xdist is installed (the GPU machine's image has it; 16 cores): NVRTC's first
    # compilations and the MPI jobs made one process tight for the 240 s
    local workers=()
    "$VPY" -c "import xdist" 2>/dev/null && workers=(-n 8)
    DLCORE_REQUIRE_CUPY=$GPU "$VPY" -m pytest -q -p no:cacheprovider -rfEs --tb=short --durations=20 "${workers[@]}" tests
}
do_parity() {  # on the default ops (CupyOps' fused kernels): a kernel that fails and falls back warns,
    # and that warning fails the step
    DLCORE_REQUIRE_CUPY=$GPU "$VPY" -m pytest -v -p no:cacheprovider -W "error:dlcore:RuntimeWarning" \
        tests/test_gpu.py tests/test_gpu_syncs.py
}
do_unfused() {  # the GPU paths without the defaults' speed-ups (CupyOps' fused kernels, TorchOps' CUDA
    # graphs): ops, gradients, the CPU/GPU parity, float16 and the loop; "test_gpu": its ids name no cupy
    DLCORE_CUPY_FUSED=0 DLCORE_TORCH_GRAPHS=0 DLCORE_REQUIRE_CUPY=$GPU "$VPY" -m pytest -q -p no:cacheprovider \
        tests/test_ops.py tests/test_gradients.py tests/test_precision.py tests/test_gpu.py tests/test_minibatch.py \
        -k "cupy or cuda or test_gpu"
}
do_nccl() {  # a one-rank NCCL run (MPI singleton: no mpiexec needed) gives the bits of a plain cupy fit
    NCCL_DEBUG=WARN "$VPY" - <<'PY'
import os
import numpy as np
from dlcore import Network
from dlcore.backends import get_backend
from dlcore.backends.comm import MPIComm, NCCLComm
from dlcore.datasets import planar
be = get_backend(os.environ["BK"])  # numpy in a dry run: the same job through MPI
comm = NCCLComm() if be.name == "cupy" else MPIComm()
X, Y = planar(be, m=400, dtype="float64")
nets = [Network([2, 4, 1], hidden_activation="tanh", backend=be, dtype="float64", seed=3) for _ in range(2)]
options = dict(epochs=5, batch_size=64, optimizer="adam", learning_rate=0.01, keep_prob=0.8, l2=0.05)
plain = nets[0].fit(X, Y, **options)
other = nets[1].fit(X, Y, comm=comm, **options)
same = all(np.array_equal(be.to_numpy(nets[0].params[k]), be.to_numpy(nets[1].params[k])) for k in nets[0].params)
print(f"{comm.name}: one rank, mini-batch Adam + L2 + dropout: parameters bitwise equal: {same}; "
      f"costs equal: {plain.costs == other.costs}")
assert same and plain.costs == other.costs
PY
}
do_cli_train() {  # the CLI's default job on the GPU; saves the model for predict
    "$VPY" -m dlcore train --backend "$BK" --out "$WORK/model.npz" | tee "$WORK/train.txt"
    grep -q "^backend: $BK" "$WORK/train.txt"
}
do_cli_device_rng() {  # mini-batch Adam with dropout, shuffles and masks drawn on the GPU
    "$VPY" -m dlcore train --backend "$BK" --dataset moons --layers 2,16,1 --hidden-activation relu \
        --init he --optimizer adam --lr 0.01 --epochs 30 --batch-size 64 --keep-prob 0.9 --device-rng --quiet
}
do_cli_auto() {  # auto must choose the GPU where there is one, and say why it chose numpy elsewhere
    "$VPY" -m dlcore train --backend auto --iterations 2000 2>&1 | tee "$WORK/auto.txt"  # not --quiet: it hides the auto: line
    if [ "$GPU" = 1 ]; then grep -q "^backend: cupy" "$WORK/auto.txt"
    else grep -q "auto: chose numpy on CPU because" "$WORK/auto.txt"; fi
}
do_info() {
    "$VPY" -m dlcore info | tee "$WORK/info.txt"
    grep -Eq '^dlcore [0-9][^ ]* on Python' "$WORK/info.txt" && ! grep -q "not installed)" "$WORK/info.txt" || return 1
    if [ "$GPU" = 1 ]; then grep -Eq '^  cupy +available$' "$WORK/info.txt" && grep -q '^GPU: .*CUDA runtime' "$WORK/info.txt"; fi
}
do_predict() {  # the GPU's model predicts on cupy and on numpy: the same labels, probabilities within 1e-9
    "$VPY" -m dlcore predict --model "$WORK/model.npz" --data planar --backend "$BK" --out "$WORK/pred_gpu.csv" &&
    "$VPY" -m dlcore predict --model "$WORK/model.npz" --data planar --backend numpy --out "$WORK/pred_cpu.csv" &&
    "$VPY" - "$WORK/pred_gpu.csv" "$WORK/pred_cpu.csv" <<'PY'
import csv, sys
gpu, cpu = ([row for row in csv.DictReader(open(path))] for path in sys.argv[1:])
assert len(gpu) == len(cpu) == 400, (len(gpu), len(cpu))
worst = max(abs(float(g["probability"]) - float(c["probability"])) for g, c in zip(gpu, cpu))
labels = sum(g["label"] != c["label"] for g, c in zip(gpu, cpu))
print(f"predict: {len(gpu)} rows; largest |p_gpu - p_cpu| = {worst:.3g}; labels that differ: {labels}")
assert worst < 1e-9 and labels == 0
PY
}
do_torch_graphs() {  # TorchOps' CUDA graphs (the default; DLCORE_TORCH_GRAPHS=0 turns them off): the eager
    # steps' bits, then eager against graphs against the products' floor on the three nets (issues 18, 20)
    DLCORE_REQUIRE_CUPY=$GPU "$VPY" -m pytest -q -p no:cacheprovider -rfEs tests/test_torch_graphs.py &&
    "$VPY" -m dlcore.benchmarks.torch_graphs --device "$([ "$BK" = cupy ] && echo cuda || echo cpu)" --rounds 11
}
do_cupy_step() {  # CupyOps' step, fused or not, against its floor; host vs device time; a CuPy graph
    if [ "$BK" = cupy ]; then "$VPY" -m dlcore.benchmarks.cupy_step --rounds 7
    else "$VPY" -c 'import dlcore.benchmarks.cupy_step'; fi  # a dry run: the module imports
}
do_bench_quick() {
    "$VPY" -m dlcore bench --quick --backend "$BK" --json "$OUT/bench_gpu_quick.json"
}
do_bench_full() {
    local plot=()
    "$VPY" -c "import matplotlib" 2>/dev/null && plot=(--plot "$OUT/speedup_gpu.png")
    "$VPY" -m dlcore bench --backend "$BK" --json "$OUT/bench_gpu.json" "${plot[@]}"
}
do_bench_pytest() {  # the pytest-benchmark suite, loops at the quick sizes (bench-full's report has the
    # full ones); a dry run on numpy only runs each contestant once
    local mode=(--benchmark-only --bench-quick --benchmark-json "$OUT/pytest_bench_gpu.json")
    [ "$BK" = numpy ] && mode=(--benchmark-disable)
    DLCORE_REQUIRE_CUPY=$GPU "$VPY" -m pytest -q -p no:cacheprovider benchmarks -k "$BK" "${mode[@]}"
}
export -f do_probe do_tests do_parity do_unfused do_cupy_step do_nccl do_cli_train do_cli_device_rng do_cli_auto do_info do_predict do_torch_graphs do_bench_quick \
    do_bench_full do_bench_pytest

declare -A RESULT
ORDER=()
step() {  # step NAME KIND LIMIT_S FUNCTION: KIND "gpu" (SKIPPED without a GPU) or "any"
    local name=$1 kind=$2 limit=$3 fn=$4 left=$((DEADLINE - SECONDS)) t0=$SECONDS rc
    ORDER+=("$name")
    if [ "$SETUP" != PASS ]; then RESULT[$name]="NOT RUN (setup failed)"; return; fi
    if [ $left -lt 15 ]; then RESULT[$name]="NOT RUN (out of time)"; log "===== $name: not run, out of time"; return; fi
    [ $limit -gt $left ] && limit=$left
    if [ "$kind" = gpu ] && [ $GPU = 0 ]; then
        if [ "${GPU_VALIDATE_DRY:-0}" != 1 ]; then RESULT[$name]="SKIPPED (no GPU)"; log "===== $name: SKIPPED (no GPU)"; return; fi
        log "===== $name (dry run on numpy: no GPU): $fn"
        BK=numpy timeout -s INT -k 10 "$limit" bash -c "$fn" 2>&1 | tee -a "$LOG"; rc=${PIPESTATUS[0]}
        if [ $rc = 0 ]; then RESULT[$name]="SKIPPED (no GPU; its dry run on numpy passed)"
        else RESULT[$name]="FAIL (no GPU; its dry run on numpy exited $rc)"; fi
        return
    fi
    log "===== $name: $fn (limit ${limit} s)"
    timeout -s INT -k 10 "$limit" bash -c "$fn" 2>&1 | tee -a "$LOG"; rc=${PIPESTATUS[0]}
    case $rc in
        0) RESULT[$name]=PASS ;;
        124|137) RESULT[$name]="FAIL (stopped after ${limit} s)" ;;
        *) RESULT[$name]="FAIL (exit $rc)" ;;
    esac
    RESULT[$name]+=" in $((SECONDS - t0)) s"
    if [ $GPU = 0 ] && [ "$name" = tests ] && [ $rc = 0 ]; then RESULT[$name]+=" (numpy, array_api_strict and torch on the CPU; the cupy and torch:cuda cases SKIPPED: no GPU)"; fi
}

if [ "$PART" = 1 ]; then  # the short GPU-only checks first: a slow suite (NVRTC compiling every kernel on
    # a fresh machine) then takes the time of the quick benchmarks, not theirs; part 2 has the full report
    step probe           gpu 60  do_probe
    step parity          gpu 120 do_parity
    step unfused         gpu 120 do_unfused
    step nccl            gpu 60  do_nccl
    step cli-cupy        gpu 60  do_cli_train
    step cli-device-rng  gpu 60  do_cli_device_rng
    step cli-auto        any 60  do_cli_auto
    step info            any 60  do_info
    step predict-cupy    gpu 60  do_predict
    step torch-graphs    gpu 90  do_torch_graphs
    step cupy-step       gpu 90  do_cupy_step
    step tests           any 240 do_tests
    step bench-quick     gpu 180 do_bench_quick
else
    step probe           gpu 60  do_probe
    step bench-full      gpu 300 do_bench_full
    step bench-pytest    gpu 240 do_bench_pytest
fi

log "===== summary (part $PART, $SECONDS s; setup: $SETUP)"
status=0
[ "$SETUP" = PASS ] || status=1
for name in "${ORDER[@]}"; do
    log "$name: ${RESULT[$name]}"
    case ${RESULT[$name]} in PASS*|SKIPPED*) ;; *) status=1 ;; esac
done
rm -rf "$WORK"
exit $status
