#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with the wheels an offline GPU machine needs. Run here, with network, in the
# repository root; .whl/ then travels with the tree (the device tool's carry=[".whl"]).
#
#   bash scripts/fetch_gpu_wheels.sh
#       For scripts/gpu_validate.sh on the lent GPU machine (Python 3.12, x86_64; CuPy 14 for CUDA 13,
#       PyTorch, pytest, pytest-benchmark, hypothesis already there): what it lacks, for cp312 manylinux
#       x86_64. array-api-compat and array-api-strict (missing there), setuptools>=77 (builds dlcore
#       there: an editable install, because the tests run from the tree), hypothesis with
#       sortedcontainers (only used if the installed hypothesis is older than the test extra asks), and
#       MPICH's wheel (installed there only if its mpi4py finds no MPI library: the nccl step's one rank
#       meets through MPI). About 15 MB.
#
#   bash scripts/fetch_gpu_wheels.sh --nox cuda13   (or cuda12)
#       Everything `nox -s gpu -- --wheels .whl` installs into its fresh virtualenv, for THIS machine's
#       Python and platform: the test extra, CuPy with its ctk extra and the nvidia-* wheels it pulls
#       (over 1 GB), and setuptools. Run it on a machine like the GPU one.
set -euo pipefail
usage() { echo "usage: $0 [--nox cuda12|cuda13]" >&2; exit 2; }
# the arguments first: a typo must not empty .whl/ (over 1 GB in --nox mode)
case "$#:${1:-}" in
    0:) nox= ;;
    1:--nox) nox=cuda13 ;;
    2:--nox) case $2 in cuda12|cuda13) nox=$2 ;; *) usage ;; esac ;;
    *) usage ;;
esac
cd "$(dirname "$0")/.."
if exclude=$(git rev-parse --git-path info/exclude 2>/dev/null); then
    mkdir -p "$(dirname "$exclude")"
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
fi
rm -rf .whl && mkdir -p .whl
PIP=(python3 -m pip download --quiet --dest .whl --only-binary=:all:)

if [ -n "$nox" ]; then
    extra=$nox
    # the project's own requirements (read from pyproject.toml: dlcore itself is built from the tree there)
    mapfile -t reqs < <(python3 - "$extra" <<'PY'
import re, sys
text = open("pyproject.toml").read()
def block(name):
    m = re.search(rf"^{name} = \[(.*?)\]\s*$", text, re.M | re.S)  # to the ] that ends a line
    return re.findall(r'"([^"]+)"', m.group(1))
for req in block("dependencies") + block("test") + block(sys.argv[1]):
    print(req)
print("setuptools>=77")
PY
    )
    "${PIP[@]}" "${reqs[@]}"
else
    "${PIP[@]}" --no-deps --python-version 3.12 --implementation cp --abi cp312 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        "array-api-compat==1.16.0" "array-api-strict==2.6.1" "setuptools==84.2.1" \
        "hypothesis==6.170.15" "sortedcontainers==2.4.0" "mpich==5.0.2"
fi
ls -l .whl
du -sh .whl
