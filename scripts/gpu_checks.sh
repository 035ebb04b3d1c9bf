#!/usr/bin/env bash
# The GPU checks of BENCHMARKS.md in one run, on a GPU box where `hpa_fastai` imports (pip install -e ".[dev]"):
#
#   bash scripts/gpu_checks.sh [OUTDIR]      # logs in OUTDIR (default gpu_checks/), a summary on the screen
#
# 1. Training throughput of ResNet34 at 512 px, bf16 + channels_last, batch 128 (`bench_train.py`): the model alone,
#    the whole fastai pipeline with the per-item loader and with `CachedBatchDL`, and the model under torch.compile.
# 2. Every notebook's tests with their `cuda` cells (`nbdev-test --flags cuda`): 06_train's bf16 fit and resume on the
#    GPU, 08_predict's GPU predictor, and every other test where the GPU is the default device.
# 3. Generation, cache and features of 4,096 samples at 512 px with one worker a core, and the loader alone from the
#    cache with 0 to 16 DataLoader workers (`bench_scale.py`).
# Each step has its own time limit and log; a failed step is reported and the others still run.
set -u
OUT=${1:-gpu_checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
NB_TMP=$(mktemp -d); SCALE_TMP=$(mktemp -d)
failed=()

step() {  # step NAME SECONDS CMD...: run CMD under a time limit into OUT/NAME.log, echoing it
    local name=$1 secs=$2; shift 2
    local t0=$SECONDS
    echo "=== $name: $*"
    timeout "$secs" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: rc=$rc in $((SECONDS - t0)) s"
    [ "$rc" = 0 ] || failed+=("$name (rc $rc)")
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  lscpu | grep -E '^(Model name|CPU\(s\)):' 
  python3 -c "import torch, fastai; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'fastai', fastai.__version__)"
} 2>&1 | tee "$OUT/machine.txt"

step bench_train 240 python3 scripts/bench_train.py --size 512 --archs resnet34 --bs 128 --steps 30 --loaders item,batch --compile
# notebooks in parallel, 2 threads each; not `hpa_data`: with the real data, 11_experiments' GPU cells run the study's
# whole grid (hours, and ImageNet weights)
step notebooks 600 env TMPDIR="$NB_TMP" OMP_NUM_THREADS=2 nbdev-test --n-workers "$(( $(nproc) < 14 ? $(nproc) : 14 ))" --flags cuda --timing
step bench_scale 150 python3 scripts/bench_scale.py --n 4096 --size 512 --cache-size 512 --workers "$(nproc)" \
    --out "$SCALE_TMP/n4096" --bs 128 --batches 15 --loader-workers 0,4,8,16 --min-free-gb 4

rm -rf "$NB_TMP" "$SCALE_TMP"
if [ ${#failed[@]} -gt 0 ]; then echo "failed: ${failed[*]}"; exit 1; fi
echo "all GPU checks passed"
