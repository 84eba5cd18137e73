#!/usr/bin/env bash
# What to run the moment a GPU machine is at hand (one call, under 8 minutes on one H200):
#   1. the stacked-vs-single equivalence tests (every model, loop and vmap) on the GPU, and loader.on_device's;
#   2. scripts/bench_sweep.py with stack sizes 1, 8, 32, 64: models/hour and images/s against the basic launcher.
# Without a GPU it runs the same two steps at CI size on the CPU (the CPU fallback; tests/test_scripts.py runs it).
#
#   bash scripts/gpu_check.sh            # a GPU if there is one, else the CPU fallback
#   bash scripts/gpu_check.sh --cpu      # the CPU fallback, whatever the machine has
# Output: the tests' summary and the bench's table on stdout; nothing is written outside a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--cpu" ]] && python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    python -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
    tests=(tests/test_stacked.py tests/test_compute.py -k "single_run or device")
    # the GPU study's settings: the factor grid on the GPU, TF32 matmuls, bf16 autocast
    bench=(--stack-sizes 1,8,32,64 --basic-jobs 4 --steps 300 --timed-steps 40
           --overrides loader.on_device=true compute.float32_matmul_precision=high trainer.precision=bf16-mixed)
else
    echo "no GPU (or --cpu): the CPU fallback at CI size"
    # one of the suite's equivalence tests (vmap, float32): the fallback shows the step runs; the suite runs them all
    tests=(tests/test_stacked.py -k "single_run and beta_vae-mlp-True-32-true")
    bench=(--stack-sizes 2 --basic-jobs 2 --steps 4 --timed-steps 2 --warmup 2 --overrides loader.on_device=true)
fi
export WANDB_MODE=offline
python -m pytest -q -n 0 -p no:cacheprovider --durations=5 "${tests[@]}"
python scripts/bench_sweep.py "${bench[@]}"
