#!/usr/bin/env bash
# The one prepared GPU check (issue 17): run it on a machine with an NVIDIA GPU, from the
# repository root. It
#   1. records the device, driver and versions;
#   2. makes CuPy importable: the one installed, else the wheel matching the driver's CUDA major
#      (cupy-cuda12x / cupy-cuda13x) from ./.whl (a machine without network) or from PyPI;
#   3. without a usable GPU: writes one "skipped" line with the reason and exits 0;
#   4. runs the GPU tests (pytest -m gpu) and then benchmarks/gpu_ensembles.py (W1 at R = 65,536
#      and 1,048,576 in float32 and float64, W3 BAOAB at 10^6 paths, RFF SGD at R = 65,536, each
#      with its exact-theory check, against the Numba backend on all CPU cores in the same run).
# Everything it measures goes to $OUT (default ./gpu_check_out): env.txt, pytest_gpu.log,
# pytest_gpu.xml, gpu_ensembles.jsonl (one JSON object per line), stderr.log.
# Exit status: 0 when the tests passed and the benchmark ran (or when skipped without a GPU).
#
#   OUT=/tmp/out bash benchmarks/gpu_device_check.sh [--scale 0.1]   # extra args: gpu_ensembles.py
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 MPLBACKEND=agg
# wheels carried to a machine without network (see the device tool's README): ./.whl/*.whl
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/sgdsim_site .whl/*.whl \
        || { echo "installing the carried wheels failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/sgdsim_site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

{
    date -u +"date %Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
    nvidia-smi 2>/dev/null | grep -o "CUDA Version: [0-9.]*" || echo "CUDA Version: none"
    echo "cpus $(nproc)"
    "$PY" --version
} >"$OUT/env.txt" 2>&1

if ! "$PY" -c "import cupy" 2>/dev/null; then
    cuda_major=$(grep -o "CUDA Version: [0-9]*" "$OUT/env.txt" | grep -o "[0-9]*$" || true)
    if [ -n "$cuda_major" ]; then
        wheel="cupy-cuda${cuda_major}x"
        echo "installing $wheel (CuPy for the driver's CUDA $cuda_major)" | tee -a "$OUT/env.txt"
        "$PY" -m pip install -q --find-links .whl "$wheel" >>"$OUT/stderr.log" 2>&1 \
            || echo "could not install $wheel" | tee -a "$OUT/env.txt"
    fi
fi

reason=$("$PY" - <<'EOF' 2>>"$OUT/stderr.log"
from benchmarks.gpu_ensembles import cupy_reason
print(cupy_reason() or "")
EOF
)
if [ -n "$reason" ]; then
    "$PY" -m benchmarks.gpu_ensembles --require-gpu --jsonl "$OUT/gpu_ensembles.jsonl" \
        >/dev/null 2>>"$OUT/stderr.log"
    echo "skipped: no usable GPU ($reason); wrote $OUT/gpu_ensembles.jsonl"
    exit 0
fi

status=0
# the project's addopts select 'not gpu' and need nbmake: override them for this run
"$PY" -m pytest -m gpu -o addopts="" -p no:cacheprovider -q --junitxml="$OUT/pytest_gpu.xml" tests \
    >"$OUT/pytest_gpu.log" 2>&1 || status=1
tail -n 3 "$OUT/pytest_gpu.log"
"$PY" -m benchmarks.gpu_ensembles --require-gpu --jsonl "$OUT/gpu_ensembles.jsonl" "$@" \
    2>>"$OUT/stderr.log" || status=1
exit $status
