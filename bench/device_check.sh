#!/usr/bin/env bash
# One prepared check for a lent GPU machine (an NVIDIA H200, Python 3.12 as python3 with numpy,
# cupy-cuda13x, torch (CUDA), jax, threadpoolctl and pytest; no network). Run from the repository root:
#
#     bash bench/device_check.sh                       # on the GPU machine, about 4 minutes
#     DEVICE_CHECK_DRY=1 bash bench/device_check.sh    # here, on a CPU: every step, CPU-sized
#
# It needs the two pure-Python wheels in .whl/ and, for a benchmark on the real 56,000 images, MNIST in
# .data/mnist: `bash bench/fetch_wheels.sh` prepares both here; carry [".whl", ".data"]. Without MNIST
# (also looked for in $NNBACKEND_DATA and shared/data) it benchmarks the sample in the package, and says so.
# Steps, each under its own timeout so that the whole stays within 5 minutes:
#   1. install array-api-compat and array-api-strict from .whl/ into /tmp/site;
#   2. nvidia-smi -L and what nnbackend sees;
#   3. nnbackend parity on numpy, cupy and torch_cuda (named backends must be usable, or it fails);
#   4. bench/bench_train.py --device cuda: nnbackend on CuPy against PyTorch CUDA, JAX on the GPU and
#      the matmul floor (CuPy), rows 512-256/128, 512-256/full, 4096-4096/1024 and 4096-4096/full,
#      then the time to 97% validation accuracy (1 seed);
#   5. a short table.
# Results (logs, JSON) go to $OUT when the machine provides it, else to /tmp/device-check.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
DRY=${DEVICE_CHECK_DRY:-0}
PY=${PYTHON:-python3}
status=0
step() { echo; echo "=== $* ($(date +%T))"; }
note_failure() { echo "!!! $1 failed (exit $2)"; status=1; }

step "1. wheels from .whl/ into /tmp/site"
if ls .whl/*.whl >/dev/null 2>&1; then
    timeout 20 "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        || note_failure "wheel install" $?
else
    echo "no .whl/*.whl here: run bash bench/fetch_wheels.sh on a machine with network and carry .whl"
    status=1
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1  # a step cut by its timeout keeps what it printed

step "2. devices"
timeout 10 nvidia-smi -L || echo "(nvidia-smi not available here)"
timeout 25 "$PY" - <<'EOF' || note_failure "backend listing" $?
import nnbackend as nb
for info in nb.available_backends():
    print(f"  {info.name:17s} {str(info.version):12s} {'usable' if info.usable else 'unusable'}: "
          f"{', '.join(info.devices) if info.usable else info.reason[:110]}")
EOF

data_args=(--dataset mnist-sample)
for root in "${NNBACKEND_DATA:-}" shared/data .data /work/shared/data; do
    if [ -n "$root" ] && [ -d "$root/mnist" ]; then
        export NNBACKEND_DATA=$root
        data_args=(--dataset mnist)
        break
    fi
done

if [ "$DRY" = 1 ]; then
    # The same commands at CPU scale: only numpy is sure to be usable on a CPU machine, and the GPU
    # contenders report themselves unusable (or run on the CPU where their library can).
    parity_backends=numpy
    bench_args=(--device cpu --contenders numpy,floor,cupy,jax --rows 16-16/64,16-16/full
                --n-train 512 --epochs 1 --t97-row 16-16/64 --target 0.5 --t97-max-epochs 2 --t97-seeds 2)
    data_args=(--dataset mnist-sample)
    bench_required=numpy
else
    parity_backends=numpy,cupy,torch_cuda
    bench_args=(--device cuda --contenders cupy,torch_cuda,jax,floor
                --rows 512-256/128,512-256/full,4096-4096/1024,4096-4096/full
                --epochs 3 --t97-max-epochs 6 --t97-seeds 1)
    bench_required=cupy  # nnbackend on the GPU must run: a cupy worker that cannot start fails the check
fi

echo "benchmark data: ${data_args[*]} ${NNBACKEND_DATA:+(NNBACKEND_DATA=$NNBACKEND_DATA)}"
[ "${data_args[1]}" = mnist ] || [ "$DRY" = 1 ] || echo "!!! no MNIST here: the timings are of the 4,000-image sample (run bench/fetch_wheels.sh and carry .data)"

step "3. parity matrix on $parity_backends"
timeout 100 "$PY" -m nnbackend parity --backends "$parity_backends" --dtypes float32,float64 --json "$OUT/parity.json" \
    --markdown "$OUT/parity.md" 2>&1 | tee "$OUT/parity.log" | tail -25
code=${PIPESTATUS[0]}
[ "$code" = 0 ] || note_failure "parity matrix" "$code"

step "4. training benchmark (${bench_args[*]})"
timeout 135 "$PY" bench/bench_train.py "${bench_args[@]}" "${data_args[@]}" --t97 \
    --quiet-wait 0 --pause 0.1 --max-rounds 4 --no-readme --out "$OUT/bench_train.json" \
    --worker-logs "$OUT/workers" --require "$bench_required" \
    >"$OUT/bench.out" 2>"$OUT/bench.err"
code=$?
tail -25 "$OUT/bench.err"
[ "$code" = 0 ] || note_failure "benchmark" "$code"

step "5. summary"
timeout 10 "$PY" - "$OUT/bench_train.json" <<'EOF' || note_failure "summary" $?
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['settings']['n_train']} training images, device {r['settings']['device']}, "
      f"{r['machine'].get('gpu') or r['machine']['cpu']}")
print(f"{'row':16s} {'contender':12s} {'s/epoch':>9s} {'x peer':>7s} {'x floor':>8s} {'device MiB':>10s}")
for row, entry in r["rows"].items():
    for c, e in entry["contenders"].items():
        if "error" in e:
            print(f"{row:16s} {c:12s} {'FAILED' if e.get('failed') else 'unusable'}: {e['error'][:70]}")
            continue
        f = lambda v, s: "-" if v is None else format(v, s)
        print(f"{row:16s} {c:12s} {f(e['median_s'], '9.4f')} {f(e['ratio_to_fastest_peer'], '7.2f')} "
              f"{f(e['ratio_to_floor'], '8.2f')} {f(e.get('device_peak_mb'), '10.0f')}")
t = r.get("time_to_target")
if t:
    for c, e in t["contenders"].items():
        print(f"time to {t['target']:.0%} ({t['row']}) {c:12s} " +
              (e["error"][:70] if "error" in e else f"{e['wall_s']:.2f} s, {e['epochs']} epochs, reached {e['reached']}"))
EOF

echo
echo "device check finished with status $status; files in $OUT"
exit $status
