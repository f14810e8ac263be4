#!/usr/bin/env bash
# Proves the CuPy backend on a real NVIDIA GPU, all five steps of the GPU-correctness issue in one go:
#   1. the full test suite, cupy included (float32 and float64, float64 gradient checks)
#   2. CPU/GPU parity: same seed -> same cost history and predictions; saved on GPU, loaded on CPU
#   3. `dlcore train --backend cupy`, `--backend auto` (must choose the GPU), `dlcore info`
#   4. the benchmark suite on cupy (loop vs vectorized, step vs cuBLAS floor, PyTorch CUDA as peer)
#   5. GPU memory steady over 1,000 steps (CuPy's pool), in tests/test_gpu.py
#
# With the device tool (no network there; see /work/.library/device/README.md):
#   here:   bash scripts/fetch_gpu_wheels.sh
#   device: run(command="bash scripts/gpu_validate.sh", carry=[".whl"], timeout_s=600)
# The log lands in $OUT/gpu_validate.log (and $OUT/bench_gpu.json); commit it as docs/gpu_validate.log.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
LOG="$OUT/gpu_validate.log"
: > "$LOG"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
declare -A RESULT

step() {  # step NAME COMMAND...: run, log, remember pass/fail
    local name=$1; shift
    echo "===== $name: $*" | tee -a "$LOG"
    if "$@" 2>&1 | tee -a "$LOG"; then RESULT[$name]=PASS; else RESULT[$name]=FAIL; fi
}

{
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 - <<'PY'
import sys, numpy, cupy
print("python", sys.version.split()[0], "| numpy", numpy.__version__, "| cupy", cupy.__version__,
      "| CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(), "| driver", cupy.cuda.runtime.driverGetVersion())
try:
    import torch
    print("torch", torch.__version__, "| torch CUDA", torch.version.cuda, "| TF32 matmul", torch.backends.cuda.matmul.allow_tf32)
except ImportError:
    print("torch: not installed")
PY
} 2>&1 | tee -a "$LOG"

step 1-tests python3 -m pytest -q -p no:cacheprovider tests
step 2-parity python3 -m pytest -v -p no:cacheprovider tests/test_gpu.py
step 3-train-cupy python3 -m dlcore train --backend cupy
step 3-train-auto bash -c 'python3 -m dlcore train --backend auto | tee /dev/stderr | grep -q "backend: cupy"'
step 3-info python3 -m dlcore info
step 4-bench python3 -c "import sys; from dlcore.benchmarks.report import main; sys.exit(main(sys.argv[1:]))" \
    --backend cupy --json "$OUT/bench_gpu.json"

echo "===== summary" | tee -a "$LOG"
status=0
for name in 1-tests 2-parity 3-train-cupy 3-train-auto 3-info 4-bench; do
    echo "$name: ${RESULT[$name]:-NOT RUN}" | tee -a "$LOG"
    [ "${RESULT[$name]:-}" = PASS ] || status=1
done
exit $status
