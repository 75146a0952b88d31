#!/usr/bin/env bash
# Issue 14 §2 on one GPU machine: the RL variants side by side, each from the committed
# Executor (checkpoints/executor_sim), each for the same wall-clock budget, one GPU and the
# 16 cores shared by all four (the executed reward runs the simulator in process pools):
#   rl_anchor        executed success + consistency, + beta_d 0.01 x the anchor to the frozen
#                    Demonstrator given the detailed solution (the paper's recipe)
#   rl               the same reward, no anchor (RL alone)
#   anchor           the anchor alone (on-policy distillation; the colour judge only logged)
#   rl_anchor_judge  the colour judge's score as the reward, + the anchor (judge vs executed)
# Flow-GRPO practice in all: one initial noise per group, group 16, KL 0.01, 60 % of the
# sampling steps trained, 4 optimizer passes per rollout batch (the clip acts).
#
# Here, CPU (once, about 2.5 min on 2 cores): scripts/prepare_gpu_inputs.sh makes the
# proposals, the pack (items + MiniLM text table; the GPU machine has no MiniLM), the
# diffusers + mujoco site folder (slimmed: the tree that travels is capped at 64 MiB), the
# SO-101 model files and the EGL loaders (.whl/ and .gl/ are git-ignored);
# and park what the run does not need outside the tree that travels (the other checkpoints,
# checkpoints/executor_sim/results) for the call: it needs executor_sim (or INIT),
# demonstrator_sim and idm_sim:
#   scripts/gpu_tree.sh stash executor_sim demonstrator_sim idm_sim   # then, after the call:
#   scripts/gpu_tree.sh restore
# INIT=checkpoints/executor_anchor_sim starts every variant from the bringup's Executor
# (benchmarks/bench_grpo_signal.py measures first how many of a group's samples execute).
# On the GPU machine (carry outputs/wt/pack512, .whl with site.tar.xz, .gl with the debs):
#   bash scripts/grpo_variants_gpu.sh "$OUT" 5
# Locally, a dry run of the same code path (one tiny step each):
#   PYTHON=.venv/bin/python bash scripts/grpo_variants_gpu.sh /tmp/out 1 --grpo_max_steps 1 \
#       --grpo_prompts_per_step 2 --grpo_group_size 2 --grpo_micro_batch_size 4 --grpo_items 8
# Extra arguments go to every variant. Back: one archive per variant (pipeline + metrics +
# configs) and the logs; evaluate them here with benchmarks/bench_goal_runner.py.
set -uo pipefail
out="${1:?usage: grpo_variants_gpu.sh OUT_DIR MINUTES [chain args...]}"
minutes="${2:?usage: grpo_variants_gpu.sh OUT_DIR MINUTES [chain args...]}"
shift 2
init="${INIT:-checkpoints/executor_sim}"  # the Executor every variant starts from
pack="${PACK:-outputs/wt/pack512}"
run="${RUN_DIR:-outputs/grpo_variants}"
# shellcheck source=scripts/gpu_setup.sh
source scripts/gpu_setup.sh || exit 1
mkdir -p "$out" "$run"
common=(--preset sim --stage grpo --pack_dir "$pack" --output_dir "$run"
  --grpo_init "$init" --grpo_minutes "$minutes" --grpo_max_steps 400
  --grpo_prompts_per_step 8 --grpo_group_size 16 --grpo_micro_batch_size 64
  --grpo_minibatches 4 --grpo_learning_rate 5e-5 --grpo_kl_beta 0.01)
# shellcheck disable=SC2206  # VARIANTS: a space-separated subset
variants=(${VARIANTS:-rl_anchor rl anchor rl_anchor_judge})
declare -A args=(
  [rl_anchor]="--grpo_judge executed --grpo_execution_workers 6 --grpo_anchor_beta 0.01"
  [rl]="--grpo_judge executed --grpo_execution_workers 6"
  [anchor]="--grpo_judge programmatic --grpo_anchor_beta 0.01 --grpo_policy_weight 0"
  [rl_anchor_judge]="--grpo_judge programmatic --grpo_anchor_beta 0.01"
)
running=()
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086  # the variant's flags split on purpose
  "$py" scripts/executor_gpu_chain.py "${common[@]}" --grpo_name "$v" ${args[$v]} "$@" \
    >"$out/$v.log" 2>&1 &
  running+=("$v:$!")
done
rc=0
wait_named "$out" "${running[@]}" || rc=1
for v in "${variants[@]}"; do
  grep -h "step .*reward" "$out/$v.log" | tail -3
  tar czf "$out/$v.tar.gz" -C "$run" --ignore-failed-read "$v/pipeline" "$v/metrics.jsonl" \
    "$v/config.json" "${v}_chain_config.json" "${v}_timings.json" 2>/dev/null || true
done
tar czf "$out/logs.tar.gz" -C "$out" $(cd "$out" && ls ./*.log)
rm -f "$out"/*.log
ls -la "$out"
exit "$rc"
