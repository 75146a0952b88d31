#!/usr/bin/env bash
# Issue 7 §1-4 on one GPU machine (see docs/method.md, "Sim Executor on one GPU").
# Prerequisite (here, CPU): executor-propose --preset sim; executor-propose --preset
# sim-heldout --num_sim_scenes=128; python scripts/executor_gpu_chain.py --preset sim --stage pack
# On the GPU machine (carry .whl, with the diffusers and mujoco wheels, and outputs/exec_gpu/pack):
#   bash scripts/train_executor_gpu.sh sim "$OUT"
# Locally, as a dry run of the same code path:  PYTHON=.venv/bin/python bash
#   scripts/train_executor_gpu.sh debug /tmp/out
set -euo pipefail
preset="${1:-sim}"
out="${2:?usage: train_executor_gpu.sh PRESET OUT_DIR}"
py="${PYTHON:-python3}"
if [ -z "${PYTHON:-}" ]; then  # the GPU machine has torch but not diffusers: carried wheel
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
run="outputs/exec_gpu/run"
[ "$preset" = debug ] && run="outputs/exec_gpu/run_debug"
mkdir -p "$out"
rc=0
"$py" scripts/executor_gpu_chain.py --preset "$preset" --stage run 2>&1 | tee "$out/log" || rc=$?
# two archives (the return limit is 16 MiB a file): the RL Executor + every figure, and the
# distilled Executor; optimizer checkpoints and clip caches stay behind
tar czf "$out/rl.tar.gz" -C "$run" --ignore-failed-read grpo/pipeline grpo/metrics.jsonl \
  grpo/config.json eval chain_config.json demo_stats.json timings.json \
  executor_distilled/train_config.json || true
tar czf "$out/distilled.tar.gz" -C "$run" --ignore-failed-read executor_distilled/pipeline \
  executor_distilled/samples || true
ls -la "$out"
exit "$rc"
